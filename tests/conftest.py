"""Suite-wide rules: under CI=true a test that would skip fails instead."""

from __future__ import annotations

import pytest

from prerequisites import IN_CI, require

__all__ = ["IN_CI", "require"]

# The `devcluster` fixture: a dev cluster (API server emulator plus node stand-ins).
pytest_plugins = ["seccomp_devcluster.pytest_plugin"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Turn any skip (including skipif markers) into a failure under CI=true."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must fail instead: {report.longrepr}"
