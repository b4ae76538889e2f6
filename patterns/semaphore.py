"""Semaphore-bounded spawner: one loop starts a task per item, but only with a permit in hand.

Items flow spawner (takes a permit) → one task per item (calls, sends its result, returns the
permit) → result channel → your ``async for``.

```python
import random

import anyio

from patterns import semaphore  # copied: from yourapp import semaphore

urls = [f"https://example.com/{n}" for n in range(20)]


async def fetch(url: str) -> str:
    await anyio.sleep(random.uniform(0.01, 0.05))  # stands in for a network call
    return f"<html of {url}>"


async def main() -> None:
    async with semaphore.stream(fetch, urls, limit=5) as pages:
        async for page in pages:  # in the order the calls finish
            print(page)


anyio.run(main)
```

What it is
    A single spawner walks the input. Before it starts the task for an item it takes a permit
    from a semaphore of ``limit`` permits; the task gives the permit back when it ends. So at
    most ``limit`` tasks exist at once, and the spawner waits, without pulling more input,
    while they are all busy.

When to use it
    You already start a task per request (a server's accept loop, a crawler's frontier) and
    want to bound it with the least change; or the work per item differs (each item may get
    a different coroutine) and a fixed pool of identical workers does not fit.

Failure mode
    Releasing the permit too early. A permit taken and given back around ``start_soon`` (or
    held by a ``with`` block that ends before the task runs) bounds nothing: the task starts
    after the permit is already back. The permit must travel into the task and be released by
    the task when it ends. This is the footgun of source article 000, a TCP accept loop
    bounded by a semaphore.

Cost (measured)
    170k CPU instructions per item of plumbing (work = one pass through the event loop, limit
    100, asyncio; counted by ``python -m patterns.lab.costs``, as the README's chooser quotes
    it). Starting an anyio task per item dominates it, as it does the textbook anyio spawner's,
    which costs as much in the full benchmark (docs/benchmarks.md; the check for a stop before
    each call adds about 1 µs); a raw asyncio TaskGroup + Semaphore costs a quarter of that.
    That cost shows on fast calls: on 20,000 calls of 1–3 ms at limit 100 it reached 55% of the
    ideal on asyncio and 23% on trio, where the worker pool reached 81% and 63%; it keeps pace
    with a raw pool from calls of about limit × 30 µs on asyncio, limit × 90 µs on trio
    (``pytest bench/test_fast_calls.py --benchmark-only``; docs/benchmarks.md, "Fast calls").

Beside the textbook version
    The textbook anyio spawner (below, the benchmark's floor) bounds the same way and costs the
    same, but a failure comes out as an ExceptionGroup, the tasks already started still begin
    their calls after it, and results go nowhere; this recipe checks for the stop before each
    call and streams the results, for about 1 µs more per item.

```python
async def textbook_spawner(work, items, limit):
    permits = anyio.Semaphore(limit)

    async def call(item):
        try:
            await work(item)
        finally:
            permits.release()  # the task returns the permit, when it is done

    async with anyio.create_task_group() as tg:
        for item in items:
            await permits.acquire()  # before the task exists, not inside it
            tg.start_soon(call, item)


anyio.run(textbook_spawner, fetch, urls, 5)
```
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel

from .contract import Items, Limit, R, T, Work, bound, checked, drain, fail_fast, run_in_order, send

#: At most ``limit`` calls in flight.
BOUNDED = True


@asynccontextmanager
async def stream(
    work: Work[T, R], items: Items[T], *, limit: int | Limit
) -> AsyncIterator[AsyncIterator[R]]:
    """Start a task per item, at most ``limit`` at a time; yield results in completion order."""
    source = checked(work, items, limit)
    work, limit = bound(work, limit)  # an adaptive limit: its gate, and its maximum
    permits = anyio.Semaphore(limit)
    # Room for one result per permit: a task hands its result over and ends, and a consumer
    # that falls behind holds up the tasks (and so the spawner) instead of growing a buffer.
    send_results, receive_results = anyio.create_memory_object_stream[R](limit)

    async def call(item: T) -> None:
        try:
            # Stopped (a failure, the consumer left, an outer cancellation) before this task ran:
            # start nothing. Cancellation would reach it only at its first await, in the call.
            await anyio.lowlevel.checkpoint_if_cancelled()
            await send(send_results, await work(item))
        except Exception:
            # Stop everything now: the task groups would notice only once this task has ended,
            # and the spawner would start more calls meanwhile.
            group.cancel_scope.cancel()
            raise
        finally:
            # The task itself gives the permit back, when it is done and not before:
            # released around start_soon instead, the limit would bound nothing.
            permits.release()

    async def spawn() -> None:
        # The result channel closes once the last call has ended: the consumer's loop ends.
        async with send_results, anyio.create_task_group() as calls:
            async for item in source:
                # Take a permit *before* starting the task: a task never exists without one,
                # so tasks alive (and memory) stay at `limit` however long the input.
                try:
                    # Fast path: anyio's acquire() always passes through the event loop, even
                    # when a permit is free; acquire_nowait() does not.
                    permits.acquire_nowait()
                except anyio.WouldBlock:
                    await permits.acquire()
                # A fixed name spares anyio from building one from the function per item.
                calls.start_soon(call, item, name="semaphore call")

    async with receive_results, fail_fast(source) as group:
        group.start_soon(spawn)
        yield drain(receive_results)


async def run(work: Work[T, R], items: Items[T], *, limit: int | Limit) -> list[R]:
    """Every result, in input order."""
    return await run_in_order(stream, work, items, limit=limit)
