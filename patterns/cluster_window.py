"""Bounded window over a cluster: at most ``limit`` calls submitted to Dask and not finished.

Items flow your iterable (read on the client, one per free place) → ``client.submit`` → any
Dask worker, where ``work`` runs (inside ``on_worker``) → ``as_completed`` → your ``async for``.

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

    Leaving the block (a break, a failure, a cancellation) cancels the calls on the cluster.
    Dask never starts the ones still queued, but lets a running ``async def`` run on: so each
    call runs inside ``on_worker``, which stops it once its worker hears that the client let
    it go (checked every ``WATCH``, 50 ms; measured within about 0.1 s of leaving). A call
    that blocks its worker's event loop stops only when it yields; its result is dropped.
    The workers import this module to run ``on_worker``: install it where they run, as you
    do your work function. A failure whose type cannot be rebuilt on the client comes back
    as ``RemoteError``, naming it.

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

import asyncio
import inspect
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Any, Protocol

import anyio

from .cluster import MAX_LIMIT, connect
from .contract import Items, R, T, Work, aenumerate, check, checked, portable

#: At most ``limit`` calls submitted and not finished.
BOUNDED = True
#: How often, in seconds, a call on a worker asks whether the client still wants it: a call
#: the client has let go (a break, a failure, a cancellation) is stopped within about this.
WATCH = 0.05


@asynccontextmanager
async def stream(
    work: Work[T, R], items: Items[T], *, limit: int, address: str | None = None
) -> AsyncIterator[AsyncIterator[R]]:
    """Results in completion order; at most ``limit`` calls on the cluster at a time."""
    source = checked(work, items, limit)
    check("limit", limit, 1, MAX_LIMIT)
    async with (
        connect(address, slots=limit) as client,
        windowed(client, work, source, limit=limit) as results,
    ):
        yield results


class Gate(Protocol):
    """What a call must hold while it is on the cluster (``cluster_limit``'s lease)."""

    async def try_enter(self) -> bool: ...  # before a call is submitted: one short wait
    async def leave(self) -> None: ...  # once it is done, or when the input has run out


@asynccontextmanager
async def windowed(
    client: Any, work: Work[T, R], source: AsyncIterator[T], *, limit: int, gate: Gate | None = None
) -> AsyncIterator[AsyncIterator[R]]:
    """The window itself, on a connected ``client``, over checked items."""
    from distributed import as_completed

    # with_results: Dask fetches each result as its call ends, side by side, instead of one
    # round trip per call in this loop.
    window: Any = as_completed(loop=client.loop, with_results=True)
    in_flight: set[Any] = set()
    settled: set[Any] = set()  # finished, their gate left, their result not yet handed over
    prefix = f"{getattr(_unwrapped(work), '__name__', 'work')}-"
    # An async call runs inside on_worker, which can stop it; a plain function, in Dask's
    # thread pool, as Dask runs it (a thread cannot be stopped).
    awaits = inspect.iscoroutinefunction(_unwrapped(work))

    async def enter() -> None:
        # Wait in short steps, and between them give back what the calls that have finished
        # hold: two streams sharing a gate must not each wait on what the other keeps.
        while not await gate.try_enter():  # type: ignore[union-attr]
            for future in [f for f in in_flight if f.done() and f not in settled]:
                settled.add(future)
                await gate.leave()  # type: ignore[union-attr]
            await anyio.lowlevel.checkpoint_if_cancelled()

    async def submit_next() -> bool:
        """Submit the next item, if any: read only when a place is free, never ahead."""
        if gate is not None:
            await enter()
        async for item in source:
            key = prefix + uuid.uuid4().hex  # the call is told its key: see on_worker
            if awaits:
                future = client.submit(on_worker, work, item, key, key=key)
            else:
                future = client.submit(work, item, key=key)
            in_flight.add(future)
            window.add(future)
            return True
        if gate is not None:
            await gate.leave()  # the input ran out: no call for it
        return False

    async def results() -> AsyncGenerator[R, None]:
        more = True
        for _ in range(limit):
            if not (more := await submit_next()):
                break
        async for future, result in window:  # a failed call raises its exception, bare
            if future.status == "cancelled":  # the scheduler lost, or the client closed
                raise result if isinstance(result, BaseException) else CallStopped(result)
            in_flight.discard(future)
            if gate is not None and future not in settled:
                await gate.leave()
            settled.discard(future)
            more = more and await submit_next()  # a place is free: refill, then hand over
            yield result

    handed = results()
    try:
        yield handed
    finally:
        # Left early (an error, a break, a cancellation): nothing keeps running for nobody
        # on the cluster. Shielded, since a cancellation may be why we are here.
        with anyio.CancelScope(shield=True):
            await handed.aclose()
            if in_flight:
                # The calls not started never start; the running ones stop (on_worker).
                await client.cancel(list(in_flight))
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()


async def on_worker(work: Work[T, R], item: T, key: str) -> R:
    """``work(item)`` on a Dask worker, stopped once the client has let the call go (Dask
    itself lets a running call run on), its failure sent back as itself or by name."""
    import cloudpickle  # type: ignore[import-untyped]
    from distributed import get_worker

    tasks = get_worker().state.tasks
    loop = asyncio.get_running_loop()
    with anyio.CancelScope() as scope:

        def watch() -> None:  # a timer, not a task: next to nothing for a short call
            task = tasks.get(key)
            if task is None or task.state == "cancelled":  # the client let it go
                scope.cancel()
            else:
                timer[0] = loop.call_later(WATCH, watch)

        timer = [loop.call_later(WATCH, watch)]
        try:
            return await work(item)
        except Exception as error:
            # Its own type if it unpickles, else its name and message. Dask sends it with
            # cloudpickle, which carries a class of your __main__ by value: judged by that.
            sent = portable(error, dumps=cloudpickle.dumps)
            if sent is error:
                raise
            raise sent from None
        finally:
            timer[0].cancel()
    raise CallStopped(f"the call of {item!r} was stopped: its stream was left")


class CallStopped(Exception):
    """A call stopped on its worker because its stream was left: nobody waits for this."""


async def run(
    work: Work[T, R], items: Items[T], *, limit: int, address: str | None = None
) -> list[R]:
    """Every result, in input order."""
    return await in_input_order(partial(stream, limit=limit, address=address), work, items)


async def in_input_order(
    stream: Callable[..., AbstractAsyncContextManager[AsyncIterator[Any]]],
    work: Work[T, R],
    items: Items[T],
) -> list[R]:
    """Drive a cluster ``stream`` to the end; every result in input order."""

    source = checked(work, items, 1)  # a bad ``items`` is named now, before any start
    found: dict[int, R] = {}
    awaits = inspect.iscoroutinefunction(_unwrapped(work))
    numbered = partial(_numbered if awaits else _numbered_sync, work)
    async with stream(numbered, aenumerate(source)) as done:
        async for index, result in done:
            found[index] = result
    return [found[index] for index in range(len(found))]


async def _numbered(work: Work[T, R], pair: tuple[int, T]) -> tuple[int, R]:
    """The call runs on a worker, so it brings its item's number back with its result. (A
    function of the module, not a closure: it travels by name, not by value, with each call.)"""
    return pair[0], await work(pair[1])


def _numbered_sync(work: Callable[[T], R], pair: tuple[int, T]) -> tuple[int, R]:
    """The same, for a plain function (run in the worker's thread pool)."""
    return pair[0], work(pair[1])


def _unwrapped(work: object) -> object:
    """The function inside any partials: what says whether ``work`` is async, and its name."""
    while isinstance(work, partial):
        work = work.func
    return work
