"""Footgun: the permit released before the task runs, so the limit does nothing (article 000).

``async with semaphore: task_group.start_soon(call)`` looks bounded, but ``start_soon`` only
schedules the task: the ``with`` block ends, and gives the permit back, before the call has even
begun. Every item gets a permit at once. The fix is the semaphore recipe: the task itself holds
the permit and releases it when it ends.
"""

from __future__ import annotations

import anyio

from patterns import semaphore
from patterns.footguns import Exhibit, Timeline, Verdict

ITEMS, LIMIT = 40, 5


class _InFlight:
    def __init__(self) -> None:
        self.now = self.peak = 0
        self.timeline = Timeline()

    async def call(self, item: int) -> int:
        self.now += 1
        self.peak = max(self.peak, self.now)
        began = self.timeline.now()
        try:
            await anyio.sleep(0.01)
            return item
        finally:
            self.now -= 1
            self.timeline.add(f"call {item}", began)

    def verdict(self) -> Verdict:
        return Verdict(
            self.peak <= LIMIT,
            f"{self.peak} calls in flight at once, with a limit of {LIMIT}",
            self.timeline.frozen(),
        )


async def broken() -> Verdict:
    """The permit lives only as long as ``start_soon``, which returns at once."""
    spy, permits = _InFlight(), anyio.Semaphore(LIMIT)
    async with anyio.create_task_group() as tg:
        for item in range(ITEMS):
            async with permits:
                tg.start_soon(spy.call, item)
    return spy.verdict()


async def fixed() -> Verdict:
    """The semaphore recipe: the task holds its permit until it ends."""
    spy = _InFlight()
    await semaphore.run(spy.call, range(ITEMS), limit=LIMIT)
    return spy.verdict()


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
