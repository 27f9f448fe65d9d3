"""Waking a recording's sync loop from the event loop, from threads, and on stop."""

from __future__ import annotations

import asyncio
import threading

from seccomp_recorder.operator.wakeups import Wakeups

# Long enough that only a wake or a stop ends the wait. So a lost wake fails the test
# at the deadline instead of passing after the timeout.
NEVER = 3600.0
DEADLINE = 30.0


async def never_stopped() -> None:
    await asyncio.Event().wait()


def test_wake_in_loop_ends_wait() -> None:
    async def scenario() -> None:
        wakeups = Wakeups()
        wakeups.register("shop", "web")
        asyncio.get_running_loop().call_later(0.01, wakeups.wake, "shop", "web")
        await asyncio.wait_for(wakeups.wait("shop", "web", NEVER, never_stopped()), DEADLINE)

    asyncio.run(scenario())


def test_wake_from_thread_ends_wait() -> None:
    async def scenario() -> None:
        wakeups = Wakeups()
        wakeups.register("shop", "web")
        thread = threading.Thread(target=wakeups.wake, args=("shop", "web"))
        thread.start()
        await asyncio.wait_for(wakeups.wait("shop", "web", NEVER, never_stopped()), DEADLINE)
        thread.join()

    asyncio.run(scenario())


def test_wake_before_wait_is_kept() -> None:
    async def scenario() -> None:
        wakeups = Wakeups()
        wakeups.register("shop", "web")
        wakeups.wake("shop", "web")
        await asyncio.wait_for(wakeups.wait("shop", "web", NEVER, never_stopped()), DEADLINE)

    asyncio.run(scenario())


def test_wait_clears_the_wake() -> None:
    async def scenario() -> bool:
        wakeups = Wakeups()
        wakeups.register("shop", "web")
        wakeups.wake("shop", "web")
        await wakeups.wait("shop", "web", NEVER, never_stopped())
        try:
            await asyncio.wait_for(wakeups.wait("shop", "web", NEVER, never_stopped()), 0.2)
        except TimeoutError:
            return True
        return False

    assert asyncio.run(scenario()), "a second wait returned without a second wake"


def test_stop_ends_wait() -> None:
    async def scenario() -> None:
        wakeups = Wakeups()
        wakeups.register("shop", "web")
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.01, stop.set)
        await asyncio.wait_for(wakeups.wait("shop", "web", NEVER, stop.wait()), DEADLINE)

    asyncio.run(scenario())


def test_unknown_recording_is_ignored() -> None:
    async def scenario() -> None:
        wakeups = Wakeups()
        wakeups.wake("shop", "nothing")
        wakeups.register("shop", "web")
        wakeups.forget("shop", "web")
        wakeups.wake("shop", "web")

    asyncio.run(scenario())
