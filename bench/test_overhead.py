"""Scenario 1, overhead: what each implementation costs per item when the work costs nothing.

The work awaits one ``sleep(0)``, so what is measured is the plumbing: task starts, channel
hops, permits. Every registered pattern, floor and installed peer runs in one group, so
pytest-benchmark's table compares them directly; a second group times a run of one item, the
fixed cost of starting and stopping, which the summary subtracts to get the cost per item.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import median_seconds
from .scenarios import Results, Scale, implementations, time_once

ASYNCIO = [pytest.param(i, id=i.name) for i in implementations() if "asyncio" in i.backends]


def _skip_if_missing(impl: Any) -> None:
    if not impl.available:
        pytest.skip(f"{impl.package} is not installed: pip install -e '.[bench]'")


# The cost of a run of N items: per-item cost times N, plus the fixed cost below.
@pytest.mark.parametrize("impl", ASYNCIO)
def test_per_item(benchmark: Any, impl: Any, scale: Scale, results: Results) -> None:
    _skip_if_missing(impl)
    benchmark.group = f"overhead: {scale.overhead_items:,} items, limit {scale.limit}, asyncio"
    n, limit = scale.overhead_items, scale.limit
    results.overhead_s[impl.name] = median_seconds(
        benchmark, lambda: time_once(impl, n, limit), scale.rounds
    )


# The fixed cost: a run of one item, event loop start and teardown included.
@pytest.mark.parametrize("impl", ASYNCIO)
def test_fixed(benchmark: Any, impl: Any, scale: Scale, results: Results) -> None:
    _skip_if_missing(impl)
    benchmark.group = f"overhead: fixed cost (1 item, limit {scale.limit}), asyncio"
    results.fixed_s[impl.name] = median_seconds(
        benchmark, lambda: time_once(impl, 1, scale.limit), max(5, scale.rounds)
    )
