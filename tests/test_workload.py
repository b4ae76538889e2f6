"""The simulated workload: seeded, lazy, with the source article's defaults."""

from __future__ import annotations

import itertools
import statistics
from typing import Any

import pytest

from patterns.workload import DISTRIBUTIONS, Item, WorkFailed, Workload, do_work


# The defaults are the source article's: 20 items of 0.5-1.5 s, uniform.
def test_defaults_match_the_article() -> None:
    workload = Workload()
    items = list(workload)
    assert len(items) == len(workload) == 20
    assert all(0.5 <= item.latency <= 1.5 for item in items)
    assert [item.index for item in items] == list(range(20))
    assert workload.describe() == "20 items of 0.5–1.5 s"


# The same seed gives the same items; another seed gives others.
def test_seeded_and_reproducible() -> None:
    assert list(Workload(seed=7)) == list(Workload(seed=7))
    assert list(Workload(seed=7)) != list(Workload(seed=8))


# Items are drawn lazily: a billion-item workload costs nothing until iterated.
def test_lazy() -> None:
    huge = Workload(items=10**9)
    first = list(itertools.islice(huge, 3))
    assert first == list(Workload(items=3))


# The failure rate decides which items fail but never shifts the latencies of a seed.
def test_failure_rate_keeps_latencies() -> None:
    plain, failing = Workload(items=200, seed=3), Workload(items=200, seed=3, failure_rate=0.3)
    assert list(plain.latencies()) == list(failing.latencies())
    failed = sum(item.fails for item in failing)
    assert 30 < failed < 90  # 60 expected
    assert not any(item.fails for item in plain)


# Every distribution has minimum `low` and mean near the midpoint; pareto is heavy-tailed.
@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_distributions(distribution: Any) -> None:
    latencies = list(Workload(200_000, 1.0, 3.0, distribution, seed=1).latencies())
    assert min(latencies) >= 1.0
    assert statistics.fmean(latencies) == pytest.approx(2.0, rel=0.02)
    if distribution == "uniform":
        assert max(latencies) <= 3.0
    if distribution == "pareto":
        assert max(latencies) > 10.0  # rare items far slower than typical ones
        assert max(latencies) <= 1.0 + 20 * 2.0  # the documented cap
        assert statistics.median(latencies) < 2.0  # most items are fast


# Bad arguments fail at once, naming the argument.
@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"items": -1}, ValueError, "items"),
        ({"items": 2.5}, TypeError, "items"),
        ({"low": 2, "high": 1}, ValueError, "latency"),
        ({"low": -1}, ValueError, "low must be a finite number >= 0"),
        ({"high": float("inf")}, ValueError, "high"),
        ({"distribution": "normal"}, ValueError, "distribution"),
        ({"failure_rate": 1.5}, ValueError, "failure_rate"),
        ({"seed": "x"}, TypeError, "seed"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], name: str) -> None:
    with pytest.raises(error, match=name):
        Workload(**kwargs)


# do_work names the item, or raises WorkFailed for one drawn to fail.
@pytest.mark.anyio
async def test_do_work() -> None:
    assert await do_work(Item(3, 0.001)) == "item_3_processed"
    with pytest.raises(WorkFailed, match="item_4") as caught:
        await do_work(Item(4, 0.0, fails=True))
    assert caught.value.item.index == 4
