"""Footgun: a throttler that takes more than its limit before it drives the calls (article 003).

A hand-rolled throttler takes a permit for each call it is given and keeps the call to run
later, when the caller asks for results. A coroutine does nothing until it is awaited, so the
permits only come back once results are asked for: give it more calls than it has permits before
asking, and the giving waits forever. The fix is a stream that drives the calls in flight while
it waits for room: the buffered stream recipe.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import anyio

from patterns import buffered_unordered
from patterns.footguns.exhibit import Exhibit, Instrument, Verdict

ITEMS, LIMIT, GIVE_UP_S = 10, 3, 0.5


async def _work(item: int) -> int:
    await anyio.sleep(0.005)
    return item


class NaiveThrottler:
    """The article's first attempt: push() takes a permit; next() runs what was pushed."""

    def __init__(self, limit: int) -> None:
        self._permits = anyio.Semaphore(limit)
        self._pending: list[Coroutine[Any, Any, int]] = []

    async def push(self, call: Coroutine[Any, Any, int]) -> None:
        await self._permits.acquire()  # waits for a permit that only next() gives back
        self._pending.append(call)

    async def next(self) -> int:
        result = await self._pending.pop(0)
        self._permits.release()
        return result

    def close(self) -> None:
        # Calls that were never run: close them, or Python warns they were never awaited.
        for call in self._pending:
            call.close()


async def broken() -> Verdict:
    """Push all ten calls, then read the results: the fourth push never returns."""
    throttler, probe, results = NaiveThrottler(LIMIT), Instrument(), list[int]()

    async def push(item: int) -> None:
        call = _work(item)
        try:
            await throttler.push(call)
        except BaseException:
            call.close()  # never run: close it, or Python warns it was never awaited
            raise

    try:
        with anyio.move_on_after(GIVE_UP_S) as gave_up:
            for item in range(ITEMS):
                await probe.wrap(push)(item)
            while len(results) < ITEMS:
                results.append(await throttler.next())
    finally:
        throttler.close()  # also on Ctrl+C: the calls pushed and never run
    pushed = sum(call.ok for call in probe.calls)
    return _verdict(not gave_up.cancelled_caught, pushed, len(results), probe, "push {}")


async def fixed() -> Verdict:
    """The buffered stream starts the next call only as one in flight ends, and drives them."""
    results, probe = [], Instrument()
    with anyio.move_on_after(GIVE_UP_S * 10) as gave_up:
        async with buffered_unordered.stream(probe.wrap(_work), range(ITEMS), limit=LIMIT) as out:
            results = [result async for result in out]
    return _verdict(not gave_up.cancelled_caught, ITEMS, len(results), probe, "call {}")


def _verdict(finished: bool, pushed: int, done: int, probe: Instrument, label: str) -> Verdict:
    if finished:
        return Verdict(
            probe.peak <= LIMIT,
            f"all {done} calls done, at most {probe.peak} at once (limit {LIMIT})",
            probe.spans(label.format),
        )
    return Verdict(
        False,
        f"deadlocked: {pushed} calls pushed, {done} done; push number {pushed + 1} waited for "
        f"a permit until we gave up after {GIVE_UP_S} s",
        probe.spans(label.format),
    )


EXHIBIT = Exhibit(
    name="push-before-drive",
    title="A throttler that takes more than its limit before anything drives the calls",
    article="003: building a reusable throttler",
    why=(
        "Each push took a permit, but a pushed call only runs, and gives its permit back, when "
        "results are read, and results were to be read after the pushing. With more calls than "
        "permits the pushing waits on itself. Drive the calls in flight while waiting for room."
    ),
    broken=broken,
    fixed=fixed,
)
