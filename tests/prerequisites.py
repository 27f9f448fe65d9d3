"""The suite's rule for missing prerequisites: skip locally, fail under CI=true.

Its own module (on pytest's pythonpath) rather than conftest.py, because pytest
imports every conftest.py of a folder without `__init__.py` under the same
module name `conftest`, so `from conftest import ...` can find another file.
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


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
