"""The changing-capacity scenario read aloud: one table of every row on every backend and
transport, and the sentence that says what to conclude from it (``adapt``).

The sentence is the verdict of :func:`patterns.lab.changing.verdict`, in words, with the
figures it rests on: what held, and, where a claim did not, which row broke it and by how much.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from patterns.lab.changing import (
    ADAPTIVE,
    ADAPTIVE_AWAY,
    ADAPTIVE_SHARE,
    FIXED_AWAY,
    FIXED_SHARE,
    HTTP_WITHIN,
    ORACLE,
    PEER,
    Row,
    Scenario,
    adaptive_holds,
    fixed_fails,
    verdict,
    within,
)
from patterns.show.text import maybe


def describe(scenario: Scenario) -> str:
    """``capacity 20 for 1 s, 5 for 2 s, 20 for 1 s; each call 20 ms in service; ...``"""
    phases = ", ".join(f"{c} for {s:g} s" for c, s in scenario.phases)
    return (
        f"capacity {phases}; each call {scenario.call_s * 1e3:g} ms in service, a queue of "
        f"{scenario.queue_limit} past the capacity, the rest turned away (retry after "
        f"{scenario.retry_after * 1e3:g} ms)"
    )


def changing_table(rows: Sequence[Row], scenario: Scenario) -> Table:
    """A row per caller, a section per backend and transport: goodput, its share of the
    oracle's, calls turned away, p95 of a call, failures; each the median of its runs."""
    runs = max((r.runs for r in rows), default=0)
    table = Table(
        title=f"The capacity changes mid-run: {describe(scenario)}; median of {runs} runs per row",
        caption="oracle: capacity × seconds / a call's time in service on the calm service; "
        "away: calls turned away, of those the service received (retries included); p95: a "
        "call that succeeded, as the caller saw it (queueing and retries included); every row "
        f"retries (full jitter, the Retry-After, a budget of {scenario.budget:.0%} of calls)",
    )
    skipped = {f"{r.name} on {r.run.backend}: {r.run.skipped}" for r in rows if r.run.skipped}
    if skipped:
        table.caption = f"{table.caption}; skipped: {'; '.join(sorted(skipped))}"
    for header in ("run on", "caller", "goodput/s", "of oracle", "away", "p95 ms", "failed"):
        table.add_column(header, justify="left" if header in ("run on", "caller") else "right")
    where = None
    for row in rows:
        run = row.run
        here = f"{run.backend}, {run.transport}"
        if where is not None and here != where:
            table.add_section()
        shown, where = (here if here != where else ""), here
        if run.skipped is not None:
            table.add_row(shown, run.row, "–", "–", "–", "–", "skipped")
            continue
        table.add_row(
            shown,
            run.row,
            f"{run.goodput:,.0f}",
            maybe(row.share, ".0%"),
            f"{run.away_share:.1%}",
            maybe(None if run.p95_s is None else run.p95_s * 1e3, ".0f"),
            f"{run.failed:,}" if run.row != ORACLE else "–",
        )
    return table


def changing_sentence(rows: Sequence[Row]) -> str:
    """What to conclude: whether an adaptive limit followed the capacity where every fixed one
    fell short (and over HTTP as simulated), each claim with its figures; or which did not."""
    found = verdict(rows)
    if not found.held and not found.failed:
        return "No adaptive or fixed row ran: nothing to conclude."
    adaptive = [r for r in rows if r.name in ADAPTIVE]
    fixed = [r for r in rows if r.name.startswith("fixed ")]
    parts = []
    if adaptive and all(adaptive_holds(r) for r in adaptive):
        where = "everywhere it ran" if len(adaptive) > len(ADAPTIVE) else "here"
        parts.append(
            f"an adaptive limit followed the capacity down and up, {where}: {_ranges(adaptive)} "
            f"(the claim: at least {ADAPTIVE_SHARE:.0%} with at most {ADAPTIVE_AWAY:.0%})"
        )
    elif adaptive:
        short = [r for r in adaptive if not adaptive_holds(r)]
        parts.append(
            f"the adaptive limit did not hold ({ADAPTIVE_SHARE:.0%} of the oracle with at most "
            f"{ADAPTIVE_AWAY:.0%} turned away): {_figures(short)}"
        )
    if fixed:
        parts.append(_fixed(fixed))
    http = _over_http(rows)
    if http:
        parts.append(http)
    peer = [r for r in rows if r.name == PEER and r.share is not None]
    if peer:
        parts.append(f"the peer package: {_ranges(peer)}")
    head = "Conclude: " if found.ok else "The claims did not all hold on this run: "
    return head + "; ".join(parts) + "."


def _ranges(rows: Sequence[Row]) -> str:
    """``AIMD 91–95% of the oracle's goodput with 3.1–3.3% turned away``: each caller's range
    over the backends and transports it ran on."""
    names = list(dict.fromkeys(r.name for r in rows))
    said = []
    for name in names:
        mine = [r for r in rows if r.name == name]
        shares = _range([r.share or 0.0 for r in mine])
        away = _range([r.run.away_share for r in mine], ".1%")
        said.append(f"{name} {shares} with {away} turned away")
    return said[0].replace(" with", " of the oracle's goodput with", 1) + "".join(
        f", {s}" for s in said[1:]
    )


def _figures(rows: Sequence[Row]) -> str:
    """``AIMD 93% and 2.6% on asyncio, 92% and 3.1% on trio``: share and turned away."""
    return ", ".join(
        f"{r.name} {maybe(r.share, '.0%')} and {r.run.away_share:.1%} on {_where(r)}" for r in rows
    )


def _where(row: Row) -> str:
    run = row.run
    return run.backend if run.transport == "simulated" else f"{run.backend} over {run.transport}"


def _fixed(fixed: Sequence[Row]) -> str:
    """Each fixed limit's shortfall: capacity left idle, or calls turned away; or, for one that
    did neither, that it broke the claim."""
    low = [r for r in fixed if r.share is not None and r.share < FIXED_SHARE]
    high = [r for r in fixed if r not in low and r.run.away_share > FIXED_AWAY]
    neither = [r for r in fixed if not fixed_fails(r)]
    said = []
    if low:
        names = _names(low)
        said.append(f"{names} left capacity idle ({_range([r.share or 0.0 for r in low])})")
    if high:
        names = _names(high)
        away = _range([r.run.away_share for r in high])
        said.append(f"{names} had {away} of their calls turned away")
    text = "every fixed limit fell short one way or the other: " + ", ".join(said)
    if neither:
        text = (
            f"a fixed limit did as well ({FIXED_SHARE:.0%} of the oracle or more with at most "
            f"{FIXED_AWAY:.0%} turned away): {_figures(neither)}"
        )
    return text


def _names(rows: Sequence[Row]) -> str:
    """``fixed 5 and 10``: each limit once, in order."""
    limits = list(dict.fromkeys(r.name.removeprefix("fixed ") for r in rows))
    listed = ", ".join(limits[:-1]) + (" and " if len(limits) > 1 else "") + limits[-1]
    return f"fixed {listed}"


def _range(shares: Sequence[float], spec: str = ".0%") -> str:
    """``40–59%``, or ``40%`` for one (or for all the same, as shown)."""
    low, high = format(min(shares), spec), format(max(shares), spec)
    return low if low == high else f"{low.removesuffix('%')}–{high}"


def _over_http(rows: Sequence[Row]) -> str | None:
    """The HTTP adaptive rows against their simulated twins, in points."""
    simulated = {(r.name, r.run.backend): r for r in rows if r.run.transport == "simulated"}
    pairs = [
        (r, simulated[(r.name, r.run.backend)])
        for r in rows
        if r.name in ADAPTIVE and r.run.transport == "http" and (r.name, r.run.backend) in simulated
    ]
    if not pairs:
        return None
    said = [
        f"{h.name} {_points((h.share or 0.0) - (s.share or 0.0))} of the oracle and "
        f"{_points(h.run.away_share - s.run.away_share)} turned away"
        for h, s in pairs
    ]
    kept = all(within(h, s) for h, s in pairs)
    verb = "within" if kept else "not all within"
    return f"over HTTP, {verb} {HTTP_WITHIN * 100:.0f} points of simulated: " + ", ".join(said)


def _points(difference: float) -> str:
    """``+3 points``, ``-1 point``."""
    points = round(difference * 100)
    return f"{points:+d} point{'s' if abs(points) != 1 else ''}"
