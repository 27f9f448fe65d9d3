"""Waking a recording's profile sync loop when one of its results changes.

kopf runs one daemon per SeccompRecording and one event handler per result. Nothing in
kopf lets a handler of one resource wake the daemon of another. So the result handler
sets an asyncio.Event here, keyed by the recording's namespace and name, and the daemon
waits on it with a timeout. Handlers in threads wake it through the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable


class Wakeups:
    """One asyncio.Event per running sync loop, set to wake that recording's loop."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def register(self, namespace: str, name: str) -> None:
        """Make a recording's sync loop wakeable; call it in the loop before its first pass.

        A wake that arrives between this call and the loop's first wait is kept, and a
        wake for a recording without a registered loop is dropped: the loop's first pass
        reads every result anyway.
        """
        self._loop = asyncio.get_running_loop()
        self._events.setdefault((namespace, name), asyncio.Event())

    def wake(self, namespace: str, name: str) -> None:
        """Wake the sync loop of a recording, if it runs; safe to call from any thread."""
        event = self._events.get((namespace, name))
        if event is None or self._loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            event.set()
        else:
            self._loop.call_soon_threadsafe(event.set)

    async def wait(
        self, namespace: str, name: str, timeout: float, stopped: Awaitable[object]
    ) -> None:
        """Wait until the recording is woken, `stopped` completes, or `timeout` seconds pass.

        The recording must be registered.
        """
        event = self._events[(namespace, name)]
        woken = asyncio.ensure_future(event.wait())
        halted = asyncio.ensure_future(stopped)
        try:
            await asyncio.wait({woken, halted}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (woken, halted):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # Cleared before the next pass, which reads every result, so no wake is lost.
        event.clear()

    def forget(self, namespace: str, name: str) -> None:
        """Drop the Event of a recording whose sync loop ended."""
        self._events.pop((namespace, name), None)
