"""Polling for a state that other processes reach, with the failure that names it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def poll(
    description: str,
    condition: Callable[[], Any],
    patience: float,
    *,
    interval: float = 0.05,
    details: Callable[[], str] | None = None,
) -> Any:
    """Call `condition` every `interval` seconds until it returns a true value; return it.

    After `patience` seconds, raise AssertionError naming `description`, followed by what
    `details` returns (such as a process's log) when it is given.
    """
    deadline = time.monotonic() + patience
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f"\n{details()}" if details is not None else ""
            raise AssertionError(f"timed out after {patience} s waiting for {description}{extra}")
        time.sleep(interval)
