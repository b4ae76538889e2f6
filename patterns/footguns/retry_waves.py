"""Footgun: retries without jitter, that come back in waves (issue 22: adaptive limits and
retries).

Exponential back-off spaces one caller's retries; it does nothing to space the callers from
each other. Every call turned away by one overload waits the same ``base * 2 ** n`` (and the
same Retry-After), so they all come back in the same instant, where the service again has
room for a few and turns the rest away: a wave, a longer gap, a smaller wave, while the
service idles between them. Here a burst of 60 calls of 5 ms meets a service that serves 10 at
once and turns the rest away with a Retry-After of 10 ms; each call is tried 3 times at most.
Without jitter the 50 turned away come back in one instant, 40 of them are turned away again,
and so on: 30 calls served, 30 given up. With full jitter (AWS's "Exponential Backoff and
Jitter": a wait drawn from 0 to ``base * 2 ** n``, past the Retry-After, as
:func:`patterns.retry.retrying` waits) the same retries spread over the window, the service
takes a few at a time, and nearly every call is served. Both versions retry alike otherwise:
the same attempts, and a budget that refuses nothing here (the budget is ``retry-storm``'s
lesson). Every attempt is counted where it lands, at the service, per 5 ms.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from patterns import worker_pool
from patterns.footguns.exhibit import Exhibit, Instrument, Spans, Verdict
from patterns.footguns.retry_holding import (
    Attempt,
    Attempts,
    Call,
    LoopWatch,
    textbook,
    unstalled,
)
from patterns.lab.core import collect_errors
from patterns.lab.service import Felt, Service
from patterns.lab.workload import Item
from patterns.retry import Budget, retrying

#: A burst of 60 calls of 5 ms; the service serves 10 at once, with a Retry-After of 10 ms.
CALLS, CAPACITY, CALL_S, HINT_S = 60, 10, 0.005, 0.01
#: Each call tried 3 times at most; the back-off 50 ms, then 100 (or a wait drawn up to them).
ATTEMPTS, BASE_S = 3, 0.05
#: The window the attempts are counted in; one holding the retries of more than half the
#: burst is a wave (all at once, where the service has room for 10). Jittered, they spread over
#: 10 windows or more: a loaded machine's loop, late by 10-20 ms at times, lumps a few together.
WINDOW_S, WAVE = 0.005, CALLS // 2


def in_step(call: Call) -> Call:
    """The footgun: the Retry-After, then ``base * 2 ** n``: every call turned away at once
    waits the same, and comes back at once."""
    return textbook(call, ATTEMPTS, BASE_S)


def jittered(call: Call) -> Call:
    """The fix: ``retrying``, the Retry-After plus full jitter (a budget that refuses none)."""
    return retrying(call, attempts=ATTEMPTS, base=BASE_S, budget=Budget(1.0, reserve=CALLS))


def per_window(times: list[float], window: float, origin: float) -> list[int]:
    """How many of ``times`` fall in each ``window`` from ``origin`` to the last."""
    counts = [0] * (int((max(times, default=origin) - origin) / window) + 1)
    for t in times:
        counts[int((t - origin) / window)] += 1
    return counts


def busiest(times: list[float], window: float = WINDOW_S) -> int:
    """The most of ``times`` in any ``window`` (sliding: a wave split by a bucket's edge, as a
    late loop may split it, still counts whole)."""
    ordered, most, first = sorted(times), 0, 0
    for last, t in enumerate(ordered):
        while t - ordered[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def levels(times: list[float], what: str, *, window: float, step: int, top: int) -> Spans:
    """A bar chart drawn as timeline rows: how many of ``times`` fell in each ``window`` from
    the start, as a bar that fills the rows ``1+``, ``step+``, ``2 * step+`` ... up to its
    count, the highest on top (from ``top`` down; each row declared, drawn or not, so that two
    versions share them)."""
    counts = per_window(times, window, 0.0)
    rows: list[tuple[str, float, float]] = []
    for floor in dict.fromkeys([*range(top, 0, -step), 1]):
        label = f"{floor}+ {what} in {window * 1000:.0f} ms"
        bars = [(label, i * window, (i + 1) * window) for i, n in enumerate(counts) if n >= floor]
        rows += bars or [(label, 0.0, 0.0)]  # nothing reached it: the row, declared
    return tuple(rows)


def retries(log: list[Attempt]) -> list[float]:
    """When each retry (an attempt after the first) reached the service."""
    return [a.start for a in log if a.number > 1]


@dataclass(frozen=True)
class Burst:
    """One version's burst: every attempt as the service saw it, and what the service felt."""

    attempts: list[Attempt]
    felt: Felt


async def measure(retry: Callable[[Call], Call]) -> Burst:
    """The burst, each call through ``retry``."""
    return await unstalled(functools.partial(_measure, retry))


async def _measure(retry: Callable[[Call], Call], watch: LoopWatch) -> Burst:
    service, probe = Service(CAPACITY, behaviour="reject", retry_after=HINT_S), Instrument()
    attempts = Attempts(probe.clock)
    work = retry(attempts.wrap(service.call))
    items = [Item(index, CALL_S) for index in range(CALLS)]
    # Every call at once (a limit of 60), each retried until served or given up: over in
    # 10 + 50 + 10 + 100 ms at most, and bounded by a timeout all the same.
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch.run)
            await worker_pool.run(collect_errors(work), items, limit=CALLS)
            tg.cancel_scope.cancel()
    return Burst(attempts.log, service.felt)


def verdict(burst: Burst) -> Verdict:
    """Whether the retries came in waves: more than half the burst in one 5 ms."""
    log = burst.attempts
    times = retries(log)
    counts = per_window(times, WINDOW_S, min(times, default=0.0))
    peak = busiest(times)
    spread = statistics.pstdev(counts) / statistics.mean(counts) if times else 0.0
    served = sum(a.outcome == "served" for a in log)
    away = sum(a.outcome == "turned away" for a in log)
    waves = peak > WAVE
    observed = (
        f"{len(times)} retries, at most {peak} of them in {WINDOW_S * 1000:.0f} ms (for a "
        f"capacity of {CAPACITY}): "
        + ("in waves" if waves else "spread out")
        + f", their count per {WINDOW_S * 1000:.0f} ms a coefficient of variation of "
        f"{spread:.1f}; {away} attempts turned away, {served} of {CALLS} calls served"
    )
    return Verdict(not waves, observed, _spans(log))


def _spans(log: list[Attempt]) -> Spans:
    """The attempts per 5 ms as bars (the waves), then a row per try (1st, 2nd, ...): the
    attempts served, and those turned away (red), each an instant at the service."""
    names = {1: "1st", 2: "2nd", 3: "3rd"}

    def row(a: Attempt) -> str:
        name = f"{names.get(a.number, f'{a.number}th')} try"
        return f"{name} (turned away)" if a.outcome == "turned away" else f"{name} served"

    times = [a.start for a in log]
    bars = levels(times, "attempts", window=WINDOW_S, step=CAPACITY, top=CALLS - CAPACITY)
    ordered = sorted(log, key=lambda a: (a.number, a.outcome != "served", a.start))
    return (*bars, *((row(a), a.start, a.end) for a in ordered))


async def broken() -> Verdict:
    """The Retry-After plus ``base * 2 ** n``: every call turned away waits the same."""
    return verdict(await measure(in_step))


async def fixed() -> Verdict:
    """``retrying``: the Retry-After plus a wait drawn from 0 to ``base * 2 ** n``."""
    return verdict(await measure(jittered))


EXHIBIT = Exhibit(
    name="retry-waves",
    title="Retries without jitter, in waves",
    article="issue 22: adaptive limits, and retries that don't make it worse",
    why=(
        "Every call turned away by the burst waited the same back-off, so they all came back "
        "at once, to a service with room for a few: most were turned away again, the next wave "
        "came back together too, and the service idled between waves. Exponential back-off "
        "spaces one caller's retries, not the callers: draw each wait at random from 0 to the "
        "back-off (full jitter, as patterns.retry.retrying does, past the Retry-After), and "
        "the retries spread over the window, a few at a time."
    ),
    broken=broken,
    fixed=fixed,
)
