"""Footgun: scatter/gather over a huge input holds every item at once (article 002).

Scatter/gather starts a task per item as fast as it can pull them: with a long input, every
item is pulled and a task is alive for each at the same moment, so memory grows with the input
(about 4.5 KiB per item measured; gigabytes at millions). A bounded pattern pulls an item only
when a slot is free, and its memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio

from patterns import buffered_unordered, scatter_gather
from patterns.core import Pattern
from patterns.footguns import Exhibit, Timeline, Verdict

ITEMS, LIMIT = 5_000, 10


async def _measure(pattern: Pattern) -> Verdict:
    pulled = done = in_flight = most_in_flight = most_pulled_ahead = 0
    timeline = Timeline()

    def source() -> Iterator[int]:
        nonlocal pulled
        for item in range(ITEMS):
            pulled += 1
            yield item

    async def call(item: int) -> int:
        nonlocal done, in_flight, most_in_flight, most_pulled_ahead
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        most_pulled_ahead = max(most_pulled_ahead, pulled - done)
        began = timeline.now()
        # A millisecond is enough to keep every task alive at once; the run takes half a second.
        await anyio.sleep(0.001)
        timeline.add(f"call {item}", began)
        in_flight -= 1
        done += 1
        return item

    async with pattern.stream(call, source(), limit=LIMIT) as results:
        async for _ in results:
            pass
    return Verdict(
        most_in_flight <= LIMIT,
        f"{most_in_flight:,} tasks alive and {most_pulled_ahead:,} items pulled at once, "
        f"for {ITEMS:,} items (limit {LIMIT})",
        timeline.frozen(),
    )


async def broken() -> Verdict:
    """Scatter/gather: one task per item, all at once."""
    return await _measure(scatter_gather)


async def fixed() -> Verdict:
    """A bounded pattern: ``limit`` calls in flight, the input pulled as slots free up."""
    return await _measure(buffered_unordered)


EXHIBIT = Exhibit(
    name="unbounded-gather",
    title="Scatter/gather over a huge input",
    article="002: scatter/gather, worker pool, semaphore, buffered stream",
    why=(
        "Scatter/gather pulls every item and starts a task for each right away, so what it holds "
        "grows with the input: a million items, a million tasks, gigabytes. A bounded pattern "
        "pulls an item only when a slot frees, and holds `limit` at most."
    ),
    broken=broken,
    fixed=fixed,
)
