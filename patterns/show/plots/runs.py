"""One run's picture: its timeline, the calls in flight over time, and how its latencies and
times to result spread (``run --plot``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from patterns.lab.report import Report, in_flight
from patterns.show.plots.canvas import FAILED, IDEAL, OK, capacity_line, figure
from patterns.show.plots.timelines import run_title, service_legend, timeline

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


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
    fig.suptitle(run_title(report))
    if report.service is not None:
        handles = service_legend([report])
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


def concurrency(report: Report, ax: Axes) -> None:
    """Calls in flight over time, as a step line, with the limit drawn (an adaptive one as it
    moved), and the service's capacity, where there was one."""
    steps = in_flight((c.start, c.end) for c in report.calls)
    times = [0.0, *(time for time, _ in steps)]
    counts = [0, *(count for _, count in steps)]
    ax.step(times, counts, where="post", color=OK, label="in flight")
    if report.limits:  # a limit that adapted: its value over time, to the run's end
        last = report.limits[-1]
        steps = [*report.limits, (max(report.makespan_s, last[0]), last[1])]
        label = f"limit ({report.adaptive}, up to {report.limit})"
        ax.step([t for t, _ in steps], [n for _, n in steps], where="post", color=FAILED,
                linestyle="--", label=label)  # fmt: skip
    elif report.bounded:
        ax.axhline(report.limit, color=FAILED, linestyle="--", label=f"limit {report.limit}")
    if report.capacity is not None:
        capacity_line(ax, report.capacity, linestyle=":", linewidth=1.5)
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
