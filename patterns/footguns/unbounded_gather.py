"""Footgun: scatter/gather over a huge input holds every item at once (article 002).

Scatter/gather starts a task per item as fast as it can pull them: with a long input, every
item is pulled and a task is alive for each at the same moment, so memory grows with the input
(about 4.5 KiB per item measured; gigabytes at millions). A bounded pattern pulls an item only
when a slot is free, and its memory stays flat.
"""

from __future__ import annotations

import anyio

from patterns import buffered_unordered, scatter_gather
from patterns.footguns.exhibit import Exhibit, Instrument, Verdict
from patterns.lab.core import Pattern

ITEMS, LIMIT = 5_000, 10


async def _call(item: int) -> int:
    # A millisecond is enough to keep every task alive at once; the run takes half a second.
    await anyio.sleep(0.001)
    return item


async def _measure(pattern: Pattern) -> Verdict:
    probe = Instrument()
    async with (
        probe.sampling(),
        pattern.stream(probe.wrap(_call), probe.source(range(ITEMS)), limit=LIMIT) as out,
    ):
        async for _ in out:
            pass
    held = max(mib for _, _, mib in probe.gauges)
    return Verdict(
        probe.peak <= LIMIT,
        f"{probe.peak:,} tasks alive and {probe.most_ahead:,} items pulled at once, "
        f"for {ITEMS:,} items (limit {LIMIT}); at most {held:.1f} MiB held",
        probe.spans(),
        tuple(probe.gauges),
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
