"""Ordered buffered stream: calls in flight as in the buffered stream, results in input order.

Items flow input → up to ``limit`` slots → reorder buffer (at most ``window`` started and
not yet yielded) → your ``async for``, in input order.

```python
import random

import anyio

from patterns import buffered_ordered  # copied: from yourapp import buffered_ordered

urls = [f"https://example.com/{n}" for n in range(20)]


async def fetch(url: str) -> str:
    await anyio.sleep(random.uniform(0.01, 0.05))  # stands in for a network call
    return f"<html of {url}>"


async def main() -> None:
    async with buffered_ordered.stream(fetch, urls, limit=5, window=10) as pages:
        async for page in pages:  # in input order, whatever order the calls finish in
            print(page)


anyio.run(main)
```

What it is
    The shape of futures' ``buffered(n)`` in Rust: up to ``limit`` long-lived slots each take
    the next item as soon as their call ends, and the results come out in the order of the
    input. A slow item holds back the ones after it, so finished results wait in a reorder
    buffer; the free slots keep working until ``window`` items (default ``2 * limit``) are
    started and not yet yielded, and only then wait for the slow one.

When to use it
    The output must line up with the input (rows of a file, pages of a report), and you still
    want the calls to overlap. If order does not matter, ``buffered_unordered`` is the same
    without the waiting.

Failure mode
    Head-of-line blocking: one very slow item stalls every slot once the window behind it is
    full, and the time to the first result is the slowest early item's. Under heavy-tailed
    latencies its median time to result is several times the unordered form's (the sweeps
    notebook draws it). A window too small serialises the calls; an unbounded one is a memory
    leak waiting for a stuck item.

Cost (measured)
    46k CPU instructions per item of plumbing (work = one pass through the event loop, limit
    100, asyncio; counted by ``python -m patterns.lab.costs``, as the README's chooser quotes
    it): half as much again as the unordered form, for the reorder buffer's dict entry and
    semaphore release per item. 0.8 MiB at a million items.

Beside the textbook version
    The textbook way to get ordered results with a bound is batches: ``gather`` ``limit``
    calls, wait for all of them, start the next batch (below). Every batch waits for its
    slowest call while the other slots sit idle; this recipe refills a slot as soon as its call
    ends and waits only once ``window`` results are held back. On the default workload (20
    calls of 0.5–1.5 s, limit 5) batches take 5.49 s where this recipe takes 5.00 s, the
    ideal; on 200 heavy-tailed calls at limit 10, batches take 53.9 s against an ideal of
    23.9 s (both computed from the seeded latencies).

```python
async def textbook_batches(work, items, limit):
    results = []
    for start in range(0, len(items), limit):
        batch = items[start : start + limit]
        results += await anyio.gather(*(work(item) for item in batch))
    return results


print(len(anyio.run(textbook_batches, fetch, urls, 5)), "pages in batches")
```
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .contract import (
    Items,
    Limit,
    R,
    SyncSource,
    T,
    Work,
    bound,
    check,
    checked,
    drain,
    fail_fast,
    run_in_order,
    send,
)

#: At most ``limit`` calls in flight: one per slot.
BOUNDED = True


@asynccontextmanager
async def stream(
    work: Work[T, R], items: Items[T], *, limit: int | Limit, window: int | None = None
) -> AsyncIterator[AsyncIterator[R]]:
    """Keep up to ``limit`` calls in flight; yield results in input order.

    ``window`` (default ``2 * limit``, at least ``limit``) is how many items may be started
    and not yet yielded.
    """
    source = checked(work, items, limit)
    work, limit = bound(work, limit)  # an adaptive limit: its gate, and its maximum
    window = _check_window(window, limit)
    # One permit per place in the reorder buffer. An item is pulled only with a permit in
    # hand, and the consumer gives it back when it yields that item: the buffer never holds
    # more than `window` results, however slow the item at its head.
    room = anyio.Semaphore(window, fast_acquire=True)
    # Slots take turns at the input, which also numbers the items in the order they are pulled.
    turn = anyio.Lock(fast_acquire=True)
    pulled = 0
    send_results, receive_results = anyio.create_memory_object_stream[tuple[int, R]](limit)

    async def pull() -> tuple[int, T]:
        nonlocal pulled
        await room.acquire()
        try:
            if isinstance(source, SyncSource):  # its next() never waits: no lock needed
                item = await source.__anext__()
            else:
                async with turn:
                    item = await source.__anext__()
        except BaseException:
            room.release()  # nothing was pulled with it
            raise
        pulled += 1
        return pulled - 1, item

    async def open_slots() -> None:
        # A slot per item, up to `limit`; the result channel closes with the last slot.
        async with send_results:
            for _ in range(limit):
                try:
                    numbered = await pull()
                except StopAsyncIteration:
                    return
                group.start_soon(slot, numbered, send_results.clone())

    async def slot(
        numbered: tuple[int, T], results_out: MemoryObjectSendStream[tuple[int, R]]
    ) -> None:
        async with results_out:
            while True:
                if group.cancel_scope.cancel_called:  # stopped: start no call (see the others)
                    return
                index, item = numbered
                try:
                    result = await work(item)
                except Exception:
                    group.cancel_scope.cancel()  # stop everything now, not when this slot ends
                    raise
                await send(results_out, (index, result))
                try:
                    numbered = await pull()
                except StopAsyncIteration:
                    return

    async with receive_results, fail_fast(source) as group:
        group.start_soon(open_slots)
        yield _InOrder(receive_results, room)


class _InOrder(AsyncIterator[R]):
    """Yield numbered results in input order, holding early ones back until their turn."""

    def __init__(
        self, receive: MemoryObjectReceiveStream[tuple[int, R]], room: anyio.Semaphore
    ) -> None:
        self._results = drain(receive)
        self._room = room
        self._early: dict[int, R] = {}
        self._next = 0

    async def __anext__(self) -> R:
        # Keep reading (so the slots never wait on us) until the next result in order is in.
        while self._next not in self._early:
            index, result = await anext(self._results)
            self._early[index] = result
        result = self._early.pop(self._next)
        self._next += 1
        self._room.release()  # its place in the buffer is free: one more item may be pulled
        return result


def _check_window(window: object, limit: int) -> int:
    if window is None:
        return 2 * limit
    return int(check("window", window, limit))  # at least one slot per call in flight


async def run(work: Work[T, R], items: Items[T], *, limit: int | Limit) -> list[R]:
    """Every result, in input order."""
    return await run_in_order(stream, work, items, limit=limit)
