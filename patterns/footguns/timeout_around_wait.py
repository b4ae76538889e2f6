"""Footgun: a timeout around the wait for a permit fails calls that never ran (aiohttp issues).

A task per call, each bounded by a semaphore and given a timeout: ``with fail_after(T): async
with permits: await call(item)``. The clock starts before the permit is taken, so a call queued
behind the permit spends its timeout waiting and times out before the service has seen it.
Measured here: 30 calls of 20 ms, 5 at a time, each with 50 ms: 20 of the 30 timed out, 15 of
them without ever reaching the service (the other 5 were cut off after about 10 ms in it),
on asyncio, uvloop and trio alike. aiohttp's users hit it as a request timeout that counts the
wait for a pooled connection (aiohttp #10313, #1463) or for a semaphore around ``gather``
(#1797). The fix is to start the clock once the permit is held: the timeout inside the permit,
as the semaphore recipe does with work that carries its own timeout (0 of 30 timed out, all
served, in 0.12 s). The timeout then bounds each call, not the whole batch: put a second one
around the batch if it needs a deadline.
"""

from __future__ import annotations

import anyio

from patterns import semaphore
from patterns.footguns.exhibit import Exhibit, Instrument, Spans, Verdict
from patterns.lab.service import Service
from patterns.lab.workload import Item

ITEMS, LIMIT, CALL_S, TIMEOUT_S = 30, 5, 0.02, 0.05
#: A call with less of its timeout left than this when it gets a permit never reaches the
#: service: its time is up as it arrives (a millisecond: uvloop's timers tick in whole ones).
NO_TIME_S = 0.001


def _items() -> list[Item]:
    return [Item(index, CALL_S) for index in range(ITEMS)]


async def broken() -> Verdict:
    """The timeout around the wait for a permit and the call: the wait spends it."""
    service, served = Service(LIMIT, behaviour="queue"), Instrument()
    call, permits = served.wrap(service.call), anyio.Semaphore(LIMIT)
    asked: dict[int, float] = {}  # item index: when its timeout started
    timed_out: dict[int, float] = {}  # item index: when it fired

    async def request(item: Item) -> None:
        asked[item.index] = served.clock()
        try:
            with anyio.fail_after(TIMEOUT_S):  # the clock starts here, before the permit
                async with permits:
                    await call(item)
        except TimeoutError:
            timed_out[item.index] = served.clock()

    async with anyio.create_task_group() as tg:
        for item in _items():
            tg.start_soon(request, item)
    return _verdict(service, served, asked, timed_out)


async def fixed() -> Verdict:
    """The semaphore recipe, with work that carries its own timeout: the clock starts once the
    permit is held."""
    service, served = Service(LIMIT, behaviour="queue"), Instrument()
    call = served.wrap(service.call)
    asked: dict[int, float] = {}
    timed_out: dict[int, float] = {}

    async def request(item: Item) -> None:
        asked[item.index] = served.clock()
        try:
            with anyio.fail_after(TIMEOUT_S):  # inside the permit: the call alone
                await call(item)
        except TimeoutError:
            timed_out[item.index] = served.clock()

    await semaphore.run(request, _items(), limit=LIMIT)
    return _verdict(service, served, asked, timed_out)


def _verdict(
    service: Service, served: Instrument, asked: dict[int, float], timed_out: dict[int, float]
) -> Verdict:
    # Never reached: timed out before it got a permit, or got one as its time ran out. As the
    # third round is cut off, its permits go to calls whose own timeouts fire at that moment,
    # and which are cancelled at their first await in the service (a millisecond later on
    # uvloop): the service did no work for them either.
    reached = {
        c.item.index for c in served.calls if c.start < asked[c.item.index] + TIMEOUT_S - NO_TIME_S
    }
    never = {index for index in timed_out if index not in reached}
    ms = f"{TIMEOUT_S * 1000:.0f} ms"
    if timed_out:
        observed = (
            f"{len(timed_out)} of {ITEMS} calls timed out, {len(never)} of them never reached "
            f"the service: their {ms} went on waiting for a permit"
        )
    else:
        observed = (
            f"0 of {ITEMS} calls timed out; every call got its whole {ms} in service, and "
            f"{service.felt.served} of {ITEMS} were served"
        )
    return Verdict(
        not timed_out and service.felt.served == ITEMS,
        observed,
        _spans(served, timed_out, never),
    )


def _spans(served: Instrument, timed_out: dict[int, float], never: set[int]) -> Spans:
    """Each call's wait for a permit (every call was asked for at the start), then its time in
    service; what its timeout cut off, in service or before, is drawn "(timed out)"."""
    rows = [(i, f"call {i} waiting for a permit (timed out)", 0.0, timed_out[i]) for i in never]
    for c in served.calls:
        index = c.item.index
        if index in never:
            continue
        rows.append((index, f"call {index}" + ("" if c.ok else " (timed out)"), c.start, c.end))
        if c.start > NO_TIME_S:  # the first calls had a permit at once
            rows.append((index, f"call {index} waiting for a permit", 0.0, c.start))
    # A row per label, each call's wait above its time in service.
    return tuple((label, start, end) for _, label, start, end in sorted(rows, key=_by_call))


def _by_call(row: tuple[int, str, float, float]) -> tuple[int, float]:
    return row[0], row[2]


EXHIBIT = Exhibit(
    name="timeout-around-wait",
    title="A timeout around the wait for a permit",
    article="aiohttp #10313, #1463 and #1797: a request's timeout counts its wait for a slot",
    why=(
        "The timeout's clock started before the permit was taken, so a call queued behind the "
        "permit spent its timeout waiting, and failed though the service never saw it. Start "
        "the clock once the permit is held: the timeout inside the permit, around the call "
        "alone (the semaphore recipe, with work that carries its own timeout)."
    ),
    broken=broken,
    fixed=fixed,
)
