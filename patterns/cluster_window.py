"""Bounded window over a cluster: at most ``limit`` calls submitted to Dask and not finished.

Items flow your iterable (read on the client, one per free place) → ``client.submit`` → any
Dask worker, where ``work`` runs → ``as_completed`` → your ``async for``.

```python
import random

import anyio

from patterns import cluster_window  # copied: from yourapp import cluster_window

urls = [f"https://example.com/{n}" for n in range(20)]


async def fetch(url: str) -> str:  # runs on a Dask worker, in its event loop
    await anyio.sleep(random.uniform(0.01, 0.05))
    return f"<html of {url}>"


async def main() -> None:
    async with cluster_window.stream(fetch, urls, limit=5) as pages:  # a local cluster
        async for page in pages:  # in the order the calls finish
            print(page)


# Dask's worker processes import this file: guard what it runs. On asyncio, not trio: it
# is the loop Dask's client runs on.
if __name__ == "__main__":
    anyio.run(main)
```

What it is
    The buffered-unordered stream with a cluster as its slots: the first ``limit`` items are
    submitted at once, and each time a call finishes, its result is handed over and the next
    item is read and submitted. ``work`` is pickled (cloudpickle: closures too) and runs on
    whichever worker Dask picks; an ``async def`` runs in that worker's event loop, a plain
    function in its thread pool. By default a local cluster of two worker processes is
    started for the stream and stopped after it; ``address="tcp://host:8786"`` uses yours.

When to use it
    The job outgrows one process: millions of items, or work that keeps a core busy. Dask
    does the placement, moves the data, and reruns the calls of a worker that dies.

Failure mode
    Submitting everything at once. ``client.map(work, items)`` reads the whole input and
    hands the scheduler a task per item: ten million items are ten million tasks in the
    scheduler's memory, before the first one runs. The window holds ``limit``.

    A worker that dies takes its calls with it, and Dask runs them again elsewhere: each
    result is delivered once, but a call may have *run* twice (make the work idempotent).

Cost (measured)
    Each call goes client → scheduler → worker and back: Dask's plumbing, not the window's,
    sets the cost, and it caps how many calls a second the cluster moves whatever the limit.
    The figures, against one event loop's, are in docs/cluster.md ("What a cluster costs",
    from ``pytest bench/test_cluster.py --benchmark-only``): on short I/O calls a cluster is
    hundreds of times slower than one process; it pays off for calls of a second or more,
    or for work one process cannot hold.

Beside the textbook version
    The textbook ``client.map`` + ``as_completed`` submits every item up front; the window
    reads the input as places free, cancels what is in flight when the block is left (an
    error, a break, a cancellation), and raises the first failure bare.

```python
import asyncio

from distributed import Client, as_completed


async def textbook_map(work, items):
    async with Client(asynchronous=True, processes=False, dashboard_address=":0") as client:
        futures = client.map(work, items, pure=False)  # every item, at once
        return [await future async for future in as_completed(futures)]


if __name__ == "__main__":
    print(len(asyncio.run(textbook_map(fetch, urls))))
```
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from .cluster import connect
from .contract import Items, R, T, Work, check_work, checked

#: At most ``limit`` calls submitted and not finished.
BOUNDED = True


@asynccontextmanager
async def stream(
    work: Work[T, R], items: Items[T], *, limit: int, address: str | None = None
) -> AsyncIterator[AsyncIterator[R]]:
    """Results in completion order; at most ``limit`` calls on the cluster at a time."""
    source = checked(work, items, limit)
    async with connect(address, slots=limit) as client:
        from distributed import as_completed

        window: Any = as_completed(loop=client.loop)
        in_flight: set[Any] = set()

        async def submit_next() -> None:
            # Read one item only when a place is free: the input is never read ahead.
            async for item in source:
                future = client.submit(work, item, pure=False)
                in_flight.add(future)
                window.add(future)
                return

        async def results() -> AsyncGenerator[R, None]:
            for _ in range(limit):
                await submit_next()
            async for future in window:
                in_flight.discard(future)
                result: R = await future  # a failed call raises its own exception, bare
                await submit_next()  # its place is free: refill before handing over
                yield result

        handed = results()
        try:
            yield handed
        finally:
            # Left early (an error, a break, a cancellation): nothing keeps running for
            # nobody on the cluster. Shielded, since a cancellation may be why we are here.
            with anyio.CancelScope(shield=True):
                await handed.aclose()
                if in_flight:
                    await client.cancel(list(in_flight))
                aclose = getattr(source, "aclose", None)
                if aclose is not None:
                    await aclose()


async def run(
    work: Work[T, R], items: Items[T], *, limit: int, address: str | None = None
) -> list[R]:
    """Every result, in input order."""
    check_work(work)

    # The call runs on a worker, so it brings its item's number back with its result.
    async def numbered(pair: tuple[int, T]) -> tuple[int, R]:
        return pair[0], await work(pair[1])

    found: dict[int, R] = {}
    async with stream(numbered, _numbered(items), limit=limit, address=address) as done:
        async for index, result in done:
            found[index] = result
    return [found[index] for index in range(len(found))]


async def _numbered(items: Items[T]) -> AsyncIterator[tuple[int, T]]:
    index = 0
    source = checked(_no_work, items, 1)  # the contract's own check of ``items``
    async for item in source:
        yield index, item
        index += 1


async def _no_work(item: object) -> None:  # stands in for work where only items are checked
    return None
