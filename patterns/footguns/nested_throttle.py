"""Footgun: nested calls through one plain semaphore deadlock (source article 003).

The article's scenario: a limit of 3, five outer calls started at once, each making two inner
calls in turn, every call going through the same limiter. With a plain semaphore the first
three outer calls take every permit, their inner calls wait for a permit, and no permit will
come back until an inner call finishes: deadlock. :func:`broken` shows it (bounded by a
timeout); :func:`fixed` runs the same scenario through :class:`patterns.throttle.Throttle`,
whose nested calls borrow their parent's permit, and records the timeline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import anyio

from patterns.footguns.exhibit import Exhibit, Instrument, Verdict
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
    # One instrument per row kind, on one clock: the inner calls' own work (its peak is the
    # most calls working at once), the outer calls, and the inner calls' asks for a permit.
    working = Instrument()
    outers, asks = Instrument(working.origin), Instrument(working.origin)

    async def inner(label: str) -> None:
        await anyio.sleep(work_s)

    async def ask(label: str) -> None:
        await limited(working.wrap(inner), label)

    async def outer(i: int) -> None:
        for j in range(INNER):
            await asks.wrap(ask)(f"inner {i * INNER + j}")

    run = Run(finished=False, elapsed_s=0.0)
    with anyio.move_on_after(give_up_after):
        async with anyio.create_task_group() as tg:
            for i in range(OUTER):
                tg.start_soon(limited, outers.wrap(outer), i)
        run.finished = True
    run.elapsed_s = working.clock()
    run.peak_working = working.peak
    # A call cut short by the timeout is drawn as stuck; an ask only when it never got a permit.
    stuck = {False: " (stuck)", True: ""}
    run.spans = [
        *(Span(f"outer {c.item}{stuck[c.ok]}", 0, c.start, c.end) for c in outers.calls),
        *(Span(f"{c.item}{stuck[c.ok]}", 1, c.start, c.end) for c in working.calls),
        *(
            Span(f"{c.item} waiting for a permit (stuck)", 1, c.start, c.end)
            for c in asks.calls
            if not c.ok and c.item not in {w.item for w in working.calls}
        ),
    ]
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
