"""The RBAC evaluator of the coverage test: request attributes and rule matching."""

from __future__ import annotations

import pytest
from rbac_audit import Attributes, Request, attributes, denied_requests

CLUSTER_ROLE = {
    "kind": "ClusterRole",
    "metadata": {"name": "reader"},
    "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
        {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"],
         "resourceNames": ["sr"], "verbs": ["patch"]},
    ],
}
ROLE = {
    "kind": "Role",
    "metadata": {"name": "deployer", "namespace": "system"},
    "rules": [{"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["create"]}],
}


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (Request("GET", "/api/v1/pods", watch=False), Attributes("list", "", "pods", None, None)),
        (Request("GET", "/api/v1/pods", watch=True), Attributes("watch", "", "pods", None, None)),
        (Request("GET", "/api/v1/namespaces/a/pods/p", watch=False),
         Attributes("get", "", "pods", "a", "p")),
        (Request("GET", "/api/v1/namespaces/a", watch=False),
         Attributes("get", "", "namespaces", None, "a")),
        (Request("PATCH", "/apis/seccomp-recorder.io/v1alpha1/namespaces/a/seccompprofiles/p/status",
                 watch=False),
         Attributes("patch", "seccomp-recorder.io", "seccompprofiles/status", "a", "p")),
        (Request("POST", "/api/v1/namespaces/a/events", watch=False),
         Attributes("create", "", "events", "a", None)),
        (Request("PUT", "/apis/apps/v1/namespaces/a/daemonsets/d", watch=False),
         Attributes("update", "apps", "daemonsets", "a", "d")),
        (Request("PATCH", "/apis/kopf.dev/v1/clusterkopfpeerings/sr", watch=False),
         Attributes("patch", "kopf.dev", "clusterkopfpeerings", None, "sr")),
    ],
)
def test_request_maps_to_attributes(request_: Request, expected: Attributes) -> None:
    assert attributes(request_) == expected


@pytest.mark.parametrize("path", ["/api", "/apis", "/api/v1", "/apis/apps/v1", "/version",
                                  "/openapi/v2"])
def test_discovery_paths_have_no_attributes(path: str) -> None:
    assert attributes(Request("GET", path, watch=False)) is None


def test_allowed_requests_pass() -> None:
    requests = [
        Request("GET", "/api/v1/pods", watch=True),
        Request("PATCH", "/apis/kopf.dev/v1/clusterkopfpeerings/sr", watch=False),
        Request("POST", "/apis/apps/v1/namespaces/system/daemonsets", watch=False),
        Request("GET", "/apis", watch=False),
    ]
    assert denied_requests(requests, [CLUSTER_ROLE], [ROLE]) == []


def test_denied_requests_are_listed_once() -> None:
    requests = [
        Request("DELETE", "/api/v1/namespaces/a/pods/p", watch=False),
        Request("DELETE", "/api/v1/namespaces/a/pods/p", watch=False),
        Request("PATCH", "/apis/kopf.dev/v1/clusterkopfpeerings/other", watch=False),
        Request("POST", "/apis/apps/v1/namespaces/elsewhere/daemonsets", watch=False),
    ]
    assert denied_requests(requests, [CLUSTER_ROLE], [ROLE]) == [
        Attributes("delete", "", "pods", "a", "p"),
        Attributes("patch", "kopf.dev", "clusterkopfpeerings", None, "other"),
        Attributes("create", "apps", "daemonsets", "elsewhere", None),
    ]
