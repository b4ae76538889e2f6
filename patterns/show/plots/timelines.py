"""A run's timeline: a row per slot, a bar per call, and what a service adds to it.

Against a service a timeline marks its capacity, the calls it turned away and the time calls
spent beyond their own latency (waiting in its queue, or slowed down past its capacity); the
legend below a figure names only the marks its timelines show.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from patterns.lab.probe import Call
from patterns.lab.report import Report
from patterns.show.plots.canvas import (
    CAPACITY,
    FAILED,
    OK,
    SHADE,
    TURNED_AWAY,
    WAITED,
    capacity_line,
)
from patterns.show.text import maybe

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def timeline(
    report: Report, ax: Axes, *, names: Sequence[str] = (), span: float | None = None
) -> None:
    """A row per lane (a slot the probe saw in use), a bar per call; failed calls in red.

    Neighbouring calls in a lane alternate shades and, when there are few, carry their item's
    number, so each call reads as its own bar. Where the run had a service, its capacity is a
    dashed line between the lanes it fills and those past it, a call it turned away is a thin
    :data:`TURNED_AWAY` bar (at least ``span / 250`` wide: it took next to no time), and the
    time a call spent beyond its item's own latency (:func:`beyond_latency`) is hatched in
    :data:`WAITED`: first, where it waited in the service's queue; last, where the service
    slowed it down past its capacity. ``names`` titles the panel for several identical runs;
    ``span`` is the time axis's length (by default this run's).
    """
    lanes = lanes_of(report)
    label = len(report.calls) <= 80 and lanes <= 12
    served = report.service is not None
    thin = (span or report.makespan_s or 1.0) / 250
    waits_first = _waited(report)
    # One artist per lane and colour, not per call: 1,200 calls draw in about a second.
    bars: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for call in report.calls:
        index = getattr(call.item, "index", None)
        width = call.end - call.start
        if served and turned_away(call):
            bars.setdefault((call.lane, TURNED_AWAY), []).append((call.start, max(width, thin)))
            continue
        shade = OK if not index or index % 2 == 0 else SHADE
        colour = shade if call.ok else FAILED
        over = beyond_latency(call) if served else 0.0
        if over:
            # The wait comes before the work (a queue); a slowdown stretches it (drawn last).
            wait_at = call.start if waits_first else call.end - over
            work_at = call.start + over if waits_first else call.start
            bars.setdefault((call.lane, WAITED), []).append((wait_at, over))
            bars.setdefault((call.lane, colour), []).append((work_at, width - over))
        else:
            bars.setdefault((call.lane, colour), []).append((call.start, width))
        if label and index is not None:
            ax.text(
                call.start + width / 2,
                call.lane + 0.5,
                str(index),
                ha="center",
                va="center",
                color="white",
                fontsize="x-small",
            )
    if label:
        # A call turned away takes no time: those of a lane overlap in one thin bar, so the
        # count is written beside it.
        for (lane, colour), spans in bars.items():
            if colour == TURNED_AWAY:
                ax.annotate(
                    f"{len(spans):,} turned away",
                    (min(start for start, _ in spans), lane + 0.5),
                    xytext=(6, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize="x-small",
                    color=TURNED_AWAY,
                )
    for (lane, colour), spans in bars.items():
        if colour == TURNED_AWAY:  # no white edge: it would hide a bar this thin
            options: dict[str, Any] = {"edgecolors": "none"}
        elif colour == WAITED:
            options = {"edgecolors": "white", "linewidth": 1.2, "hatch": "////"}
        else:
            options = {"edgecolors": "white", "linewidth": 1.2}
        ax.broken_barh(spans, (lane + 0.1, 0.8), facecolors=colour, **options)
    top = lanes
    if report.capacity is not None:
        # Between lane capacity-1 and lane capacity (a call on a lane above it started with
        # at least the capacity in flight), with a lane of room above it for its label.
        top = lanes if lanes > report.capacity else report.capacity + 1
        capacity_line(ax, report.capacity, linestyle="--", linewidth=1.2)
        ax.annotate(
            f"service capacity {report.capacity}",
            (1, report.capacity),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 2),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize="small",
            color=CAPACITY,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8},
        )
    ax.set_ylim(0, top)
    ax.set_ylabel("slot")
    step = max(1, -(-lanes // 8))
    ax.set_yticks(
        [lane + 0.5 for lane in range(0, lanes, step)],
        [str(lane) for lane in range(0, lanes, step)],
    )
    title = _panel_title(names or [report.pattern], report)
    ax.set_title(title, loc="left", fontsize="medium")


def lanes_of(report: Report) -> int:
    """How many lanes (slots the probe saw in use) the run's timeline has: a row each."""
    return max((call.lane for call in report.calls), default=0) + 1


def run_title(report: Report, gloss: str = "") -> str:
    """A figure's title for ``report``'s run: the workload, limit and backend, then ``gloss``,
    then on a line of its own the service the calls went to, where there was one."""
    title = f"{report.workload.describe()}, limit {report.limit}, {report.backend}{gloss}"
    return title if report.service is None else f"{title}\ncalls to {report.service}"


def _panel_title(names: Sequence[str], report: Report) -> str:
    text = (
        f"{', '.join(names)}: {report.makespan_s:.2f} s, peak {report.peak_concurrency} in flight"
    )
    if report.efficiency is not None:  # none for a run that lost calls: the work not done
        text += f", {maybe(report.efficiency, '.0%')} of the ideal"
    costs = []
    if report.turned_away:
        costs.append(f"{report.turned_away:,} of {report.items:,} turned away")
    if report.peak_waiting:
        costs.append(f"up to {report.peak_waiting:,} waiting")
    if _slowed(report):
        costs.append(f"up to {report.peak_in_service:,} in service")
    if len(names) > 1 and len(text) > 90:  # too long for one line: the figures go below
        text = text.replace(": ", ":\n", 1)
    if report.service is not None and report.goodput_per_s is not None:
        costs.append(f"goodput {_figures(report.goodput_per_s)} calls/s")
    return text + "".join(f"; {cost}" for cost in costs)


def _figures(value: float) -> str:
    """``value`` to three significant figures, zeros kept (``4.00``, ``39.7``, ``1,234``)."""
    places = 2 - math.floor(math.log10(abs(value))) if value else 2
    return f"{value:,.{max(0, places)}f}"


#: A call's time beyond its item's latency counts as waiting (or being slowed down) past this
#: share of the latency and this many seconds: less is the event loop's own jitter.
EXTRA_SHARE, EXTRA_FLOOR = 0.1, 0.002


def turned_away(call: Call[Any]) -> bool:
    """Whether ``call``, made to a service, was turned away: it did not succeed, and its item
    was not drawn to fail (so the service refused it: :class:`patterns.lab.service.Overloaded`)."""
    return not call.ok and not getattr(call.item, "fails", False)


def beyond_latency(call: Call[Any]) -> float:
    """How long a call that succeeded took beyond its item's own latency, where that is more
    than the loop's jitter (:data:`EXTRA_SHARE` of it, and :data:`EXTRA_FLOOR` s); else 0:
    against a service, the time it waited in its queue or was slowed down past its capacity."""
    latency = getattr(call.item, "latency", None)
    if not call.ok or latency is None:
        return 0.0
    over = call.end - call.start - latency
    return over if over > max(EXTRA_SHARE * latency, EXTRA_FLOOR) else 0.0


def _slowed(report: Report) -> bool:
    """Whether the service had more in service than its capacity: it slowed them down."""
    capacity, peak = report.capacity, report.peak_in_service
    return capacity is not None and peak is not None and peak > capacity


def _waited(report: Report) -> bool:
    """Whether a call's extra time is a wait before its work (a queue, a rate) rather than a
    slowdown of it (a degrading service)."""
    return bool(report.peak_waiting) or not _slowed(report)


def _extra_label(reports: Sequence[Report]) -> str:
    waited = any(r.peak_waiting for r in reports)
    slowed = any(_slowed(r) for r in reports)
    if waited and slowed:
        return "time waited at, or slowed by, the service"
    return "time slowed past the capacity" if slowed else "time waited at the service"


def service_legend(reports: Sequence[Report]) -> list[Any]:
    """The legend of what a service adds to timelines: only what the reports show."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    calls = [(r, c) for r in reports if r.service is not None for c in r.calls]
    handles: list[Any] = [Patch(color=OK, label="a call: its item's own latency")]
    if any(not c.ok and not turned_away(c) for _, c in calls):
        handles.append(Patch(color=FAILED, label="failed"))
    if any(turned_away(c) for _, c in calls):
        handles.append(Patch(color=TURNED_AWAY, label="turned away by the service"))
    if any(beyond_latency(c) for _, c in calls):
        label = _extra_label([r for r in reports if r.service is not None])
        handles.append(Patch(facecolor=WAITED, edgecolor="white", hatch="////", label=label))
    if any(r.capacity is not None for r in reports):
        handles.append(Line2D([], [], color=CAPACITY, linestyle="--", label="service capacity"))
    return handles
