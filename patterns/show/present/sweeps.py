"""A limit sweep read aloud: a row per limit beside Little's law, and where each behaviour's
knee sits against the service's capacity (``sweep``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.table import Table

from patterns.lab.report import Report, knee, littles_law
from patterns.show.text import maybe, seconds


def sweep_table(runs: Mapping[str, Sequence[Report]]) -> Table:
    """A limit sweep, a row per limit: what Little's law allows, and for each behaviour of the
    service past its capacity, the goodput and its cost (calls turned away, or the p95 of a
    call as the caller saw it). ``runs`` maps each behaviour to its reports, one per limit."""
    first = next(iter(runs.values()))[0]
    w = first.workload
    table = Table(
        title=f"{first.pattern}, {w.describe()}, against a service of capacity {first.capacity}"
        f", {first.backend}",
        caption="goodput/s for each behaviour past the capacity, beside Little's law: "
        "min(limit, capacity) / mean latency; * the knee; away: calls turned away; p95 s: a "
        "call's, as the caller saw it",
    )
    table.add_column("limit", justify="right", no_wrap=True)
    table.add_column("Little/s", justify="right", no_wrap=True)
    for behaviour in runs:
        table.add_column(f"{behaviour}/s", justify="right", no_wrap=True)
        cost = "away" if behaviour == "reject" else "p95 s"
        table.add_column(cost, justify="right", no_wrap=True)
    knees = {behaviour: knee(reports).limit for behaviour, reports in runs.items()}
    for row in zip(*runs.values(), strict=True):
        cells = [str(row[0].limit), maybe(littles_law(row[0]), ",.0f")]
        for behaviour, r in zip(runs, row, strict=True):
            star = "*" if r.limit == knees[behaviour] else ""
            cells.append(maybe(r.goodput_per_s, ",.0f") + star)
            cells.append(f"{r.turned_away:,}" if behaviour == "reject" else seconds(r.call_p95_s))
        table.add_row(*cells)
    return table


def sweep_sentence(runs: Mapping[str, Sequence[Report]]) -> str:
    """The sweep read aloud: where each behaviour's knee sits against the capacity, and what
    going past it cost; each claim made only where the table shows it."""
    parts = []
    for behaviour, reports in runs.items():
        at = knee(reports)
        past = sorted((r for r in reports if r.limit > at.limit), key=lambda r: r.limit)
        text = f"{behaviour}: the knee at {at.limit} ({maybe(at.goodput_per_s, ',.0f')}/s)"
        text += _knee_against_capacity(at)
        if past:
            text += "; " + _past_the_knee(behaviour, at, past)
        parts.append(text)
    capacity = next(iter(runs.values()))[0].capacity
    return f"Against a capacity of {capacity}: " + "; ".join(parts) + "."


def _knee_against_capacity(at: Report) -> str:
    """Where the knee sits: at the capacity (within 10%), below it, or above it."""
    if at.capacity is None:
        return ""
    if abs(at.limit - at.capacity) <= 0.1 * at.capacity:
        law = littles_law(at)
        if law is None or (at.goodput_per_s or 0.0) < 0.8 * law:
            return ", at the capacity"
        return ", at the capacity, as Little's law says"
    if at.limit < at.capacity:
        return ", below the capacity: something else (the client, the loop) is narrower"
    return ", above the capacity"


def _past_the_knee(behaviour: str, at: Report, past: Sequence[Report]) -> str:
    """What the first and the last limit past the knee cost, as the table shows it."""
    last = past[-1]
    away = [r for r in past if r.turned_away]
    if away:
        first = away[0]
        return (
            f"at {first.limit}, {first.turned_away:,} of {first.items:,} calls were turned away"
            + (f", {last.turned_away:,} at {last.limit}" if last is not first else "")
        )
    if behaviour == "reject":
        return f"past it none were turned away, up to {last.limit}"
    knee_goodput, last_goodput = at.goodput_per_s or 0.0, last.goodput_per_s or 0.0
    if last_goodput < 0.9 * knee_goodput:
        return f"past it goodput fell, to {maybe(last.goodput_per_s, ',.0f')}/s at {last.limit}"
    if (last.call_p95_s or 0.0) > 1.2 * (at.call_p95_s or 0.0):
        return (
            f"past it no more goodput, and calls waited longer: p95 {seconds(at.call_p95_s)} s "
            f"at the knee, {seconds(last.call_p95_s)} s at {last.limit}"
        )
    return f"past it, up to {last.limit}, neither more goodput nor a longer wait"
