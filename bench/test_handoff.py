"""Scenario 6, hand-off: what it costs to send a sync call to a thread or a process.

Three parts, on asyncio and trio, each through the worker pool with the workers started first
(their start-up is measured apart):

1. **per call**: a call that does nothing (it returns its argument), one at a time (limit 1),
   so each call's time is the hand-off there and back: to a thread (``threads.in_threads``)
   and to a process (``processes.in_processes``, pickling both ways), with an argument of a
   few bytes and of 100 KB.
2. **start-up**: the first call in a fresh event loop, which starts a worker process (a new
   interpreter that imports anyio and the function's module) or a thread.
3. **break-even**: CPU work of 0.1 to 10 ms per item (``Workload(kind="cpu")``), run on the
   event loop and in processes at limit 2 (this machine's cores), as ``python -m patterns
   parallel`` runs it; the smallest work per item at which processes finish first is where a
   process pays off.
4. **the parallel table's claims**, the project's own targets: ``python -m patterns parallel
   --rounds 3`` (16 items of 0.05-0.15 s, limit 8) must show CPU-bound work at least 1.6× faster
   in processes than one at a time, at most 1.2× in threads, and blocking work in threads at
   90% of the ideal or more.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

import pytest
from rich.console import Console

from patterns import worker_pool
from patterns.lab.backends import Backend, available, run_on
from patterns.lab.harness import RunIn, measure
from patterns.lab.workload import Workload
from patterns.processes import in_processes
from patterns.threads import in_threads

from .conftest import EXTRA_SUMMARIES, median_seconds
from .scenarios import SCALES, Scale

#: uvloop hands a call to a thread or a process as asyncio does: asyncio and trio say it all.
BACKENDS = available(("asyncio", "trio"))
WHERE = ("threads", "processes")
PAYLOADS = {"8 B": 12345678, "100 KB": b"x" * 100_000}
PLACES: tuple[RunIn, RunIn] = ("loop", "processes")


@dataclass(frozen=True)
class HandoffScale:
    calls: int
    #: CPU work per item on the break-even ladder, and the serial seconds each rung fills
    rungs: tuple[float, ...]
    rung_serial_s: float
    rounds: int


HANDOFF_SCALES = {
    "full": HandoffScale(2_000, (0.0001, 0.0003, 0.001, 0.003, 0.01), 1.0, 3),
    # Seconds in all: the scenario runs in the test suite, so it cannot rot.
    "tiny": HandoffScale(20, (0.001,), 0.02, 1),
}

_PER_CALL: dict[tuple[str, str, str], float] = {}
_STARTUP: dict[tuple[str, str], float] = {}
_LADDER: dict[tuple[str, float], tuple[float, float]] = {}
_PARALLEL: dict[str, tuple[float, float, float]] = {}


def handoff_scale(scale: Scale) -> HandoffScale:
    return HANDOFF_SCALES["full" if scale == SCALES["full"] else "tiny"]


def echo(value: Any) -> Any:
    """The call that does nothing: what is timed is getting there and back."""
    return value


def _adapter(where: str) -> Any:
    return in_threads(echo) if where == "threads" else in_processes(echo)


def _per_call_once(backend: str, where: str, payload: Any, calls: int) -> float:
    async def main() -> float:
        work = _adapter(where)
        await work(payload)  # the worker started, untimed
        start = time.perf_counter()
        await worker_pool.run(work, itertools.repeat(payload, calls), limit=1)
        return (time.perf_counter() - start) / calls

    result: float = run_on(backend, main)
    return result


def _startup_once(backend: str, where: str) -> float:
    async def main() -> float:
        start = time.perf_counter()
        await _adapter(where)(0)
        return time.perf_counter() - start

    result: float = run_on(backend, main)
    return result


# Part 1: the round trip of one call that does nothing, to a thread or a process.
@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("backend", BACKENDS)
def test_per_call(benchmark: Any, backend: str, where: str, payload: str, scale: Scale) -> None:
    sized = handoff_scale(scale)
    benchmark.group = f"hand-off: one call at a time, {sized.calls:,} calls"
    per_call: list[float] = []

    def once() -> None:
        per_call.append(_per_call_once(backend, where, PAYLOADS[payload], sized.calls))

    median_seconds(benchmark, once, sized.rounds)
    _PER_CALL[(backend, where, payload)] = statistics.median(per_call)
    assert all(cost > 0 for cost in per_call)


# Part 2: the first call in a fresh event loop starts the worker.
@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("backend", BACKENDS)
def test_startup(benchmark: Any, backend: str, where: str, scale: Scale) -> None:
    benchmark.group = "hand-off: the first call, starting its worker"
    _STARTUP[(backend, where)] = median_seconds(
        benchmark, lambda: _startup_once(backend, where), handoff_scale(scale).rounds
    )


# Part 3: CPU work per item against its makespan on the loop and in processes, at limit 2.
@pytest.mark.parametrize("backend", BACKENDS)
def test_break_even(benchmark: Any, backend: Backend, scale: Scale) -> None:
    sized = handoff_scale(scale)
    benchmark.group = "hand-off: CPU work per item, event loop against processes (limit 2)"
    limit = min(2, os.cpu_count() or 1)

    def ladder() -> None:
        for work_s in sized.rungs:
            items = max(4, round(sized.rung_serial_s / work_s))
            workload = Workload(items=items, low=work_s, high=work_s, kind="cpu")
            on_loop, in_procs = (
                measure("worker_pool", workload, limit=limit, backend=backend, run_in=where)
                for where in PLACES
            )
            _LADDER[(backend, work_s)] = (on_loop.makespan_s, in_procs.makespan_s)
            assert in_procs.cpu_s is not None
            assert in_procs.cpu_s > 0  # the workers' CPU is counted

    median_seconds(benchmark, ladder, 1)
    assert set(sized.rungs) <= {work_s for b, work_s in _LADDER if b == backend}


# Part 4: the parallel command's table, median of 3 rounds taken in turn, against its targets.
@pytest.mark.parametrize("backend", BACKENDS)
def test_parallel_claims(benchmark: Any, backend: str, scale: Scale) -> None:
    from patterns.door.cli import main

    benchmark.group = "hand-off: python -m patterns parallel --rounds 3"
    full = scale == SCALES["full"]
    sizes = [] if full else ["--items", "4", "--latency", "0.01", "0.02"]
    argv = ["parallel", "--backend", backend, "--rounds", "3" if full else "1", "--json", *sizes]
    out = io.StringIO()

    def once() -> None:
        out.seek(0)
        out.truncate()
        assert main(argv, console=Console(file=out), err_console=Console(file=io.StringIO())) == 0

    median_seconds(benchmark, once, 1)
    found = {(r["work"], r["run_in"]): r for r in json.loads(out.getvalue())}
    assert len(found) == 7
    if not full:  # the targets are about the full sizes: a tiny run's figures are noise
        return
    _PARALLEL[backend] = (
        found[("cpu", "processes")]["speedup_measured"],
        found[("cpu", "threads")]["speedup_measured"],
        found[("blocking", "threads")]["efficiency"],
    )


def _summary() -> list[str]:
    lines = []
    for (backend, where, payload), cost in sorted(_PER_CALL.items()):
        lines.append(f"{backend:8} {where:10} {payload:>7}: {cost * 1e6:8.0f} µs per call")
    for (backend, where), first in sorted(_STARTUP.items()):
        lines.append(f"{backend:8} {where:10} first call (starts the worker): {first * 1e3:.0f} ms")
    pays: dict[str, float] = {}
    for (backend, work_s), (on_loop, in_procs) in sorted(_LADDER.items()):
        speedup = on_loop / in_procs
        lines.append(
            f"{backend:8} CPU work {work_s * 1e3:5.1f} ms per item: processes {speedup:.2f}× "
            f"the event loop"
        )
        if speedup > 1 and backend not in pays:
            pays[backend] = work_s
    for backend, work_s in pays.items():
        lines.append(f"{backend}: processes pay off from {work_s * 1e3:g} ms of CPU per item")
    if _PARALLEL:
        lines.append("the project's own targets (acceptance figures for its developers):")
    for backend, (processes, threads, blocking) in sorted(_PARALLEL.items()):
        for claim, ok in (
            (f"CPU-bound work in processes {processes:.2f}× (target ≥ 1.6×)", processes >= 1.6),
            (f"CPU-bound work in threads {threads:.2f}× (target ≤ 1.2×)", threads <= 1.2),
            (
                f"blocking work in threads {blocking:.0%} of the ideal (target ≥ 90%)",
                blocking >= 0.9,
            ),
        ):
            lines.append(f"  {backend:8} {claim}: {'met' if ok else 'not yet'}")
    return lines


EXTRA_SUMMARIES.append(("hand-off to threads and processes", _summary))
