"""The chart's RBAC: no wildcards, bindings to the chart's ServiceAccounts, narrow rules.

The dev cluster does not enforce RBAC; test_chart_rbac_coverage checks the rules against
the requests the operator and the agents really make in a recording scenario.
"""

from __future__ import annotations

import pytest
from chart_helpers import NONDEFAULT_VALUES, Manifest, find, only, render

ROLE_KINDS = ("Role", "ClusterRole")
RULE_FIELDS = ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs")
VARIANTS = {"default": (), "nondefault": ("--values", str(NONDEFAULT_VALUES))}


@pytest.fixture(scope="module", params=list(VARIANTS), name="manifests")
def manifests_fixture(request: pytest.FixtureRequest) -> list[Manifest]:
    return render(*VARIANTS[request.param])


def roles(manifests: list[Manifest]) -> list[Manifest]:
    return [manifest for manifest in manifests if manifest["kind"] in ROLE_KINDS]


def granted(role: Manifest) -> set[tuple[str, str, str, str | None]]:
    """Return (apiGroup, resource, verb, resourceName or None) for every grant of `role`."""
    grants = set()
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    for name in rule.get("resourceNames") or [None]:
                        grants.add((group, resource, verb, name))
    return grants


def test_no_rule_uses_a_wildcard(manifests: list[Manifest]) -> None:
    assert roles(manifests)
    for role in roles(manifests):
        for position, rule in enumerate(role["rules"]):
            for field in RULE_FIELDS:
                values = rule.get(field) or []
                assert all("*" not in value for value in values), (
                    f"{role['kind']} {role['metadata']['name']} rule {position} {field}: {values}"
                )


def test_every_rule_names_groups_resources_and_verbs(manifests: list[Manifest]) -> None:
    for role in roles(manifests):
        for rule in role["rules"]:
            assert rule["apiGroups"]
            assert rule["resources"]
            assert rule["verbs"]
            assert "nonResourceURLs" not in rule


def test_no_role_may_change_rbac_or_read_secrets(manifests: list[Manifest]) -> None:
    for role in roles(manifests):
        for group, resource, verb, _ in granted(role):
            assert group != "rbac.authorization.k8s.io", f"{role['metadata']['name']}: {verb} {resource}"
            assert resource != "secrets", f"{role['metadata']['name']}: {verb} secrets"
            assert verb not in ("escalate", "bind", "impersonate", "deletecollection")


def test_bindings_grant_chart_roles_to_chart_accounts(manifests: list[Manifest]) -> None:
    deployment = only(manifests, "Deployment")
    operator_account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    environment = {
        entry["name"]: entry.get("value")
        for entry in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    agent_account = environment["SECCOMP_RECORDER_AGENT_SERVICE_ACCOUNT"]
    role_names = {(role["kind"], role["metadata"]["name"]) for role in roles(manifests)}
    subjects = {}
    for binding in find(manifests, "RoleBinding") + find(manifests, "ClusterRoleBinding"):
        reference = binding["roleRef"]
        assert (reference["kind"], reference["name"]) in role_names
        (subject,) = binding["subjects"]
        assert subject["kind"] == "ServiceAccount"
        assert subject["namespace"] == deployment["metadata"]["namespace"]
        subjects[(binding["kind"], reference["name"])] = subject["name"]
    operator_bindings = [key for key, name in subjects.items() if name == operator_account]
    agent_bindings = [key for key, name in subjects.items() if name == agent_account]
    assert sorted(kind for kind, _ in operator_bindings) == ["ClusterRoleBinding", "RoleBinding"]
    assert [kind for kind, _ in agent_bindings] == ["ClusterRoleBinding"]


def role_named(manifests: list[Manifest], kind: str, suffix: str) -> Manifest:
    (role,) = [
        role for role in find(manifests, kind) if role["metadata"]["name"].endswith(suffix)
    ]
    return role


@pytest.mark.parametrize(
    ("kind", "suffix", "grant"),
    [
        # The operator's requests through the kubernetes client (operator/kube.py).
        ("ClusterRole", "-operator", ("seccomp-recorder.io", "seccompprofiles", "create")),
        ("ClusterRole", "-operator", ("seccomp-recorder.io", "seccompprofiles", "update")),
        ("ClusterRole", "-operator", ("seccomp-recorder.io", "seccomprecordings", "get")),
        ("ClusterRole", "-operator", ("seccomp-recorder.io", "seccomprecordings/status", "patch")),
        ("ClusterRole", "-operator", ("seccomp-recorder.io", "seccomprecordingresults", "list")),
        ("ClusterRole", "-operator", ("", "pods", "list")),
        ("ClusterRole", "-operator", ("", "events", "create")),
        # kopf's watches, finalizers, index and CRD observation.
        ("ClusterRole", "-operator", ("seccomp-recorder.io", "seccompprofiles", "watch")),
        ("ClusterRole", "-operator", ("seccomp-recorder.io", "seccomprecordings", "patch")),
        ("ClusterRole", "-operator", ("", "nodes", "watch")),
        ("ClusterRole", "-operator", ("apiextensions.k8s.io", "customresourcedefinitions", "watch")),
        ("ClusterRole", "-operator", ("kopf.dev", "clusterkopfpeerings", "watch")),
        # The agent DaemonSet in the operator's namespace.
        ("Role", "-operator", ("apps", "daemonsets", "create")),
        # The agents' informers, status entries, results and Events.
        ("ClusterRole", "-agent", ("", "pods", "watch")),
        ("ClusterRole", "-agent", ("seccomp-recorder.io", "seccompprofiles", "watch")),
        ("ClusterRole", "-agent", ("seccomp-recorder.io", "seccomprecordings", "list")),
        ("ClusterRole", "-agent", ("seccomp-recorder.io", "seccompprofiles/status", "patch")),
        ("ClusterRole", "-agent", ("seccomp-recorder.io", "seccomprecordingresults", "create")),
        ("ClusterRole", "-agent", ("seccomp-recorder.io", "seccomprecordingresults", "patch")),
        ("ClusterRole", "-agent", ("", "events", "create")),
    ],
)
def test_required_permissions_are_granted(
    manifests: list[Manifest], kind: str, suffix: str, grant: tuple[str, str, str]
) -> None:
    assert (*grant, None) in granted(role_named(manifests, kind, suffix))


def test_named_objects_are_limited_to_their_names(manifests: list[Manifest]) -> None:
    peering = only(manifests, "ClusterKopfPeering")["metadata"]["name"]
    operator = granted(role_named(manifests, "ClusterRole", "-operator"))
    assert ("kopf.dev", "clusterkopfpeerings", "patch", peering) in operator
    assert ("kopf.dev", "clusterkopfpeerings", "patch", None) not in operator
    in_namespace = granted(role_named(manifests, "Role", "-operator"))
    assert ("apps", "daemonsets", "update", "seccomp-recorder-agent") in in_namespace
    assert ("apps", "daemonsets", "update", None) not in in_namespace
    assert ("apps", "daemonsets", "delete", None) not in in_namespace
    deployment = only(manifests, "Deployment")["metadata"]["name"]
    assert ("apps", "deployments", "get", deployment) in in_namespace
    assert ("apps", "deployments", "get", None) not in in_namespace


def test_agent_cannot_change_profiles_or_recordings(manifests: list[Manifest]) -> None:
    agent = granted(role_named(manifests, "ClusterRole", "-agent"))
    for resource in ("seccompprofiles", "seccomprecordings"):
        for verb in ("create", "update", "patch", "delete"):
            assert ("seccomp-recorder.io", resource, verb, None) not in agent


def test_rbac_can_be_left_to_the_installer() -> None:
    manifests = render("--set", "rbac.create=false")
    assert roles(manifests) == []
    assert find(manifests, "RoleBinding") + find(manifests, "ClusterRoleBinding") == []
