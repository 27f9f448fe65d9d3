"""The agent's entry point: exit codes on bad settings or configuration, and log formats."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from seccomp_recorder.agent import main
from seccomp_recorder.agent.settings import AgentSettings
from seccomp_recorder.setting_values import LogFormat


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_missing_node_name_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SECCOMP_RECORDER_NODE_NAME", raising=False)
    assert main.main([]) == 2
    error = capsys.readouterr().err
    assert error.startswith("seccomp-recorder-agent: error: missing node name")
    assert "SECCOMP_RECORDER_NODE_NAME" in error


def test_unusable_kubeconfig_exits_1(
    tmp_path: Path, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    code = main.main(["--node-name", "node-1", "--kubeconfig", str(kubeconfig)])
    assert code == 1
    error = capsys.readouterr().err
    assert "Failed to load the API server configuration" in error
    assert "current-context" in error


def test_json_log_lines(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    main.configure_logging(AgentSettings(node_name="node-1", log_format=LogFormat.JSON))
    logging.getLogger("seccomp_recorder.agent.test").info("[default/web] Installed %s", "x")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["message"] == "[default/web] Installed x"
    assert record["level"] == "INFO"
    assert record["name"] == "seccomp_recorder.agent.test"


def test_text_log_lines(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    main.configure_logging(AgentSettings(node_name="node-1", log_level="WARNING"))
    logger = logging.getLogger("seccomp_recorder.agent.test")
    logger.info("hidden")
    logger.warning("[default/web] Not installed")
    output = capsys.readouterr().err
    assert "hidden" not in output
    assert "WARNING seccomp_recorder.agent.test: [default/web] Not installed" in output
