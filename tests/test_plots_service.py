"""The figures' side of a service: its capacity drawn, the calls it turned away or made wait
marked, identical runs drawn once, and the limit sweep's Little's law and knee. Reports are
built by hand (``build_report`` over made-up calls): no run, no sleep, no image snapshots."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from patterns.lab.harness import Report, build_report, knee
from patterns.lab.probe import Call
from patterns.lab.registry import PATTERNS
from patterns.lab.service import Behaviour, Felt, Service
from patterns.lab.workload import Item, Workload
from patterns.show import plots

#: Four items of 0.1 s each.
WORK = Workload(items=4, low=0.1, high=0.1)
ITEMS = list(WORK)
BOUNDED = [name for name, pattern in PATTERNS.items() if pattern.BOUNDED]


def report(
    calls: list[Call[Item]],
    *,
    pattern: str = "worker_pool",
    workload: Workload = WORK,
    limit: int = 2,
    capacity: int | None = None,
    behaviour: Behaviour = "reject",
    felt: Felt | None = None,
    makespan: float | None = None,
) -> Report:
    """A report of ``calls``, as the harness would give it (against a service of
    ``capacity`` that felt ``felt``, if given)."""
    service = None if capacity is None else (Service(capacity, behaviour=behaviour), felt or Felt())
    away = sum(1 for c in calls if not c.ok and not c.item.fails) if service else 0
    return build_report(
        pattern,
        workload,
        limit=limit,
        bounded=pattern != "scatter_gather",
        makespan=max((c.end for c in calls), default=0.0) if makespan is None else makespan,
        peak=max((sum(1 for o in calls if o.start <= c.start < o.end) for c in calls), default=0),
        busy=sum(c.end - c.start for c in calls),
        arrivals=sorted(c.end for c in calls),
        calls=calls,
        failed=sum(1 for c in calls if not c.ok and c.item.fails),
        transport="sleep",
        run_in="loop",
        cpu=None,
        turned_away=away,
        felt=service and (service[0], felt or Felt()),
    )


def two_at_a_time(shift: float = 0.0) -> list[Call[Item]]:
    """The four items two at a time: 0 and 1, then 2 and 3 (each ``shift`` s later)."""
    return [
        Call(item, item.index % 2, start + shift, start + shift + 0.1, True)
        for item, start in zip(ITEMS, (0.0, 0.0, 0.1, 0.1), strict=True)
    ]


def drawn(ax: Axes) -> dict[tuple[float, ...], list[Any]]:
    """The bars on ``ax`` by face colour: each bar's path."""
    bars: dict[tuple[float, ...], list[Any]] = {}
    for collection in ax.collections:
        if isinstance(collection, PolyCollection):
            colour = tuple(np.round(np.asarray(collection.get_facecolor())[0], 3))
            bars.setdefault(colour, []).extend(collection.get_paths())
    return bars


def rgba(colour: str) -> tuple[float, ...]:
    return tuple(np.round(to_rgba(colour), 3))


def capacity_lines(ax: Axes) -> list[list[float]]:
    return [
        list(np.asarray(line.get_ydata(), dtype=float))
        for line in ax.get_lines()
        if str(line.get_label()).startswith("service capacity")
    ]


# A service's capacity C is a line between lanes C-1 and C; without a service there is none.
def test_capacity_line_only_where_there_is_a_service() -> None:
    served, bare = (Figure().subplots() for _ in range(2))
    plots.timeline(report(two_at_a_time(), capacity=1), served)
    plots.timeline(report(two_at_a_time()), bare)
    assert capacity_lines(served) == [[1.0, 1.0]]
    assert capacity_lines(bare) == []


# Turned-away calls are bars of their own colour, as many as the report counts; failures stay red.
def test_turned_away_bars_are_counted_and_coloured() -> None:
    failing = replace(ITEMS[3], fails=True)
    calls = [
        Call(ITEMS[0], 0, 0.0, 0.1, True),
        Call(ITEMS[1], 1, 0.0, 0.0001, False),  # turned away, at once
        Call(ITEMS[2], 1, 0.0001, 0.0002, False),  # and again
        Call(failing, 1, 0.0002, 0.1002, False),  # failed at the end of its work
    ]
    served = report(calls, capacity=1)
    ax = Figure().subplots()
    plots.timeline(served, ax)
    bars = drawn(ax)
    assert served.turned_away == 2
    assert len(bars[rgba(plots.TURNED_AWAY)]) == served.turned_away
    assert len(bars[rgba(plots.FAILED)]) == 1


# Time past an item's latency is one hatched bar: first for a queue's wait, last for a slowdown.
@pytest.mark.parametrize(
    ("behaviour", "felt"),
    [("queue", Felt(peak_waiting=1, peak_in_service=1)), ("degrade", Felt(peak_in_service=2))],
)
def test_time_past_the_latency_is_marked_where_it_was_spent(
    behaviour: Behaviour, felt: Felt
) -> None:
    calls = [Call(ITEMS[0], 0, 0.0, 0.1, True), Call(ITEMS[1], 1, 0.0, 0.2, True)]
    ax = Figure().subplots()
    plots.timeline(report(calls, capacity=1, behaviour=behaviour, felt=felt), ax)
    (wait,) = drawn(ax)[rgba(plots.WAITED)]
    xs = wait.vertices[:, 0]
    expected = (0.0, 0.1) if behaviour == "queue" else (0.1, 0.2)
    assert (xs.min(), xs.max()) == pytest.approx(expected)


# Runs alike share a panel titled with all their names (5 + 1 -> 2); runs that differ do not.
def test_identical_panels_merge_and_different_ones_do_not() -> None:
    unbounded = report(
        [Call(item, item.index, 0.0, 0.1, True) for item in ITEMS], pattern="scatter_gather"
    )
    # Every other bounded run a millisecond off: jitter, not a different run.
    alike = [report(two_at_a_time(i % 2 * 0.001), pattern=name) for i, name in enumerate(BOUNDED)]
    fig = plots.compare_figure([unbounded, *alike])
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert len(titles) == 2
    assert titles[0].startswith("scatter_gather: ")
    assert titles[1].startswith(", ".join(BOUNDED) + ":")

    slower = report([replace(c, end=c.end + 0.05) for c in two_at_a_time()], pattern="semaphore")
    # The same makespan and peak, but items 0 and 2 called in each other's turn.
    swapped = [
        replace(c, start=0.1 - c.start, end=0.3 - c.end) if c.lane == 0 else c
        for c in two_at_a_time()
    ]
    for other in (slower, report(swapped, pattern="semaphore")):
        assert len(plots.compare_figure([alike[0], other]).axes) == 2


def sweep(goodputs: dict[int, float], behaviour: Behaviour = "reject") -> list[Report]:
    """Reports of a limit sweep against a service of capacity 6 whose goodput at each limit
    is the one given (a makespan to suit; no calls: the figure reads only the figures)."""
    workload = Workload(items=60, low=0.01, high=0.03)
    return [
        replace(
            report([], workload=workload, limit=limit, capacity=6, behaviour=behaviour),
            makespan_s=60 / goodput,
        )
        for limit, goodput in goodputs.items()
    ]


# Little's law is min(limit, capacity) / mean latency; each sweep's knee is ringed at its knee.
def test_sweep_draws_littles_law_and_the_knee() -> None:
    # Mean latency 0.02 s: Little's law allows 100 calls/s at limit 2, 300 from limit 6 on.
    rejecting = sweep({2: 98.0, 4: 190.0, 8: 290.0, 10: 295.0})
    queueing = sweep({2: 99.0, 4: 199.0, 6: 290.0, 8: 260.0, 10: 230.0}, "queue")
    fig = plots.limit_sweep({"reject": rejecting, "queue": queueing})
    goodput = fig.axes[0]
    lines = {line.get_gid(): line for line in goodput.get_lines()}
    law = lines["littles-law"]
    assert list(law.get_xdata()) == [2, 4, 6, 8, 10]  # type: ignore[arg-type]
    assert list(law.get_ydata()) == pytest.approx([100, 200, 300, 300, 300])  # type: ignore[arg-type]
    # A knee is no mere best: rejecting, limit 8 is within 5% of limit 10's goodput.
    assert (knee(rejecting).limit, knee(queueing).limit) == (8, 6)
    for name, runs in (("reject", rejecting), ("queue", queueing)):
        ringed = lines[f"knee {name}"]
        best = knee(runs)
        assert list(ringed.get_xdata()) == [best.limit]  # type: ignore[arg-type]
        assert list(ringed.get_ydata()) == pytest.approx([best.goodput_per_s])  # type: ignore[arg-type]
