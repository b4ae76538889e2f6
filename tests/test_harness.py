"""The harness: one pattern or all of them, measured the same way."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from patterns import PATTERNS, collect_errors, worker_pool
from patterns.lab.harness import (
    TRANSPORTS,
    BackendUnavailable,
    acompare,
    ameasure,
    check_backend,
    compare,
    ideal_makespan,
    measure,
    serial_report,
)
from patterns.lab.workload import Workload

TINY = Workload(items=30, low=0.002, high=0.006, seed=5)
JSON_KEYS = {
    "pattern", "backend", "items", "limit", "makespan_s", "throughput_per_s",
    "peak_concurrency", "mean_concurrency", "ideal_makespan_s", "efficiency",
    "first_result_s", "p50_s", "p95_s", "p99_s", "serial_s", "speedup", "failed",
}  # fmt: skip


# List scheduling: each latency in input order goes to the slot that frees first.
@pytest.mark.parametrize(
    ("latencies", "slots", "ideal"),
    [([1, 2, 3, 4], 2, 6), ([3, 1, 1, 1], 2, 3), ([1, 2, 3], 5, 3), ([2, 2, 2], 1, 6), ([], 3, 0)],
)
def test_ideal_makespan(latencies: list[float], slots: int, ideal: float) -> None:
    assert ideal_makespan(latencies, slots) == ideal


# A measured report: the peak is the limit (or every item, unbounded), and the figures agree.
@pytest.mark.parametrize("name", list(PATTERNS))
def test_measure(name: str) -> None:
    report = measure(name, TINY, limit=4)
    assert report.pattern == name
    assert report.backend == "asyncio"
    assert report.peak_concurrency == (4 if PATTERNS[name].BOUNDED else 30)
    assert report.ideal_makespan_s == ideal_makespan(TINY.latencies(), 4 if report.bounded else 30)
    assert report.efficiency is not None
    assert 0 < report.efficiency <= 1.02
    assert report.makespan_s >= report.ideal_makespan_s * 0.98
    assert report.serial_s == pytest.approx(sum(TINY.latencies()))
    assert report.speedup == pytest.approx(report.serial_s / report.makespan_s)
    assert report.throughput_per_s == pytest.approx(30 / report.makespan_s)
    times = [report.first_result_s, report.p50_s, report.p95_s, report.p99_s, report.makespan_s]
    assert times == sorted(t for t in times if t is not None)
    assert 0 < report.mean_concurrency <= report.peak_concurrency
    assert len(report.calls) == 30
    assert max(c.lane for c in report.calls) < report.peak_concurrency
    assert set(report.to_dict()) >= JSON_KEYS
    assert "faster than one at a time" in report.sentence()


# The progress callback hears of calls as they start and of every result.
def test_progress_callback() -> None:
    seen: list[tuple[int, int]] = []
    measure(
        "semaphore", TINY, limit=4, on_progress=lambda done, flying: seen.append((done, flying))
    )
    assert max(flying for _, flying in seen) == 4
    assert seen[-1][0] == 30
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


# With failures, the harness collects them instead of aborting, and counts them.
def test_failures_are_collected() -> None:
    workload = Workload(items=40, low=0.001, high=0.002, failure_rate=0.25, seed=2)
    report = measure("worker_pool", workload, limit=5)
    assert report.failed == sum(item.fails for item in workload) > 0
    assert len(report.calls) == 40
    assert f"{report.failed} failed" in report.sentence()


# compare runs every registered pattern on the same workload, on any backend.
@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_compare(backend: Any) -> None:
    reports = compare(TINY, limit=3, backend=backend)
    assert [r.pattern for r in reports] == list(PATTERNS)
    assert {r.backend for r in reports} == {backend}
    assert {r.serial_s for r in reports} == {reports[0].serial_s}


# The awaitable forms run in the caller's own loop, as Jupyter's top-level await needs.
@pytest.mark.anyio
async def test_awaitable_forms(anyio_backend: tuple[str, dict[str, Any]]) -> None:
    report = await ameasure("semaphore", TINY, limit=2)
    assert report.peak_concurrency == 2
    expected = (
        "trio" if anyio_backend[0] == "trio" else ("uvloop" if anyio_backend[1] else "asyncio")
    )
    assert report.backend == expected
    reports = await acompare(TINY, limit=2, patterns=["worker-pool", "buffered_unordered"])
    assert [r.pattern for r in reports] == ["worker_pool", "buffered_unordered"]


# With no latency there is nothing to schedule: no efficiency or speedup to claim, and no 0%.
def test_zero_latency_and_no_items() -> None:
    report = measure("worker_pool", Workload(items=5, low=0, high=0), limit=2)
    assert report.efficiency is None
    assert report.speedup is None
    assert "measures only the plumbing" in report.sentence()
    assert report.to_dict()["efficiency"] is None
    empty = measure("semaphore", Workload(items=0), limit=2)
    assert empty.sentence() == "No items: nothing ran."
    assert empty.first_result_s is None
    assert empty.throughput_per_s is None


# The serial baseline is derived from the latencies, not run.
def test_serial_report() -> None:
    serial = serial_report(Workload(items=3, low=1, high=1))
    assert serial.makespan_s == 3
    assert serial.first_result_s == 1
    assert serial.efficiency == serial.speedup == 1.0
    assert serial.p50_s == 2


# A backend whose package is missing is a clear error naming the extra to install.
def test_missing_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n: None if n == "trio" else real(n))
    with pytest.raises(BackendUnavailable, match=r"trio.*\[backends\]"):
        check_backend("trio")
    with pytest.raises(ValueError, match="backend"):
        check_backend("curio")


# How a call travels is simulated, tcp or http; "sleep", the old name, is simulated, deprecated.
def test_transports_and_the_old_name() -> None:
    assert TRANSPORTS == ("simulated", "tcp", "http")
    assert measure("worker_pool", TINY, limit=4).transport == "simulated"
    with pytest.deprecated_call(match='transport "sleep" is deprecated; use "simulated"'):
        report = measure("worker_pool", TINY, limit=4, transport="sleep")  # type: ignore[arg-type]
    assert report.transport == "simulated"
    with pytest.raises(ValueError, match="transport must be one of simulated, tcp, http"):
        measure("worker_pool", TINY, transport="pigeon")  # type: ignore[arg-type]


# A bad limit reaches the harness's caller as the pattern's own clear error.
def test_bad_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        measure("worker_pool", TINY, limit=0)
    with pytest.raises(KeyError, match="choose from"):
        measure("nosuch", TINY)


# collect_errors(only=...) collects just the errors named; any other is raised, and ends the run.
@pytest.mark.anyio
async def test_collect_errors_only_the_named(anyio_backend: tuple[str, dict[str, Any]]) -> None:
    async def work(item: int) -> int:
        if item == 1:
            raise ValueError("an item's own failure")
        if item == 2:
            raise KeyError("no answer at all")
        return item

    outcomes = await worker_pool.run(collect_errors(work, only=(ValueError,)), [0, 1], limit=2)
    assert [o.ok for o in outcomes] == [True, False]
    with pytest.raises(KeyError, match="no answer at all"):
        await worker_pool.run(collect_errors(work, only=(ValueError,)), [0, 1, 2], limit=2)
