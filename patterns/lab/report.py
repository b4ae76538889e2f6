"""The report: what one run took, and its pure maths, the same for every harness.

:class:`Report` holds what a run observed and what follows from it (the ideal makespan, the
share of it reached, the speedup over one call at a time, latency percentiles, goodput);
:func:`build_report` derives all of it in one place, and :func:`peak_overlap` counts the most
calls in flight at once from their spans. The harness, the cluster harness, the tables and the
pictures read it; it imports nothing above the workload, the service and the probe.
"""

from __future__ import annotations

import heapq
import os
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from patterns.lab.backends import current_backend
from patterns.lab.probe import Call
from patterns.lab.service import Felt, Service
from patterns.lab.workload import Item, Workload


@dataclass(frozen=True)
class Report:
    """One pattern, one workload, one run: what it took and how close it came to the ideal."""

    pattern: str
    backend: str
    items: int
    limit: int
    makespan_s: float
    #: None where the run took no measurable time.
    throughput_per_s: float | None
    peak_concurrency: int
    mean_concurrency: float
    ideal_makespan_s: float
    #: ideal / actual; None where the ideal is 0 (no latency: nothing to schedule).
    efficiency: float | None
    first_result_s: float | None
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    serial_s: float
    #: serial / actual; None where the serial time is 0.
    speedup: float | None
    failed: int
    #: How the calls travelled: "simulated" (each sleeps its latency; once called "sleep"), "tcp"
    #: (real connections to a local toy server) or "http" (requests to the served service).
    transport: str
    #: False for a pattern that starts everything at once (its ideal uses one slot per item).
    bounded: bool
    workload: Workload = field(repr=False)
    #: Every call the probe saw, times relative to the start of the run (for timelines).
    calls: tuple[Call[Item], ...] = field(default=(), repr=False)
    #: When each result reached the consumer, from the start of the run, in arrival order.
    arrivals: tuple[float, ...] = field(default=(), repr=False)
    #: What each call spent its latency on (the workload's kind), and where it ran.
    work: str = "io"
    run_in: str = "loop"
    #: CPU seconds used during the run by this process (all its threads) and its children
    #: (worker processes); divided by the makespan, the cores kept busy.
    cpu_s: float | None = None
    #: How long each call took as the caller saw it (a service's queue included), over the
    #: calls that succeeded: p50, p95, p99.
    call_p50_s: float | None = None
    call_p95_s: float | None = None
    call_p99_s: float | None = None
    #: The other side, where the run had a service (None where it had none): what it is
    #: (``Service.describe``), its capacity, the calls it turned away, the most it had in
    #: service and waiting at once, and its own time in service per call (p50, p95, p99).
    service: str | None = None
    behaviour: str | None = None
    capacity: int | None = None
    turned_away: int = 0
    peak_in_service: int | None = None
    peak_waiting: int | None = None
    service_p50_s: float | None = None
    service_p95_s: float | None = None
    service_p99_s: float | None = None
    #: The HTTP client of an http run ("httpx2", "httpx", "aiohttp"); None otherwise.
    client: str | None = None
    #: A limit that adapted (``patterns.adaptive``): its kind ("AIMD"), and its value from each
    #: change on, from the start of the run (``limit`` is then its maximum); None and empty for
    #: a fixed limit.
    adaptive: str | None = None
    limits: tuple[tuple[float, int], ...] = field(default=(), repr=False)

    @property
    def succeeded(self) -> int:
        """The calls that did their work: neither failed nor turned away."""
        return self.items - self.failed - self.turned_away

    @property
    def goodput_per_s(self) -> float | None:
        """Calls that succeeded, per second of the run."""
        return _ratio(self.succeeded, self.makespan_s)

    @property
    def overhead_per_item_s(self) -> float | None:
        """What each item cost its slot beyond its own latency: the makespan's excess over
        the ideal, spread over the items each slot ran (``limit`` slots when bounded)."""
        if not self.items:
            return None
        slots = min(self.limit, self.items) if self.bounded else self.items
        return max(0.0, self.makespan_s - self.ideal_makespan_s) * slots / self.items

    @property
    def cores_busy(self) -> float | None:
        """CPU seconds per second of the run: 2.0 is two cores busy all along."""
        if self.cpu_s is None or self.makespan_s <= 0:
            return None
        return self.cpu_s / self.makespan_s

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every field but the workload object and the timeline."""
        data = {
            k: v for k, v in self.__dict__.items() if k not in ("workload", "calls", "arrivals")
        }
        data["distribution"] = self.workload.distribution
        data["latency_s"] = [self.workload.low, self.workload.high]
        data["seed"] = self.workload.seed
        data["cores_busy"] = self.cores_busy
        data["overhead_per_item_s"] = self.overhead_per_item_s
        data["succeeded"] = self.succeeded
        data["goodput_per_s"] = self.goodput_per_s
        return data

    def sentence(self) -> str:
        """The report read aloud, in one line."""
        if not self.items:
            return "No items: nothing ran."
        at_a_time = f"{self.limit} at a time" if self.bounded else f"all {self.items:,} at once"
        if self.adaptive is not None and self.limits:
            ends = f"{self.limits[0][1]} at the start, {self.limits[-1][1]} at the end"
            at_a_time = (
                f"up to {self.limit} at a time, the limit adapting ({self.adaptive}: {ends})"
            )
        text = f"{self.workload.describe()} took {self.makespan_s:.2f} s, {at_a_time}: "
        if self.turned_away:
            away = f"the service turned {self.turned_away:,} of {self.items:,} away"
            text += f"{away}, so only {self.succeeded:,} were done"
            return text + (
                f"; {self.failed} failed (collected, not raised)." if self.failed else "."
            )
        if self.speedup is None or self.efficiency is None:
            text += "the work itself took no time, so this measures only the plumbing"
        else:
            text += (
                f"{self.speedup:.1f}× faster than one at a time, {self.efficiency:.0%} of the ideal"
            )
        if self.failed:
            text += f"; {self.failed} failed (collected, not raised)"
        return text + "."

    def figures(self) -> str:
        """``4.6× faster than one at a time, 96% of the ideal``, or why there are none."""
        if self.turned_away:
            return f"{self.turned_away:,} of {self.items:,} calls turned away: the work not done"
        if self.speedup is None or self.efficiency is None:
            return "the work itself took no time, so this measures only the plumbing"
        return f"{self.speedup:.1f}× faster than one at a time, {self.efficiency:.0%} of the ideal"


def _ratio(num: float, den: float) -> float | None:
    return num / den if num > 0 and den > 0 else None


def ideal_makespan(latencies: Iterable[float], slots: int) -> float:
    """List scheduling: each latency, in input order, goes to the slot that frees up first."""
    free_at: list[float] = []
    for latency in latencies:
        if len(free_at) < slots:
            heapq.heappush(free_at, latency)
        else:
            heapq.heappush(free_at, heapq.heappop(free_at) + latency)
    return max(free_at, default=0.0)


def speedups(reports: Sequence[Report]) -> list[float | None]:
    """Each report's speedup over the same work one at a time, *measured*: sync work on the
    event loop runs one at a time, so that run of the same kind is the yardstick (a CPU's
    speed drifts by 10-20% between runs on a shared machine; a ratio within one run does
    not). io work, and a kind run nowhere on the loop, use the sum of latencies."""
    one_at_a_time = {r.work: r.makespan_s for r in reports if r.run_in == "loop" and r.work != "io"}
    found: list[float | None] = []
    for r in reports:
        serial = one_at_a_time.get(r.work, r.serial_s)
        found.append(serial / r.makespan_s if serial > 0 and r.makespan_s > 0 else None)
    return found


def percentiles(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    if len(values) == 1:
        return values[0], values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def in_flight(spans: Iterable[tuple[float, float]]) -> list[tuple[float, int]]:
    """How many spans were open after each start and end, in time order: ``(time, count)``.

    At the same instant an end comes before a start, so spans that touch (one ends as the
    next starts) are never counted as two at once.
    """
    events = sorted(edge for start, end in spans for edge in ((start, 1), (end, -1)))
    counts: list[tuple[float, int]] = []
    now = 0
    for time, change in events:
        now += change
        counts.append((time, now))
    return counts


def peak_overlap(spans: Iterable[tuple[float, float]]) -> int:
    """The most spans, given as ``(start, end)`` pairs, open at once (0 for none); spans that
    only touch do not overlap (see :func:`in_flight`)."""
    return max((count for _, count in in_flight(spans)), default=0)


def serial_report(workload: Workload, backend: str = "-") -> Report:
    """What one call at a time would take: derived from the latencies, not run."""
    finish, arrivals = 0.0, []
    for latency in workload.latencies():
        finish += latency
        arrivals.append(finish)
    p50, p95, p99 = percentiles(arrivals)
    failed = sum(item.fails for item in workload)
    return Report(
        pattern="serial (derived)",
        backend=backend,
        items=workload.items,
        limit=1,
        makespan_s=finish,
        throughput_per_s=_ratio(workload.items, finish),
        peak_concurrency=min(1, workload.items),
        mean_concurrency=1.0 if finish else 0.0,
        ideal_makespan_s=finish,
        efficiency=1.0 if finish else None,
        first_result_s=arrivals[0] if arrivals else None,
        p50_s=p50,
        p95_s=p95,
        p99_s=p99,
        serial_s=finish,
        speedup=1.0 if finish else None,
        failed=failed,
        transport="-",
        bounded=True,
        workload=workload,
    )


def build_report(
    pattern: str,
    workload: Workload,
    *,
    limit: int,
    bounded: bool,
    makespan: float,
    peak: int,
    busy: float,
    arrivals: Sequence[float],
    calls: Sequence[Call[Item]],
    failed: int,
    transport: str,
    run_in: str,
    cpu: float | None,
    turned_away: int = 0,
    felt: tuple[Service, Felt] | None = None,
    client: str | None = None,
    adaptive: str | None = None,
    limits: Sequence[tuple[float, int]] = (),
) -> Report:
    """A Report from what a run observed; every other figure (ideal, efficiency, speedup,
    percentiles) derived here, the same way for every harness.

    Against a service, the ideal is the same latencies on no more slots than its capacity;
    a run that had calls turned away has no efficiency and no speedup (None): it finished
    early because it did not do the work, not because it did it faster.
    """
    serial = sum(workload.latencies())
    slots = limit if bounded else workload.items
    if workload.kind == "cpu":  # CPU work cannot run on more cores than there are
        slots = min(slots, os.cpu_count() or 1)
    served = felt[0] if felt is not None else None
    if served is not None and served.capacity is not None:
        slots = min(slots, served.capacity)
    ideal = ideal_makespan(workload.latencies(), slots)
    if served is not None and served.rate is not None:  # nor faster than its rate admits
        ideal = max(ideal, (workload.items - 1) / served.rate)
    p50, p95, p99 = percentiles(arrivals)
    call_p50, call_p95, call_p99 = percentiles([c.end - c.start for c in calls if c.ok])
    service_p50, service_p95, service_p99 = percentiles(felt[1].service_s if felt else [])
    # A run that had calls turned away did not do the work: no share of the ideal, no speedup.
    efficiency = None if turned_away else _ratio(ideal, makespan)
    speedup = None if turned_away else _ratio(serial, makespan)
    return Report(
        pattern=pattern,
        backend=current_backend(),
        items=workload.items,
        limit=limit,
        makespan_s=makespan,
        throughput_per_s=_ratio(workload.items, makespan),
        peak_concurrency=peak,
        mean_concurrency=busy / makespan if makespan else 0.0,
        ideal_makespan_s=ideal,
        efficiency=efficiency,
        first_result_s=arrivals[0] if arrivals else None,
        p50_s=p50,
        p95_s=p95,
        p99_s=p99,
        serial_s=serial,
        speedup=speedup,
        failed=failed,
        transport=transport,
        bounded=bounded,
        workload=workload,
        calls=tuple(calls),
        arrivals=tuple(arrivals),
        work=workload.kind,
        run_in=run_in,
        cpu_s=cpu,
        call_p50_s=call_p50,
        call_p95_s=call_p95,
        call_p99_s=call_p99,
        service=None if served is None else served.describe(),
        behaviour=None if served is None else served.behaviour,
        capacity=None if served is None else served.capacity,
        turned_away=turned_away,
        peak_in_service=None if felt is None else felt[1].peak_in_service,
        peak_waiting=None if felt is None else felt[1].peak_waiting,
        service_p50_s=service_p50,
        service_p95_s=service_p95,
        service_p99_s=service_p99,
        client=client,
        adaptive=adaptive,
        limits=tuple(limits),
    )


KNEE_WITHIN = 0.05


def knee(reports: Sequence[Report]) -> Report:
    """The knee of a limit sweep: the smallest limit whose goodput is within 5% of the best
    of the sweep. Below it, goodput grows with the limit; above it, nothing more is gained."""
    if not reports:
        raise ValueError("reports is empty: a sweep of no limits has no knee")
    swept = [r for r in reports if r.goodput_per_s is not None]
    if not swept:
        raise ValueError("no report of the sweep has a goodput: nothing succeeded")
    best = max(r.goodput_per_s or 0.0 for r in swept)
    return min(
        (r for r in swept if (r.goodput_per_s or 0.0) >= (1 - KNEE_WITHIN) * best),
        key=lambda r: r.limit,
    )


def littles_law(report: Report) -> float | None:
    """The goodput Little's law allows the report's run: calls in flight over the mean time a
    call takes, ``min(limit, capacity) / mean latency`` (the most a service of that capacity
    can give, whatever the limit); None for a run without latency."""
    w = report.workload
    mean = (w.low + w.high) / 2 if w.distribution == "uniform" else statistics.fmean(w.latencies())
    if mean <= 0:
        return None
    slots = report.limit if report.capacity is None else min(report.limit, report.capacity)
    return min(slots, report.items) / mean
