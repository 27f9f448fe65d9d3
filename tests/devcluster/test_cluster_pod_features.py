"""What privileged and in-cluster pods need from a node: API access, host PID, volumes, probes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from cluster_helpers import (
    PATIENCE,
    container_status,
    create_pod,
    phase_is,
    pod_log,
    read_pod,
    unique_name,
    wait_for_pod,
    waiting_reason,
)

from seccomp_devcluster.cluster import DevCluster

pytestmark = pytest.mark.cluster

VENV_PYTHON = str(Path(sys.prefix) / "bin" / "python")

LIST_PODS = """
import json, kubernetes
kubernetes.config.load_incluster_config()
core = kubernetes.client.CoreV1Api()
names = [pod.metadata.name for pod in core.list_namespaced_pod("default").items]
print(json.dumps({"names": names}))
"""


def finished_log(cluster: DevCluster, name: str) -> str:
    pod = wait_for_pod(cluster, name, phase_is("Succeeded", "Failed"))
    log = pod_log(cluster, name, "c")
    assert pod["status"]["phase"] == "Succeeded", log
    return log


@pytest.mark.parametrize("host_network", [False, True])
def test_incluster_client_lists_pods(devcluster: DevCluster, host_network: bool) -> None:
    name = unique_name("incluster")
    create_pod(devcluster, name, [{"name": "c", "image": "host",
                                   "command": [VENV_PYTHON, "-c", LIST_PODS]}],
               restartPolicy="Never", hostNetwork=host_network)

    log = finished_log(devcluster, name)

    assert name in json.loads(log.splitlines()[-1])["names"]


def test_project_image_runs_venv_python_as_non_root(devcluster: DevCluster) -> None:
    name = unique_name("project-image")
    create_pod(devcluster, name, [{
        "name": "c", "image": "ghcr.io/seccomp-recorder/seccomp-recorder:0.1.0",
        "command": ["python", "-c", LIST_PODS],
        "securityContext": {"runAsUser": 65532, "runAsNonRoot": True,
                            "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}}}],
        restartPolicy="Never")

    log = finished_log(devcluster, name)

    assert name in json.loads(log.splitlines()[-1])["names"]


def test_service_account_files_and_variables(devcluster: DevCluster) -> None:
    name = unique_name("account")
    script = ("cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; "
              "cat /var/run/secrets/kubernetes.io/serviceaccount/ca.crt; "
              "test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo token; "
              "echo host=$KUBERNETES_SERVICE_HOST port=$KUBERNETES_SERVICE_PORT")
    create_pod(devcluster, name, [{"name": "c", "image": "busybox",
                                   "command": ["sh", "-c", script]}], restartPolicy="Never")

    lines = finished_log(devcluster, name).splitlines()

    assert lines[0] == "default"
    assert "".join(lines[1:-2]) == "".join(devcluster.pki.ca_cert.read_text().splitlines())
    assert lines[-2] == "token"
    assert lines[-1].startswith("host=127.0.0.1 port=")
    assert lines[-1] != "host=127.0.0.1 port="


def test_automount_false_gives_no_service_account(devcluster: DevCluster) -> None:
    name = unique_name("no-account")
    create_pod(devcluster, name, [{"name": "c", "image": "busybox", "command": [
        "sh", "-c", "test ! -e /var/run/secrets/kubernetes.io/serviceaccount && echo absent"]}],
        restartPolicy="Never", automountServiceAccountToken=False)

    assert finished_log(devcluster, name).strip() == "absent"


def test_host_pid_sees_host_processes(devcluster: DevCluster) -> None:
    script = "echo $$; cat /proc/1/comm; true"
    name = unique_name("host-pid")
    create_pod(devcluster, name, [{"name": "c", "image": "busybox",
                                   "command": ["sh", "-c", script]}],
               restartPolicy="Never", hostPID=True)
    own = unique_name("own-pid")
    create_pod(devcluster, own, [{"name": "c", "image": "busybox",
                                  "command": ["sh", "-c", script]}],
               restartPolicy="Never")

    shell_pid, first_command = finished_log(devcluster, name).split()
    own_pid, own_first_command = finished_log(devcluster, own).split()

    assert shell_pid != "1"
    assert first_command == Path("/proc/1/comm").read_text().strip()
    assert own_pid == "1"
    assert own_first_command == "sh"


def test_host_path_mounted_read_only(devcluster: DevCluster, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "from-host").write_text("hello\n")
    name = unique_name("host-path")
    script = "cat /data/from-host; touch /data/from-pod 2>/dev/null && echo wrote || echo read-only"
    create_pod(devcluster, name, [{
        "name": "c", "image": "busybox", "command": ["sh", "-c", script],
        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}]}],
        restartPolicy="Never",
        volumes=[{"name": "data", "hostPath": {"path": str(shared), "type": "Directory"}}])

    assert finished_log(devcluster, name).split() == ["hello", "read-only"]
    assert not (shared / "from-pod").exists()


def test_host_path_writable_and_created(devcluster: DevCluster, tmp_path: Path) -> None:
    target = tmp_path / "made" / "here"
    name = unique_name("host-path-create")
    create_pod(devcluster, name, [{
        "name": "c", "image": "busybox", "command": ["sh", "-c", "echo x > /data/file"],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        restartPolicy="Never",
        volumes=[{"name": "data", "hostPath": {"path": str(target),
                                               "type": "DirectoryOrCreate"}}])

    finished_log(devcluster, name)

    # The folder did not exist on the machine, so the node made it in its own folder.
    private = devcluster.nodes[0].state_dir / "host" / str(target).lstrip("/")
    assert (private / "file").read_text() == "x\n"
    assert not target.exists()


def test_host_path_missing_directory_waits(devcluster: DevCluster, tmp_path: Path) -> None:
    name = unique_name("host-path-missing")
    create_pod(devcluster, name, [{
        "name": "c", "image": "busybox", "command": ["true"],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        volumes=[{"name": "data", "hostPath": {"path": str(tmp_path / "absent"),
                                               "type": "Directory"}}])

    pod = wait_for_pod(devcluster, name,
                       lambda p: waiting_reason(p, "c") == "ContainerCreating"
                       and p["status"].get("conditions") is not None)

    assert pod["status"]["phase"] == "Pending"


def test_kubelet_root_host_path_is_the_node_s(devcluster: DevCluster) -> None:
    seccomp_dir = devcluster.nodes[0].seccomp_dir
    (seccomp_dir / "marker.json").write_text("{}")
    name = unique_name("kubelet-root")
    create_pod(devcluster, name, [{
        "name": "c", "image": "host", "command": ["ls", "/var/lib/kubelet/seccomp"],
        "volumeMounts": [{"name": "seccomp", "mountPath": "/var/lib/kubelet/seccomp"}]}],
        restartPolicy="Never",
        volumes=[{"name": "seccomp", "hostPath": {"path": "/var/lib/kubelet/seccomp",
                                                  "type": "DirectoryOrCreate"}}])

    try:
        assert "marker.json" in finished_log(devcluster, name).split()
    finally:
        (seccomp_dir / "marker.json").unlink()
    assert not Path("/var/lib/kubelet").exists()


def test_run_as_non_root_with_root_user(devcluster: DevCluster) -> None:
    name = unique_name("non-root")
    create_pod(devcluster, name, [{"name": "c", "image": "busybox", "command": ["true"],
                                   "securityContext": {"runAsNonRoot": True}}])

    pod = wait_for_pod(devcluster, name,
                       lambda p: waiting_reason(p, "c") == "CreateContainerConfigError")

    message = container_status(pod, "c")["state"]["waiting"]["message"]
    uid = pod["metadata"]["uid"]
    assert message == ("container has runAsNonRoot and image will run as root "
                       f'(pod: "{name}_default({uid})", container: c)')
    assert pod["status"]["phase"] == "Pending"


def test_run_as_non_root_with_user_zero(devcluster: DevCluster) -> None:
    name = unique_name("user-zero")
    create_pod(devcluster, name, [{"name": "c", "image": "busybox", "command": ["true"]}],
               securityContext={"runAsNonRoot": True, "runAsUser": 0})

    pod = wait_for_pod(devcluster, name,
                       lambda p: waiting_reason(p, "c") == "CreateContainerConfigError")

    assert "container's runAsUser breaks non-root policy" in (
        container_status(pod, "c")["state"]["waiting"]["message"])


def test_environment_from_downward_api_and_objects(devcluster: DevCluster) -> None:
    name = unique_name("env")
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": name, "namespace": "default"},
                  "data": {"colour": "blue"}}
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": name, "namespace": "default"},
              "stringData": {"password": "hunter2"}}
    api = kubernetes.client.CoreV1Api(devcluster.api_client())
    api.create_namespaced_config_map("default", config_map, _preload_content=False)
    api.create_namespaced_secret("default", secret, _preload_content=False)
    try:
        env: list[dict[str, Any]] = [
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "COLOUR", "valueFrom": {"configMapKeyRef": {"name": name,
                                                                 "key": "colour"}}},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": name,
                                                                "key": "password"}}},
            {"name": "GREETING", "value": "hi $(POD)"},
        ]
        create_pod(devcluster, name, [{
            "name": "c", "image": "busybox", "env": env, "command": [
                "sh", "-c", 'echo "$NODE|$POD|$IP|$COLOUR|$PASSWORD|$GREETING"']}],
            restartPolicy="Never")

        log = finished_log(devcluster, name)
        pod = read_pod(devcluster, name)
    finally:
        api.delete_namespaced_config_map(name, "default", _preload_content=False)
        api.delete_namespaced_secret(name, "default", _preload_content=False)

    assert pod is not None
    assert log.strip().split("|") == ["node-1", name, pod["status"]["podIP"], "blue",
                                      "hunter2", f"hi {name}"]


def test_missing_config_map_key_is_config_error(devcluster: DevCluster) -> None:
    name = unique_name("env-missing")
    create_pod(devcluster, name, [{"name": "c", "image": "busybox", "command": ["true"], "env": [
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}]}])

    pod = wait_for_pod(devcluster, name,
                       lambda p: waiting_reason(p, "c") == "CreateContainerConfigError")

    assert container_status(pod, "c")["state"]["waiting"]["message"] == (
        'configmap "absent" not found')


def pod_is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_failing_readiness_probe_keeps_pod_unready(devcluster: DevCluster,
                                                   tmp_path: Path) -> None:
    data = tmp_path / "probe"
    data.mkdir()
    probe = "echo attempt >> /data/attempts; test -e /data/ready"
    name = unique_name("unready")
    create_pod(devcluster, name, [{
        "name": "c", "image": "busybox", "command": ["sleep", "300"],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "readinessProbe": {"exec": {"command": ["sh", "-c", probe]}, "periodSeconds": 1,
                           "failureThreshold": 1}}],
        volumes=[{"name": "data", "hostPath": {"path": str(data)}}])

    # The probe has failed three times; the pod runs and stays unready.
    deadline = time.monotonic() + PATIENCE
    while not (data / "attempts").exists() or len((data / "attempts").read_text().split()) < 3:
        assert time.monotonic() < deadline, "the readiness probe never ran three times"
        time.sleep(0.1)
    pod = read_pod(devcluster, name)
    assert pod is not None
    ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert pod["status"]["phase"] == "Running"
    assert container_status(pod, "c")["ready"] is False
    assert ready["status"] == "False"
    assert ready["reason"] == "ContainersNotReady"

    # Once the probe passes, the same pod becomes ready.
    (data / "ready").touch()
    pod = wait_for_pod(devcluster, name, pod_is_ready)
    assert container_status(pod, "c")["ready"] is True


def test_readiness_probes_make_pod_ready(devcluster: DevCluster) -> None:
    name = unique_name("ready")
    server = "mkdir -p /www && echo ok > /www/healthz && httpd -f -p 8080 -h /www"
    create_pod(devcluster, name, [
        {"name": "c", "image": "busybox", "command": ["sh", "-c", server],
         "ports": [{"name": "http", "containerPort": 8080}],
         "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                            "periodSeconds": 1}},
        {"name": "exec", "image": "busybox", "command": ["sleep", "300"],
         "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}},
        {"name": "tcp", "image": "busybox", "command": ["sleep", "300"],
         "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}])

    pod = wait_for_pod(devcluster, name, pod_is_ready)

    assert all(status["ready"] for status in pod["status"]["containerStatuses"])


def test_failing_liveness_probe_restarts_container(devcluster: DevCluster) -> None:
    name = unique_name("liveness")
    create_pod(devcluster, name, [{
        "name": "c", "image": "busybox", "command": ["sleep", "300"],
        "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1,
                          "failureThreshold": 2}}])

    pod = wait_for_pod(devcluster, name,
                       lambda p: container_status(p, "c")["restartCount"] >= 1
                       if (p.get("status") or {}).get("containerStatuses") else False)

    assert container_status(pod, "c")["lastState"]["terminated"]["exitCode"] == 137


def test_privileged_container_writes_sysfs_mount(devcluster: DevCluster) -> None:
    name = unique_name("privileged")
    script = ("grep ' /sys ' /proc/self/mounts | cut -d' ' -f4 | cut -d, -f1; "
              "grep CapEff /proc/self/status")
    create_pod(devcluster, name, [{"name": "c", "image": "busybox",
                                   "command": ["sh", "-c", script],
                                   "securityContext": {"privileged": True}}],
               restartPolicy="Never")

    lines = finished_log(devcluster, name).split("\n")
    bounding = next(line for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("CapBnd"))

    # Every capability that this machine has, and a writable /sys.
    assert lines[0] == "rw"
    assert int(lines[1].split()[1], 16) == int(bounding.split()[1], 16)


def test_capabilities_added_to_dropped_all(devcluster: DevCluster) -> None:
    name = unique_name("caps")
    create_pod(devcluster, name, [{
        "name": "c", "image": "busybox", "command": ["grep", "CapEff", "/proc/self/status"],
        "securityContext": {"capabilities": {"drop": ["ALL"],
                                             "add": ["BPF", "PERFMON", "SYS_PTRACE"]}}}],
        restartPolicy="Never")

    effective = int(finished_log(devcluster, name).split()[1], 16)

    # CAP_SYS_PTRACE is 19, CAP_PERFMON 38 and CAP_BPF 39.
    assert effective == (1 << 19) | (1 << 38) | (1 << 39)


def test_config_map_and_empty_dir_volumes(devcluster: DevCluster) -> None:
    api = kubernetes.client.CoreV1Api(devcluster.api_client())
    name = unique_name("volumes")
    api.create_namespaced_config_map("default", {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"settings.yaml": "a: 1\n"}}, _preload_content=False)
    script = ("cat /config/settings.yaml /scratch/init; "
              "touch /config/new 2>/dev/null && echo writable || echo read-only")
    try:
        create_pod(devcluster, name, [{
            "name": "c", "image": "busybox", "command": ["sh", "-c", script],
            "volumeMounts": [{"name": "config", "mountPath": "/config"},
                             {"name": "scratch", "mountPath": "/scratch"}]}],
            initContainers=[{"name": "init", "image": "busybox",
                             "command": ["sh", "-c", "echo from-init > /scratch/init"],
                             "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
            restartPolicy="Never",
            volumes=[{"name": "config", "configMap": {"name": name}},
                     {"name": "scratch", "emptyDir": {}}])

        log = finished_log(devcluster, name)
    finally:
        api.delete_namespaced_config_map(name, "default", _preload_content=False)

    assert log.split() == ["a:", "1", "from-init", "read-only"]


def test_mount_propagation_host_to_container(devcluster: DevCluster, tmp_path: Path) -> None:
    shared = tmp_path / "propagated"
    shared.mkdir()
    subprocess.run(["mount", "--bind", str(shared), str(shared)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(shared)], check=True)
        name = unique_name("propagation")
        create_pod(devcluster, name, [{
            "name": "c", "image": "busybox", "command": ["sh", "-c", (
                "until test -e /data/inner/marker; do sleep 0.1; done; echo seen")],
            "volumeMounts": [{"name": "data", "mountPath": "/data",
                              "mountPropagation": "HostToContainer"}]}],
            restartPolicy="Never",
            volumes=[{"name": "data", "hostPath": {"path": str(shared)}}])
        wait_for_pod(devcluster, name, phase_is("Running"))
        (shared / "inner").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(shared / "inner")], check=True)
        try:
            (shared / "inner" / "marker").write_text("")
            log = finished_log(devcluster, name)
        finally:
            subprocess.run(["umount", str(shared / "inner")], check=True)
    finally:
        subprocess.run(["umount", str(shared)], check=True)

    assert log.strip() == "seen"
    assert os.path.ismount(shared) is False
