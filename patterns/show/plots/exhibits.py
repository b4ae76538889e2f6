"""A footgun's picture: the broken version above the fixed one on one time axis, a row per
labelled span, and what each version held while it ran (``footgun --plot``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from patterns.show.plots.canvas import FAILED, OK, figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


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


def _gone_wrong(label: str) -> bool:
    """A span an exhibit marked as what went wrong: stuck, blocking everything else, timed
    out, or turned away by the service."""
    marks = ("(stuck)", "blocked", "(timed out)", "(turned away)")
    return any(mark in label for mark in marks)
