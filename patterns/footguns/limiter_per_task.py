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

from collections.abc import Iterator

import anyio

from patterns import semaphore
from patterns.footguns import Exhibit, Timeline, Verdict

ITEMS, LIMIT = 5_000, 10


class _Counts:
    pulled = done = in_flight = most_in_flight = most_pulled_ahead = 0


def _source(counts: _Counts) -> Iterator[int]:
    for item in range(ITEMS):
        counts.pulled += 1
        yield item


async def _call(item: int, counts: _Counts, timeline: Timeline) -> int:
    counts.in_flight += 1
    counts.most_in_flight = max(counts.most_in_flight, counts.in_flight)
    counts.most_pulled_ahead = max(counts.most_pulled_ahead, counts.pulled - counts.done)
    began = timeline.now()
    await anyio.sleep(0.001)
    timeline.add(f"call {item}", began)
    counts.in_flight -= 1
    counts.done += 1
    return item


def _verdict(counts: _Counts, timeline: Timeline) -> Verdict:
    # Bounded means both: calls in flight within the limit, and the input pulled only as
    # slots free (the semaphore recipe pulls at most limit + 1 ahead of completion).
    ok = counts.most_in_flight <= LIMIT and counts.most_pulled_ahead <= LIMIT + 1
    but = "and only" if counts.most_pulled_ahead <= LIMIT + 1 else "but"
    return Verdict(
        ok,
        f"{counts.most_in_flight:,} calls in flight at most (limit {LIMIT}), {but} "
        f"{counts.most_pulled_ahead:,} items pulled and their tasks alive at once, "
        f"for {ITEMS:,} items",
        timeline.frozen(),
    )


async def broken() -> Verdict:
    """The documented idiom: every task started at once, each waiting at the limiter."""
    counts, timeline = _Counts(), Timeline()
    limiter = anyio.CapacityLimiter(LIMIT)

    async def task(item: int) -> None:
        async with limiter:
            await _call(item, counts, timeline)

    async with anyio.create_task_group() as tg:
        for item in _source(counts):
            tg.start_soon(task, item)
    return _verdict(counts, timeline)


async def fixed() -> Verdict:
    """The semaphore recipe: the permit is taken before the task exists."""
    counts, timeline = _Counts(), Timeline()

    async def work(item: int) -> int:
        return await _call(item, counts, timeline)

    async with semaphore.stream(work, _source(counts), limit=LIMIT) as results:
        async for _ in results:
            pass
    return _verdict(counts, timeline)


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
