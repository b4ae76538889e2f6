"""Scenario 5, fast calls: when the plumbing is no longer noise next to the call.

One event loop does all the plumbing for the ``limit`` calls in flight: starting a call,
waking it when its wait ends, handing its result over. When ``limit`` calls' worth of that
cost approaches the call's own latency, the loop itself becomes the bottleneck and efficiency
(the ideal makespan over the measured one) falls, whatever the limit says.

Two parts, on asyncio, uvloop and trio, each bounded pattern beside the raw pool for that
backend (an asyncio.Queue pool, a trio memory-channel pool) and aiometer:

1. **fast calls**: 20,000 calls of 1–3 ms (uniform, seed 0), limit 100, median of 3: the
   efficiency a reader gets for a fast database or cache call.
2. **break-even**: a ladder of mean call latencies L at limit 100, from 0.5 ms to 50 ms, each
   rung's calls uniform between L/2 and 3L/2 (so the 2 ms rung is the 1–3 ms of part 1) and as
   many as fill 0.25 s of ideal makespan (0.5 ms: 50,000 calls; 50 ms: 500), median of 3. A
   pattern's ladder stops at the first rung that reaches 90% of the ideal: the shortest mean
   latency at which it keeps up. The raw pools climb every rung, because part of what is lost
   is not plumbing at all: the simulated call is a sleep, and an event loop wakes a sleeper up
   to a millisecond late (epoll's timeout is in whole milliseconds), which no pattern can beat
   and a real socket's wakeup does not suffer. So the summary also gives the shortest rung at
   which a pattern reaches 90% of its raw pool's efficiency: where the pattern's own cost stops
   mattering. The first rung's makespan over its calls is the loop's cost per call there.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from patterns.lab.backends import BACKENDS, available, run_on
from patterns.lab.registry import PATTERNS
from patterns.lab.report import ideal_makespan
from patterns.lab.workload import Workload

from .conftest import EXTRA_SUMMARIES, median_seconds
from .scenarios import RAW_POOL, SCALES, Impl, Scale, implementations, time_efficiency_once
from .test_overhead import _skip_if_missing

#: The raw pools, against which each backend's patterns are judged.
RAW = set(RAW_POOL.values())
#: The efficiency a pattern must reach for its calls to count as keeping up.
KEEPS_UP = 0.9


@dataclass(frozen=True)
class FastScale:
    items: int
    latency: tuple[float, float]
    limit: int
    #: the ladder's fixed call latencies, shortest first, and the ideal makespan of each rung
    rungs: tuple[float, ...]
    rung_ideal_s: float
    rounds: int


FAST_SCALES = {
    "full": FastScale(
        20_000, (0.001, 0.003), 100, (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05), 0.25, 3
    ),
    # Seconds in all: the scenario runs in the test suite, so it cannot rot.
    "tiny": FastScale(300, (0.001, 0.003), 100, (0.0005, 0.005), 0.01, 1),
}


def fast_scale(scale: Scale) -> FastScale:
    return FAST_SCALES["full" if scale == SCALES["full"] else "tiny"]


def _contestants() -> list[Impl]:
    bounded = {name for name, pattern in PATTERNS.items() if pattern.BOUNDED}
    wanted = {"raw asyncio queue pool", "raw trio channel pool", "aiometer.amap"}
    return [i for i in implementations() if i.name in bounded or i.name in wanted]


CASES = [
    pytest.param(impl, backend, id=f"{backend}-{impl.name}")
    for backend in available()
    for impl in _contestants()
    if backend in impl.backends
]


@dataclass(frozen=True)
class Rung:
    latency_s: float
    calls: int
    ideal_s: float
    makespan_s: float

    @property
    def efficiency(self) -> float:
        return self.ideal_s / self.makespan_s


@dataclass
class Ladder:
    rungs: list[Rung]

    @property
    def cost_us(self) -> float:
        """Seconds per call on the first (shortest) rung: what the loop spends per call there."""
        first = self.rungs[0]
        return first.makespan_s / first.calls * 1e6

    def first_reaching(self, share: float, of: Ladder | None = None) -> int | None:
        """The index of the first rung at ``share`` of the ideal (or of ``of``'s efficiency)."""
        for i, rung in enumerate(self.rungs):
            base = of.rungs[i].efficiency if of is not None and i < len(of.rungs) else 1.0
            if rung.efficiency >= share * base:
                return i
        return None

    def text(self, index: int | None, rungs: tuple[float, ...]) -> str:
        """A rung as a range of mean latencies: "≤0.5 ms", "1–2 ms", ">50 ms"."""
        if index is None:
            return f">{rungs[-1] * 1e3:g} ms"
        if index == 0:
            return f"≤{rungs[0] * 1e3:g} ms"
        return f"{rungs[index - 1] * 1e3:g}–{rungs[index] * 1e3:g} ms"


#: (backend, name) -> efficiency on the fast calls, and the break-even ladder.
FAST: dict[tuple[str, str], float] = {}
LADDERS: dict[tuple[str, str], Ladder] = {}
_SCALE: list[FastScale] = []


# 20,000 calls of 1–3 ms at limit 100: the efficiency each implementation reaches.
@pytest.mark.parametrize(("impl", "backend"), CASES)
def test_fast_calls(benchmark: Any, impl: Impl, backend: str, scale: Scale) -> None:
    _skip_if_missing(impl)
    fast = fast_scale(scale)
    _SCALE[:] = [fast]
    workload = Workload(fast.items, *fast.latency, seed=0)
    items = list(workload)
    benchmark.group = (
        f"fast calls: {fast.items:,} calls of {fast.latency[0] * 1e3:g}–"
        f"{fast.latency[1] * 1e3:g} ms, limit {fast.limit}, {backend}"
    )
    makespan = median_seconds(
        benchmark, lambda: time_efficiency_once(impl, items, fast.limit, backend), fast.rounds
    )
    ideal = ideal_makespan(workload.latencies(), fast.limit)
    FAST[backend, impl.name] = ideal / makespan
    benchmark.extra_info["efficiency"] = ideal / makespan
    # Below the ideal, the measurement would be wrong (uvloop rounds timers to whole ms).
    assert makespan >= ideal * 0.99 - 0.001


# The shortest fixed call latency at which the implementation reaches 90% of the ideal.
@pytest.mark.parametrize(("impl", "backend"), CASES)
def test_break_even(benchmark: Any, impl: Impl, backend: str, scale: Scale) -> None:
    _skip_if_missing(impl)
    fast = fast_scale(scale)
    benchmark.group = f"break-even ladder: mean latencies, limit {fast.limit}, {backend}"
    ladder = Ladder([])

    def climb() -> None:
        ladder.rungs.clear()
        for latency in fast.rungs:
            calls = round(fast.rung_ideal_s * fast.limit / latency)
            workload = Workload(calls, latency / 2, latency * 3 / 2, seed=0)
            items = list(workload)
            makespan = statistics.median(
                time_efficiency_once(impl, items, fast.limit, backend) for _ in range(fast.rounds)
            )
            ideal = ideal_makespan(workload.latencies(), fast.limit)
            ladder.rungs.append(Rung(latency, calls, ideal, makespan))
            # The raw pools climb every rung: the others are judged against them, rung by rung.
            if ladder.rungs[-1].efficiency >= KEEPS_UP and impl.name not in RAW:
                return

    benchmark.pedantic(climb, rounds=1, iterations=1, warmup_rounds=0)
    LADDERS[backend, impl.name] = ladder
    benchmark.extra_info["efficiency_by_rung"] = {
        f"{rung.latency_s * 1e3:g} ms": rung.efficiency for rung in ladder.rungs
    }
    benchmark.extra_info["cost_us"] = ladder.cost_us
    assert ladder.rungs, "the ladder ran no rung"
    # Above the ideal, the measurement would be wrong (uvloop rounds timers to whole ms).
    assert all(r.makespan_s >= r.ideal_s * 0.99 - 0.001 for r in ladder.rungs), ladder.rungs


#: backend -> mean seconds an idle sleep of 1–3.2 ms ended late
LATENESS: dict[str, float] = {}


async def _idle_lateness(sleeps: int) -> float:
    late = []
    for i in range(sleeps):
        delay = 0.001 + (i % 7) * 0.00037  # 1 to 3.2 ms, not whole milliseconds
        start = time.perf_counter()
        await anyio.sleep(delay)
        late.append(time.perf_counter() - start - delay)
    return statistics.mean(late)


# How late the event loop wakes one idle sleeper: a floor under every pattern's efficiency.
@pytest.mark.parametrize("backend", available())
def test_timer_lateness(benchmark: Any, backend: str, scale: Scale) -> None:
    sleeps = 200 if scale == SCALES["full"] else 10
    _SCALE[:] = [fast_scale(scale)]
    benchmark.group = f"timer lateness: {sleeps} idle sleeps of 1–3.2 ms"
    lateness: list[float] = []
    benchmark.pedantic(
        lambda: lateness.append(run_on(backend, lambda: _idle_lateness(sleeps))),
        rounds=1,
        iterations=1,
        warmup_rounds=0,
    )
    LATENESS[backend] = lateness[0]
    benchmark.extra_info["mean_lateness_ms"] = lateness[0] * 1e3
    # A sleep never ends early by more than uvloop's rounding to whole milliseconds.
    assert lateness[0] > -0.001


def summary_lines() -> list[str]:
    """Per backend and implementation: fast-call efficiency, cost per call, break-even."""
    if not (FAST or LADDERS or LATENESS) or not _SCALE:
        return []
    fast = _SCALE[0]
    lines = [
        f"fast calls: {fast.items:,} calls of {fast.latency[0] * 1e3:g}–"
        f"{fast.latency[1] * 1e3:g} ms, limit {fast.limit}, efficiency · cost: the loop's µs "
        f"per call at a mean of {fast.rungs[0] * 1e3:g} ms · mean latency from which "
        f"{KEEPS_UP:.0%} of the ideal, and {KEEPS_UP:.0%} of the raw pool's efficiency"
    ]
    for backend in BACKENDS:
        raw = LADDERS.get((backend, RAW_POOL[backend]))
        for impl in _contestants():
            key = (backend, impl.name)
            if key not in FAST and key not in LADDERS:
                continue
            efficiency = FAST.get(key)
            ladder = LADDERS.get(key)
            text = f"  {backend:8} {impl.name:24}"
            text += f" {efficiency:6.1%}" if efficiency is not None else " " * 7
            if ladder is not None:
                text += f"   cost {ladder.cost_us:6.1f} µs"
                ideal = ladder.text(ladder.first_reaching(KEEPS_UP), fast.rungs)
                text += f"   90% of ideal {ideal:>10}"
                if raw is not None and impl.name not in RAW:
                    of_raw = ladder.text(ladder.first_reaching(KEEPS_UP, raw), fast.rungs)
                    text += f"   90% of raw {of_raw:>10}"
            lines.append(text)
    if LATENESS:
        lines.append(
            "  an idle sleep ends late by "
            + ", ".join(f"{ms * 1e3:.2f} ms on {b}" for b, ms in LATENESS.items())
            + " on average: no pattern can beat that"
        )
    return lines


EXTRA_SUMMARIES.append(("fast calls", summary_lines))
