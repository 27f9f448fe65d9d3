"""A stopped dev cluster leaves no container, mount, cgroup or process behind."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any, cast

import kubernetes
import pytest
from cluster_helpers import PATIENCE, container_status, create_pod, phase_is, wait_for_pod

from seccomp_devcluster.cluster import DevCluster
from seccomp_devcluster.pytest_plugin import leftovers_of, missing_prerequisites

pytestmark = pytest.mark.cluster


@pytest.fixture(autouse=True)
def _prerequisites() -> None:
    missing = missing_prerequisites()
    if missing:
        pytest.skip(f"the dev cluster needs {', '.join(missing)}")


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in command_line:
            found.append(int(entry.name))
    return found


def start_pods(cluster: DevCluster) -> list[str]:
    """Start long-running pods of every kind; return their container ids."""
    specs: dict[str, dict[str, Any]] = {
        "runc-pod": {},
        "crun-pod": {"runtimeClassName": "crun"},
        "host-network-pod": {"hostNetwork": True},
    }
    ids = []
    for name, extra in specs.items():
        create_pod(cluster, name, [{"name": "c", "image": "busybox",
                                    "command": ["sleep", "300"]}], **extra)
    # A Deployment's pod, with a probe, a volume and the API relay in its namespace.
    apps = kubernetes.client.AppsV1Api(cluster.api_client())
    apps.create_namespaced_deployment("default", cast(Any, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "containers": [{"name": "c", "image": "busybox",
                                     "command": ["sleep", "300"],
                                     "readinessProbe": {"exec": {"command": ["true"]},
                                                        "periodSeconds": 1},
                                     "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
                     "volumes": [{"name": "v", "emptyDir": {}}]}}}}),
        _preload_content=False)
    for name in specs:
        pod = wait_for_pod(cluster, name, phase_is("Running"))
        ids.append(container_status(pod, "c")["containerID"].partition("://")[2])
    core = kubernetes.client.CoreV1Api(cluster.api_client())
    deadline = time.monotonic() + PATIENCE
    while True:
        response: Any = core.list_namespaced_pod("default", label_selector="app=web",
                                                 _preload_content=False)
        running = [pod for pod in json.loads(response.data)["items"]
                   if (pod.get("status") or {}).get("phase") == "Running"]
        if running:
            ids.append(container_status(running[0], "c")["containerID"].partition("://")[2])
            return ids
        assert time.monotonic() < deadline, "the Deployment's pod never ran"
        time.sleep(0.1)


def assert_nothing_left(cluster: DevCluster, container_ids: list[str]) -> None:
    assert leftovers_of(cluster) == []
    for container_id in container_ids:
        assert list(Path("/sys/fs/cgroup").glob(f"*/**/{container_id}")) == []
    for node in cluster.nodes:
        assert not node.state_dir.exists()
    assert processes_mentioning(str(cluster.directory)) == []


def test_stop_removes_running_pods(tmp_path: Path) -> None:
    cluster = DevCluster(tmp_path / "cluster", nodes=1)
    try:
        cluster.start()
        container_ids = start_pods(cluster)
    finally:
        cluster.stop()

    assert len(container_ids) == 4
    assert_nothing_left(cluster, container_ids)


def test_stop_cleans_after_crashed_node(tmp_path: Path) -> None:
    cluster = DevCluster(tmp_path / "cluster", nodes=1)
    try:
        cluster.start()
        container_ids = start_pods(cluster)
        process = cluster.nodes[0].process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        cluster.stop()

    assert_nothing_left(cluster, container_ids)
