"""Cluster-wide limit: every call takes a lease of one named Dask semaphore, wherever it runs.

Items flow your iterable → the bounded window (``cluster_window``, ``2 × limit`` submitted at
most) → any Dask worker → a lease of the semaphore ``name`` (``limit`` leases, shared by every
client and job that names it) → ``work`` → your ``async for``.

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
    ``limit`` leases kept by the scheduler. Each call acquires a lease on the worker that runs
    it and releases it when it ends, so two jobs, or two clients on two machines, that name
    the same semaphore share one limit. The window in front of it (``2 × limit`` calls
    submitted at most) keeps the input and the scheduler's queue bounded, as the window
    recipe does.

When to use it
    Several jobs or services call one fragile resource (an API with a quota, a database with
    a connection cap), and the limit must hold for all of them together, not per job.

Failure mode
    A lease per task, with no window in front: submit every item and let each task wait for
    its lease, and the scheduler holds a task per item, as ``limiter-per-task`` does in one
    process. Also: a lease held by a worker that dies comes back only when it times out (30 s
    by default, ``distributed.scheduler.locks.lease-timeout``): the limit is briefly tighter
    after a crash, never looser. The first to create the semaphore sets its size: jobs
    sharing a name must agree on ``limit``.

Cost (measured)
    The window's cost (docs/cluster.md, "What a cluster costs"), plus a lease: a round trip
    to the scheduler per call. On 10,000 calls of 1–3 ms it moved 114 calls a second where
    the window alone moved 136 (``pytest bench/test_cluster.py --benchmark-only``).

Beside the textbook version
    The textbook takes the lease around the whole job on the client (``async with
    Semaphore(...)``): one job at a time, however many calls it makes. Here each call holds a
    lease only while it runs, so several jobs interleave within one limit.

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

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from . import cluster_window
from .contract import Items, R, T, Work, check, check_work

#: At most ``limit`` calls working at once, across every job that shares the name.
BOUNDED = True
#: The semaphore's name when none is given, with the limit after it: the streams without a
#: name share one limit per size (a semaphore's size is fixed by whoever makes it first).
DEFAULT_NAME = "patterns-cluster-limit"


def leased(work: Work[T, R], limit: int, name: str | None = None) -> Work[T, R]:
    """``work``, holding a lease of the named cluster-wide semaphore while it runs (checked
    first, naming the bad argument; no name: the default one for ``limit``)."""
    check_work(work)
    check("limit", limit)
    name = f"{DEFAULT_NAME}-{limit}" if name is None else name

    async def with_lease(item: T) -> R:
        from distributed import Semaphore

        async with Semaphore(max_leases=limit, name=name):
            return await work(item)

    return with_lease


@asynccontextmanager
async def stream(
    work: Work[T, R],
    items: Items[T],
    *,
    limit: int,
    address: str | None = None,
    name: str | None = None,
) -> AsyncIterator[AsyncIterator[R]]:
    """Results in completion order; at most ``limit`` calls working at once on the cluster,
    counted with every other stream that shares ``name``."""
    with_lease = leased(work, limit, name)
    window = 2 * limit  # a call queued behind each working one: the leases never wait idle
    async with cluster_window.stream(with_lease, items, limit=window, address=address) as results:
        yield results


async def run(
    work: Work[T, R],
    items: Items[T],
    *,
    limit: int,
    address: str | None = None,
    name: str | None = None,
) -> list[R]:
    """Every result, in input order."""
    with_lease = leased(work, limit, name)
    return await cluster_window.run(with_lease, items, limit=2 * limit, address=address)
