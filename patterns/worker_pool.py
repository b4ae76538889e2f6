"""Worker pool: a fixed crew of workers takes items from one shared channel until it closes.

Items flow feeder → work channel (room for ``limit``) → up to ``limit`` workers → result
channel → your ``async for``.

```python
import random

import anyio

from patterns import worker_pool  # copied: from yourapp import worker_pool

urls = [f"https://example.com/{n}" for n in range(20)]


async def fetch(url: str) -> str:
    await anyio.sleep(random.uniform(0.01, 0.05))  # stands in for a network call
    return f"<html of {url}>"


async def main() -> None:
    async with worker_pool.stream(fetch, urls, limit=5) as pages:
        async for page in pages:  # in the order the calls finish
            print(page)


anyio.run(main)
```

What it is
    A feeder sends the items into a channel; up to ``limit`` workers each hold a clone of its
    receiving end and take the next item as soon as they are free; results come back over a
    second channel. Concurrency is bounded by the number of workers, not by a counter. A
    worker starts only when the feeder has an item for it, so a generous limit costs nothing
    on a short input.

When to use it
    The classic shape for a steady stream of same-kind work: jobs from a queue, lines of a
    file, rows to upload. The workers are long-lived, so per-worker state (a connection, a
    session, a buffer) is natural, and no task is started per item.

Failure mode
    Channels that never close. A channel's reader sees the end only when *every* clone of the
    sending end is closed. Keep the original ends open after cloning them for the workers, or
    forget to close the work channel when the input is exhausted, and the workers (and the
    consumer after them) wait forever. This is the footgun of the source article's worker
    pool (source article 002), where dropping the senders is what lets the loops end.

Cost (measured)
    35k CPU instructions per item of plumbing (work = one pass through the event loop, limit
    100, asyncio; counted by ``python -m patterns.lab.costs``, as the README's chooser quotes
    it). In time, in the full benchmark (docs/benchmarks.md): about a raw asyncio.Queue pool's
    cost per item, a tenth of aiometer's. 0.9 MiB at a million items. The pattern to pick for
    fast calls: it keeps pace with a raw pool from calls of 0.5 ms at limit 100 (``pytest
    bench/test_fast_calls.py --benchmark-only``).

Beside the textbook version
    The pool every asyncio tutorial writes (below, the benchmark's floor) is as fast, but it
    hands back a list only at the end, raises an ExceptionGroup, stops at an item that is
    ``None``, starts ``limit`` workers for three items and runs on asyncio only; this recipe
    streams results, raises the failure itself and runs on trio too, for 0.3 µs more per item.

```python
import asyncio


async def textbook_pool(work, items, limit):
    queue = asyncio.Queue(limit)
    results = []

    async def worker():
        while (item := await queue.get()) is not None:
            results.append(await work(item))

    async with asyncio.TaskGroup() as tg:
        for _ in range(limit):
            tg.create_task(worker())
        for item in items:
            await queue.put(item)
        for _ in range(limit):
            await queue.put(None)  # one "no more" per worker
    return results


print(len(asyncio.run(textbook_pool(fetch, urls, 5))), "pages")
```
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .contract import Items, Limit, R, T, Work, bound, checked, drain, fail_fast, run_in_order, send

#: At most ``limit`` calls in flight: one per worker.
BOUNDED = True


@asynccontextmanager
async def stream(
    work: Work[T, R], items: Items[T], *, limit: int | Limit
) -> AsyncIterator[AsyncIterator[R]]:
    """Run up to ``limit`` workers over a shared channel; yield results in completion order."""
    source = checked(work, items, limit)
    work, limit = bound(work, limit)  # an adaptive limit: its gate, and its maximum
    # The work channel holds up to `limit` items, as an asyncio.Queue(limit) would: the feeder
    # fills it in bursts instead of waking for every item, and a worker that frees up finds
    # its next item waiting. Unbuffered, each item costs the feeder a trip through the event
    # loop, which made this recipe 4x slower. The input is still read lazily: at most
    # 2 * limit + 1 items are pulled ahead of completion.
    send_items, receive_items = anyio.create_memory_object_stream[T](limit)
    # Room for one result per worker, so a slow consumer slows the workers down instead of
    # growing a buffer.
    send_results, receive_results = anyio.create_memory_object_stream[R](limit)

    async def feed() -> None:
        workers = 0
        # The feeder holds the original ends and closes all three when the input runs out:
        # closing the work channel ends the workers' loops, and once every worker has closed
        # its clone of the result channel, the consumer's loop ends too. Keep an original
        # open and the loops below never end.
        async with send_items, receive_items, send_results:
            async for item in source:
                # A worker starts only when there is an item for it: a limit of 10,000 over
                # three items starts three workers, not 10,000.
                if workers < limit:
                    group.start_soon(worker, receive_items.clone(), send_results.clone())
                    workers += 1
                try:
                    await send(send_items, item)
                except anyio.BrokenResourceError:
                    # Every worker is gone, which only a failure (already recorded) or a
                    # cancellation does: stop feeding, quietly.
                    return

    async def worker(
        items_in: MemoryObjectReceiveStream[T], results_out: MemoryObjectSendStream[R]
    ) -> None:
        async with items_in, results_out:
            async for item in drain(items_in):
                # Taking the next item does not pass through the event loop when one is
                # waiting, so a cancellation has not reached this worker yet: check first, or
                # a call would start after a failure or after the consumer left.
                if group.cancel_scope.cancel_called:
                    return
                try:
                    result = await work(item)
                except Exception:
                    # Stop everything now: the task group would notice only once this task
                    # has ended, and the other workers would start more calls meanwhile.
                    group.cancel_scope.cancel()
                    raise
                await send(results_out, result)

    async with receive_results, fail_fast(source) as group:
        group.start_soon(feed)
        yield drain(receive_results)


async def run(work: Work[T, R], items: Items[T], *, limit: int | Limit) -> list[R]:
    """Every result, in input order."""
    return await run_in_order(stream, work, items, limit=limit)
