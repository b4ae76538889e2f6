"""The comparison's picture: every pattern's timeline on one shared time axis, with runs that
would draw the same timeline sharing one panel (``compare --plot``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from patterns.lab.probe import Call
from patterns.lab.report import Report
from patterns.show.plots.canvas import figure
from patterns.show.plots.timelines import lanes_of, run_title, service_legend, timeline

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def compare_figure(reports: Sequence[Report]) -> Figure:
    """Every pattern's timeline stacked on one shared time axis; runs identical to the one
    above (:func:`same_run`) share its panel, titled with all their names. Against a service,
    its capacity, the calls it turned away and those it made wait are drawn (:func:`timeline`)
    and explained in a legend below."""
    groups = runs_alike(reports)
    # A panel's height grows with its lanes, up to twice the usual: 20 rows stay readable.
    heights = [min(2.0, max(1.0, lanes_of(group[0]) / 6)) for group in groups]
    served = any(r.service is not None for r in reports)
    fig = figure(figsize=(10, 1.2 + 1.6 * sum(heights) + (0.4 if served else 0)))
    axes = fig.subplots(len(groups), 1, sharex=True, squeeze=False, height_ratios=heights or None)
    span = max((r.makespan_s for r in reports), default=0.0)
    for ax, group in zip(axes[:, 0], groups, strict=True):
        timeline(group[0], ax, names=[r.pattern for r in group], span=span)
    axes[-1, 0].set_xlabel("seconds from start (one shared axis)")
    if reports:
        gloss = ": a bar per call (numbered by item), a row per slot in use"
        fig.suptitle(run_title(reports[0], gloss))
    if served:
        handles = service_legend(reports)
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


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
