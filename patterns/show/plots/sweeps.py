"""Pictures of a sweep: a pattern at increasing limits, throughput against the limit, and how
much to bound against a service of one capacity (``sweep --plot``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from patterns.lab.report import Report, ideal_makespan, knee, littles_law, percentiles
from patterns.show.plots.canvas import CAPACITY, OK, TURNED_AWAY, WAITED, figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


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
    ``min(limit, capacity) / mean latency`` (:func:`patterns.lab.report.littles_law`, from the
    workload's mean latency), with the capacity a vertical line and the knee
    (:func:`patterns.lab.report.knee`) ringed. Right, the p95 time per call as the caller saw
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
    limits = sorted({r.limit for r in every})
    capacities = sorted({r.capacity for r in every if r.capacity is not None})
    _goodput(goodput_ax, sweeps, colour, limits, capacities)
    _latency(latency_ax, sweeps, colour)
    for ax in (goodput_ax, latency_ax):
        _capacities_and_limits(ax, capacities, limits)
    goodput_ax.legend(fontsize="small", loc="lower right")
    goodput_ax.set_title("Goodput: what the limit buys", loc="left", fontsize="medium")
    latency_ax.set_title("What the caller pays past the capacity", loc="left", fontsize="medium")
    if axes is None:
        first = every[0]
        fig.suptitle(
            f"{first.pattern} at limits {limits[0]}–{limits[-1]}: {first.workload.describe()}, "
            + _sweep_service(every)
        )
    return fig


def _goodput(
    ax: Axes,
    sweeps: Mapping[str, Sequence[Report]],
    colour: Mapping[str, str],
    limits: Sequence[int],
    capacities: Sequence[int],
) -> None:
    """The left panel: goodput against the limit, a line per sweep with its knee ringed and
    named, under Little's law."""
    every = [r for reports in sweeps.values() for r in reports]
    first = every[0]
    law_at = sorted(set(limits) | {c for c in capacities if limits[0] <= c <= limits[-1]})
    law = [littles_law(replace(first, limit=limit)) for limit in law_at]
    # The mean latency the law used, for its label: calls in flight over the goodput it allows.
    mean = min(law_at[0], first.capacity or law_at[0], first.items) / (law[0] or math.inf)
    ax.plot(
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
        _by_limit(ax, reports, lambda r: r.goodput_per_s, color=colour[name], label=name)
        try:
            found = knee(reports)
        except ValueError:  # nothing succeeded: no knee to mark
            continue
        ax.plot(
            [found.limit],
            [found.goodput_per_s or 0.0],  # a knee has a goodput: knee() picks among those
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
        ax.annotate(
            f"knee: limit {limit}{which}",
            (limit, top),
            xytext=(0, 12),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize="small",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.8},
        )
    ax.set_ylabel("goodput: calls that succeeded per second")
    # Room above the best for the knee's label.
    highest = [v for v in law if v is not None] + [r.goodput_per_s or 0.0 for r in every]
    ax.set_ylim(0, 1.2 * max(highest))


def _latency(ax: Axes, sweeps: Mapping[str, Sequence[Report]], colour: Mapping[str, str]) -> None:
    """The right panel: the caller's p95 against the limit, a line per sweep, beside the items'
    own; and, where calls were turned away, their share on an axis of its own."""
    every = [r for reports in sweeps.values() for r in reports]
    first = every[0]
    for name, reports in sweeps.items():
        label = f"{name}: p95 per call"
        _by_limit(ax, reports, lambda r: r.call_p95_s, color=colour[name], label=label)
    own = _p95(list(first.workload.latencies()))
    if own is not None:
        ax.axhline(
            own,
            color=REFERENCE,
            linestyle=":",
            linewidth=1.5,
            label="p95 of the items' own latency",
        )
    ax.set_ylabel("p95 time per call, as the caller saw it (s)")
    # Room above the lines for the legend, at the top left.
    seen = [r.call_p95_s for r in every if r.call_p95_s is not None] + [own or 0.0]
    ax.set_ylim(0, 1.45 * max(seen))
    handles, labels = ax.get_legend_handles_labels()
    refused = {n: rs for n, rs in sweeps.items() if any(r.turned_away for r in rs)}
    if refused:
        share_ax = ax.twinx()
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
    ax.legend(handles, labels, fontsize="small", loc="upper left")


def _by_limit(
    ax: Axes, reports: Sequence[Report], value: Callable[[Report], float | None], **style: Any
) -> None:
    """A line of each report's ``value`` against its limit, dotted at each limit, with a gap
    where a report has none."""
    values = [value(r) for r in reports]
    ax.plot(
        [r.limit for r in reports],
        [math.nan if v is None else v for v in values],
        marker="o",
        **style,
    )


def _capacities_and_limits(ax: Axes, capacities: Sequence[int], limits: Sequence[int]) -> None:
    """The service's capacities as vertical lines, and the limits swept as the x axis."""
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
