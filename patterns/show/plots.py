"""Pictures of a run: when each call started and ended, how many were in flight, where time went.

Every function draws from harness reports onto a matplotlib ``Axes`` you pass in (or a figure it
makes), so the same code serves the command line (``--plot FILE.png``) and notebooks. matplotlib
comes with the ``plot`` extra: ``pip install -e '.[plot]'``.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from patterns.lab.harness import (
    Report,
    ideal_makespan,
    knee,
    littles_law,
    percentiles,
    speedups,
)
from patterns.lab.probe import Call

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

OK, SHADE, FAILED, IDEAL = "#4C72B0", "#7A9CCB", "#C44E52", "#55A868"
#: A service's marks: calls it turned away, time calls waited (or were slowed) past its
#: capacity, and the capacity itself.
TURNED_AWAY, WAITED, CAPACITY = "#8C1D6B", "#E1A23B", "#222222"


def figure(**options: Any) -> Figure:
    # A Figure made without pyplot: no global state, no display backend needed, and in
    # Jupyter it shows once, as the cell's value, not again when the cell ends.
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install -e '.[plot]'") from None
    return Figure(layout="constrained", **options)


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
    lanes = max((call.lane for call in report.calls), default=0) + 1
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
        ax.axhline(
            report.capacity,
            color=CAPACITY,
            linestyle="--",
            linewidth=1.2,
            label=f"service capacity {report.capacity}",
        )
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


def _panel_title(names: Sequence[str], report: Report) -> str:
    text = (
        f"{', '.join(names)}: {report.makespan_s:.2f} s, peak {report.peak_concurrency} in flight"
    )
    if report.efficiency is not None:  # none for a run that lost calls: the work not done
        text += f", {_percent(report.efficiency)} of the ideal"
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


def _service_legend(reports: Sequence[Report]) -> list[Any]:
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


def concurrency(report: Report, ax: Axes) -> None:
    """Calls in flight over time, as a step line, with the limit drawn (and the service's
    capacity, where there was one)."""
    events = sorted([(c.start, 1) for c in report.calls] + [(c.end, -1) for c in report.calls])
    times, counts, now = [0.0], [0], 0
    for time, change in events:
        now += change
        times.append(time)
        counts.append(now)
    ax.step(times, counts, where="post", color=OK, label="in flight")
    if report.bounded:
        ax.axhline(report.limit, color=FAILED, linestyle="--", label=f"limit {report.limit}")
    if report.capacity is not None:
        ax.axhline(
            report.capacity,
            color=CAPACITY,
            linestyle=":",
            linewidth=1.5,
            label=f"service capacity {report.capacity}",
        )
    ax.set_ylabel("calls in flight")
    ax.set_xlabel("seconds from start")
    ax.legend(loc="upper right", fontsize="small")


def latency_distribution(report: Report, ax: Axes) -> None:
    """The items' own latencies, in bins that fit them."""
    _histogram(list(report.workload.latencies()), ax, IDEAL, "item latency (s)")
    ax.set_ylabel("items")


def arrival_distribution(report: Report, ax: Axes) -> None:
    """When each result reached the consumer, in bins that fit them."""
    _histogram(report.arrivals, ax, OK, "time to result (s)")


def _histogram(values: Sequence[float], ax: Axes, colour: str, xlabel: str) -> None:
    # Bins of their own, from the data's spread: uniform 0.5-1.5 s reads as a flat run of bars,
    # not two, whatever the time to result spans beside it.
    count = min(30, max(5, round(len(values) ** 0.5)))
    ax.hist(values, bins=count, color=colour)
    ax.set_xlabel(xlabel)


def report_figure(report: Report) -> Figure:
    """One run: timeline, calls in flight, and the latency distribution."""
    fig = figure(figsize=(10, 9))
    axes = fig.subplot_mosaic(
        [["timeline"] * 2, ["concurrency"] * 2, ["latency", "arrival"]],
        height_ratios=[3, 1.5, 1.5],
    )
    timeline(report, axes["timeline"])
    concurrency(report, axes["concurrency"])
    axes["concurrency"].sharex(axes["timeline"])
    latency_distribution(report, axes["latency"])
    arrival_distribution(report, axes["arrival"])
    fig.suptitle(_title(report) + _against(report))
    if report.service is not None:
        handles = _service_legend([report])
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


def compare_figure(reports: Sequence[Report]) -> Figure:
    """Every pattern's timeline stacked on one shared time axis; runs identical to the one
    above (:func:`same_run`) share its panel, titled with all their names. Against a service,
    its capacity, the calls it turned away and those it made wait are drawn (:func:`timeline`)
    and explained in a legend below."""
    groups = runs_alike(reports)
    # A panel's height grows with its lanes, up to twice the usual: 20 rows stay readable.
    heights = [min(2.0, max(1.0, _lanes(group[0]) / 6)) for group in groups]
    served = any(r.service is not None for r in reports)
    fig = figure(figsize=(10, 1.2 + 1.6 * sum(heights) + (0.4 if served else 0)))
    axes = fig.subplots(len(groups), 1, sharex=True, squeeze=False, height_ratios=heights or None)
    span = max((r.makespan_s for r in reports), default=0.0)
    for ax, group in zip(axes[:, 0], groups, strict=True):
        timeline(group[0], ax, names=[r.pattern for r in group], span=span)
    axes[-1, 0].set_xlabel("seconds from start (one shared axis)")
    if reports:
        fig.suptitle(
            _title(reports[0])
            + ": a bar per call (numbered by item), a row per slot in use"
            + _against(reports[0])
        )
    if served:
        handles = _service_legend(reports)
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


def _against(report: Report) -> str:
    return "" if report.service is None else f"\ncalls to {report.service}"


def _lanes(report: Report) -> int:
    return max((call.lane for call in report.calls), default=0) + 1


#: Runs whose makespans differ by less than this share (of the longer) may be the same run.
SAME_WITHIN = 0.02


def same_run(a: Report, b: Report) -> bool:
    """Whether two runs would draw the same timeline: the same items, limit and service, makespans
    within :data:`SAME_WITHIN` of each other, the same peak in flight, failures and calls
    turned away, and every item called the same way: with the same outcome, starting and
    ending within :data:`SAME_WITHIN` of the makespan (and 2 ms) of its twin. The lane is not
    compared: it is where the probe put a call, and ties (equal latencies) go either way."""
    longer = max(a.makespan_s, b.makespan_s)
    if (a.items, a.limit, a.peak_concurrency, a.failed, a.turned_away, a.service) != (
        b.items,
        b.limit,
        b.peak_concurrency,
        b.failed,
        b.turned_away,
        b.service,
    ) or abs(a.makespan_s - b.makespan_s) > SAME_WITHIN * longer:
        return False
    if len(a.calls) != len(b.calls):
        return False
    near = max(SAME_WITHIN * longer, 0.002)

    def key(call: Call[Any]) -> tuple[Any, ...]:
        return (getattr(call.item, "index", 0), call.ok, call.start, call.end)

    return all(
        (x[0], x[1]) == (y[0], y[1]) and abs(x[2] - y[2]) <= near and abs(x[3] - y[3]) <= near
        for x, y in zip(sorted(map(key, a.calls)), sorted(map(key, b.calls)), strict=True)
    )


def runs_alike(reports: Sequence[Report]) -> list[list[Report]]:
    """``reports`` in order, each run that is :func:`same_run` as the one before it (the first
    of its group, whose timeline the panel draws) grouped with it: one panel each."""
    groups: list[list[Report]] = []
    for report in reports:
        if groups and same_run(groups[-1][0], report):
            groups[-1].append(report)
        else:
            groups.append([report])
    return groups


def sweep(reports: Sequence[Report], ax: Axes, *, metric: str = "throughput") -> None:
    """Throughput (or efficiency) against the limit, a line per pattern, with the ideal."""
    by_pattern: dict[str, list[Report]] = {}
    for report in reports:
        by_pattern.setdefault(report.pattern, []).append(report)
    for name, runs in by_pattern.items():
        runs.sort(key=lambda r: r.limit)
        values = [
            (r.throughput_per_s if metric == "throughput" else r.efficiency) or 0.0 for r in runs
        ]
        ax.plot([r.limit for r in runs], values, marker="o", label=name)
    if reports and metric == "throughput":
        workload = reports[0].workload
        limits = sorted({r.limit for r in reports})
        ideal = [workload.items / ideal_makespan(workload.latencies(), k) for k in limits]
        ax.plot(limits, ideal, color="black", linestyle="--", label="ideal")
    ax.set_xlabel("limit")
    ax.set_ylabel("items/s" if metric == "throughput" else "efficiency")
    ax.legend(fontsize="small")


#: A line's colour for each service behaviour, the same in every sweep figure.
BEHAVIOUR_COLOURS = {"reject": TURNED_AWAY, "queue": OK, "degrade": WAITED}
_MORE_COLOURS = ("#55A868", "#8172B3", "#937860", "#DA8BC3", "#64B5CD")
#: The items' own latency, the yardstick of the latency panel.
REFERENCE = "#8C8C8C"


def limit_sweep(
    runs: Sequence[Report] | Mapping[str, Sequence[Report]],
    *,
    axes: tuple[Axes, Axes] | None = None,
) -> Figure:
    """How much to bound: one pattern at increasing limits against a service of one
    capacity (:func:`patterns.lab.harness.sweep`), in two panels.

    Left, goodput (calls that succeeded per second) against the limit, under Little's law's
    ``min(limit, capacity) / mean latency`` (:func:`patterns.lab.harness.littles_law`, from the
    workload's mean latency), with the capacity a vertical line and the knee
    (:func:`patterns.lab.harness.knee`) ringed. Right, the p95 time per call as the caller saw
    it, and (on a second axis, dashed) the share of calls turned away.

    ``runs`` is one sweep, or several by name (``{"reject": [...], "queue": [...]}``): a
    line each, in one pair of panels, so behaviours compare at the same limit on the same
    scale. Draws on ``axes`` (goodput, latency) if given, else on a new figure, and returns
    the figure.
    """
    sweeps = {_sweep_name(runs): list(runs)} if isinstance(runs, Sequence) else dict(runs)
    sweeps = {name: sorted(r, key=lambda r: r.limit) for name, r in sweeps.items() if r}
    if not sweeps:
        raise ValueError("limit_sweep needs at least one report")
    if axes is None:
        fig = figure(figsize=(12, 5))
        goodput_ax, latency_ax = fig.subplots(1, 2)
    else:
        goodput_ax, latency_ax = axes
        root = goodput_ax.get_figure(root=True)
        if root is None:
            raise ValueError("limit_sweep draws on axes that belong to a figure")
        fig = root
    # A behaviour keeps its colour from figure to figure; one sweep is drawn in plain blue.
    colours = iter(_MORE_COLOURS if isinstance(runs, Mapping) else (OK,))
    colour = {name: BEHAVIOUR_COLOURS.get(name) or next(colours, "black") for name in sweeps}
    every = [r for reports in sweeps.values() for r in reports]
    first = every[0]
    limits = sorted({r.limit for r in every})

    # Left: goodput, Little's law above it, the capacity, the knee.
    capacities = sorted({r.capacity for r in every if r.capacity is not None})
    law_at = sorted(set(limits) | {c for c in capacities if limits[0] <= c <= limits[-1]})
    law = [littles_law(replace(first, limit=limit)) for limit in law_at]
    # The mean latency the law used, for its label: calls in flight over the goodput it allows.
    mean = min(law_at[0], first.capacity or law_at[0], first.items) / (law[0] or math.inf)
    goodput_ax.plot(
        law_at,
        [math.nan if v is None else v for v in law],
        color="black",
        linestyle="--",
        linewidth=1.2,
        label=f"Little's law: min(limit, capacity) / {_seconds(mean)} (the workload's mean)",
        gid="littles-law",
    )
    knees: dict[int, list[str]] = {}
    for name, reports in sweeps.items():
        goodput_ax.plot(
            [r.limit for r in reports],
            [math.nan if r.goodput_per_s is None else r.goodput_per_s for r in reports],
            marker="o",
            color=colour[name],
            label=name,
        )
        try:
            found = knee(reports)
        except ValueError:  # nothing succeeded: no knee to mark
            continue
        goodput_ax.plot(
            [found.limit],
            [found.goodput_per_s],
            marker="o",
            markersize=15,
            markerfacecolor="none",
            markeredgewidth=2,
            color=colour[name],
            linestyle="none",
            gid=f"knee {name}",
        )
        knees.setdefault(found.limit, []).append(name)
    for limit, names in knees.items():
        top = max(r.goodput_per_s or 0.0 for n in names for r in sweeps[n] if r.limit == limit)
        which = f"\n({', '.join(names)})" if len(sweeps) > 1 else ""
        goodput_ax.annotate(
            f"knee: limit {limit}{which}",
            (limit, top),
            xytext=(0, 12),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize="small",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.8},
        )
    goodput_ax.set_ylabel("goodput: calls that succeeded per second")
    # Room above the best for the knee's label.
    highest = [v for v in law if v is not None] + [r.goodput_per_s or 0.0 for r in every]
    goodput_ax.set_ylim(0, 1.2 * max(highest))

    # Right: the caller's p95, and the share turned away on an axis of its own.
    for name, reports in sweeps.items():
        latency_ax.plot(
            [r.limit for r in reports],
            [math.nan if r.call_p95_s is None else r.call_p95_s for r in reports],
            marker="o",
            color=colour[name],
            label=f"{name}: p95 per call",
        )
    own = _p95(list(first.workload.latencies()))
    if own is not None:
        latency_ax.axhline(
            own,
            color=REFERENCE,
            linestyle=":",
            linewidth=1.5,
            label="p95 of the items' own latency",
        )
    latency_ax.set_ylabel("p95 time per call, as the caller saw it (s)")
    # Room above the lines for the legend, at the top left.
    seen = [r.call_p95_s for r in every if r.call_p95_s is not None] + [own or 0.0]
    latency_ax.set_ylim(0, 1.45 * max(seen))
    handles, labels = latency_ax.get_legend_handles_labels()
    refused = {n: rs for n, rs in sweeps.items() if any(r.turned_away for r in rs)}
    if refused:
        share_ax = latency_ax.twinx()
        for name, reports in refused.items():
            share_ax.plot(
                [r.limit for r in reports],
                [r.turned_away / r.items if r.items else 0.0 for r in reports],
                marker="x",
                linestyle="--",
                color=colour[name],
                label=f"{name}: share turned away",
            )
        share_ax.set_ylim(0, 1.05)
        share_ax.yaxis.set_major_formatter("{x:.0%}")
        share_ax.set_ylabel("calls turned away (dashed)")
        more_handles, more_labels = share_ax.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    latency_ax.legend(handles, labels, fontsize="small", loc="upper left")

    for ax in (goodput_ax, latency_ax):
        for capacity in capacities:
            ax.axvline(capacity, color=CAPACITY, linestyle=":", linewidth=1.2)
            ax.annotate(
                f"service capacity {capacity}",
                (capacity, 0.45),
                xycoords=("data", "axes fraction"),
                xytext=(3, 0),
                textcoords="offset points",
                rotation=90,
                ha="left",
                va="center",
                fontsize="small",
                color=CAPACITY,
            )
        ax.set_xlabel("limit (calls in flight the pattern allows)")
        ax.set_xticks(limits)
        ax.spines["top"].set_visible(False)
    goodput_ax.legend(fontsize="small", loc="lower right")
    goodput_ax.set_title("Goodput: what the limit buys", loc="left", fontsize="medium")
    latency_ax.set_title("What the caller pays past the capacity", loc="left", fontsize="medium")
    if axes is None:
        fig.suptitle(
            f"{first.pattern} at limits {limits[0]}–{limits[-1]}: {first.workload.describe()}, "
            + _sweep_service(every)
        )
    return fig


def _sweep_name(reports: Sequence[Report]) -> str:
    """One sweep's line label: its pattern (the service is in the figure's title)."""
    return reports[0].pattern if reports else ""


def _sweep_service(reports: Sequence[Report]) -> str:
    services = list(dict.fromkeys(r.service for r in reports if r.service is not None))
    if len(services) == 1:
        return f"calls to {services[0]}"
    capacities = sorted({r.capacity for r in reports if r.capacity is not None})
    return "against a service of capacity " + ", ".join(map(str, capacities))


def _p95(values: Sequence[float]) -> float | None:
    return percentiles(values)[1]


def _seconds(value: float) -> str:
    return f"{value * 1000:g} ms" if value < 1 else f"{value:g} s"


def spans(
    spans: Sequence[tuple[str, float, float]], ax: Axes, *, title: str = "", rows: int = 16
) -> None:
    """Labelled spans (a footgun's timeline): a row per label; past ``rows`` rows, every
    n-th is labelled, so that the labels never overlap."""
    labels = list(dict.fromkeys(label for label, _, _ in spans))
    if not labels:
        ax.text(0.5, 0.5, "nothing ran", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
        return
    from matplotlib.collections import PolyCollection

    row = {label: i for i, label in enumerate(labels)}
    boxes: dict[str, list[list[tuple[float, float]]]] = {OK: [], FAILED: []}
    for label, start, end in spans:
        # Red for what is stuck, or what blocks everything else; blue for work going on.
        colour = FAILED if _gone_wrong(label) else OK
        top, right = row[label] + 0.1, start + max(end - start, 1e-4)
        boxes[colour].append([(start, top), (right, top), (right, top + 0.8), (start, top + 0.8)])
    # One collection per colour, not an artist per span: 10,000 spans draw in a second.
    for colour, shapes in boxes.items():
        if shapes:
            ax.add_collection(PolyCollection(shapes, facecolors=colour, edgecolors="none"))
    ax.autoscale_view()
    ax.set_ylim(len(labels), 0)
    step = -(-len(labels) // rows)  # 40 rows: every third labelled
    ax.set_yticks([i + 0.5 for i in range(0, len(labels), step)], labels[::step], fontsize="small")
    if step > 1:
        ax.set_ylabel(f"{len(labels):,} rows")
    ax.set_xlabel("seconds from start")
    if title:
        ax.set_title(title, loc="left", fontsize="medium")


def verdicts(
    broken: Sequence[tuple[str, float, float]],
    fixed: Sequence[tuple[str, float, float]],
    title: str,
    *,
    gauges: tuple[Sequence[tuple[float, int, float]], Sequence[tuple[float, int, float]]] = (
        (),
        (),
    ),
) -> Figure:
    """A footgun, broken above fixed on one time axis, titled, with a legend for the red; with
    ``gauges`` (time, items held, MiB held), a row showing what each version held."""
    from matplotlib.patches import Patch

    rows: list[Any] = [["broken", "broken"], ["fixed", "fixed"]]
    if any(gauges):
        rows.append(["held", "memory"])
    fig = figure(figsize=(10, 3 * len(rows)))
    fig.suptitle(title)
    axes = fig.subplot_mosaic(rows, sharex=True)
    spans(broken, axes["broken"], title="broken")
    spans(fixed, axes["fixed"], title="fixed")
    if any(gauges):
        # The timelines alone can argue for the footgun (the broken version may finish first):
        # what each version held while it ran is the cost the timeline does not show.
        versions = ((FAILED, "broken", gauges[0]), (OK, "fixed", gauges[1]))
        for index, column, ylabel in ((1, "held", "items held"), (2, "memory", "MiB held")):
            ax = axes[column]
            for colour, label, series in versions:
                times, values = [g[0] for g in series], [g[index] for g in series]
                # Dots at the samples: a loop busy spawning tasks samples late, and says so.
                ax.plot(times, values, ".-", color=colour, label=label)
            ax.set_ylabel(ylabel)
            ax.set_xlabel("seconds from start")
            ax.legend(loc="upper right", fontsize="small")
    legend = [Patch(color=OK, label="a call at work")]
    if any(_gone_wrong(label) for label, _, _ in [*broken, *fixed]):
        legend.append(Patch(color=FAILED, label="stuck, blocking, timed out or turned away"))
    fig.legend(handles=legend, loc="outside lower center", ncols=len(legend))
    return fig


# The three kinds of work and the places they run, in the order the panels and bars show them.
_KINDS = ("io", "blocking", "cpu")
_PLACES = ("loop", "threads", "processes")
_TITLES = {
    "io": "I/O, awaited: the event loop waits on all at once",
    "blocking": "Blocking calls: they stall the loop; threads wait side by side",
    "cpu": "CPU-bound Python: the GIL holds threads to one core",
}
#: Below this many times faster, a bar reads as no faster than one at a time (drawn red).
NO_FASTER = 1.2


def parallel_ideal(report: Report, cores: int) -> int:
    """The most times faster than one at a time ``report``'s kind can run: as many at once as
    the limit allows (and items there are), and no more than the cores for CPU work."""
    slots = max(1, min(report.limit, report.items))
    return min(slots, cores) if report.work == "cpu" else slots


def parallel_figure(reports: Sequence[Report], *, cores: int | None = None) -> Figure:
    """The kinds of work side by side, a panel each (io, blocking, cpu): a bar per place each
    ran (the event loop, threads, processes), as high as it ran faster than the same work one
    at a time (:func:`patterns.lab.harness.speedups`), a dashed line at the most it could
    (:func:`parallel_ideal`); below, the cores each kept busy. ``cores`` defaults to this
    machine's. A kind run twice in one place shows its last run."""
    if not reports:
        raise ValueError("parallel_figure needs at least one report")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    cores = cores or os.cpu_count() or 1
    runs: dict[str, dict[str, tuple[Report, float | None]]] = {}
    for report, speedup in zip(reports, speedups(reports), strict=True):
        runs.setdefault(report.work, {})[report.run_in] = (report, speedup)
    kinds = [k for k in _KINDS if k in runs]
    # Any run of a kind stands for its limit and items: the cases share them.
    samples = {k: next(iter(runs[k].values()))[0] for k in kinds}
    ideals = {k: parallel_ideal(samples[k], cores) for k in kinds}
    # One scale per row, so that the panels compare at a glance.
    top = max([s or 0.0 for p in runs.values() for _, s in p.values()] + list(ideals.values()))
    busiest = max([cores] + [r.cores_busy or 0.0 for p in runs.values() for r, _ in p.values()])

    fig = figure(figsize=(4.4 * len(kinds) + 0.6, 7.4))
    axes = fig.subplots(2, len(kinds), sharey="row", squeeze=False, height_ratios=[2.6, 1])
    for column, kind in enumerate(kinds):
        speed_ax, busy_ax, ideal = axes[0, column], axes[1, column], ideals[kind]
        for x, place in enumerate(_PLACES):
            if place not in runs[kind]:
                note = "awaits:\nnothing to\nhand off" if kind == "io" else "not run"
                speed_ax.text(x, top * 0.03, note, ha="center", color="grey", fontsize="small")
                continue
            report, speedup = runs[kind][place]
            height, busy = speedup or 0.0, report.cores_busy
            # Red where running many at once gained nothing, though it could have.
            colour = FAILED if ideal > NO_FASTER and height < NO_FASTER else OK
            speed_ax.bar(x, height, width=0.6, color=colour)
            _label(speed_ax, x, height, _maybe(speedup, ".1f", "×"), fontweight="bold")
            busy_ax.bar(x, busy or 0.0, width=0.6, color=SHADE)
            _label(busy_ax, x, busy or 0.0, _maybe(busy, ".2f"))
        capped = kind == "cpu" and ideal < min(samples[kind].limit, samples[kind].items)
        why = f"{cores} cores" if capped else f"{ideal} at a time"
        speed_ax.axhline(ideal, color=IDEAL, linestyle="--", linewidth=1.5)
        # Its label over the lowest bar (the rightmost of equals), clear of the bars' own.
        shown = [runs[kind][p][1] or 0.0 if p in runs[kind] else 0.0 for p in _PLACES]
        lowest = min(range(len(_PLACES)), key=lambda x: (shown[x], -x))
        at, align = {0: (-0.5, "left"), 1: (1.0, "center")}.get(lowest, (2.5, "right"))
        speed_ax.text(at, ideal, f"at most {ideal}× ({why})", ha=align, va="bottom", color=IDEAL)
        speed_ax.set_title(_TITLES[kind], fontsize="medium")
        on_the_loop = "event loop\n(one at a time)" if kind != "io" else "event loop"
        speed_ax.set_xticks(range(len(_PLACES)), [on_the_loop, "threads", "processes"])
        busy_ax.axhline(cores, color="black", linestyle=":", linewidth=1)
        busy_ax.set_xticks(range(len(_PLACES)), ["event loop", "threads", "processes"])
        for ax in (speed_ax, busy_ax):
            ax.set_xlim(-0.55, 2.55)
            ax.spines[["top", "right"]].set_visible(False)
    axes[0, 0].set_ylim(0, top * 1.15)
    axes[1, 0].set_ylim(0, busiest * 1.35)
    axes[0, 0].set_ylabel("× faster than one at a time")
    axes[1, 0].set_ylabel("cores busy\n(CPU s per s)")
    first = reports[0]
    w = first.workload
    fig.suptitle(
        f"Concurrency is not parallelism: {w.items:,} items of {w.low:g}–{w.high:g} s each, "
        f"{first.limit} at a time ({first.pattern}, {first.backend}, {cores} cores)"
    )
    legend = [
        Patch(color=OK, label="faster than one at a time"),
        Patch(color=FAILED, label="no faster than one at a time"),
        Line2D([], [], color=IDEAL, linestyle="--", label="the most it could (limit, or cores)"),
        Patch(color=SHADE, label="cores busy"),
        Line2D([], [], color="black", linestyle=":", label=f"this machine's {cores} cores"),
    ]
    fig.legend(handles=legend, loc="outside lower center", ncols=len(legend), fontsize="small")
    return fig


def _label(ax: Axes, x: float, height: float, text: str, **options: Any) -> None:
    """``text`` just above the bar at ``x``, on a white ground: a line through it (the ideal,
    the cores) does not strike it out."""
    ground = {"facecolor": "white", "edgecolor": "none", "pad": 1}
    ax.annotate(
        text,
        (x, height),
        xytext=(0, 2),
        textcoords="offset points",
        ha="center",
        va="bottom",
        bbox=ground,
        **options,
    )


def _maybe(value: float | None, spec: str, suffix: str = "") -> str:
    return "–" if value is None else format(value, spec) + suffix


def save(fig: Figure, path: str) -> None:
    """Write ``fig`` to ``path``; the format follows the extension (see :func:`check_format`)."""
    fig.savefig(path, dpi=110)


def formats() -> dict[str, str]:
    """The file formats matplotlib can write, by extension, as it names them."""
    from matplotlib.backend_bases import FigureCanvasBase

    return FigureCanvasBase.get_supported_filetypes()


def check_format(path: str) -> str:
    """The format :func:`save` writes ``path`` in, or a ValueError saying why it cannot.

    The extension must be one matplotlib knows; and since some of those need more than
    matplotlib (pgf a TeX install, the bitmaps a Pillow built with them), a tiny figure is drawn
    in that format, in memory, to find out now rather than after the run.
    """
    extension = os.path.splitext(path)[1][1:].lower()
    known = formats()
    if not extension:
        raise ValueError(f"{path} needs an extension naming the format: {', '.join(sorted(known))}")
    if extension not in known:
        raise ValueError(
            f"matplotlib cannot write .{extension} files; choose from: {', '.join(sorted(known))}"
        )
    trial = figure(figsize=(1, 1))
    trial.subplots().set_title("x")
    try:
        trial.savefig(io.BytesIO(), format=extension)
    except Exception as exc:  # whatever the format's writer needs and lacks
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"matplotlib cannot write .{extension} files here: {reason}") from None
    return extension


def _figures(value: float) -> str:
    """``value`` to three significant figures, zeros kept (``4.00``, ``39.7``, ``1,234``)."""
    places = 2 - math.floor(math.log10(abs(value))) if value else 2
    return f"{value:,.{max(0, places)}f}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _title(report: Report) -> str:
    workload = report.workload
    return f"{workload.describe()}, limit {report.limit}, {report.backend}"


def _gone_wrong(label: str) -> bool:
    """A span an exhibit marked as what went wrong: stuck, blocking everything else, timed
    out, or turned away by the service."""
    marks = ("(stuck)", "blocked", "(timed out)", "(turned away)")
    return any(mark in label for mark in marks)
