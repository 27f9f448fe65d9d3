"""The operator and the agent processes serve every metric of docs/metrics.md on their port.

Both start against a kubeconfig whose API server refuses connections, so they keep
retrying their API requests while their metrics servers respond.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopback import free_port
from metrics_doc import documented, served_names
from seccomp_recorder.agent import metrics as agent_metrics
from seccomp_recorder.agent.settings import AgentSettings
from seccomp_recorder.operator import metrics as operator_metrics

# Seconds to wait for a process to serve metrics, and to stop after SIGTERM.
PATIENCE = 60.0

# Nothing listens on TCP port 1 of the loopback address, so every API request fails.
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: unreachable
  cluster: {server: "http://127.0.0.1:1"}
contexts:
- name: unreachable
  context: {cluster: unreachable, user: nobody}
current-context: unreachable
users:
- name: nobody
  user: {token: none}
"""


def scrape(port: int) -> str:
    """Read /metrics, retrying until the process serves it."""
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                text: str = response.read().decode()
                return text
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    return path


def start(argv: list[str], environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(argv, env=environment, stdout=output, stderr=subprocess.STDOUT)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes the test starts: stopped with SIGTERM, then killed if they linger."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(PATIENCE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_operator_serves_documented_metrics(
    kubeconfig: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    environment = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "SECCOMP_RECORDER_AGENT_IMAGE": "registry.example.com/seccomp-recorder:0.1.0",
        "SECCOMP_RECORDER_METRICS_PORT": str(port),
        "SECCOMP_RECORDER_METRICS_ADDRESS": "127.0.0.1",
    }
    environment.pop("KUBERNETES_SERVICE_HOST", None)
    argv = [sys.executable, "-m", "seccomp_recorder.operator"]
    processes.append(start(argv, environment, tmp_path / "operator.log"))

    served = served_names(scrape(port))

    expected = documented(operator_metrics.PREFIX)
    assert expected, "docs/metrics.md lists no operator metric"
    assert sorted(expected - served) == []


def test_agent_serves_documented_metrics(
    kubeconfig: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    argv = [
        sys.executable, "-m", "seccomp_recorder.agent",
        "--node-name", "node-1",
        "--kubeconfig", str(kubeconfig),
        "--kubelet-root", str(tmp_path / "kubelet"),
        "--state-dir", str(tmp_path / "state"),
        "--bpffs-pin-dir", str(tmp_path / "pins"),
        "--metrics-port", str(port),
        "--metrics-address", "127.0.0.1",
    ]
    processes.append(start(argv, dict(os.environ), tmp_path / "agent.log"))

    served = served_names(scrape(port))

    expected = documented(agent_metrics.PREFIX)
    assert expected, "docs/metrics.md lists no agent metric"
    assert sorted(expected - served) == []


def test_agent_port_zero_serves_nothing() -> None:
    assert agent_metrics.serve(AgentSettings(node_name="node-1")) is None


def test_agent_stops_on_sigterm(
    kubeconfig: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    argv = [
        sys.executable, "-m", "seccomp_recorder.agent",
        "--node-name", "node-1", "--kubeconfig", str(kubeconfig),
        "--kubelet-root", str(tmp_path / "kubelet"), "--state-dir", str(tmp_path / "state"),
        "--bpffs-pin-dir", str(tmp_path / "pins"),
        "--metrics-port", str(port), "--metrics-address", "127.0.0.1",
    ]
    agent = start(argv, dict(os.environ), tmp_path / "agent.log")
    processes.append(agent)
    scrape(port)

    agent.send_signal(signal.SIGTERM)

    assert agent.wait(PATIENCE) == 0
    log = (tmp_path / "agent.log").read_text()
    assert f"Serving metrics on http://127.0.0.1:{port}/metrics" in log
