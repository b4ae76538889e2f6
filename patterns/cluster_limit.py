"""Cluster-wide limit: every call takes a lease of one named Dask semaphore, wherever it runs.

Items flow your iterable → a lease of the semaphore ``name`` (``limit`` leases, shared by every
client and job that names it), taken by the client → the bounded window (``cluster_window``)
→ any Dask worker → ``work`` → your ``async for``, and the lease back.

```python
import anyio

from patterns import cluster_limit  # copied: from yourapp import cluster_limit


async def charge(order: int) -> str:  # the payment API takes 3 calls at once, from everyone
    await anyio.sleep(0.02)
    return f"order {order} charged"


async def main() -> None:
    async with cluster_limit.stream(charge, range(12), limit=3, name="payments") as done:
        async for receipt in done:
            print(receipt)


# Dask's worker processes import this file: guard what it runs. On asyncio, not trio: it
# is the loop Dask's client runs on.
if __name__ == "__main__":
    anyio.run(main)
```

What it is
    The shared limit of the throttler recipe, across machines: a ``distributed.Semaphore`` of
    ``limit`` leases kept by the scheduler. The stream takes a lease before it submits a call
    and gives it back when the call's result (or failure) is in, so two jobs, or two clients
    on two machines, that name the same semaphore share one limit. The leases are held, and
    kept alive, by the client: a call that blocks its worker's event loop cannot let its lease
    lapse and a second call in. Without a ``name``, the limit is the stream's own, and its
    semaphore is closed when the stream ends; a named one lives on the scheduler, as Dask's
    named semaphores do.

When to use it
    Several jobs or services call one fragile resource (an API with a quota, a database with
    a connection cap), and the limit must hold for all of them together, not per job.

Failure mode
    A lease per task, taken on the worker: submit every item and let each task wait for its
    lease there, and the scheduler holds a task per item, as ``limiter-per-task`` does in one
    process; a task whose async work blocks its worker's loop past the lease timeout (30 s by
    default, ``distributed.scheduler.locks.lease-timeout``, the registering client's setting)
    stops refreshing its lease, and the scheduler lets another call in. Held by the client,
    a lease lapses only if the client's own loop stands still that long. A client that dies
    holds its leases until they time out: the limit is briefly tighter, never looser. The
    first to create a named semaphore sets its size: jobs sharing a name must agree on
    ``limit`` (a different one is refused, ``Inconsistent max leases``).

    Leaving early (a break, a failure, a cancellation): calls not started never start, and
    running ones are stopped on their workers within about 0.1 s (``cluster_window``); their
    leases are kept ``STOP_GRACE`` (0.25 s) longer, so that the limit holds while they stop.

Cost (measured)
    The window's cost (docs/cluster.md, "What a cluster costs"), plus two round trips to the
    scheduler per call, a lease and its return, from the client. On 2,000 calls of 1–3 ms at
    limit 100 on a local cluster, it moved 204 calls a second where the window alone
    moved 405 (``pytest bench/test_cluster.py -k idiom --benchmark-only``): a lease held by
    the client also covers the call's trip to the worker and back.

Beside the textbook version
    The textbook takes the lease around the whole job on the client (``async with
    Semaphore(...)``): one job at a time, however many calls it makes. Here each call holds a
    lease only while it is on the cluster, so several jobs interleave within one limit.

```python
import asyncio

from distributed import Client, Semaphore


async def textbook_limit(work, items):
    async with (
        Client(asynchronous=True, processes=False, dashboard_address=":0") as client,
        Semaphore(max_leases=1, name="textbook"),  # the whole job holds the lease
    ):
        return await client.gather(client.map(work, items, pure=False))


if __name__ == "__main__":
    print(asyncio.run(textbook_limit(charge, range(3))))
```
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio

from .cluster import MAX_LIMIT, connect
from .cluster_window import in_input_order, windowed
from .contract import Items, R, T, Work, check, checked

#: At most ``limit`` calls on the cluster at once, across every job that shares the name.
BOUNDED = True
#: How long, in seconds, one request for a lease waits at the scheduler. A wait is asked in
#: steps so that a stream left while it waits leaves no request behind there (a request cut
#: off would still take a lease, for nobody, until the lease timed out).
LEASE_WAIT = 0.25
#: After a stream is left, the leases of its stopped calls are kept this long, in seconds: the
#: time a worker takes to stop a running call (``cluster_window.WATCH``, and the message).
STOP_GRACE = 0.25


class Leases:
    """This client's leases of one named Dask semaphore: one per call on the cluster."""

    def __init__(self, client: Any, limit: int, name: str) -> None:
        from distributed import Semaphore

        self.semaphore: Any = Semaphore(
            max_leases=limit, name=name, scheduler_rpc=client.scheduler, loop=client.loop
        )
        self.held = 0

    async def try_enter(self) -> bool:
        """A lease, if one comes within LEASE_WAIT; the caller asks again (cluster_window)."""
        with anyio.CancelScope(shield=True):  # a request is never cut off: see LEASE_WAIT
            if await self.semaphore.acquire(timeout=LEASE_WAIT):
                self.held += 1
                return True
        return False

    async def leave(self) -> None:
        self.held -= 1
        await self.semaphore.release()

    async def close(self, *, owned: bool) -> None:
        """Give back every lease still held; close the semaphore if this stream made it."""
        with anyio.CancelScope(shield=True):
            if self.held:
                await anyio.sleep(STOP_GRACE)  # the stopped calls' leases, once they stopped
            while self.held:
                await self.leave()
            if owned:
                await self.semaphore.close()  # on the scheduler, and its refresh timer here
            else:  # shared with other jobs: only this object's timer
                timer = getattr(self.semaphore, "refresh_callback", None)  # none if no timeout
                if timer is not None:
                    timer.stop()


@asynccontextmanager
async def stream(
    work: Work[T, R],
    items: Items[T],
    *,
    limit: int,
    address: str | None = None,
    name: str | None = None,
) -> AsyncIterator[AsyncIterator[R]]:
    """Results in completion order; at most ``limit`` calls on the cluster at once, counted
    with every other stream that shares ``name`` (no name: this stream's own limit)."""
    source = checked(work, items, limit)
    check("limit", limit, 1, MAX_LIMIT)
    owned = name is None
    name = f"patterns-cluster-limit-{uuid.uuid4().hex}" if name is None else name
    async with connect(address, slots=limit) as client:
        leases = Leases(client, limit, name)
        await leases.semaphore  # made on the scheduler, or checked against it: same limit
        try:
            async with windowed(client, work, source, limit=limit, gate=leases) as results:
                yield results
        finally:
            await leases.close(owned=owned)


async def run(
    work: Work[T, R],
    items: Items[T],
    *,
    limit: int,
    address: str | None = None,
    name: str | None = None,
) -> list[R]:
    """Every result, in input order."""
    limited = partial(stream, limit=limit, address=address, name=name)
    return await in_input_order(limited, work, items)
