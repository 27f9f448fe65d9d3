"""The node agent keeps installing across an API server outage, and after its own restart.

The agent here serves a node of its own (a kubelet root in the test's folder) and reaches
the dev cluster's API server through a TCP proxy, which the test cuts to play a server
restart: open connections drop and new ones are refused for a while.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from agent_helpers import (
    AgentProcess,
    apply_crds,
    create_profile,
    delete_all_profiles,
    delete_profile,
    wait_for,
    wait_for_node_state,
)
from tcp_proxy import TcpProxy

from seccomp_devcluster.cluster import DevCluster

pytestmark = pytest.mark.cluster

NODE = "outage-node"
ALLOW_ALL_BUT_MKDIR = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
}
# Seconds the proxy stays cut: long enough for several failed reconnects.
OUTAGE = 4.0


def body(name: str) -> dict[str, object]:
    return {
        "apiVersion": "seccomp-recorder.io/v1alpha1",
        "kind": "SeccompProfile",
        "metadata": {"name": name, "namespace": "default"},
        "spec": ALLOW_ALL_BUT_MKDIR,
    }


@pytest.fixture
def proxied_agent(devcluster: DevCluster, tmp_path: Path) -> Iterator[tuple[AgentProcess, TcpProxy]]:
    apply_crds(devcluster)
    config = yaml.safe_load(devcluster.kubeconfig_path.read_text())
    server = urlparse(config["clusters"][0]["cluster"]["server"])
    assert server.hostname is not None
    assert server.port is not None
    proxy = TcpProxy(server.hostname, server.port)
    proxy.start()
    config["clusters"][0]["cluster"]["server"] = proxy.url
    kubeconfig = tmp_path / "kubeconfig-proxied"
    kubeconfig.write_text(yaml.safe_dump(config))
    agent = AgentProcess(NODE, tmp_path / "kubelet", kubeconfig, tmp_path / "agents")
    try:
        agent.start()
        yield agent, proxy
    finally:
        if proxy._listener is None:
            proxy.restore()
        delete_all_profiles(devcluster)
        code = agent.stop() if agent.process is not None else 0
        proxy.stop()
        assert code == 0, agent.log()


def test_install_resumes_after_outage(
    devcluster: DevCluster, proxied_agent: tuple[AgentProcess, TcpProxy]
) -> None:
    agent, proxy = proxied_agent
    create_profile(devcluster, body("before"))
    wait_for_node_state(devcluster, "before", NODE, "Installed")
    offset = agent.log_path.stat().st_size

    proxy.cut()
    create_profile(devcluster, body("during"))
    delete_profile(devcluster, "before")
    time.sleep(OUTAGE)
    assert not agent.profile_path("during").exists()
    proxy.restore()

    wait_for_node_state(devcluster, "during", NODE, "Installed")
    assert agent.profile_path("during").exists()
    wait_for("the deleted profile's file to go", lambda: not agent.profile_path("before").exists())
    log = agent.log(offset)
    assert "failed" in log
    assert "retrying in" in log
    assert agent.running

