"""Reports read aloud: the tables and sentences of the command line and the notebooks.

Above the harness, below the command line: ``python -m patterns`` prints these, and a notebook
shows the same tables (rich renders them in Jupyter). They take reports, never run anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from rich.console import Console, JustifyMethod
from rich.measure import Measurement
from rich.table import Table

from patterns.lab.harness import Report, knee, littles_law, speedups

if TYPE_CHECKING:
    from patterns.lab.threads_vs_async import Result
    from patterns.server import Counts


def _maybe(value: float | None, spec: str, suffix: str = "") -> str:
    return "–" if value is None else format(value, spec) + suffix


def _seconds(value: float | None) -> str:
    return _maybe(value, ".3f")


# (header, justify, the report's figure as text, where it is shown): "wide" in the comparison
# table on a wide terminal (about 125 columns), "narrow" within 80 columns (72); "swide" and
# "snarrow" are the same two when the calls went to a service (its figures take the place of
# some of the caller's); "single" in the single report; "svc" marks a figure that only a run
# against a service has.
_COLUMNS: tuple[tuple[str, JustifyMethod, Callable[[Report], str], str], ...] = (
    ("pattern", "left", lambda r: r.pattern, "wide narrow swide snarrow single"),
    ("time s", "right", lambda r: f"{r.makespan_s:.3f}", "wide narrow swide snarrow single"),
    ("ideal s", "right", lambda r: f"{r.ideal_makespan_s:.3f}", "single"),
    ("efficiency", "right", lambda r: _maybe(r.efficiency, ".1%"), "wide single"),
    ("eff.", "right", lambda r: _maybe(r.efficiency, ".0%"), "narrow swide"),
    ("items/s", "right", lambda r: _maybe(r.throughput_per_s, ",.1f"), "wide single"),
    ("goodput/s", "right", lambda r: _maybe(r.goodput_per_s, ",.1f"), "swide snarrow single svc"),
    ("turned away", "right", lambda r: f"{r.turned_away:,}", "swide single svc"),
    ("away", "right", lambda r: f"{r.turned_away:,}", "snarrow"),
    ("peak", "right", lambda r: str(r.peak_concurrency), "wide narrow swide single"),
    ("in svc", "right", lambda r: _maybe(r.peak_in_service, ","), "swide single svc"),
    ("queued", "right", lambda r: _maybe(r.peak_waiting, ","), "swide single svc"),
    ("mean conc.", "right", lambda r: f"{r.mean_concurrency:.2f}", "wide single"),
    ("first s", "right", lambda r: _seconds(r.first_result_s), "wide single"),
    ("p50 s", "right", lambda r: _seconds(r.p50_s), "wide single"),
    ("p95 s", "right", lambda r: _seconds(r.p95_s), "wide narrow single"),
    ("p99 s", "right", lambda r: _seconds(r.p99_s), "single"),
    ("call p50 s", "right", lambda r: _seconds(r.call_p50_s), "single svc"),
    ("call p95 s", "right", lambda r: _seconds(r.call_p95_s), "swide single svc"),
    ("call p95", "right", lambda r: _seconds(r.call_p95_s), "snarrow"),
    ("svc p95 s", "right", lambda r: _seconds(r.service_p95_s), "swide single svc"),
    ("speedup", "right", lambda r: _maybe(r.speedup, ".1f", "×"), "wide narrow single"),
    ("failed", "right", lambda r: str(r.failed), "wide narrow swide snarrow single"),
)


def _title(report: Report) -> str:
    workload = report.workload
    over = {"tcp": ", over tcp", "http": f", over http ({report.client})"}.get(report.transport, "")
    title = f"{workload.describe()}, limit {report.limit}, seed {workload.seed}, {report.backend}"
    if report.service is not None:
        return f"{title}{over}, against {report.service}"
    return title + over


def comparison_table(
    reports: Sequence[Report], serial: Report | None = None, *, width: int | None = None
) -> Table:
    """A row per report, and the derived serial baseline last.

    Given the ``width`` it must fit (a terminal's), the wide table if it fits whole, else the
    narrow one: fewer columns, every name and figure whole, never cut with an ellipsis.
    """
    against = "s" if any(r.service is not None for r in reports) else ""
    table = _table(reports, serial, against + "wide")
    if width is not None and _width(table) > width:
        table = _table(reports, serial, against + "narrow")
    return table


def _table(reports: Sequence[Report], serial: Report | None, layout: str) -> Table:
    columns = [c for c in _COLUMNS if layout in c[3].split()]
    table = Table(title=_title(reports[0]) if reports else None)
    for name, justify, _, _ in columns:
        table.add_column(name, justify=justify, no_wrap=True)
    for report in [*reports, *([serial] if serial else [])]:
        table.add_row(*(text(report) for _, _, text, _ in columns))
    return table


def _width(table: Table) -> int:
    """The width ``table`` takes when nothing squeezes it."""
    console = Console(width=1_000)
    return Measurement.get(console, console.options, table).maximum


def report_table(report: Report) -> Table:
    """One report as a two-column table, metric by metric."""
    table = Table(title=_title(report), show_header=False, min_width=len(_title(report)) + 4)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, _, text, where in _COLUMNS:
        tags = where.split()
        if "single" in tags and (report.service is not None or "svc" not in tags):
            table.add_row(name, text(report))
    return table


def compare_sentence(reports: Sequence[Report]) -> str:
    """The comparison read aloud: how the bounded patterns did, and what unbounded cost (the
    service's side too, where the calls went to one)."""
    if not any(r.items for r in reports):
        return "No items: nothing ran."
    bounded = [r for r in reports if r.bounded and r.items]
    # Against a service, a bounded pattern whose limit is above its capacity went past it too:
    # it is ranked with none of those that kept to it, and its cost is said.
    past = [r for r in bounded if r.turned_away or r.peak_waiting]
    kept = sorted((r for r in bounded if r not in past), key=lambda r: r.makespan_s)
    parts = []
    if kept:
        best, worst = kept[0], kept[-1]
        figures = best.figures()
        if len(kept) > 1 and worst.makespan_s <= best.makespan_s * 1.02:
            # Differences of a percent or two are noise on a shared machine: say so, not a winner.
            many = "all" if len(kept) == len(bounded) else "the"
            parts.append(
                f"Bounded to {best.limit} at a time, {many} {len(kept)} bounded patterns "
                f"finished within 2% of each other, in {best.makespan_s:.2f} s: {figures}"
            )
        else:
            parts.append(
                f"Bounded to {best.limit} at a time, {best.pattern} finished first, in "
                f"{best.makespan_s:.2f} s: {figures}"
            )
        if best.service is not None:
            parts[-1] += ", and none turned away"
    if past:
        first = past[0]
        over = f"a limit of {first.limit} is above the service's capacity of {first.capacity}"
        parts.append(f"{over}: " + ", ".join(_bounded_cost(r) for r in past))
    reference = kept[0] if kept else None
    parts += [_unbounded_cost(r, reference) for r in reports if not r.bounded]
    text = "; ".join(parts) + "."
    if reports[0].service is not None:
        text = f"Against {reports[0].service}: " + text[0].lower() + text[1:]
    return text


def _s(seconds: float) -> str:
    """Seconds for a sentence: two decimals, or three figures where two decimals read 0.00."""
    return f"{seconds:.2f}" if seconds >= 0.1 else f"{seconds:.2g}"


def _bounded_cost(r: Report) -> str:
    if r.turned_away:
        return f"{r.pattern} had {r.turned_away:,} of {r.items:,} turned away"
    return f"{r.pattern} had up to {r.peak_waiting:,} waiting at the service"


def _unbounded_cost(report: Report, bounded: Report | None) -> str:
    """What a pattern that bounds nothing cost: the time alone, or what the service felt."""
    r = report
    text = f"{r.pattern} ran {r.peak_concurrency:,} at once"
    if r.turned_away:
        return (
            f"{r.pattern} started all {r.items:,} at once and had {r.turned_away:,} of "
            f"{r.items:,} calls turned away: {r.succeeded:,} done, in {r.makespan_s:.2f} s"
        )
    if r.peak_waiting and r.call_p95_s is not None and r.service_p95_s is not None:
        text += (
            f": {r.peak_waiting:,} waited in the service's queue, so a call took "
            f"{_s(r.call_p95_s)} s at p95 against {_s(r.service_p95_s)} s in service"
        )
        if bounded is not None and r.makespan_s >= 0.98 * bounded.makespan_s:
            return text + f", and it finished no sooner ({_s(r.makespan_s)} s)"
        return text + f"; it took {_s(r.makespan_s)} s"
    slower = (
        bounded is not None
        and r.service_p95_s is not None
        and bounded.service_p95_s is not None
        and r.service_p95_s > 1.2 * bounded.service_p95_s
    )
    if slower and bounded is not None and bounded.service_p95_s is not None:
        assert r.service_p95_s is not None
        return (
            f"{text} and slowed the service for every call: {_s(r.service_p95_s)} s in service "
            f"at p95 against {_s(bounded.service_p95_s)} s bounded, and it took "
            f"{_s(r.makespan_s)} s"
        )
    return f"{text} and took {r.makespan_s:.2f} s"


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
        cells = [str(row[0].limit), _maybe(littles_law(row[0]), ",.0f")]
        for behaviour, r in zip(runs, row, strict=True):
            star = "*" if r.limit == knees[behaviour] else ""
            cells.append(_maybe(r.goodput_per_s, ",.0f") + star)
            cells.append(f"{r.turned_away:,}" if behaviour == "reject" else _seconds(r.call_p95_s))
        table.add_row(*cells)
    return table


def sweep_sentence(runs: Mapping[str, Sequence[Report]]) -> str:
    """The sweep read aloud: where each behaviour's knee sits against the capacity, and what
    going past it cost; each claim made only where the table shows it."""
    parts = []
    for behaviour, reports in runs.items():
        at = knee(reports)
        past = sorted((r for r in reports if r.limit > at.limit), key=lambda r: r.limit)
        text = f"{behaviour}: the knee at {at.limit} ({_maybe(at.goodput_per_s, ',.0f')}/s)"
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
        return f"past it goodput fell, to {_maybe(last.goodput_per_s, ',.0f')}/s at {last.limit}"
    if (last.call_p95_s or 0.0) > 1.2 * (at.call_p95_s or 0.0):
        return (
            f"past it no more goodput, and calls waited longer: p95 {_seconds(at.call_p95_s)} s "
            f"at the knee, {_seconds(last.call_p95_s)} s at {last.limit}"
        )
    return f"past it, up to {last.limit}, neither more goodput nor a longer wait"


#: Calls shorter than this per call in flight are fast enough for the event loop's own work per
#: call (measured at 6 to 111 µs per pattern and backend: the README's "Fast calls") to cost a
#: share of the ideal; above it, that work is noise next to the call.
PLUMBING_MATTERS_S = 100e-6
#: The share of the ideal below which a bounded pattern is not keeping up with its calls.
KEEPS_UP = 0.9


def fast_calls_sentence(reports: Sequence[Report]) -> str | None:
    """When calls are fast and a bounded pattern falls below 90% of the ideal: why, and what
    to use instead (the pattern of this run that came closest). None when that is not so."""
    bounded = [r for r in reports if r.bounded and r.items and r.efficiency is not None]
    if not bounded:
        return None
    first = bounded[0]
    per_call = first.serial_s / first.items
    if per_call >= first.limit * PLUMBING_MATTERS_S:
        return None
    slow = sorted((r for r in bounded if (r.efficiency or 0) < KEEPS_UP), key=_efficiency)
    if not slow:
        return None
    best = max(bounded, key=_efficiency)
    others = [r for r in slow if r is not best]
    text = f"At {per_call * 1e3:.2g} ms a call and {first.limit} in flight, the event loop's "
    text += "own work per call is no longer noise"
    if others:
        figures = [f"{r.pattern} {_efficiency(r):.0%}" for r in others]
        text += f": {figures[0]} of the ideal" + "".join(f", {f}" for f in figures[1:])
    if _efficiency(best) >= KEEPS_UP:
        text += f"; {best.pattern} costs less per call and reached {_efficiency(best):.0%}"
        text += ": use it for calls this fast"
    else:
        text += f"; even {best.pattern}, the cheapest here, reached {_efficiency(best):.0%}"
        text += ": at this latency the event loop itself is the bottleneck (and its timers, "
        text += "which wake a simulated call up to a millisecond late)"
    return text + "."


def _efficiency(report: Report) -> float:
    return report.efficiency or 0.0


def serve_summary(counts: Counts) -> str:
    """The line ``serve`` prints at exit: how every accepted connection ended."""
    c = counts
    return (
        f"accepted {c.accepted} = completed {c.completed} + cancelled {c.cancelled} + "
        f"timed out {c.timed_out} + failed {c.failed}; rejected {c.rejected}; "
        f"at most {c.peak_open} open at once"
    )


def threads_vs_async_table(results: Sequence[Result]) -> Table:
    """Both sides, a row each: makespan, sockets and threads at the peak, memory."""
    first = results[0]
    table = Table(title=f"{first.clients:,} clients, each answered after {first.delay_s:g} s")
    headers = ("served by", "makespan s", "peak open sockets", "peak threads", "RSS growth MiB")
    for header in headers:
        table.add_column(header, justify="left" if header == "served by" else "right")
    for r in results:
        table.add_row(
            _served_by(r),
            f"{r.makespan_s:.2f}",
            f"{r.peak_open:,}",
            f"{r.peak_threads:,}",
            f"{r.rss_growth_mib:.1f}",
        )
    return table


def _served_by(result: Result) -> str:
    return "a thread per connection" if result.kind == "threads" else "async tasks (anyio)"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def threads_vs_async_sentence(results: Sequence[Result]) -> str:
    """What each side measured, and nothing it did not: "at once" only for a side whose
    server held every client open at the same moment."""
    parts = []
    for r in results:
        if r.peak_open >= r.clients:
            held = (
                f"served all {r.clients:,} clients at once"
                if r.clients > 1
                else "served its one client"
            )
        else:
            held = f"had at most {r.peak_open:,} of the {r.clients:,} clients open at a time"
        parts.append(
            f"{_served_by(r)} {held} and took {r.makespan_s:.2f} s, with "
            f"{_plural(r.peak_threads, 'thread')} at the peak and {r.rss_growth_mib:.1f} MiB "
            "more memory"
        )
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]


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
            _maybe(speedup, ".1f", "×"),
            _maybe(r.efficiency, ".0%"),
            _maybe(r.cores_busy, ".2f"),
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
            said = [f"{_maybe(places.get('loop'), '.1f', '×')} on the event loop, no hand-off"]
        else:  # the loop is the yardstick: say what the others made of it
            said = [
                f"{_PLACES[where]} {_maybe(speedup, '.1f', '×')}{why.get((kind, where), '')}"
                for where, speedup in places.items()
                if where != "loop"
            ]
        parts.append(f"{_KINDS[kind]}: " + ", ".join(said))
    return "Against one at a time: " + "; ".join(parts) + "."
