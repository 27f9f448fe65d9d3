"""The node agent's DaemonSet manifest and the decision to rewrite a live one."""

from __future__ import annotations

import copy
from typing import Any

from seccomp_recorder.operator.daemonset import build_agent_daemonset, needs_update
from seccomp_recorder.operator.settings import OperatorSettings, load_settings

IMAGE = "registry.example.com/seccomp-recorder:0.1.0"


def settings(**variables: str) -> OperatorSettings:
    environ = {"SECCOMP_RECORDER_AGENT_IMAGE": IMAGE}
    environ.update({f"SECCOMP_RECORDER_{key}": value for key, value in variables.items()})
    return load_settings(environ)


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return spec


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod_spec(manifest)["containers"]
    assert len(containers) == 1
    return containers[0]


def mounts(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    volumes = {volume["name"]: volume for volume in pod_spec(manifest)["volumes"]}
    return {
        mount["mountPath"]: {**mount, "volume": volumes[mount["name"]]}
        for mount in container(manifest)["volumeMounts"]
    }


def test_daemonset_lives_in_operator_namespace() -> None:
    manifest = build_agent_daemonset(settings(NAMESPACE="security"))
    assert manifest["apiVersion"] == "apps/v1"
    assert manifest["kind"] == "DaemonSet"
    assert manifest["metadata"]["namespace"] == "security"
    selector = manifest["spec"]["selector"]["matchLabels"]
    assert selector.items() <= manifest["spec"]["template"]["metadata"]["labels"].items()


def test_agent_runs_the_agent_module_with_image_settings() -> None:
    agent = container(build_agent_daemonset(settings(AGENT_IMAGE_PULL_POLICY="Always")))
    assert agent["image"] == IMAGE
    assert agent["imagePullPolicy"] == "Always"
    assert agent["command"] == ["python", "-m", "seccomp_recorder.agent"]


def test_agent_gets_node_name_from_downward_api() -> None:
    env = {item["name"]: item for item in container(build_agent_daemonset(settings()))["env"]}
    node_name = env["SECCOMP_RECORDER_NODE_NAME"]
    assert node_name["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}


def test_agent_env_carries_kubelet_root_and_interval() -> None:
    manifest = build_agent_daemonset(
        settings(KUBELET_ROOT="/data/kubelet", AGENT_SNAPSHOT_INTERVAL="5", LOG_FORMAT="json")
    )
    env = {item["name"]: item.get("value") for item in container(manifest)["env"]}
    assert env["SECCOMP_RECORDER_KUBELET_ROOT"] == "/data/kubelet"
    assert env["SECCOMP_RECORDER_SNAPSHOT_INTERVAL"] == "5"
    assert env["SECCOMP_RECORDER_LOG_FORMAT"] == "json"


def test_agent_uses_host_pid_namespace() -> None:
    assert pod_spec(build_agent_daemonset(settings()))["hostPID"] is True


def test_agent_mounts_exactly_what_it_needs() -> None:
    found = mounts(build_agent_daemonset(settings(KUBELET_ROOT="/data/kubelet")))
    seccomp = found["/data/kubelet/seccomp"]
    assert seccomp["volume"]["hostPath"]["path"] == "/data/kubelet/seccomp"
    assert not seccomp.get("readOnly", False)
    assert found["/sys/fs/bpf"]["volume"]["hostPath"]["path"] == "/sys/fs/bpf"
    btf = found["/sys/kernel/btf"]
    assert btf["readOnly"] is True
    assert btf["volume"]["hostPath"]["path"] == "/sys/kernel/btf"
    assert "/sys/kernel/debug" not in found
    host_paths = {mount["volume"].get("hostPath", {}).get("path") for mount in found.values()}
    assert host_paths - {None} == {
        "/data/kubelet/seccomp", "/sys/fs/bpf", "/sys/kernel/btf", "/var/lib/seccomp-recorder",
    }


def test_agent_capabilities_are_listed_not_privileged() -> None:
    security = container(build_agent_daemonset(settings()))["securityContext"]
    assert "privileged" not in security
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"BPF", "PERFMON", "SYS_ADMIN"} <= set(security["capabilities"]["add"])


def test_scheduling_settings_reach_the_pod() -> None:
    manifest = build_agent_daemonset(
        settings(
            AGENT_TOLERATIONS='[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]',
            AGENT_NODE_SELECTOR='{"role": "worker"}',
            AGENT_RESOURCES='{"requests": {"cpu": "10m"}}',
        )
    )
    spec = pod_spec(manifest)
    assert spec["tolerations"] == [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["nodeSelector"] == {"role": "worker"}
    assert container(manifest)["resources"] == {"requests": {"cpu": "10m"}}


def test_live_daemonset_with_server_defaults_needs_no_update() -> None:
    desired = build_agent_daemonset(settings())
    live = copy.deepcopy(desired)
    live["metadata"].update({"uid": "1", "resourceVersion": "7", "generation": 1})
    live["metadata"]["labels"]["added-by"] = "someone"
    pod = live["spec"]["template"]["spec"]
    pod.update({"dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "x"})
    pod["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    live["status"] = {"numberReady": 0}
    assert not needs_update(live, desired)


def test_changed_setting_needs_update() -> None:
    live = build_agent_daemonset(settings())
    desired = build_agent_daemonset(settings(AGENT_IMAGE="registry.example.com/other:2"))
    assert needs_update(live, desired)


def test_hand_edited_field_needs_update() -> None:
    desired = build_agent_daemonset(settings())
    live = copy.deepcopy(desired)
    live["spec"]["template"]["spec"]["hostPID"] = False
    assert needs_update(live, desired)


def test_extra_list_item_needs_update() -> None:
    desired = build_agent_daemonset(settings())
    live = copy.deepcopy(desired)
    live["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "X", "value": "1"})
    assert needs_update(live, desired)


def test_bpffs_path_is_mounted_at_sys_fs_bpf() -> None:
    default = mounts(build_agent_daemonset(settings()))["/sys/fs/bpf"]
    assert default["volume"]["hostPath"] == {"path": "/sys/fs/bpf", "type": "Directory"}
    moved = mounts(build_agent_daemonset(settings(AGENT_BPFFS_PATH="/run/bpf")))["/sys/fs/bpf"]
    assert moved["volume"]["hostPath"] == {"path": "/run/bpf", "type": "Directory"}


def test_owner_becomes_owner_reference() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "seccomp-recorder-operator", "uid": "0b6f-4e1d", "labels": {}},
    }
    manifest = build_agent_daemonset(settings(), deployment)
    assert manifest["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "seccomp-recorder-operator",
        "uid": "0b6f-4e1d",
    }]


def test_no_owner_means_no_owner_reference() -> None:
    assert "ownerReferences" not in build_agent_daemonset(settings())["metadata"]
