"""Scenario 1, overhead: what each pattern costs per item when the work costs nothing.

The work awaits one ``sleep(0)``, so what is measured is the pattern's own plumbing: task
starts, channel hops, permits. Every registered pattern and every floor runs in one group, so
pytest-benchmark's table compares them directly. BENCH_ITEMS sets N (default 50,000).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from patterns import PATTERNS

from .floors import FLOORS

N = int(os.environ.get("BENCH_ITEMS", "50000"))
LIMIT = 100


async def work(item: int) -> int:
    await anyio.lowlevel.checkpoint()
    return item


def _pattern_job(name: str) -> Callable[[], Awaitable[None]]:
    pattern = PATTERNS[name]

    async def job() -> None:
        async with pattern.stream(work, range(N), limit=LIMIT) as results:
            async for _ in results:
                pass

    return job


def _floor_job(name: str) -> Callable[[], Awaitable[None]]:
    floor, _ = FLOORS[name]

    async def job() -> None:
        await floor(work, N, LIMIT)

    return job


def _bench(benchmark: Any, job: Callable[[], Awaitable[None]]) -> None:
    benchmark.group = f"overhead: N={N:,}, limit {LIMIT}, asyncio"
    benchmark.extra_info["items"] = N
    benchmark.pedantic(anyio.run, args=(job,), rounds=3, iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("name", list(PATTERNS))
def test_pattern(benchmark: Any, name: str) -> None:
    _bench(benchmark, _pattern_job(name))


@pytest.mark.parametrize("name", list(FLOORS))
def test_floor(benchmark: Any, name: str) -> None:
    _bench(benchmark, _floor_job(name))
