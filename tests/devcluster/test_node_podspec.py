"""Pod container to OCI spec: rootfs and runtime rules, privileges, command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from seccomp_devcluster import oci
from seccomp_devcluster.node.podspec import (
    ROOTFS_ANNOTATION,
    RUNTIME_ANNOTATION,
    ImagePullError,
    NodeContext,
    capabilities_for,
    container_spec_for,
    image_repository,
)
from seccomp_devcluster.node.seccomp import CreateContainerError


def make_pod(container: dict[str, Any], *, annotations: dict[str, str] | None = None,
             **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1",
                         "annotations": annotations or {}},
            "spec": {"containers": [container], **spec}}


def build(pod: dict[str, Any], tmp_path: Path) -> oci.ContainerSpec:
    return container_spec_for(pod, pod["spec"]["containers"][0], NodeContext(tmp_path),
                              network_namespace="/ns", cgroup_parent="cg/podu-1")


@pytest.mark.parametrize(("image", "repository"), [
    ("busybox", "busybox"),
    ("docker.io/library/busybox:1.36", "busybox"),
    ("registry:5000/team/busybox@sha256:abc", "busybox"),
    ("host", "host"),
    ("redis:7", "redis"),
])
def test_image_repository(image: str, repository: str) -> None:
    assert image_repository(image) == repository


def test_busybox_image_defaults(tmp_path: Path) -> None:
    spec = build(make_pod({"name": "c", "image": "busybox"}), tmp_path)

    assert spec.rootfs == "busybox"
    assert spec.runtime == "runc"
    assert spec.args == ["sh"]
    assert spec.no_new_privileges is False
    assert spec.seccomp is None
    assert spec.capabilities == list(oci.DEFAULT_CAPABILITIES)
    assert spec.network_namespace == "/ns"
    assert spec.cgroup_parent == "cg/podu-1"
    assert spec.hostname == "p"


def test_host_image_uses_host_rootfs(tmp_path: Path) -> None:
    pod = make_pod({"name": "c", "image": "host", "command": ["redis-server"],
                    "args": ["--port", "7000"]})

    spec = build(pod, tmp_path)

    assert spec.rootfs == "host"
    assert spec.args == ["redis-server", "--port", "7000"]


def test_host_image_without_command(tmp_path: Path) -> None:
    with pytest.raises(CreateContainerError, match="has no command"):
        build(make_pod({"name": "c", "image": "host"}), tmp_path)


def test_rootfs_annotation_overrides_image(tmp_path: Path) -> None:
    pod = make_pod({"name": "c", "image": "seccomp-recorder:dev", "command": ["true"]},
                   annotations={ROOTFS_ANNOTATION: "host"})

    assert build(pod, tmp_path).rootfs == "host"


def test_unknown_image_fails_pull(tmp_path: Path) -> None:
    with pytest.raises(ImagePullError, match='failed to pull image "nginx:1.25"'):
        build(make_pod({"name": "c", "image": "nginx:1.25"}), tmp_path)


def test_crun_by_runtime_class_or_annotation(tmp_path: Path) -> None:
    by_class = make_pod({"name": "c", "image": "busybox"}, runtimeClassName="crun")
    by_annotation = make_pod({"name": "c", "image": "busybox"},
                             annotations={RUNTIME_ANNOTATION: "crun"})

    assert build(by_class, tmp_path).runtime == "crun"
    assert build(by_annotation, tmp_path).runtime == "crun"


@pytest.mark.parametrize(("allow", "expected"), [(None, False), (True, False), (False, True)])
def test_allow_privilege_escalation(tmp_path: Path, allow: bool | None, expected: bool) -> None:
    context = {} if allow is None else {"allowPrivilegeEscalation": allow}
    pod = make_pod({"name": "c", "image": "busybox", "securityContext": context})

    assert build(pod, tmp_path).no_new_privileges is expected


def test_capabilities_add_and_drop() -> None:
    caps = capabilities_for({"capabilities": {"drop": ["NET_RAW", "CAP_KILL"],
                                              "add": ["SYS_ADMIN"]}})

    assert "CAP_NET_RAW" not in caps
    assert "CAP_KILL" not in caps
    assert "CAP_SYS_ADMIN" in caps
    assert "CAP_CHOWN" in caps


def test_drop_all_capabilities() -> None:
    assert capabilities_for({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}) \
        == ["CAP_NET_BIND_SERVICE"]


def test_user_group_and_env(tmp_path: Path) -> None:
    pod = make_pod({"name": "c", "image": "busybox", "workingDir": "/tmp",
                    "env": [{"name": "A", "value": "1"}],
                    "securityContext": {"runAsUser": 1000}},
                   securityContext={"runAsUser": 5, "runAsGroup": 6, "supplementalGroups": [7]})

    spec = build(pod, tmp_path)

    assert (spec.uid, spec.gid, spec.additional_gids) == (1000, 6, [7])
    assert "A=1" in spec.env
    assert spec.cwd == "/tmp"


def test_host_network_pod(tmp_path: Path) -> None:
    spec = build(make_pod({"name": "c", "image": "busybox"}, hostNetwork=True), tmp_path)

    assert spec.host_network is True
