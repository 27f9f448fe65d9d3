"""The agent's JSON log lines carry the object of a `[namespace/name]` prefix."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

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


def last_line(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    record: dict[str, object] = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    return record


def test_prefix_becomes_object_field(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    main.configure_logging(AgentSettings(node_name="node-1", log_format=LogFormat.JSON))
    logging.getLogger("seccomp_recorder.agent.test").info("[team-a/web.v2] Installed %s", "x")

    record = last_line(capsys)

    assert record["object"] == {"namespace": "team-a", "name": "web.v2"}
    assert record["message"] == "[team-a/web.v2] Installed x"


def test_line_without_prefix_has_no_object(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    main.configure_logging(AgentSettings(node_name="node-1", log_format=LogFormat.JSON))
    logging.getLogger("seccomp_recorder.agent.test").info("Agent started on node %s", "node-1")

    assert "object" not in last_line(capsys)
