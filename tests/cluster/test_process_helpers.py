"""The test helpers that start the operator and the agent stop a process whose start failed.

A start times out here at once, because the helpers' patience is set to zero. The
kubeconfig does not exist, so the processes never reach a cluster.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import agent_helpers
import operator_helpers
import pytest
from agent_helpers import AgentProcess
from operator_helpers import OperatorProcess


class StartedProcesses:
    """Records every process that `subprocess.Popen` starts while it is patched in."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started: list[subprocess.Popen[bytes]] = []
        real_popen = subprocess.Popen

        def recording_popen(*arguments: Any, **keywords: Any) -> subprocess.Popen[bytes]:
            process: subprocess.Popen[bytes] = real_popen(*arguments, **keywords)
            self.started.append(process)
            return process

        monkeypatch.setattr(subprocess, "Popen", recording_popen)


def test_operator_start_timeout_stops_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operator_helpers, "PATIENCE", 0.0)
    processes = StartedProcesses(monkeypatch)
    operator = OperatorProcess(tmp_path / "no-kubeconfig", tmp_path / "operator.log", {})

    with pytest.raises(AssertionError, match="never logged|exited with"):
        operator.start()

    assert operator.process is None
    assert len(processes.started) == 1
    assert processes.started[0].returncode is not None, "the operator process still runs"


def test_agent_start_timeout_stops_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_helpers, "PATIENCE", 0.0)
    processes = StartedProcesses(monkeypatch)
    agent = AgentProcess("node-a", tmp_path / "kubelet", tmp_path / "no-kubeconfig", tmp_path)

    with pytest.raises(AssertionError, match="never logged|exited with"):
        agent.start()

    assert agent.process is None
    assert len(processes.started) == 1
    assert processes.started[0].returncode is not None, "the agent process still runs"
    assert len(agent.exit_codes) == 1
