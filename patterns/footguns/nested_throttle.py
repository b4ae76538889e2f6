"""Footgun: nested calls through one plain semaphore deadlock (source article 003).

The article's scenario: a limit of 3, five outer calls started at once, each making two inner
calls in turn, every call going through the same limiter. With a plain semaphore the first
three outer calls take every permit, their inner calls wait for a permit, and no permit will
come back until an inner call finishes: deadlock. :func:`broken` shows it (bounded by a
timeout); :func:`fixed` runs the same scenario through :class:`patterns.throttle.Throttle`,
whose nested calls borrow their parent's permit, and records the timeline.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import anyio

from patterns.footguns import Exhibit, Verdict
from patterns.throttle import Throttle

OUTER, INNER, LIMIT, WORK_S = 5, 2, 3, 0.05

Limited = Callable[..., Coroutine[Any, Any, Any]]


@dataclass(frozen=True)
class Span:
    """One call of the scenario: which, how deep, from when to when (seconds from start)."""

    label: str
    depth: int
    start: float
    end: float


@dataclass
class Run:
    """What a run of the scenario did: did it finish, and what every call did when."""

    finished: bool
    elapsed_s: float
    spans: list[Span] = field(default_factory=list)
    #: The most calls doing their own work at once (outer calls waiting on an inner one are
    #: not doing their own work).
    peak_working: int = 0
    #: The most permits out of the limiter's pool at once, where the limiter can tell.
    peak_permits: int | None = None

    def finished_spans(self) -> list[Span]:
        """The calls that ended (the others are drawn as stuck)."""
        return [span for span in self.spans if not span.label.endswith("(stuck)")]


async def scenario(limited: Limited, *, give_up_after: float, work_s: float = WORK_S) -> Run:
    """Five outer calls, each making two inner calls in turn, all through ``limited``."""
    start = time.perf_counter()
    run = Run(finished=False, elapsed_s=0.0)
    working = 0

    # Calls that began and have not ended, with where they began: at the end, any left are
    # stuck, and drawn so.
    unfinished: dict[str, tuple[int, float]] = {}

    async def inner(label: str) -> None:
        nonlocal working
        began = time.perf_counter() - start
        working += 1
        run.peak_working = max(run.peak_working, working)
        try:
            await anyio.sleep(work_s)
        finally:
            working -= 1
            run.spans.append(Span(label, 1, began, time.perf_counter() - start))

    async def outer(i: int) -> None:
        began = time.perf_counter() - start
        unfinished[f"outer {i}"] = (0, began)
        for j in range(INNER):
            label = f"inner {i * INNER + j}"
            unfinished[f"{label} waiting for a permit"] = (1, time.perf_counter() - start)
            await limited(inner, label)
            del unfinished[f"{label} waiting for a permit"]
        del unfinished[f"outer {i}"]
        run.spans.append(Span(f"outer {i}", 0, began, time.perf_counter() - start))

    with anyio.move_on_after(give_up_after):
        async with anyio.create_task_group() as tg:
            for i in range(OUTER):
                tg.start_soon(limited, outer, i)
        run.finished = True
    now = time.perf_counter() - start
    for label, (depth, began) in unfinished.items():
        run.spans.append(Span(f"{label} (stuck)", depth, began, now))
    run.elapsed_s = time.perf_counter() - start
    run.spans.sort(key=lambda span: (span.start, span.depth))
    return run


async def broken(give_up_after: float = 1.0) -> Run:
    """A plain semaphore: the outer calls hold every permit their inner calls wait for."""
    semaphore = anyio.Semaphore(LIMIT)

    async def limited(fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        async with semaphore:
            return await fn(*args)

    return await scenario(limited, give_up_after=give_up_after)


async def fixed(give_up_after: float = 10.0) -> Run:
    """The shared Throttle: an inner call borrows the permit its outer call holds."""
    throttle = Throttle(LIMIT)
    run = await scenario(throttle.run, give_up_after=give_up_after)
    run.peak_permits = throttle.statistics().peak
    return run


def verdict(run: Run) -> Verdict:
    """A run of the scenario as a footgun Verdict, its calls as the timeline."""
    spans = tuple(("  " * span.depth + span.label, span.start, span.end) for span in run.spans)
    finished = len(run.finished_spans())
    if run.finished:
        permits = "" if run.peak_permits is None else f", at most {run.peak_permits} permits in use"
        return Verdict(
            True, f"all {finished} calls finished in {run.elapsed_s:.2f} s{permits}", spans
        )
    return Verdict(
        False,
        f"deadlocked: {finished} of {OUTER + OUTER * INNER} calls finished before we gave "
        f"up after {run.elapsed_s:.1f} s",
        spans,
    )


async def _broken_verdict() -> Verdict:
    return verdict(await broken())


async def _fixed_verdict() -> Verdict:
    return verdict(await fixed())


EXHIBIT = Exhibit(
    name="nested-throttle",
    title="Nested calls through one plain semaphore",
    article="003: building a reusable throttler",
    why=(
        "The outer calls took every permit, then each waited on an inner call that needed a "
        "permit too: nobody could go on. The shared Throttle lends a call's permit to the calls "
        "it makes, so an inner call borrows its outer call's permit instead of waiting for one."
    ),
    broken=_broken_verdict,
    fixed=_fixed_verdict,
)
