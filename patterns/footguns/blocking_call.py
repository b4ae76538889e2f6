"""Footgun: a blocking call inside a task stalls every other task (article 004).

An event loop runs one task at a time, switching only at an ``await``. ``time.sleep`` (or any
blocking I/O: ``requests.get``, a slow file read) never awaits, so while it runs nothing else
does: the other tasks' timers fire late, all at once, after it. The fix: await the async
equivalent, or move the blocking call to a worker thread with ``anyio.to_thread.run_sync``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.to_thread

from patterns.footguns.exhibit import Exhibit, Instrument, Verdict

TICKERS, TICKS, TICK_S, BLOCK_S = 4, 6, 0.05, 0.3


async def _scenario(blocker: Callable[[], Coroutine[Any, Any, None]], what: str) -> Verdict:
    probe = Instrument()

    # A well-behaved task: sleeps TICK_S at a time; a tick that takes longer shows a stall.
    async def tick(name: str) -> None:
        await anyio.sleep(TICK_S)

    async def ticker(name: str) -> None:
        for _ in range(TICKS):
            await probe.wrap(tick)(name)

    async def blocking(label: str) -> None:
        await blocker()

    async def start_blocking() -> None:
        await anyio.sleep(TICK_S * 1.5)  # let the tickers get going first
        await probe.wrap(blocking)(f"blocking call ({what})")

    async with anyio.create_task_group() as tg:
        for i in range(TICKERS):
            tg.start_soon(ticker, f"task {i}")
        tg.start_soon(start_blocking)
    worst = max(call.end - call.start for call in probe.calls if call.item.startswith("task"))
    stalled = worst > TICK_S + BLOCK_S / 2
    observed = (
        f"the other tasks stalled: a {TICK_S * 1000:.0f} ms tick took {worst * 1000:.0f} ms"
        if stalled
        else f"the other tasks ran on: the longest {TICK_S * 1000:.0f} ms tick took "
        f"{worst * 1000:.0f} ms"
    )
    # Each tick drawn as a short mark where it woke: a stall shows as a gap between marks.
    spans = [
        (c.item, c.end - 0.004, c.end) if c.item.startswith("task") else (c.item, c.start, c.end)
        for c in probe.calls
    ]
    return Verdict(not stalled, observed, tuple(sorted(spans, key=lambda span: span[1])))


async def broken() -> Verdict:
    """``time.sleep`` in a task: the whole event loop sleeps with it."""

    async def block() -> None:
        time.sleep(BLOCK_S)  # noqa: ASYNC251 - the footgun on show

    return await _scenario(block, "the loop is blocked")


async def fixed() -> Verdict:
    """The same blocking call in a worker thread: the event loop runs on."""

    async def block() -> None:
        await anyio.to_thread.run_sync(time.sleep, BLOCK_S)

    return await _scenario(block, "in a thread")


EXHIBIT = Exhibit(
    name="blocking-call",
    title="A blocking call (time.sleep) inside a task",
    article="004: async I/O from scratch, threads vs an event loop",
    why=(
        "The event loop switches tasks only at an await. time.sleep() never awaits, so the loop "
        "and every task on it stood still until it returned. Await the async version, or run "
        "the blocking call in a thread with anyio.to_thread.run_sync()."
    ),
    broken=broken,
    fixed=fixed,
)
