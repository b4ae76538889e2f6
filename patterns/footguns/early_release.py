"""Footgun: the permit released before the task runs, so the limit does nothing (article 000).

``async with semaphore: task_group.start_soon(call)`` looks bounded, but ``start_soon`` only
schedules the task: the ``with`` block ends, and gives the permit back, before the call has even
begun. Every item gets a permit at once. The fix is the semaphore recipe: the task itself holds
the permit and releases it when it ends.
"""

from __future__ import annotations

import anyio

from patterns import semaphore
from patterns.footguns.exhibit import Exhibit, Instrument, Verdict

ITEMS, LIMIT = 40, 5


async def _call(item: int) -> int:
    await anyio.sleep(0.01)
    return item


def _verdict(probe: Instrument) -> Verdict:
    return Verdict(
        probe.peak <= LIMIT,
        f"{probe.peak} calls in flight at once, with a limit of {LIMIT}",
        probe.spans(),
    )


async def broken() -> Verdict:
    """The permit lives only as long as ``start_soon``, which returns at once."""
    probe, permits = Instrument(), anyio.Semaphore(LIMIT)
    async with anyio.create_task_group() as tg:
        for item in range(ITEMS):
            async with permits:
                tg.start_soon(probe.wrap(_call), item)
    return _verdict(probe)


async def fixed() -> Verdict:
    """The semaphore recipe: the task holds its permit until it ends."""
    probe = Instrument()
    await semaphore.run(probe.wrap(_call), range(ITEMS), limit=LIMIT)
    return _verdict(probe)


EXHIBIT = Exhibit(
    name="early-release",
    title="The permit released before the task runs",
    article="000: a TCP accept loop bounded by a semaphore",
    why=(
        "start_soon() only schedules the task; the `async with permits` block around it ends, "
        "and returns the permit, before the task has started. The permit must travel into the "
        "task and be released by the task when it ends."
    ),
    broken=broken,
    fixed=fixed,
)
