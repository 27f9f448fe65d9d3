"""A work queue of object keys, as controllers use: each key queued once, retries delayed.

Informer handlers only add keys here, so they return at once, and one worker thread takes
the keys and reconciles each object from the informers' current state. A key added while
it is already queued is queued once. A key added while the worker handles it is queued
again, so the change that arrived meanwhile is not lost. `add_after` schedules a retry.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

KeyT = TypeVar("KeyT", bound=Hashable)


class WorkQueue(Generic[KeyT]):
    """A thread-safe FIFO of distinct keys, with delayed additions."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ready: deque[KeyT] = deque()
        self._queued: set[KeyT] = set()
        # (due time, sequence number, key); the sequence keeps equal due times in order.
        self._delayed: list[tuple[float, int, KeyT]] = []
        self._sequence = 0
        self._condition = threading.Condition()
        self._closed = False

    def add(self, key: KeyT) -> None:
        """Queue `key` now, unless it is already waiting."""
        with self._condition:
            if key not in self._queued:
                self._queued.add(key)
                self._ready.append(key)
                self._condition.notify()

    def add_after(self, key: KeyT, delay: float) -> None:
        """Queue `key` once `delay` seconds have passed."""
        with self._condition:
            self._sequence += 1
            heapq.heappush(self._delayed, (self._clock() + delay, self._sequence, key))
            self._condition.notify()

    def get(self, timeout: float | None = None) -> KeyT | None:
        """Take the next key, waiting up to `timeout` seconds; None on timeout or close."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._condition:
            while not self._closed:
                self._move_due()
                if self._ready:
                    key = self._ready.popleft()
                    self._queued.discard(key)
                    return key
                wait = self._seconds_to_next_due()
                if deadline is not None:
                    remaining = deadline - self._clock()
                    if remaining <= 0:
                        return None
                    wait = remaining if wait is None else min(wait, remaining)
                self._condition.wait(wait)
            return None

    def close(self) -> None:
        """Wake every waiting `get`, which then returns None."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def __len__(self) -> int:
        with self._condition:
            return len(self._ready) + len(self._delayed)

    def _move_due(self) -> None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            if key not in self._queued:
                self._queued.add(key)
                self._ready.append(key)

    def _seconds_to_next_due(self) -> float | None:
        if not self._delayed:
            return None
        return max(0.0, self._delayed[0][0] - self._clock())
