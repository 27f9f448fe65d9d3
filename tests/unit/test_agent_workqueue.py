"""The agent's work queue: distinct keys, FIFO order, delayed retries and close."""

from __future__ import annotations

import threading

from seccomp_recorder.agent.workqueue import WorkQueue


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_keys_come_out_in_order_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ["a", "b", "a", "c", "b"]:
        queue.add(key)
    assert [queue.get(0), queue.get(0), queue.get(0), queue.get(0)] == ["a", "b", "c", None]


def test_key_taken_can_be_added_again() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert queue.get(0) == "a"
    queue.add("a")
    assert queue.get(0) == "a"


def test_delayed_key_waits_until_due() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock)
    queue.add_after("a", 5.0)
    assert queue.get(0) is None
    clock.now = 5.0
    assert queue.get(0) == "a"


def test_delayed_key_not_doubled_when_queued() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock)
    queue.add("a")
    queue.add_after("a", 1.0)
    clock.now = 2.0
    assert queue.get(0) == "a"
    assert queue.get(0) is None


def test_get_wakes_on_add() -> None:
    queue: WorkQueue[str] = WorkQueue()
    taken: list[str | None] = []
    worker = threading.Thread(target=lambda: taken.append(queue.get(5)))
    worker.start()
    queue.add("a")
    worker.join(5)
    assert taken == ["a"]


def test_close_wakes_waiting_get() -> None:
    queue: WorkQueue[str] = WorkQueue()
    taken: list[str | None] = []
    worker = threading.Thread(target=lambda: taken.append(queue.get()))
    worker.start()
    queue.close()
    worker.join(5)
    assert taken == [None]


def test_length_counts_ready_and_delayed() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add_after("b", 60)
    assert len(queue) == 2
