"""The floors each pattern is compared with: the same job written directly, no cookbook.

Each takes ``(work, n, limit)`` and runs ``work`` on ``range(n)``, discarding results, in the
running event loop. They are what a careful engineer would write by hand with the stdlib or
with plain anyio, and so what the cookbook's own plumbing must not cost much more than.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio

Work = Callable[[int], Coroutine[Any, Any, object]]


async def asyncio_queue_pool(work: Work, n: int, limit: int) -> None:
    """asyncio.Queue + `limit` worker tasks: the fastest bounded pool the stdlib offers."""
    queue: asyncio.Queue[int | None] = asyncio.Queue(limit)

    async def worker() -> None:
        while (item := await queue.get()) is not None:
            await work(item)

    async with asyncio.TaskGroup() as tg:
        for _ in range(limit):
            tg.create_task(worker())
        for item in range(n):
            await queue.put(item)
        for _ in range(limit):
            await queue.put(None)


async def asyncio_semaphore_spawner(work: Work, n: int, limit: int) -> None:
    """asyncio.TaskGroup + asyncio.Semaphore, permit taken before each task starts."""
    semaphore = asyncio.Semaphore(limit)

    async def call(item: int) -> None:
        try:
            await work(item)
        finally:
            semaphore.release()

    async with asyncio.TaskGroup() as tg:
        for item in range(n):
            await semaphore.acquire()
            tg.create_task(call(item))


async def asyncio_gather(work: Work, n: int, limit: int) -> None:
    """asyncio.gather over every item at once: unbounded, the stdlib's scatter/gather."""
    await asyncio.gather(*(work(item) for item in range(n)))


async def anyio_task_group(work: Work, n: int, limit: int) -> None:
    """One anyio task per item, no bound: the floor for any anyio spawner."""
    async with anyio.create_task_group() as tg:
        for item in range(n):
            tg.start_soon(work, item)


async def anyio_semaphore_spawner(work: Work, n: int, limit: int) -> None:
    """The textbook anyio spawner: acquire, start_soon, release in the task."""
    semaphore = anyio.Semaphore(limit)

    async def call(item: int) -> None:
        try:
            await work(item)
        finally:
            semaphore.release()

    async with anyio.create_task_group() as tg:
        for item in range(n):
            await semaphore.acquire()
            tg.start_soon(call, item)


#: name -> (floor, runs only on asyncio)
FLOORS: dict[str, tuple[Callable[[Work, int, int], Awaitable[None]], bool]] = {
    "raw asyncio queue pool": (asyncio_queue_pool, True),
    "raw asyncio TaskGroup+Semaphore": (asyncio_semaphore_spawner, True),
    "asyncio.gather": (asyncio_gather, True),
    "bare anyio task group": (anyio_task_group, False),
    "textbook anyio Semaphore spawner": (anyio_semaphore_spawner, False),
}
