"""Concurrency against parallelism read aloud: each kind of work on the event loop, in threads
and in processes, as many times faster than one at a time as it ran (``parallel``)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from patterns.lab.report import Report, speedups
from patterns.show.text import maybe

_PLACES = {"loop": "the event loop", "threads": "threads", "processes": "processes"}
_KINDS = {"io": "I/O (awaited)", "blocking": "blocking calls", "cpu": "CPU-bound Python"}


def parallel_table(reports: Sequence[Report], *, cores: int) -> Table:
    """A row per kind of work and place it ran: makespan, speedup over one at a time (see
    :func:`speedups`), share of the ideal, and the cores kept busy (CPU seconds per second,
    worker processes included)."""
    first = reports[0]
    w = first.workload
    table = Table(
        title=f"{w.items:,} items of {w.low:g}–{w.high:g} s each, {first.limit} at a time "
        f"({first.pattern}, {first.backend}, {cores} cores)",
        caption="speedup: against the same work one at a time, measured on the event loop",
    )
    for header in ("work", "run in", "time s", "speedup", "of ideal", "cores busy"):
        table.add_column(header, justify="left" if header in ("work", "run in") else "right")
    for r, speedup in zip(reports, speedups(reports), strict=True):
        table.add_row(
            _KINDS[r.work],
            _PLACES[r.run_in],
            f"{r.makespan_s:.2f}",
            maybe(speedup, ".1f", "×"),
            maybe(r.efficiency, ".0%"),
            maybe(r.cores_busy, ".2f"),
        )
    return table


def parallel_sentence(reports: Sequence[Report], *, cores: int) -> str:
    """The table read aloud: for each kind of work, how much faster each place ran it than
    one at a time, with the reason where one exists (the GIL, the stalled loop)."""
    by_kind: dict[str, dict[str, float | None]] = {}
    for r, speedup in zip(reports, speedups(reports), strict=True):
        by_kind.setdefault(r.work, {})[r.run_in] = speedup
    why = {
        ("cpu", "threads"): " (the GIL)",
        ("cpu", "processes"): f" on {cores} cores",
    }
    parts = []
    for kind, places in by_kind.items():
        if kind == "io":
            said = [f"{maybe(places.get('loop'), '.1f', '×')} on the event loop, no hand-off"]
        else:  # the loop is the yardstick: say what the others made of it
            said = [
                f"{_PLACES[where]} {maybe(speedup, '.1f', '×')}{why.get((kind, where), '')}"
                for where, speedup in places.items()
                if where != "loop"
            ]
        parts.append(f"{_KINDS[kind]}: " + ", ".join(said))
    return "Against one at a time: " + "; ".join(parts) + "."
