"""Run by tests/test_copies.py in a fresh process, beside copies of one recipe and contract.py.

``python copied_recipe.py PACKAGE.MODULE BACKEND...``: `import patterns` is made impossible
first, then the copied recipe must keep the contract's promises on its own, on each backend in
turn (each in an event loop of its own; one process for all: an interpreter start costs more
than the checks). Exits 0, or with the broken promise. Stands alone on purpose: it imports
anyio and the copy, nothing else.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from typing import Any

import anyio

sys.modules["patterns"] = None  # type: ignore[assignment]  # `import patterns` now fails


class Boom(Exception):
    pass


class Spy:
    def __init__(self) -> None:
        self.running = self.peak = self.pulled = self.done = self.ahead = 0
        self.started: list[int] = []

    async def work(self, item: int) -> str:
        self.running += 1
        self.peak = max(self.peak, self.running)
        self.started.append(item)
        self.ahead = max(self.ahead, self.pulled - self.done)  # pulled, and not yet done
        try:
            await anyio.sleep(0.001 * (item % 3))
            if item == self.fail_at:
                raise Boom(item)
            return f"item_{item}"
        finally:
            self.running -= 1
            self.done += 1

    fail_at = -1

    def items(self, n: int) -> Iterator[int]:
        for i in range(n):
            self.pulled += 1
            yield i


def tasks() -> set[int]:
    return {task.id for task in anyio.get_running_tasks()}


async def check(recipe: Any) -> None:
    limit = 4
    # Exactly once, in input order, never above the limit (and reaching it).
    spy = Spy()
    assert await recipe.run(spy.work, range(30), limit=limit) == [f"item_{i}" for i in range(30)]
    assert sorted(spy.started) == list(range(30)), spy.started
    assert spy.peak == (30 if not recipe.BOUNDED else limit), spy.peak
    # Fail fast: the first failure itself, bare, and nothing left running.
    spy, before = Spy(), tasks()
    spy.fail_at = 5
    try:
        await recipe.run(spy.work, range(30), limit=limit)
    except Boom:
        pass
    else:
        raise AssertionError("the failure did not propagate bare")
    assert spy.running == 0
    assert tasks() == before
    # A break, then a cancellation: nothing outlives the block.
    spy = Spy()
    async with recipe.stream(spy.work, range(30), limit=limit) as results:
        async for _ in results:
            break
    assert spy.running == 0
    assert tasks() == before
    with anyio.move_on_after(0.002):
        await recipe.run(spy.work, range(30), limit=limit)
    assert spy.running == 0
    assert tasks() == before
    # Lazy input: a million-item generator is read only as far as the calls go.
    if recipe.BOUNDED:
        spy = Spy()
        async with recipe.stream(spy.work, spy.items(1_000_000), limit=limit) as results:
            async for _ in results:
                break
        # In flight, waiting in the worker pool's channel (as in an asyncio.Queue(limit)), and
        # the one the feeder holds; the other recipes hold no channel: limit + 1.
        assert spy.ahead <= 2 * limit + 1, spy.ahead


def main(module: str, *backends: str) -> None:
    recipe = importlib.import_module(module)
    for backend in backends:
        name, options = ("asyncio", {"use_uvloop": True}) if backend == "uvloop" else (backend, {})
        anyio.run(check, recipe, backend=name, backend_options=options)
        print(f"{module} on {backend}: ok", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
