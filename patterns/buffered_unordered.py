"""Buffered stream: a bounded number of calls in flight, each refilled from the input as it ends.

Items flow input → up to ``limit`` slots, each pulling the next item as its call ends →
result channel → your ``async for``.

```python
import random

import anyio

from patterns import buffered_unordered  # copied: from yourapp import buffered_unordered

urls = [f"https://example.com/{n}" for n in range(20)]


async def fetch(url: str) -> str:
    await anyio.sleep(random.uniform(0.01, 0.05))  # stands in for a network call
    return f"<html of {url}>"


async def main() -> None:
    async with buffered_unordered.stream(fetch, urls, limit=5) as pages:
        async for page in pages:  # in the order the calls finish
            print(page)


anyio.run(main)
```

What it is
    The shape of futures' ``buffer_unordered(n)`` in Rust and of aiostream's ``map(...,
    task_limit=n)``: a stream of calls of which at most ``limit`` are running, each finished
    call replaced at once by the next item, results yielded as they complete. Here up to
    ``limit`` long-lived *slots* each take the next item straight from the input: no task per
    item and no channel of items in between. A slot opens only when there is an item for it.
    For results in input order, see ``buffered_ordered``.

When to use it
    You think of the work as a stream (a pipeline stage, an async generator of URLs) and want
    results as soon as they are ready, with a hard bound on calls in flight and nothing
    started per item. It is the recipe with the lowest overhead per item here.

Failure mode
    Pulling faster than you drive. A buffered stream only makes progress while someone drives
    it: a hand-rolled version that *pushes* more than ``limit`` calls before anything awaits
    the ones in flight deadlocks (the throttler footgun of the article on building a reusable
    throttler).

Cost (measured)
    30k CPU instructions per item of plumbing (work = one pass through the event loop, limit
    100, asyncio; counted by ``python -m patterns.lab.costs``, as the README's chooser quotes
    it): the cheapest recipe here, level with a raw asyncio.Queue pool in the full benchmark
    (docs/benchmarks.md), because no task and no channel hop is spent per item. 0.8 MiB at a
    million items. With the worker pool, the pattern to pick for fast calls: it keeps pace
    with a raw pool from calls of 0.5 ms at limit 100 (``pytest bench/test_fast_calls.py
    --benchmark-only``).

Beside the textbook version
    Python's textbook has no buffered stream: the nearest is a task per item behind a
    semaphore (below: asyncio's TaskGroup + Semaphore, the benchmark's floor, 4.1 µs per
    item). This recipe keeps ``limit`` long-lived slots instead, each pulling its next item
    itself, so it starts no task per item (1.9 µs), yields results as they come, and runs on
    trio too.

```python
import asyncio


async def textbook_bounded(work, items, limit):
    permits = asyncio.Semaphore(limit)

    async def call(item):
        try:
            return await work(item)
        finally:
            permits.release()

    async with asyncio.TaskGroup() as tg:
        tasks = []
        for item in items:
            await permits.acquire()
            tasks.append(tg.create_task(call(item)))
    return [task.result() for task in tasks]


print(len(asyncio.run(textbook_bounded(fetch, urls, 5))), "pages")
```
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from .contract import (
    Items,
    Limit,
    R,
    SyncSource,
    T,
    Work,
    bound,
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
    work: Work[T, R], items: Items[T], *, limit: int | Limit
) -> AsyncIterator[AsyncIterator[R]]:
    """Keep up to ``limit`` calls in flight; yield results as they complete."""
    source = checked(work, items, limit)
    work, limit = bound(work, limit)  # an adaptive limit: its gate, and its maximum
    pull = one_at_a_time(source)
    send_results, receive_results = anyio.create_memory_object_stream[R](limit)

    async def open_slots() -> None:
        # Open a slot per item, up to `limit`: a limit of 10,000 over three items opens three
        # slots, not 10,000. Each slot gets a clone of the result channel's send end, and the
        # original closes when this is done, so the consumer's loop ends with the last slot.
        async with send_results:
            for _ in range(limit):
                try:
                    item = await pull()
                except StopAsyncIteration:
                    return
                group.start_soon(slot, item, send_results.clone())

    async def slot(item: T, results_out: MemoryObjectSendStream[R]) -> None:
        async with results_out:
            while True:
                # Refilling does not pass through the event loop when an item is at hand, so a
                # cancellation has not reached this slot yet: check first, or a call would
                # start after a failure or after the consumer left.
                if group.cancel_scope.cancel_called:
                    return
                try:
                    result = await work(item)
                except Exception:
                    # Stop everything now: the task group would notice only once this slot
                    # has ended, and the other slots would start more calls meanwhile.
                    group.cancel_scope.cancel()
                    raise
                await send(results_out, result)
                # The slot refills itself: as soon as its call is done, it takes the next item.
                try:
                    item = await pull()
                except StopAsyncIteration:
                    return

    async with receive_results, fail_fast(source) as group:
        group.start_soon(open_slots)
        yield drain(receive_results)


def one_at_a_time(source: AsyncIterator[T]) -> Callable[[], Awaitable[T]]:
    """A pull function that many slots may call at once.

    Two tasks must never pull from one async generator at once (it raises "already running"),
    so an async source takes turns under a lock. A plain iterable's next() never waits, so it
    needs no lock: that saves a lock per item on the common path.
    """
    if isinstance(source, SyncSource):
        return source.__anext__
    lock = anyio.Lock(fast_acquire=True)

    async def pull() -> T:
        async with lock:
            return await source.__anext__()

    return pull


async def run(work: Work[T, R], items: Items[T], *, limit: int | Limit) -> list[R]:
    """Every result, in input order."""
    return await run_in_order(stream, work, items, limit=limit)
