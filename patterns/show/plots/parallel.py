"""The parallelism picture: each kind of work (io, blocking, cpu) run on the event loop, in
threads and in processes, as many times faster than one at a time as it ran, beside the most it
could, and the cores each kept busy (``parallel --plot``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from patterns.lab.report import Report, speedups
from patterns.show.plots.canvas import FAILED, IDEAL, OK, SHADE, figure
from patterns.show.text import maybe

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


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
    at a time (:func:`patterns.lab.report.speedups`), a dashed line at the most it could
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
            _label(speed_ax, x, height, maybe(speedup, ".1f", "×"), fontweight="bold")
            busy_ax.bar(x, busy or 0.0, width=0.6, color=SHADE)
            _label(busy_ax, x, busy or 0.0, maybe(busy, ".2f"))
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
