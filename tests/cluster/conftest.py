"""Fixtures for tests against the dev cluster with seccomp-recorder's own processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_helpers import AgentProcess, apply_crds, delete_all_profiles
from stack import Stack, bpf_filesystem

from prerequisites import require
from seccomp_devcluster.cluster import DevCluster
from seccomp_recorder.recorder.recorder import DEFAULT_OBJECT_PATH


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


@pytest.fixture
def stack(devcluster: DevCluster, tmp_path: Path) -> Iterator[Stack]:
    """Run the operator and one agent per node on the dev cluster, recorders included.

    Each test gets its own namespace; at the end its objects are deleted and every process
    must exit with status 0.
    """
    require(os.geteuid() == 0, "the agents' recorders need root")
    require(DEFAULT_OBJECT_PATH.is_file(), "the BPF object is not built: run `make bpf`")
    apply_crds(devcluster)
    with bpf_filesystem(tmp_path / "bpffs") as bpffs:
        stack = Stack(devcluster, tmp_path, bpffs)
        try:
            stack.start()
            yield stack
        finally:
            failed = stack.stop()
    assert not failed, f"processes exited with non-zero codes: {failed}"
