"""Scenario 4, the throttle's start queue: its start rate, and cancelling it, with many waiting.

``Throttle(N, max_per_second=1000)`` and N tasks, each ``await throttle.run(noop)`` in a loop,
so that N calls are always queued for a start slot (the permits never run out: the limit is
N). Once every task has queued, the start rate is measured over a fixed number of starts, with
100 calls waiting and with 20,000; then all of them are cancelled at once, and the time for
that cancellation to return is measured. A start or a cancellation that cost O(n) in the queue
shows as the rate falling with N and as the cancellation blocking the event loop: when both
re-sorted the whole queue, 20,000 queued gave about 300 starts/s and took 39-40 s to cancel. For
scale, the floor row cancels the same number of tasks each blocked on its own ``anyio.Event``,
no throttle: what the event loop itself costs.

Targets, judged on a full-size run: the rate with 20,000 waiting ≥ 0.9× the rate with 100, on
each backend, and cancelling 20,000 returns within 1 s.
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from patterns.lab.backends import available, run_on
from patterns.throttle import Throttle

from .conftest import EXTRA_SUMMARIES
from .scenarios import SCALES, Scale, Target

BACKENDS = available()
RATE = 1000  # starts per second


@dataclass(frozen=True)
class QueueScale:
    """Calls waiting in the two runs, and the starts each rate is measured over."""

    few: int
    many: int
    starts: int


#: Full size: the issue's 100 and 20,000. Tiny: seconds in all, so the scenario cannot rot.
QUEUE_SCALES = {"full": QueueScale(100, 20_000, 500), "tiny": QueueScale(100, 2_000, 20)}


def queue_scale(scale: Scale) -> QueueScale:
    return QUEUE_SCALES["full" if scale == SCALES["full"] else "tiny"]


@dataclass(frozen=True)
class QueueRun:
    """One run: starts per second with ``waiting`` calls queued, and the cancel of them all."""

    waiting: int
    rate_per_s: float
    cancel_s: float


async def _queue_once(waiting: int, starts: int) -> QueueRun:
    throttle = Throttle(waiting, max_per_second=RATE)
    times: list[float] = []
    queued = 0
    all_queued = anyio.Event()
    enough = anyio.Event()
    target = -1  # no number of starts is enough until every task has queued

    async def noop() -> None:
        times.append(time.perf_counter())
        if len(times) == target:
            enough.set()

    async def caller() -> None:
        nonlocal queued
        queued += 1
        if queued == waiting:
            all_queued.set()
        while True:
            await throttle.run(noop)  # and back to the end of the queue: always `waiting` queued

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            for _ in range(waiting):
                tg.start_soon(caller)
            await all_queued.wait()
            first = len(times)
            target = first + starts + 1
            await enough.wait()
            rate = starts / (times[target - 1] - times[first])
            # Garbage from the set-up is collected first, so the figure is the cancellation's
            # own work, not a collection that the set-up left pending.
            gc.collect()
            begin = time.perf_counter()
            scope.cancel()
    return QueueRun(waiting, rate, time.perf_counter() - begin)


async def _floor_once(waiting: int) -> float:
    """Seconds to cancel ``waiting`` tasks each blocked on its own event: the loop's own cost."""

    async def blocked() -> None:
        await anyio.Event().wait()

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            for _ in range(waiting):
                tg.start_soon(blocked)
            await anyio.wait_all_tasks_blocked()
            gc.collect()
            begin = time.perf_counter()
            scope.cancel()
    return time.perf_counter() - begin


@dataclass
class QueueResults:
    """What this scenario measured in this session, by (backend, calls waiting)."""

    scale: QueueScale | None = None
    runs: dict[tuple[str, int], QueueRun] = field(default_factory=dict)
    floor_s: dict[tuple[str, int], float] = field(default_factory=dict)

    def targets(self) -> list[Target]:
        out: list[Target] = []
        if self.scale is None:
            return out
        for backend in BACKENDS:
            few = self.runs.get((backend, self.scale.few))
            many = self.runs.get((backend, self.scale.many))
            if few is not None and many is not None:
                out.append(
                    Target(
                        f"throttle start rate on {backend}: {many.waiting:,} waiting / "
                        f"{few.waiting:,} waiting",
                        many.rate_per_s / few.rate_per_s,
                        0.9,
                        "min",
                    )
                )
            if many is not None:
                out.append(
                    Target(
                        f"throttle on {backend}: cancelling {many.waiting:,} waiting, s",
                        many.cancel_s,
                        1.0,
                        "max",
                    )
                )
        return out

    def summary_lines(self) -> list[str]:
        if self.scale is None:
            return []
        lines = [
            f"Throttle(N, max_per_second={RATE}), N calls queued; start rate over "
            f"{self.scale.starts:,} starts, median of the rounds"
        ]
        for (backend, waiting), run in sorted(
            self.runs.items(), key=lambda kv: (BACKENDS.index(kv[0][0]), kv[0][1])
        ):
            floor = self.floor_s.get((backend, waiting))
            floor_text = "" if floor is None else f" (no throttle, same tasks: {floor:.3f} s)"
            lines.append(
                f"  {backend:<8} {waiting:>7,} waiting: {run.rate_per_s:7.1f} starts/s, "
                f"cancelling them all {run.cancel_s:.3f} s{floor_text}"
            )
        if self.scale != QUEUE_SCALES["full"]:
            lines.append("targets are judged on a full-size run only")
            return lines
        for t in self.targets():
            sign = "≤" if t.sense == "max" else "≥"
            verdict = "met" if t.met else "MISSED"
            lines.append(f"{verdict:>6}  {t.what}: {t.measured:.2f} (target {sign} {t.bound:g})")
        return lines


RESULTS = QueueResults()
EXTRA_SUMMARIES.append(("throttle start queue", RESULTS.summary_lines))


# The start rate with few and with many calls waiting, and the cancellation of them all.
@pytest.mark.parametrize("size", ["few", "many"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_start_queue(benchmark: Any, backend: str, size: str, scale: Scale) -> None:
    sizes = queue_scale(scale)
    RESULTS.scale = sizes
    waiting = sizes.few if size == "few" else sizes.many
    benchmark.group = f"throttle start queue: Throttle(N, max_per_second={RATE}), {backend}"
    runs: list[QueueRun] = []

    def once() -> None:
        runs.append(run_on(backend, lambda: _queue_once(waiting, sizes.starts)))

    benchmark.pedantic(once, rounds=scale.rounds, iterations=1, warmup_rounds=0)
    run = QueueRun(
        waiting,
        statistics.median(r.rate_per_s for r in runs),
        statistics.median(r.cancel_s for r in runs),
    )
    RESULTS.runs[backend, waiting] = run
    benchmark.extra_info.update(
        waiting=waiting, starts_per_s=run.rate_per_s, cancel_all_s=run.cancel_s
    )
    assert run.rate_per_s > 0


# The floor: the same number of tasks, each blocked on its own event, cancelled at once.
@pytest.mark.parametrize("backend", BACKENDS)
def test_cancel_floor(benchmark: Any, backend: str, scale: Scale) -> None:
    waiting = queue_scale(scale).many
    benchmark.group = f"throttle start queue: cancel floor, {waiting:,} bare tasks, {backend}"
    times: list[float] = []

    def once() -> None:
        times.append(run_on(backend, lambda: _floor_once(waiting)))

    benchmark.pedantic(once, rounds=scale.rounds, iterations=1, warmup_rounds=0)
    RESULTS.floor_s[backend, waiting] = statistics.median(times)
