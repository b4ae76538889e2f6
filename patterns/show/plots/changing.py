"""The changing-capacity scenario's picture: each adaptive caller's limit over time against the
service's capacity, a panel per backend and transport (``adapt --plot``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from patterns.lab.changing import ORACLE, Row, Scenario
from patterns.show.plots.canvas import CAPACITY, IDEAL, OK, WAITED, figure

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Each caller's line, the same in every panel.
COLOURS = {"AIMD": OK, "Gradient": IDEAL, "adaptive-concurrency": WAITED}


def changing_figure(rows: Sequence[Row], scenario: Scenario) -> Figure:
    """A panel per backend and transport: the capacity over time (a step, with the queue past
    it shaded), and the limit of each row that moves (the median run's) over it."""
    places = list(dict.fromkeys((r.run.backend, r.run.transport) for r in rows))
    fig = figure(figsize=(10, 1.0 + 2.4 * max(1, len(places))))
    axes = fig.subplots(max(1, len(places)), 1, sharex=True, squeeze=False)
    for ax, (backend, transport) in zip(axes[:, 0], places, strict=False):
        here = [r for r in rows if (r.run.backend, r.run.transport) == (backend, transport)]
        limits_over_time(here, scenario, ax)
        ax.set_title(f"{backend}, {transport}", fontsize="medium")
    axes[-1, 0].set_xlabel("seconds from start")
    fig.suptitle("The limit follows the capacity: each adaptive caller's limit over time")
    # One legend for every panel, below them: inside a panel it would hide the lines.
    named: dict[str, Artist] = {}
    for ax in axes[:, 0]:
        handles, labels = ax.get_legend_handles_labels()
        named.update(zip(labels, handles, strict=True))
    fig.legend(handles=list(named.values()), labels=list(named), loc="outside lower center",
               ncols=len(named))  # fmt: skip
    return fig


def limits_over_time(rows: Sequence[Row], scenario: Scenario, ax: Axes) -> None:
    """The capacity (and the queue past it) over the scenario's time, and each row's limit;
    labelled, for a legend (:func:`changing_figure` makes one for all its panels)."""
    times, capacity = capacity_steps(scenario)
    queue = [c + scenario.queue_limit for c in capacity]
    ax.fill_between(times, capacity, queue, step="post", color=CAPACITY, alpha=0.08,
                    label=f"the service's queue ({scenario.queue_limit})")  # fmt: skip
    ax.step(times, capacity, where="post", color=CAPACITY, linewidth=2, label="capacity")
    for row in rows:
        run = row.run
        if not run.limits or run.row == ORACLE or run.skipped is not None:
            continue
        if run.row not in COLOURS:
            continue  # the told caller's limit is the capacity itself
        steps = [*run.limits, (scenario.seconds, run.limits[-1][1])]
        ax.step([t for t, _ in steps], [n for _, n in steps], where="post",
                color=COLOURS[run.row], label=run.row)  # fmt: skip
    ax.set_ylabel("calls at once")
    ax.set_xlim(0, scenario.seconds)
    ax.set_ylim(bottom=0)


def capacity_steps(scenario: Scenario) -> tuple[list[float], list[int]]:
    """The capacity as a step line: its value from each change on, to the end."""
    times, values = [0.0], [scenario.phases[0][0]]
    for at, capacity in scenario.changes():
        times.append(at)
        values.append(capacity)
    times.append(scenario.seconds)
    values.append(values[-1])
    return times, values
