"""Scatter/gather: start every call at once, collect the results as they come back.

Items flow input → one task per item, all started at once → result channel → your
``async for`` (or ``run``, a list in input order).

```python
import random

import anyio

from patterns import scatter_gather  # copied: from yourapp import scatter_gather

urls = [f"https://example.com/{n}" for n in range(20)]


async def fetch(url: str) -> str:
    await anyio.sleep(random.uniform(0.01, 0.05))  # stands in for a network call
    return f"<html of {url}>"


async def main() -> None:
    # No bound: limit is checked, then ignored. Fine for 20 calls, not for a million.
    pages = await scatter_gather.run(fetch, urls, limit=len(urls))
    print(len(pages), "pages, in input order:", pages[0])


anyio.run(main)
```

What it is
    One task per item, all started immediately; results are gathered as each call ends. It is
    ``asyncio.gather`` / ``join_all`` written with a task group, and the unbounded baseline the
    other recipes are measured against: the first pattern of the source article on the four
    patterns (article 002).

When to use it
    A known, modest number of calls that whatever is on the other end can take all at once:
    the 12 shards of one query, the 5 services a page needs. It is the simplest correct code.

Failure mode
    Nothing bounds it. A million items means a million tasks alive at once, a million sockets
    opened at once, and a remote API that answers the burst with 429s. ``limit`` is accepted
    and checked, so that swapping this module for a bounded one never changes which calls are
    errors, but it bounds nothing: the peak concurrency is the number of items.

Cost (measured)
    190k CPU instructions per item of plumbing at 1,000 to 3,000 items (work = one pass through
    the event loop, asyncio; counted by ``python -m patterns.lab.costs``, as the README's
    chooser quotes it), and more as the input grows. Almost all of it is anyio starting every
    task at once: in the full benchmark (docs/benchmarks.md, 50,000 items) a bare anyio task
    group doing the same costs as much, ``asyncio.gather`` a third. Memory grows with the
    input: 441 MiB at 100,000 items. It wins only on makespan, by running everything at once:
    on the default workload 1.4 s against 5.0 s for the bounded patterns.

Beside the textbook version
    ``asyncio.gather(*(fetch(u) for u in urls))`` is the textbook version, and anyio 4.16 has
    its own: ``await anyio.amap(fetch, urls)`` (a list in input order), ``await
    anyio.gather(fetch(a), fetch(b))`` (a tuple), and ``async with anyio.as_completed(*calls)
    as done`` (task handles as they finish). All four are unbounded like this recipe, take the
    whole input at once (a generator is drained before the first call), and report a failure
    as an ExceptionGroup (anyio's) or let the other calls run on (``asyncio.gather``). Use
    them for a handful of calls of different kinds; this recipe adds the cookbook's contract
    (the failure itself, a stream, a swap for a bounded recipe that changes no call site).

```python
anyio_pages = anyio.run(anyio.amap, fetch, urls)
print(len(anyio_pages), "pages from anyio.amap")
```
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel

from .contract import Items, Limit, R, T, Work, checked, drain, fail_fast, run_in_order

#: Starts everything at once; ``limit`` is checked but bounds nothing.
BOUNDED = False


@asynccontextmanager
async def stream(
    work: Work[T, R], items: Items[T], *, limit: int | Limit
) -> AsyncIterator[AsyncIterator[R]]:
    """Start a call per item at once; yield results in completion order."""
    # `limit` is checked like everywhere else, then deliberately unused: see "Failure mode".
    source = checked(work, items, limit)
    # An unbounded buffer: no call ever waits for the consumer. That is the pattern, and it is
    # also why its memory grows with the number of items.
    send, receive = anyio.create_memory_object_stream[R](math.inf)

    async def call(item: T) -> None:
        try:
            # Stopped (a failure, the consumer left, an outer cancellation) before this task ran:
            # start nothing. Cancellation would reach it only at its first await, in the call.
            await anyio.lowlevel.checkpoint_if_cancelled()
            send.send_nowait(await work(item))
        except Exception:
            # Stop everything now: the task groups would notice only once this task has ended.
            group.cancel_scope.cancel()
            raise

    async def scatter() -> None:
        # The send end closes only after the inner task group has awaited the last call;
        # that is what ends the consumer's loop.
        async with send, anyio.create_task_group() as calls:
            async for item in source:
                # A fixed name spares anyio from building one from the function per item.
                calls.start_soon(call, item, name="scatter_gather call")

    async with receive, fail_fast(source) as group:
        group.start_soon(scatter)
        yield drain(receive)


async def run(work: Work[T, R], items: Items[T], *, limit: int | Limit) -> list[R]:
    """Every result, in input order."""
    return await run_in_order(stream, work, items, limit=limit)
