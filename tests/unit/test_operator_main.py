"""The operator's entry point: failing fast on settings, kopf's settings, log format."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import kopf
import pytest

from seccomp_recorder.operator.main import (
    build_kopf_settings,
    configure_logging,
    liveness_endpoint,
    main,
)
from seccomp_recorder.operator.settings import load_settings

IMAGE = "registry.example.com/seccomp-recorder:0.1.0"


def test_invalid_setting_exits_with_status_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SECCOMP_RECORDER_AGENT_IMAGE", IMAGE)
    monkeypatch.setenv("SECCOMP_RECORDER_LOG_LEVEL", "LOUD")
    assert main([]) == 2
    error = capsys.readouterr().err
    assert "SECCOMP_RECORDER_LOG_LEVEL" in error
    assert "DEBUG, INFO, WARNING, ERROR" in error


def test_missing_image_exits_from_module() -> None:
    environment = {"PATH": "/usr/bin:/bin"}
    finished = subprocess.run(
        [sys.executable, "-m", "seccomp_recorder.operator"],
        env=environment, capture_output=True, text=True, timeout=60, check=False,
    )
    assert finished.returncode == 2
    assert "SECCOMP_RECORDER_AGENT_IMAGE" in finished.stderr


def test_help_names_the_variables(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    assert "SECCOMP_RECORDER_AGENT_IMAGE" in capsys.readouterr().out


def test_kopf_settings_use_project_names() -> None:
    settings = build_kopf_settings(load_settings({"SECCOMP_RECORDER_AGENT_IMAGE": IMAGE}))
    assert settings.persistence.finalizer == "seccomp-recorder.io/finalizer"
    # kopf's state goes to status.kopf, which the CRDs keep opaque, not to annotations.
    progress = settings.persistence.progress_storage
    assert isinstance(progress, kopf.StatusProgressStorage)
    assert progress.field == ("status", "kopf", "progress")
    diffbase = settings.persistence.diffbase_storage
    assert isinstance(diffbase, kopf.StatusDiffBaseStorage)
    assert diffbase.field == ("status", "kopf", "last-handled-configuration")
    assert settings.watching.server_timeout is not None
    assert settings.watching.client_timeout is not None
    assert settings.watching.client_timeout > settings.watching.server_timeout
    assert settings.posting.loggers is False


def test_json_log_format_writes_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        configure_logging(load_settings({
            "SECCOMP_RECORDER_AGENT_IMAGE": IMAGE,
            "SECCOMP_RECORDER_LOG_FORMAT": "json",
            "SECCOMP_RECORDER_LOG_LEVEL": "WARNING",
        }))
        assert root.level == logging.WARNING
        logging.getLogger("seccomp_recorder.test").warning("a warning")
        logging.getLogger("seccomp_recorder.test").info("an info line")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["message"] for line in lines] == ["a warning"]
    assert lines[0]["severity"] == "warn"


def test_kopf_runs_standalone_without_peering_name() -> None:
    settings = build_kopf_settings(load_settings({"SECCOMP_RECORDER_AGENT_IMAGE": IMAGE}))
    assert settings.peering.standalone is True


def test_peering_name_makes_peering_mandatory() -> None:
    settings = build_kopf_settings(
        load_settings({
            "SECCOMP_RECORDER_AGENT_IMAGE": IMAGE,
            "SECCOMP_RECORDER_PEERING_NAME": "seccomp-recorder",
            "SECCOMP_RECORDER_PEERING_LIFETIME": "15",
        }),
        started_ns=1_700_000_000_123_456_789,
    )
    assert settings.peering.standalone is False
    assert settings.peering.mandatory is True
    assert settings.peering.name == "seccomp-recorder"
    assert settings.peering.lifetime == 15
    assert settings.peering.priority == -1_700_000_000_123_456


def test_earlier_replica_gets_higher_priority() -> None:
    environ = {"SECCOMP_RECORDER_AGENT_IMAGE": IMAGE, "SECCOMP_RECORDER_PEERING_NAME": "sr"}
    first = build_kopf_settings(load_settings(environ), started_ns=1_000_000)
    second = build_kopf_settings(load_settings(environ), started_ns=1_001_000)
    assert first.peering.priority > second.peering.priority
    # kopf's --dev mode priority still pauses every replica.
    assert 666 > first.peering.priority


def test_liveness_endpoint_follows_health_settings() -> None:
    def endpoint(**variables: str) -> str | None:
        environ = {"SECCOMP_RECORDER_AGENT_IMAGE": IMAGE}
        environ.update({f"SECCOMP_RECORDER_{key}": value for key, value in variables.items()})
        return liveness_endpoint(load_settings(environ))

    assert endpoint() is None
    assert endpoint(HEALTH_PORT="8081") == "http://0.0.0.0:8081/healthz"
    assert endpoint(HEALTH_PORT="8081", HEALTH_ADDRESS="::") == "http://[::]:8081/healthz"


@pytest.mark.parametrize(("level", "expected"), [("INFO", logging.WARNING), ("DEBUG", logging.DEBUG)])
def test_probe_access_lines_only_at_debug(level: str, expected: int) -> None:
    root, access = logging.getLogger(), logging.getLogger("aiohttp.access")
    handlers, root_level, access_level = list(root.handlers), root.level, access.level
    try:
        configure_logging(load_settings({
            "SECCOMP_RECORDER_AGENT_IMAGE": IMAGE, "SECCOMP_RECORDER_LOG_LEVEL": level,
        }))
        assert access.level == expected
    finally:
        root.handlers[:] = handlers
        root.setLevel(root_level)
        access.setLevel(access_level)
