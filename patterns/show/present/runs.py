"""A run and a comparison read aloud: the tables of ``run`` and ``compare`` (wide, or narrow
within a terminal's width), the comparison's sentence, and when fast calls make the event
loop's own work show."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.console import Console, JustifyMethod
from rich.measure import Measurement
from rich.table import Table

from patterns.lab.report import Report
from patterns.show.text import maybe, seconds

# (header, justify, the report's figure as text, where it is shown): "wide" in the comparison
# table on a wide terminal (about 125 columns), "narrow" within 80 columns (72); "swide" and
# "snarrow" are the same two when the calls went to a service (its figures take the place of
# some of the caller's); "single" in the single report; "svc" marks a figure that only a run
# against a service has.
_COLUMNS: tuple[tuple[str, JustifyMethod, Callable[[Report], str], str], ...] = (
    ("pattern", "left", lambda r: r.pattern, "wide narrow swide snarrow single"),
    ("time s", "right", lambda r: f"{r.makespan_s:.3f}", "wide narrow swide snarrow single"),
    ("ideal s", "right", lambda r: f"{r.ideal_makespan_s:.3f}", "single"),
    ("efficiency", "right", lambda r: maybe(r.efficiency, ".1%"), "wide single"),
    ("eff.", "right", lambda r: maybe(r.efficiency, ".0%"), "narrow swide"),
    ("items/s", "right", lambda r: maybe(r.throughput_per_s, ",.1f"), "wide single"),
    ("goodput/s", "right", lambda r: maybe(r.goodput_per_s, ",.1f"), "swide snarrow single svc"),
    ("turned away", "right", lambda r: f"{r.turned_away:,}", "swide single svc"),
    ("away", "right", lambda r: f"{r.turned_away:,}", "snarrow"),
    ("peak", "right", lambda r: str(r.peak_concurrency), "wide narrow swide single"),
    ("in svc", "right", lambda r: maybe(r.peak_in_service, ","), "swide single svc"),
    ("queued", "right", lambda r: maybe(r.peak_waiting, ","), "swide single svc"),
    ("mean conc.", "right", lambda r: f"{r.mean_concurrency:.2f}", "wide single"),
    ("first s", "right", lambda r: seconds(r.first_result_s), "wide single"),
    ("p50 s", "right", lambda r: seconds(r.p50_s), "wide single"),
    ("p95 s", "right", lambda r: seconds(r.p95_s), "wide narrow single"),
    ("p99 s", "right", lambda r: seconds(r.p99_s), "single"),
    ("call p50 s", "right", lambda r: seconds(r.call_p50_s), "single svc"),
    ("call p95 s", "right", lambda r: seconds(r.call_p95_s), "swide single svc"),
    ("call p95", "right", lambda r: seconds(r.call_p95_s), "snarrow"),
    ("svc p95 s", "right", lambda r: seconds(r.service_p95_s), "swide single svc"),
    ("speedup", "right", lambda r: maybe(r.speedup, ".1f", "×"), "wide narrow single"),
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
        if first.adaptive is not None and first.limits:  # it moved: say where it went
            over = (
                f"a limit adapting ({first.adaptive}, up to {first.limit}) probed past the "
                f"service's capacity of {first.capacity}, and came to {first.limits[-1][1]}"
            )
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


#: Calls shorter than this per call in flight are fast enough for the event loop's own work per
#: call (measured at 6 to 111 µs per pattern and backend: docs/benchmarks.md, "Fast calls") to
#: cost a share of the ideal; above it, that work is noise next to the call.
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
