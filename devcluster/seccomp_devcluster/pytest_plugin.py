"""The `devcluster` pytest fixture: a real dev cluster (API server, nodes) for tests.

Registered in tests/conftest.py with `pytest_plugins`. A test requests it by name:

    def test_pod(devcluster: DevCluster) -> None: ...

    @pytest.mark.devcluster(nodes=2)
    def test_two_nodes(devcluster: DevCluster) -> None: ...

Clusters are session-scoped, one per node count, and started on first use. Between
tests the fixture force-deletes every pod the test left (the nodes kill their
containers), so tests share a cluster without seeing each other's pods. Deployments
and DaemonSets go first, so that no controller creates pods again. When the
session ends every cluster is stopped and checked: a container, mount, cgroup or
process that survived the stop fails the session with an error.

Without root, runc, crun, busybox-static or util-linux the fixture skips the test;
tests/conftest.py turns that skip into a failure under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from seccomp_devcluster import oci
from seccomp_devcluster.cluster import DevCluster
from seccomp_devcluster.node.cleanup import mounts_under

# Seconds to wait for the pods of a finished test to disappear.
POD_CLEANUP_TIMEOUT = 30.0
# Restart back-off of the fixture's nodes, short so restart tests stay fast.
TEST_CRASH_LOOP_BACKOFF = 0.2

ClusterFactory = Callable[[int], DevCluster]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "devcluster(nodes=N): the dev cluster a test gets through the devcluster "
                   "fixture has N nodes (default 1)")


def missing_prerequisites() -> list[str]:
    """Return what this machine lacks to run a dev cluster (empty when nothing)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    for tool in ("runc", "crun", "unshare", "nsenter", "ip", "mount"):
        if shutil.which(tool) is None:
            missing.append(tool)
    if not oci.BUSYBOX.exists():
        missing.append(str(oci.BUSYBOX))
    return missing


def leftovers_of(cluster: DevCluster) -> list[str]:
    """Return what a stopped cluster left on the machine (empty when nothing)."""
    found = []
    for node in cluster.nodes:
        if node.process is not None and node.process.poll() is None:
            found.append(f"node process {node.process.pid}")
        for runtime in oci.RUNTIMES:
            root = node.state_dir / "runtime" / runtime
            found += [f"{runtime} container {c}" for c in oci.list_containers(root, runtime)]
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            found += [f"cgroup {path}" for path in
                      hierarchy.rglob(cluster.node_settings(node).cgroup_parent)]
    if cluster.directory.exists():
        found += [f"mount {mount}" for mount in mounts_under(cluster.directory)]
    found += [f"thread {name}" for name in cluster.running_threads()]
    return found


def _pods(core: kubernetes.client.CoreV1Api) -> list[dict[str, Any]]:
    response: Any = core.list_pod_for_all_namespaces(_preload_content=False)
    listing = json.loads(response.data)
    items: list[dict[str, Any]] = listing.get("items", [])
    return items


def delete_all_workloads(cluster: DevCluster) -> None:
    """Delete every Deployment and DaemonSet, orphaning their pods for `delete_all_pods`."""
    apps = kubernetes.client.AppsV1Api(cluster.api_client())
    for list_function, delete_function in (
            (apps.list_deployment_for_all_namespaces, apps.delete_namespaced_deployment),
            (apps.list_daemon_set_for_all_namespaces, apps.delete_namespaced_daemon_set)):
        response: Any = list_function(_preload_content=False)
        for item in json.loads(response.data).get("items", []):
            metadata = item["metadata"]
            delete_function(metadata["name"], metadata["namespace"],
                            propagation_policy="Orphan", _preload_content=False)


def delete_all_pods(cluster: DevCluster) -> None:
    """Force-delete every pod, and wait until the API server has none left."""
    delete_all_workloads(cluster)
    core = kubernetes.client.CoreV1Api(cluster.api_client())
    namespaces = {pod["metadata"]["namespace"] for pod in _pods(core)}
    for namespace in sorted(namespaces):
        core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0,
                                              _preload_content=False)
    deadline = time.monotonic() + POD_CLEANUP_TIMEOUT
    while _pods(core):
        if time.monotonic() > deadline:
            raise AssertionError("pods were still present "
                                 f"{POD_CLEANUP_TIMEOUT} s after a forced delete")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def devcluster_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterFactory]:
    """Return a function that gives the session's cluster with N nodes, starting it once."""
    clusters: dict[int, DevCluster] = {}

    def get(nodes: int) -> DevCluster:
        if nodes not in clusters:
            directory = tmp_path_factory.mktemp(f"devcluster-{nodes}-nodes")
            cluster = DevCluster(directory, nodes, crash_loop_backoff=TEST_CRASH_LOOP_BACKOFF,
                                 heartbeat_interval=2.0)
            cluster.start()
            clusters[nodes] = cluster
        return clusters[nodes]

    yield get

    problems = []
    for cluster in clusters.values():
        cluster.stop()
    for cluster in clusters.values():
        problems += leftovers_of(cluster)
    if problems:
        raise AssertionError("the dev cluster left behind: " + ", ".join(problems))


@pytest.fixture
def devcluster(request: pytest.FixtureRequest,
               devcluster_factory: ClusterFactory) -> Iterator[DevCluster]:
    """Yield a running dev cluster; `@pytest.mark.devcluster(nodes=N)` sets its node count."""
    missing = missing_prerequisites()
    if missing:
        pytest.skip(f"the dev cluster needs {', '.join(missing)}")
    marker = request.node.get_closest_marker("devcluster")
    nodes = int(marker.kwargs.get("nodes", 1)) if marker is not None else 1
    cluster = devcluster_factory(nodes)
    try:
        yield cluster
    finally:
        delete_all_pods(cluster)
