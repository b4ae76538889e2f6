"""Scenario 7, the cluster: what Dask's plumbing costs per call, beside one event loop's.

The same workload (10,000 calls of 1–3 ms, limit 100) through the cluster recipes on a local
cluster of two worker processes, and through the in-process worker pool for reference, one
run each on asyncio: throughput, efficiency, and the overhead per item (what each call cost
its slot beyond its own latency). The local cluster's start-up is timed apart: the recipes
start one per stream when given no address.

What it says: a call through the cluster costs its slot about the overhead per item printed in
the summary; the cluster pays off when each call needs more than one process can give (CPU,
memory) by more than that, or when the calls outnumber what one event loop can drive.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from patterns.lab.backends import run_on
from patterns.lab.harness import Report, ameasure
from patterns.lab.workload import Workload

from .conftest import EXTRA_SUMMARIES, median_seconds
from .scenarios import SCALES, Scale

pytest.importorskip("distributed", reason="the cluster extra is not installed")

from patterns.lab.on_cluster import ameasure_cluster


@dataclass(frozen=True)
class ClusterScale:
    items: int
    latency: tuple[float, float]
    limit: int


CLUSTER_SCALES = {
    "full": ClusterScale(10_000, (0.001, 0.003), 100),
    # Seconds: the scenario runs in the test suite, so it cannot rot.
    "tiny": ClusterScale(40, (0.001, 0.003), 10),
}
_REPORTS: dict[str, Report] = {}
_STARTUP: list[float] = []


def cluster_scale(scale: Scale) -> ClusterScale:
    return CLUSTER_SCALES["full" if scale == SCALES["full"] else "tiny"]


# The same calls through each cluster recipe (a local cluster each) and the in-process pool.
@pytest.mark.parametrize("name", ["cluster_window", "cluster_limit", "worker_pool"])
def test_cluster_throughput(benchmark: Any, name: str, scale: Scale) -> None:
    sized = cluster_scale(scale)
    workload = Workload(items=sized.items, low=sized.latency[0], high=sized.latency[1])
    benchmark.group = f"cluster: {sized.items:,} calls of 1–3 ms, limit {sized.limit}, asyncio"

    async def one() -> Report:
        if name == "worker_pool":
            return await ameasure(name, workload, limit=sized.limit)
        return await ameasure_cluster(name, workload, limit=sized.limit, address=None)

    def once() -> None:
        _REPORTS[name] = run_on("asyncio", one)

    median_seconds(benchmark, once, 1)
    report = _REPORTS[name]
    assert report.items == sized.items
    assert report.peak_concurrency <= sized.limit


# What the recipes pay, without an address, before the first call: a local cluster's start.
def test_local_cluster_startup(benchmark: Any, scale: Scale) -> None:
    from patterns.cluster import connect

    benchmark.group = "cluster: starting and stopping a local cluster"

    async def start_stop() -> None:
        started = time.perf_counter()
        async with connect(None, slots=cluster_scale(scale).limit):
            _STARTUP.append(time.perf_counter() - started)

    median_seconds(benchmark, lambda: run_on("asyncio", start_stop), 1)


@dataclass(frozen=True)
class IdiomScale:
    items: int
    limit: int


IDIOM_SCALES = {"full": IdiomScale(2_000, 100), "tiny": IdiomScale(40, 10)}
#: Calls a second, each way of running the same calls on one local cluster, in one run.
_IDIOM_RATES: dict[str, float] = {}


async def _short_call(seconds: float) -> float:
    await anyio.sleep(seconds)
    return seconds


async def _dask_map_gather(client: Any, latencies: list[float], limit: int) -> int:
    """Dask's own unbounded idiom: every call submitted at once, then gathered."""
    return len(await client.gather(client.map(_short_call, latencies, pure=False)))


async def _dask_window(client: Any, latencies: list[float], limit: int) -> int:
    """Dask's own bounded idiom, written by hand: ``as_completed`` with results, a window of
    ``limit`` refilled with ``add()`` as each call ends."""
    from distributed import as_completed

    pending = iter(latencies)
    first = [client.submit(_short_call, next(pending), pure=False) for _ in range(limit)]
    window = as_completed(first, loop=client.loop, with_results=True)
    done = 0
    async for _, _result in window:
        done += 1
        for seconds in pending:
            window.add(client.submit(_short_call, seconds, pure=False))
            break
    return done


async def _cluster_window(client: Any, latencies: list[float], limit: int) -> int:
    """The recipe's window on the same client as the idioms (a stream's own connect is a
    fixed cost, timed apart by test_local_cluster_startup)."""
    from patterns.cluster_window import windowed
    from patterns.contract import checked

    done = 0
    source = checked(_short_call, latencies, limit)
    async with windowed(client, _short_call, source, limit=limit) as results:
        async for _ in results:
            done += 1
    return done


async def _cluster_limit(client: Any, latencies: list[float], limit: int) -> int:
    from patterns import cluster_limit

    address = client.scheduler.address
    return len(await cluster_limit.run(_short_call, latencies, limit=limit, address=address))


# cluster_window beside Dask's own idioms, on one local cluster, in one run: its floor is the
# hand-written as_completed window of the same size (target: at least 0.9x its calls/s).
def test_cluster_window_against_the_dask_idiom(benchmark: Any, scale: Scale) -> None:
    from patterns.cluster import connect

    sized = IDIOM_SCALES["full" if scale == SCALES["full"] else "tiny"]
    workload = Workload(items=sized.items, low=0.001, high=0.003)
    latencies = [item.latency for item in workload]
    benchmark.group = f"cluster idioms: {sized.items:,} calls of 1–3 ms, limit {sized.limit}"
    ways = {
        "client.map + gather (unbounded)": _dask_map_gather,
        "as_completed window (Dask idiom)": _dask_window,
        "cluster_window": _cluster_window,
        "cluster_limit (its own client)": _cluster_limit,
    }
    rates: dict[str, list[float]] = {name: [] for name in ways}

    async def all_ways() -> None:
        async with connect(None, slots=sized.limit) as client:
            await _dask_map_gather(client, latencies[:50], sized.limit)  # a warm-up
            # Each in turn, three times: the machine's drift hits all alike (once, tiny).
            for _ in range(3 if sized == IDIOM_SCALES["full"] else 1):
                for name, way in ways.items():
                    started = time.perf_counter()
                    assert await way(client, latencies, sized.limit) == sized.items
                    rates[name].append(sized.items / (time.perf_counter() - started))

    median_seconds(benchmark, lambda: run_on("asyncio", all_ways), 1)
    _IDIOM_RATES.update({name: statistics.median(found) for name, found in rates.items()})


def _summary() -> list[str]:
    lines = []
    for name, r in _REPORTS.items():
        overhead = r.overhead_per_item_s
        lines.append(
            f"{name:15} {r.items:,} calls: {r.makespan_s:6.2f} s, {r.throughput_per_s or 0:8.0f} "
            f"calls/s, {r.efficiency or 0:4.0%} of the ideal, peak {r.peak_concurrency}, "
            f"overhead {0 if overhead is None else overhead * 1e3:.2f} ms per call per slot"
        )
    if _STARTUP:
        lines.append(f"a local cluster of 2 worker processes starts in {_STARTUP[0]:.2f} s")
    for name, rate in _IDIOM_RATES.items():
        lines.append(f"{name:34} {rate:8.0f} calls/s")
    floor = _IDIOM_RATES.get("as_completed window (Dask idiom)")
    if floor and "cluster_window" in _IDIOM_RATES:
        ratio = _IDIOM_RATES["cluster_window"] / floor
        verdict = "met" if ratio >= 0.9 else "not yet"
        lines.append(
            f"{verdict}: cluster_window at {ratio:.2f}x the Dask idiom's calls/s (>= 0.9x)"
        )
    return lines


EXTRA_SUMMARIES.append(("the cluster", _summary))
