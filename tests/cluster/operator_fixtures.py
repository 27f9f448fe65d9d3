"""Fixtures of the operator's cluster tests, imported by each test module that uses them.

They are registered under the names `kube`, `namespace`, `fake_nodes` and
`start_operator`. Teardown runs in reverse order of setup, and `namespace` depends on
`start_operator`, so a test's namespace is emptied while its operator still runs and
can release its finalizers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from agent_helpers import apply_crds
from operator_helpers import AGENT_IMAGE, FakeNodes, Kube, OperatorProcess, TestNamespace

from seccomp_devcluster.cluster import DevCluster

StartOperator = Callable[..., OperatorProcess]


@pytest.fixture(name="kube")
def kube_fixture(devcluster: DevCluster) -> Kube:
    """Apply the CRDs and return the test's API helper."""
    apply_crds(devcluster)
    return Kube(devcluster)


@pytest.fixture(name="start_operator")
def start_operator_fixture(
    devcluster: DevCluster, kube: Kube, tmp_path: Path
) -> Iterator[StartOperator]:
    """Return a function that starts an operator with settings (variables without prefix).

    Every operator started is stopped at the end and must exit with status 0. The
    operator's own namespace, where it deploys the agent DaemonSet, is made per test.
    """
    system = TestNamespace(kube, "opsys")
    started: list[OperatorProcess] = []

    def start(**settings: str) -> OperatorProcess:
        merged = {
            "AGENT_IMAGE": AGENT_IMAGE,
            "NAMESPACE": system.name,
            "LOG_LEVEL": "DEBUG",
            "PROFILE_UPDATE_INTERVAL": "1",
            "FINAL_RESULT_TIMEOUT": "60",
            **settings,
        }
        process = OperatorProcess(
            devcluster.kubeconfig_path, tmp_path / f"operator-{len(started)}.log", merged
        )
        # Listed before it starts, so that the teardown stops it whatever `start` leaves.
        started.append(process)
        process.start()
        return process

    try:
        yield start
    finally:
        codes = [process.stop() for process in started if process.process is not None]
        system.delete()
        assert all(code == 0 for code in codes), f"operators exited with {codes}"


@pytest.fixture(name="namespace")
def namespace_fixture(kube: Kube, start_operator: StartOperator) -> Iterator[str]:
    """Create the test's namespace; empty and delete it at the end."""
    namespace = TestNamespace(kube)
    try:
        yield namespace.name
    finally:
        namespace.delete()


@pytest.fixture(name="fake_nodes")
def fake_nodes_fixture(kube: Kube) -> Iterator[FakeNodes]:
    """Return a set of fake Node objects that is deleted at the end."""
    nodes = FakeNodes(kube)
    try:
        yield nodes
    finally:
        nodes.remove_all()
