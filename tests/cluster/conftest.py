"""Fixtures for tests against the dev cluster with seccomp-recorder's own processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_helpers import AgentProcess, apply_crds, delete_all_profiles

from seccomp_devcluster.cluster import DevCluster


@pytest.fixture
def agents(devcluster: DevCluster, tmp_path: Path) -> Iterator[list[AgentProcess]]:
    """Start one node agent per dev cluster node, after applying the CRDs; stop them after.

    The agents are synced when the test starts. At the end every SeccompProfile is deleted
    and each agent must exit with status 0 on SIGTERM.
    """
    apply_crds(devcluster)
    started = [
        AgentProcess(node.name, node.kubelet_root, devcluster.kubeconfig_path, tmp_path / "agents")
        for node in devcluster.nodes
    ]
    try:
        for agent in started:
            agent.start()
        yield started
    finally:
        delete_all_profiles(devcluster)
        codes = {agent.node_name: agent.stop() for agent in started if agent.process is not None}
        failed = {node: code for node, code in codes.items() if code != 0}
        assert not failed, f"agents exited with non-zero codes: {failed}"
