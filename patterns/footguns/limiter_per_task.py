"""Footgun: a CapacityLimiter taken inside every task of an unbounded task group (anyio's docs).

anyio's documentation bounds concurrency this way: start a task per item, and have each task
enter a shared ``CapacityLimiter`` before it works. The calls in flight are bounded: never
more than the limit. The tasks are not: every item is pulled and its task started at once,
each waiting its turn at the limiter, so memory grows with the input (the memory benchmark
measured 602 MiB for 100,000 items, ``anyio CapacityLimiter per task``; a bounded recipe holds
under 1 MiB at a million). The fix takes the permit *before* the task exists: the semaphore
recipe, whose spawner stops pulling while every permit is out.
"""

from __future__ import annotations

import anyio

from patterns import semaphore
from patterns.footguns.exhibit import Exhibit, Instrument, Verdict

ITEMS, LIMIT = 5_000, 10


async def _call(item: int) -> int:
    await anyio.sleep(0.001)
    return item


def _verdict(probe: Instrument) -> Verdict:
    # Bounded means both: calls in flight within the limit, and the input pulled only as
    # slots free (the semaphore recipe pulls at most limit + 1 ahead of completion).
    ahead = probe.most_ahead <= LIMIT + 1
    held = max(mib for _, _, mib in probe.gauges)
    return Verdict(
        probe.peak <= LIMIT and ahead,
        f"{probe.peak:,} calls in flight at most (limit {LIMIT}), {'and only' if ahead else 'but'} "
        f"{probe.most_ahead:,} items pulled and their tasks alive at once, for {ITEMS:,} items; "
        f"at most {held:.1f} MiB held",
        probe.spans(),
        tuple(probe.gauges),
    )


async def broken() -> Verdict:
    """The documented idiom: every task started at once, each waiting at the limiter."""
    probe, limiter = Instrument(), anyio.CapacityLimiter(LIMIT)
    call = probe.wrap(_call)

    async def task(item: int) -> None:
        async with limiter:
            await call(item)

    async with probe.sampling(), anyio.create_task_group() as tg:
        for item in probe.source(range(ITEMS)):
            tg.start_soon(task, item)
    return _verdict(probe)


async def fixed() -> Verdict:
    """The semaphore recipe: the permit is taken before the task exists."""
    probe = Instrument()
    async with (
        probe.sampling(),
        semaphore.stream(probe.wrap(_call), probe.source(range(ITEMS)), limit=LIMIT) as out,
    ):
        async for _ in out:
            pass
    return _verdict(probe)


EXHIBIT = Exhibit(
    name="limiter-per-task",
    title="A CapacityLimiter inside every task of an unbounded task group",
    article="002: scatter/gather, worker pool, semaphore, buffered stream",
    why=(
        "The limiter bounds the calls, not the tasks: every item is pulled and its task started "
        "at once, each waiting at the limiter, so memory grows with the input (602 MiB for "
        "100,000 items in the memory benchmark). Take the permit before starting the task, and "
        "the spawner stops pulling while the limit is reached."
    ),
    broken=broken,
    fixed=fixed,
)
