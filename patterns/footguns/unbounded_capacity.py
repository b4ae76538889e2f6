"""Footgun: unbounded calls against a service with a capacity (article 002, the other side).

Scatter/gather starts every call at once, and ``limit`` bounds nothing: fine for the caller
while there are few calls, but the service at the other end has a capacity of its own (a
connection limit, a worker pool), and past it turns calls away, as an HTTP 429 or 503 would.
Measured here: 40 calls of 10 ms against a service of capacity 5 that rejects what it has no
room for: all 40 in flight at the caller at once, at most 5 in service, and 35 of the 40 turned
away (on asyncio, uvloop and trio alike); collected, not raised, so that each is counted. A
service that queues instead serves them all, but holds the other 35 in its queue and adds
their wait to the caller's latency; one that degrades serves all at once, each slower. The fix
is a bounded pattern at ``limit`` = the service's capacity: never more calls than it has room
for, 0 turned away, all 40 served in 8 rounds of 10 ms.
"""

from __future__ import annotations

import anyio.lowlevel

from patterns import buffered_unordered, scatter_gather
from patterns.footguns.exhibit import Exhibit, Instrument, Verdict
from patterns.lab.core import Outcome, Pattern, collect_errors
from patterns.lab.service import Overloaded, Service
from patterns.lab.workload import Item

ITEMS, CAPACITY, CALL_S = 40, 5, 0.01


async def _measure(pattern: Pattern) -> Verdict:
    service, probe = Service(CAPACITY, behaviour="reject"), Instrument()

    async def request(item: Item) -> str:
        # The request on its way: in flight at the caller before the service sees it.
        await anyio.lowlevel.checkpoint()
        return await service.call(item)

    items = [Item(index, CALL_S) for index in range(ITEMS)]
    # Collect mode: a call turned away comes back as an Outcome, and the others run on.
    outcomes: list[Outcome[Item, str]] = await pattern.run(
        collect_errors(probe.wrap(request)), items, limit=CAPACITY
    )
    away = {o.item.index for o in outcomes if isinstance(o.error, Overloaded)}
    felt = service.felt

    def label(item: Item) -> str:  # a call turned away is drawn "(turned away)"
        return f"call {item.index}" + (" (turned away)" if item.index in away else "")

    spans = sorted(((label(c.item), c.start, c.end) for c in probe.calls), key=lambda s: s[1])
    return Verdict(
        felt.turned_away == 0 and felt.served == ITEMS,
        f"the service turned {felt.turned_away} of {ITEMS} calls away; at most "
        f"{felt.peak_in_service} in service, {probe.peak} in flight at the caller",
        tuple(spans),
    )


async def broken() -> Verdict:
    """Scatter/gather: every call at once, whatever the service has room for."""
    return await _measure(scatter_gather)


async def fixed() -> Verdict:
    """A bounded pattern at ``limit`` = the service's capacity: never more than it can take."""
    return await _measure(buffered_unordered)


EXHIBIT = Exhibit(
    name="unbounded-against-capacity",
    title="Unbounded calls against a service with a capacity",
    article="002: scatter/gather, worker pool, semaphore, buffered stream",
    why=(
        "Scatter/gather sent every call at once, and the service had room for 5: it turned the "
        "rest away (or, another service, would queue them or slow down for all). Bound the "
        "calls at the service's capacity, and no call arrives without room for it."
    ),
    broken=broken,
    fixed=fixed,
)
