"""The simulated workload: seeded, lazy, with the source article's defaults."""

from __future__ import annotations

import itertools
import pickle
import statistics
import time
from typing import Any

import pytest

from patterns.lab.workload import (
    DISTRIBUTIONS,
    Item,
    WorkFailed,
    Workload,
    block,
    burn,
    do_work,
    spin_rate,
)


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
        ({"kind": "gpu"}, ValueError, "kind must be one of io, blocking, cpu, got 'gpu'"),
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


# The cpu kind burns about its latency in CPU time: the calibration holds within a generous
# factor (a shared machine's CPU speed drifts by 10-20%).
def test_burn_spends_its_latency_in_cpu() -> None:
    (item,) = Workload(items=1, low=0.05, high=0.05, kind="cpu")
    rate = spin_rate()  # calibrated once per process, before the clock starts
    started = time.process_time()
    burn(item, rate=rate)
    assert 0.025 < time.process_time() - started < 0.1


# The blocking kind waits its latency in a sync call, and spends almost no CPU doing it.
def test_block_sleeps_without_cpu() -> None:
    item = Item(0, 0.05)
    wall, cpu = time.perf_counter(), time.process_time()
    assert block(item) == "item_0_processed"
    assert time.perf_counter() - wall >= 0.05
    assert time.process_time() - cpu < 0.02


# Sync work fails like async work, and the failure survives pickling (it comes back from a
# worker process with its item).
def test_sync_work_fails_and_pickles() -> None:
    failing = Item(4, 0.0, fails=True)
    for fn in (block, Workload(kind="cpu").sync_work()):
        with pytest.raises(WorkFailed) as raised:
            fn(failing)
        again = pickle.loads(pickle.dumps(raised.value))
        assert (again.item, str(again)) == (failing, "item_4 failed (simulated failure)")


# Each kind says what it spends its latency on; io work has no sync function to hand off.
def test_kinds_describe_themselves() -> None:
    assert Workload(items=3, kind="cpu").describe() == "3 items of 0.5–1.5 s of CPU"
    assert Workload(items=3, kind="blocking").describe() == "3 items of 0.5–1.5 s blocking"
    assert Workload(kind="blocking").sync_work() is block
    with pytest.raises(ValueError, match="io work is async"):
        Workload().sync_work()
