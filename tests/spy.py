"""A spy for concurrency, after aiometer's: counts calls in flight on entry and exit.

It is written apart from ``patterns.lab.probe`` on purpose: the tests must not judge the harness's
probe with the probe itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator

import anyio
import anyio.lowlevel

from patterns import Pattern


class Spy:
    """Wraps work functions and item sources and records what it sees."""

    def __init__(self) -> None:
        self.running = 0
        self.max_running = 0
        self.started: list[int] = []
        self.finished: list[int] = []
        self.cancelled: list[int] = []
        self.pulled = 0
        #: The largest (items pulled - calls finished) seen at any call's start.
        self.max_ahead = 0

    def work(
        self,
        latency: Callable[[int], float] = lambda i: 0.001,
        fail: Callable[[int], bool] = lambda i: False,
    ) -> Callable[[int], Awaitable[str]]:
        async def work(item: int) -> str:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.max_ahead = max(self.max_ahead, self.pulled - len(self.finished))
            self.started.append(item)
            try:
                await anyio.sleep(latency(item))
                if fail(item):
                    raise Boom(item)
                return f"item_{item}_processed"
            except anyio.get_cancelled_exc_class():
                self.cancelled.append(item)
                raise
            finally:
                self.running -= 1
                self.finished.append(item)

        return work

    def items(self, n: int) -> Iterator[int]:
        """A lazy generator that counts what was pulled from it."""
        for i in range(n):
            self.pulled += 1
            yield i

    async def aitems(self, n: int) -> AsyncIterator[int]:
        """The async form, with a checkpoint per item as a real source would have."""
        for i in range(n):
            await anyio.lowlevel.checkpoint()
            self.pulled += 1
            yield i


class Boom(Exception):
    """A test failure, naming its item."""

    def __init__(self, item: int) -> None:
        super().__init__(f"item {item} failed")
        self.item = item


async def consume(
    pattern: Pattern,
    work: Callable[[int], Awaitable[str]],
    items: Iterable[int] | AsyncIterable[int],
    *,
    limit: int,
    on_result: Callable[[str], None] = lambda result: None,
) -> list[str]:
    """Read a pattern's stream block to the end, calling ``on_result`` on each result."""
    got = []
    async with pattern.stream(work, items, limit=limit) as results:
        async for result in results:
            on_result(result)
            got.append(result)
    return got


def expected(n: int) -> list[str]:
    return [f"item_{i}_processed" for i in range(n)]


def task_ids() -> set[int]:
    """The ids of every task running now, to show that nothing outlives a block."""
    return {task.id for task in anyio.get_running_tasks()}
