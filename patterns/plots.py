"""Pictures of a run: when each call started and ended, how many were in flight, where time went.

Every function draws from harness reports onto a matplotlib ``Axes`` you pass in (or a figure it
makes), so the same code serves the command line (``--plot FILE.png``) and notebooks. matplotlib
comes with the ``plot`` extra: ``pip install -e '.[plot]'``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from patterns.harness import Report, ideal_makespan, speedups

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

OK, SHADE, FAILED, IDEAL = "#4C72B0", "#7A9CCB", "#C44E52", "#55A868"


def figure(**options: Any) -> Figure:
    # A Figure made without pyplot: no global state, no display backend needed, and in
    # Jupyter it shows once, as the cell's value, not again when the cell ends.
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install -e '.[plot]'") from None
    return Figure(layout="constrained", **options)


def timeline(report: Report, ax: Axes) -> None:
    """A row per lane (a slot the probe saw in use), a bar per call; failed calls in red.

    Neighbouring calls in a lane alternate shades and, when there are few, carry their item's
    number, so each call reads as its own bar.
    """
    lanes = max((call.lane for call in report.calls), default=0) + 1
    label = len(report.calls) <= 80 and lanes <= 12
    # One artist per lane and colour, not per call: 1,200 calls draw in about a second.
    bars: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for call in report.calls:
        index = getattr(call.item, "index", None)
        shade = OK if not index or index % 2 == 0 else SHADE
        colour = shade if call.ok else FAILED
        width = call.end - call.start
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
    for (lane, colour), spans in bars.items():
        ax.broken_barh(
            spans, (lane + 0.1, 0.8), facecolors=colour, edgecolors="white", linewidth=1.2
        )
    ax.set_ylim(0, lanes)
    ax.set_ylabel("slot")
    step = max(1, -(-lanes // 8))
    ax.set_yticks(
        [lane + 0.5 for lane in range(0, lanes, step)],
        [str(lane) for lane in range(0, lanes, step)],
    )
    ax.set_title(
        f"{report.pattern}: {report.makespan_s:.2f} s, peak {report.peak_concurrency} in flight, "
        f"{_percent(report.efficiency)} of the ideal",
        loc="left",
        fontsize="medium",
    )


def concurrency(report: Report, ax: Axes) -> None:
    """Calls in flight over time, as a step line, with the limit drawn."""
    events = sorted([(c.start, 1) for c in report.calls] + [(c.end, -1) for c in report.calls])
    times, counts, now = [0.0], [0], 0
    for time, change in events:
        now += change
        times.append(time)
        counts.append(now)
    ax.step(times, counts, where="post", color=OK, label="in flight")
    if report.bounded:
        ax.axhline(report.limit, color=FAILED, linestyle="--", label=f"limit {report.limit}")
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
    fig.suptitle(_title(report))
    return fig


def compare_figure(reports: Sequence[Report]) -> Figure:
    """Every pattern's timeline stacked on one shared time axis."""
    fig = figure(figsize=(10, 1.2 + 1.6 * len(reports)))
    axes = fig.subplots(len(reports), 1, sharex=True, squeeze=False)
    for ax, report in zip(axes[:, 0], reports, strict=True):
        timeline(report, ax)
    axes[-1, 0].set_xlabel("seconds from start (one shared axis)")
    if reports:
        fig.suptitle(
            _title(reports[0]) + ": a bar per call (numbered by item), a row per slot in use"
        )
    return fig


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
        colour = FAILED if "(stuck)" in label or "blocked" in label else OK
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
    if any("(stuck)" in label or "blocked" in label for label, _, _ in [*broken, *fixed]):
        legend.append(Patch(color=FAILED, label="stuck, or blocking everything else"))
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
    at a time (:func:`patterns.harness.speedups`), a dashed line at the most it could
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


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _title(report: Report) -> str:
    workload = report.workload
    return f"{workload.describe()}, limit {report.limit}, {report.backend}"
