"""Suite-wide rules: under CI=true a test that would skip fails instead."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"

# The `devcluster` fixture: a dev cluster (API server emulator plus node stand-ins).
pytest_plugins = ["seccomp_devcluster.pytest_plugin"]


def require(condition: bool, reason: str) -> None:
    """Skip the calling test when `condition` is false, or fail it under CI=true.

    CI runs as root on a machine with BPF and the OCI runtimes, so a missing
    prerequisite there is a broken CI setup, never a reason to pass quietly.
    """
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Turn any skip (including skipif markers) into a failure under CI=true."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must fail instead: {report.longrepr}"
