"""Container environment, volumes and the host root layout, without a server or runtime."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from seccomp_devcluster.hostroot import exposed_home_paths, host_root_layout
from seccomp_devcluster.node.environment import (
    CreateContainerConfigError,
    PodRuntimeInfo,
    container_environment,
    expand_references,
)
from seccomp_devcluster.node.podspec import image_name, rootfs_for
from seccomp_devcluster.node.volumes import (
    SERVICE_ACCOUNT_PATH,
    SERVICE_ACCOUNT_VOLUME,
    HostPaths,
    ServiceAccountFiles,
    VolumeSetupError,
    container_mounts,
    prepare_volumes,
    service_account_token,
)

INFO = PodRuntimeInfo(pod_ip="127.10.0.7", host_ip="127.0.0.1", allocatable_cpu=4,
                      allocatable_memory=8 << 30, service_host="127.0.0.1", service_port=4443)
OBJECTS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("configmaps", "ns", "settings"): {"data": {"colour": "blue", "size": "9"},
                                       "binaryData": {"blob": base64.b64encode(b"\x01").decode()}},
    ("secrets", "ns", "login"): {"data": {"password": base64.b64encode(b"hunter2").decode()}},
    ("serviceaccounts", "ns", "quiet"): {"automountServiceAccountToken": False},
}


def lookup(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    return OBJECTS.get((kind, namespace, name))


def make_pod(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1",
                         "labels": {"app": "a"}},
            "spec": {"nodeName": "node-1", "containers": [container], **spec}}


def environment(container: dict[str, Any]) -> dict[str, str]:
    pod = make_pod(container)
    entries = container_environment(pod, container, INFO, lookup)
    return dict(entry.split("=", 1) for entry in entries)


def test_environment_resolves_value_from() -> None:
    env = environment({"name": "c", "env": [
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "ACCOUNT", "valueFrom": {"fieldRef": {
            "fieldPath": "spec.serviceAccountName"}}},
        {"name": "COLOUR", "valueFrom": {"configMapKeyRef": {"name": "settings",
                                                             "key": "colour"}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "login",
                                                            "key": "password"}}},
        {"name": "ABSENT", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "x",
                                                             "optional": True}}},
        {"name": "GREETING", "value": "on $(NODE), $$(NODE) and $(UNKNOWN)"},
    ]})

    assert env["NODE"] == "node-1"
    assert env["APP"] == "a"
    assert env["IP"] == "127.10.0.7"
    assert env["ACCOUNT"] == "default"
    assert env["COLOUR"] == "blue"
    assert env["PASSWORD"] == "hunter2"
    assert "ABSENT" not in env
    assert env["GREETING"] == "on node-1, $(NODE) and $(UNKNOWN)"
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "4443"
    assert env["KUBERNETES_PORT"] == "tcp://127.0.0.1:4443"
    assert env["HOSTNAME"] == "p"


def test_environment_resource_field_ref() -> None:
    env = environment({"name": "c", "resources": {"limits": {"memory": "64Mi"},
                                                  "requests": {"cpu": "250m"}},
                       "env": [
        {"name": "MEMORY", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                              "divisor": "1Mi"}}},
        {"name": "CPU_REQUEST", "valueFrom": {"resourceFieldRef": {
            "resource": "requests.cpu", "divisor": "1m"}}},
        {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
    ]})

    assert env["MEMORY"] == "64"
    assert env["CPU_REQUEST"] == "250"
    # No CPU limit: the node's allocatable CPUs, as the kubelet reports.
    assert env["CPU_LIMIT"] == "4"


def test_environment_from_sources_with_prefix() -> None:
    env = environment({"name": "c", "envFrom": [
        {"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
        {"secretRef": {"name": "login"}}],
        "env": [{"name": "CFG_size", "value": "10"}]})

    assert env["CFG_colour"] == "blue"
    assert env["CFG_size"] == "10"
    assert env["password"] == "hunter2"


@pytest.mark.parametrize(("reference", "message"), [
    ({"configMapKeyRef": {"name": "absent", "key": "k"}}, 'configmap "absent" not found'),
    ({"configMapKeyRef": {"name": "settings", "key": "k"}},
     "couldn't find key k in ConfigMap ns/settings"),
    ({"secretKeyRef": {"name": "absent", "key": "k"}}, 'secret "absent" not found'),
])
def test_environment_missing_reference_fails(reference: dict[str, Any], message: str) -> None:
    with pytest.raises(CreateContainerConfigError) as raised:
        environment({"name": "c", "env": [{"name": "X", "valueFrom": reference}]})

    assert str(raised.value) == message


def test_expand_references_escapes() -> None:
    assert expand_references("$$HOME $(A)$(B)", {"A": "1"}) == "$HOME 1$(B)"


def test_host_paths_resolve_rules(tmp_path: Path) -> None:
    paths = HostPaths(kubelet_root=tmp_path / "kubelet", private_root=tmp_path / "private")

    assert paths.resolve("/var/lib/kubelet/seccomp") == tmp_path / "kubelet" / "seccomp"
    assert paths.resolve("/var/lib/kubelet") == tmp_path / "kubelet"
    assert paths.resolve("/sys/fs/bpf") == Path("/sys/fs/bpf")
    assert paths.resolve("/no/such/place") == tmp_path / "private" / "no/such/place"


def test_prepare_volumes_writes_files(tmp_path: Path) -> None:
    pod = make_pod({"name": "c"}, volumes=[
        {"name": "config", "configMap": {"name": "settings", "defaultMode": 0o600,
                                         "items": [{"key": "colour", "path": "a/colour"}]}},
        {"name": "secret", "secret": {"secretName": "login"}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "token", "projected": {"sources": [
            {"serviceAccountToken": {"path": "t", "audience": "vault"}},
            {"configMap": {"name": "settings", "items": [{"key": "blob", "path": "blob"}]}}]}},
        {"name": "scratch", "emptyDir": {}},
    ])
    paths = HostPaths(tmp_path / "kubelet", tmp_path / "private")

    volumes = prepare_volumes(pod, tmp_path / "volumes", lookup, INFO, paths,
                              ServiceAccountFiles(ca_cert=b"CA"))

    colour = volumes["config"].path / "a" / "colour"
    assert colour.read_text() == "blue"
    assert colour.stat().st_mode & 0o777 == 0o600
    assert (volumes["secret"].path / "password").read_text() == "hunter2"
    assert (volumes["info"].path / "labels").read_text() == 'app="a"'
    assert (volumes["token"].path / "blob").read_bytes() == b"\x01"
    claims = (volumes["token"].path / "t").read_text().split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(claims + "==").decode())["aud"] == ["vault"]
    assert volumes["scratch"].path.stat().st_mode & 0o777 == 0o777
    account = volumes[SERVICE_ACCOUNT_VOLUME].path
    assert (account / "ca.crt").read_bytes() == b"CA"
    assert (account / "namespace").read_text() == "ns"
    assert volumes["config"].read_only
    assert not volumes["scratch"].read_only


def test_service_account_follows_account_setting(tmp_path: Path) -> None:
    paths = HostPaths(tmp_path / "kubelet", tmp_path / "private")
    quiet = make_pod({"name": "c"}, serviceAccountName="quiet")
    overridden = make_pod({"name": "c"}, serviceAccountName="quiet",
                          automountServiceAccountToken=True)
    account = ServiceAccountFiles(ca_cert=b"CA")

    assert SERVICE_ACCOUNT_VOLUME not in prepare_volumes(quiet, tmp_path / "a", lookup, INFO,
                                                         paths, account)
    assert SERVICE_ACCOUNT_VOLUME in prepare_volumes(overridden, tmp_path / "b", lookup, INFO,
                                                     paths, account)


def test_service_account_token_names_account() -> None:
    token = service_account_token(make_pod({"name": "c"}, serviceAccountName="agent"))

    header, claims, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(claims + "==").decode())
    assert payload["sub"] == "system:serviceaccount:ns:agent"
    assert payload["kubernetes.io"]["pod"]["uid"] == "u-1"
    assert signature == ""
    assert json.loads(base64.urlsafe_b64decode(header + "==").decode())["alg"] == "none"


@pytest.mark.parametrize(("volume", "message"), [
    ({"hostPath": {"path": "/etc/hostname", "type": "Directory"}}, "is not a directory"),
    ({"hostPath": {"path": "/etc", "type": "File"}}, "is not a file"),
    ({"configMap": {"name": "absent"}}, 'configmap "absent" not found'),
    ({"persistentVolumeClaim": {"claimName": "x"}}, "not supported"),
])
def test_volume_setup_errors(tmp_path: Path, volume: dict[str, Any], message: str) -> None:
    pod = make_pod({"name": "c"}, volumes=[{"name": "v", **volume}])

    with pytest.raises(VolumeSetupError) as raised:
        prepare_volumes(pod, tmp_path, lookup, INFO, HostPaths(tmp_path, tmp_path), None)

    assert str(raised.value).startswith('MountVolume.SetUp failed for volume "v" : ')
    assert message in str(raised.value)


def test_container_mounts_options(tmp_path: Path) -> None:
    pod = make_pod({"name": "c"}, volumes=[{"name": "scratch", "emptyDir": {}},
                                           {"name": "config", "configMap": {"name": "settings"}}])
    volumes = prepare_volumes(pod, tmp_path, lookup, INFO, HostPaths(tmp_path, tmp_path),
                              ServiceAccountFiles(ca_cert=b"CA"))
    container = {"name": "c", "volumeMounts": [
        {"name": "scratch", "mountPath": "/scratch", "subPath": "sub",
         "mountPropagation": "HostToContainer"},
        {"name": "config", "mountPath": "/config"}]}

    mounts = {mount.destination: mount for mount in container_mounts(container, volumes, False)}

    assert mounts["/scratch"].source == str(volumes["scratch"].path / "sub")
    assert mounts["/scratch"].options == ["rbind", "rslave"]
    assert mounts["/config"].options == ["rbind", "rprivate", "ro"]
    assert "ro" in mounts[SERVICE_ACCOUNT_PATH].options
    with pytest.raises(CreateContainerConfigError):
        container_mounts({"name": "c", "volumeMounts": [
            {"name": "scratch", "mountPath": "/x", "mountPropagation": "Bidirectional"}]},
            volumes, False)


@pytest.mark.parametrize(("image", "expected"), [
    ("seccomp-recorder:dev", "host"),
    ("ghcr.io/seccomp-recorder/seccomp-recorder:0.1.0", "host"),
    ("registry:5000/team/seccomp-recorder-agent@sha256:abc", "host"),
    ("docker.io/library/busybox:1.36", "busybox"),
    ("host", "host"),
])
def test_image_mapping(image: str, expected: str) -> None:
    pod = make_pod({"name": "c", "image": image})

    assert rootfs_for(pod, pod["spec"]["containers"][0]) == expected


def test_image_name_strips_tag_and_digest() -> None:
    assert image_name("registry:5000/a/b:1.0@sha256:abc") == "registry:5000/a/b"


def test_host_root_layout_splits_for_missing_mount_point() -> None:
    layout = host_root_layout(["/var/lib/kubelet/seccomp", "/tmp/x", "/sys/fs/bpf"])

    assert PurePosixPath("/var") in layout.directories
    assert PurePosixPath("/var/lib") in layout.directories
    assert PurePosixPath("/var/lib") not in layout.binds
    assert PurePosixPath("/usr") in layout.binds
    assert all(not path.is_relative_to("/tmp") for path in layout.binds)
    assert PurePosixPath("/var/lib/kubelet") not in layout.binds


def test_host_root_hides_root_home() -> None:
    layout = host_root_layout([])
    exposed = exposed_home_paths()

    under_root = [path for path in layout.binds if path.is_relative_to("/root")]
    assert under_root == exposed
    if os.path.realpath(sys.base_prefix).startswith("/root/"):
        assert exposed == [PurePosixPath(os.path.realpath(sys.base_prefix))]


def test_host_root_shows_venv_under_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "prefix", "/tmp/checkout/.venv")

    layout = host_root_layout([])

    assert PurePosixPath("/tmp/checkout/.venv") in layout.tmp_binds
    assert [mount["destination"] for mount in layout.tmp_mounts()] == [
        str(path) for path in layout.tmp_binds
    ]
    assert all(path.is_relative_to("/tmp") for path in layout.tmp_binds)
    assert all(not path.is_relative_to("/tmp") for path in layout.binds)
