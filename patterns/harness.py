"""The harness: run any registered pattern on a workload and measure it the same way.

``measure`` / ``compare`` start their own event loop (for scripts and the CLI);
``ameasure`` / ``acompare`` run in the caller's loop (for Jupyter's top-level ``await``, no
nest_asyncio). Each run gives a :class:`Report`: throughput, makespan against the ideal, peak and
mean concurrency, time-to-result percentiles, and the failures it collected.
"""

from __future__ import annotations

import asyncio
import heapq
import importlib.util
import os
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, get_args

import anyio

from patterns.contract import check_choice
from patterns.core import Outcome, Pattern, R, T, Work, collect_errors
from patterns.probe import Call, Probe, cpu_times, cpu_used
from patterns.processes import in_processes
from patterns.registry import PATTERNS, get_pattern
from patterns.server import Server
from patterns.service import Felt, Overloaded, Service
from patterns.threads import in_threads
from patterns.workload import Item, WorkFailed, Workload, do_work, over_tcp

if TYPE_CHECKING:
    from patterns.http import Served

Backend = Literal["asyncio", "uvloop", "trio"]
#: sleep: simulated calls; tcp: each call a real connection to a local toy server; http: each
#: call a real HTTP request to the service model, served by uvicorn in a process of its own.
Transport = Literal["sleep", "tcp", "http"]
TRANSPORTS: tuple[Transport, ...] = get_args(Transport)
#: Where a blocking or cpu workload's sync calls run: on the event loop itself (the footgun:
#: everything else stalls), in worker threads, or in worker processes.
RunIn = Literal["loop", "threads", "processes"]
RUN_IN: tuple[RunIn, ...] = get_args(RunIn)
#: Where each kind of work runs unless told: io awaits; blocking calls go to threads; CPU
#: work to processes.
DEFAULT_RUN_IN: dict[str, RunIn] = {"io": "loop", "blocking": "threads", "cpu": "processes"}
BACKENDS: tuple[Backend, ...] = get_args(Backend)
#: Called after each result reaches the consumer with (results so far, calls in flight).
Progress = Callable[[int, int], None]
Clock = Callable[[], float]

# Which package each backend needs beyond anyio, and the extra that installs it.
_NEEDS = {"uvloop": "uvloop", "trio": "trio"}


class BackendUnavailable(RuntimeError):
    """The chosen backend's package is not installed."""


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
    #: "sleep" for simulated calls, "tcp" for real connections to a local server.
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


def current_backend() -> Backend:
    """The backend of the running event loop: asyncio, uvloop or trio."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return "trio"
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def _resolve(pattern: str | Pattern) -> tuple[str, Pattern]:
    module = get_pattern(pattern) if isinstance(pattern, str) else pattern
    return module.__name__.rpartition(".")[2], module


async def ameasure(
    pattern: str | Pattern,
    workload: Workload | None = None,
    *,
    limit: int = 5,
    on_progress: Progress | None = None,
    clock: Clock = time.perf_counter,
    transport: Transport = "sleep",
    run_in: RunIn | None = None,
    service: Service | None = None,
    client: str = "httpx2",
    served: Served | None = None,
) -> Report:
    """Run ``pattern`` on ``workload`` in the running event loop and report on it.

    With a failure rate above zero the pattern runs in collect mode: failed items are
    counted, not raised, and the run goes on. ``transport="tcp"`` makes every call a real
    connection to a toy server started on a free loopback port for the run. A ``blocking``
    or ``cpu`` workload runs its sync calls ``run_in`` the loop, threads or processes (by
    default threads for blocking, processes for cpu); worker processes are started before
    the clock starts, as a long-running service would have them, and capped at ``limit``.

    ``service`` puts the calls through a service with a capacity (a fresh copy of it for the
    run, so nothing it felt before counts) and reports what it felt: calls it turned away,
    the most it had in service and waiting, its time in service per call; the run is in
    collect mode, so a call turned away is counted, not raised. ``transport="http"`` serves
    that model (or one without a limit) from a real server process for the run, called with
    ``client`` (:data:`patterns.http.CLIENTS`); or from ``served``, one already running
    (:func:`serving`), whose counters start afresh.
    """
    workload = Workload() if workload is None else workload
    where = check_run_in(workload, run_in, transport)
    if transport == "http":
        from patterns.http import CLIENTS

        check_choice("client", client, CLIENTS)
    if service is not None and workload.kind != "io":
        raise ValueError(f"a service serves io work, not {workload.kind}")
    if service is not None and transport == "tcp":
        raise ValueError("transport tcp has its own toy server: a service runs on sleep or http")
    run = partial(_ameasure, pattern, workload, limit, on_progress, clock)
    if where != "loop":
        offloaded = _offloaded(workload, where, limit)
        if where == "processes":
            await _start_workers(offloaded, limit, workload.items)
        return await run(offloaded, where)
    if transport == "http":
        connections = max(limit, workload.items)
        return await _over_http(run, service or Service(), served, client, connections)
    if transport == "tcp":
        # Room for every connection the pattern may open (scatter/gather opens one per item);
        # clients always send their delay at once, so a generous window costs nothing.
        server = Server(
            port=0,
            max_connections=max(limit, workload.items, 1),
            hello_window=1.0,
            # The workload decides the delays (a heavy tail reaches 20 times its range).
            max_delay=3600.0,
        )
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            try:
                return await run(over_tcp(port), "loop", transport="tcp")
            finally:
                server.shutdown()
    if service is not None:
        fresh = service.fresh()

        async def felt() -> Felt:
            return fresh.felt

        return await run(fresh.call, "loop", service=(fresh, felt))
    blocking = None if workload.kind == "io" else _on_the_loop(workload.sync_work())
    return await run(blocking, "loop")


@asynccontextmanager
async def serving(service: Service) -> AsyncIterator[Served]:
    """``service``'s model served over HTTP from a process of its own, for the block."""
    from patterns import http

    async with http.serving(
        service.capacity,
        behaviour=service.behaviour,
        queue_limit=service.queue_limit,
        retry_after=service.retry_after,
        rate=service.rate,
    ) as served:
        yield served


async def _over_http(
    run: Callable[..., Awaitable[Report]],
    service: Service,
    served: Served | None,
    client: str,
    connections: int,
) -> Report:
    """``run`` with every call an HTTP request to ``service``'s model: on ``served``, from its
    counters afresh, or on a server started for the run."""
    from patterns import http

    if served is None:
        async with serving(service) as started:
            return await _over_http(run, service, started, client, connections)
    await served.reset()
    # No timeout of the client's own (a day): the run measures the service, and a call of the
    # model may wait in its queue for as long as the work ahead of it takes.
    opened = http.calling(served.url, client=client, connections=connections, timeout=86_400.0)
    async with opened as call:
        return await run(
            call, "loop", transport="http", service=(service, served.felt), client=client
        )


def check_run_in(workload: Workload, run_in: RunIn | None, transport: Transport) -> RunIn:
    """Where ``workload``'s calls run: ``run_in``, or its kind's default; an error naming the
    mismatch (io work cannot go to threads, tcp carries only io)."""
    where = DEFAULT_RUN_IN[workload.kind] if run_in is None else run_in
    check_choice("run_in", where, RUN_IN)
    check_choice("transport", transport, TRANSPORTS)
    if workload.kind == "io" and where != "loop":
        raise ValueError(f"io work awaits: it runs on the loop, not in {where}")
    if transport != "sleep" and workload.kind != "io":
        raise ValueError(f"transport {transport} runs io work, not {workload.kind}")
    return where


def _on_the_loop(fn: Callable[[Item], str]) -> Callable[[Item], Awaitable[str]]:
    async def on_the_loop(item: Item) -> str:
        return fn(item)  # a sync call on the event loop: nothing else runs until it returns

    return on_the_loop


def _offloaded(workload: Workload, where: RunIn, limit: int) -> Work[Item, str]:
    """The workload's sync function in threads or processes. Processes are capped at
    ``limit`` even for a pattern that bounds nothing: one process per item would bring the
    machine down."""
    fn = workload.sync_work()
    return in_threads(fn) if where == "threads" else in_processes(fn, limit=limit)


async def _start_workers(adapter: Work[Item, str], limit: int, items: int) -> None:
    """Start the worker processes the run will use (each pays its interpreter's start-up
    once) before the clock starts: an item of no latency through each, all at once. No more
    than ``items``: a run never has more calls in flight than items, so ``limit=40`` for 2
    items starts 2 processes, not 40. A limit above the cores is not capped here: the run
    measures the limit asked for (the report shows what the extra processes bought)."""

    async def start_one() -> None:
        await adapter(Item(-1, 0.0))

    async with anyio.create_task_group() as tg:
        for _ in range(min(limit, items)):
            tg.start_soon(start_one)


async def _ameasure(
    pattern: str | Pattern,
    workload: Workload,
    limit: int,
    on_progress: Progress | None,
    clock: Clock,
    call: Callable[[Item], Awaitable[str]] | None,
    where: RunIn,
    *,
    transport: str = "sleep",
    service: tuple[Service, Callable[[], Awaitable[Felt]]] | None = None,
    client: str | None = None,
) -> Report:
    name, module = _resolve(pattern)
    do_work_here = do_work if call is None else call
    probe: Probe[Item] = Probe(clock)
    arrivals: list[float] = []
    work: Work[Item, object] = probe.wrap(do_work_here)
    if on_progress is not None:
        report = on_progress
        # Report calls as they start too, or "in flight" would read 0 until the first result;
        # inside the probe, so that the count includes the call announcing itself.
        announced = _announcing(do_work_here, lambda: report(len(arrivals), probe.in_flight))
        work = probe.wrap(announced)
    if service is not None:
        # Collect mode for what the workload and the service decide (a failed item, a call
        # turned away): an Outcome, not the end of the run. Anything else (a server gone, a
        # refused connection) is no result of the model's: it ends the run, raised.
        work = collect_errors(work, only=(WorkFailed, Overloaded))
    elif workload.failure_rate > 0:
        # Collect mode: a failed item comes back as an Outcome instead of cancelling the run.
        work = collect_errors(work)
    failed = turned_away = 0
    cpu_before = cpu_times()
    start = clock()
    async with module.stream(work, workload, limit=limit) as results:
        async for result in results:
            arrivals.append(clock() - start)
            if isinstance(result, Outcome) and not result.ok:
                if isinstance(result.error, Overloaded):
                    turned_away += 1
                else:
                    failed += 1
            if on_progress is not None:
                on_progress(len(arrivals), probe.in_flight)
    makespan = clock() - start
    cpu = cpu_used(cpu_before, cpu_times())
    felt = None if service is None else (service[0], await service[1]())

    calls = tuple(Call(c.item, c.lane, c.start - start, c.end - start, c.ok) for c in probe.calls)
    return build_report(
        name,
        workload,
        limit=limit,
        bounded=module.BOUNDED,
        makespan=makespan,
        peak=probe.peak,
        busy=probe.busy,
        arrivals=arrivals,
        calls=calls,
        failed=failed,
        transport=transport,
        run_in=where,
        cpu=cpu,
        turned_away=turned_away,
        felt=felt,
        client=client,
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
    )


async def acompare(
    workload: Workload | None = None,
    *,
    limit: int = 5,
    patterns: Iterable[str] | None = None,
    on_start: Callable[[str], Progress | None] | None = None,
    on_report: Callable[[Report], None] | None = None,
    clock: Clock = time.perf_counter,
    transport: Transport = "sleep",
    run_in: RunIn | None = None,
    service: Service | None = None,
    client: str = "httpx2",
) -> list[Report]:
    """Every registered pattern (or those named) on the same workload, one after another.

    ``on_start(name)`` is called before each pattern runs and may return a progress callback;
    ``on_report(report)`` as each one finishes, so that a run cut short keeps what it did.
    """
    workload = Workload() if workload is None else workload
    names = PATTERNS if patterns is None else patterns
    one = partial(
        ameasure,
        workload=workload,
        limit=limit,
        clock=clock,
        transport=transport,
        run_in=run_in,
        service=service,
        client=client,
    )
    if transport == "http" and workload.kind == "io":
        # One server for every pattern: each starts from fresh counters (Served.reset).
        async with serving(service or Service()) as served:
            return await _each(names, on_start, on_report, partial(one, served=served))
    return await _each(names, on_start, on_report, one)


async def _each(
    names: Iterable[str],
    on_start: Callable[[str], Progress | None] | None,
    on_report: Callable[[Report], None] | None,
    measure_one: Callable[..., Awaitable[Report]],
) -> list[Report]:
    reports = []
    for name in names:
        progress = on_start(name) if on_start is not None else None
        report = await measure_one(name, on_progress=progress)
        reports.append(report)
        if on_report is not None:
            on_report(report)
    return reports


async def asweep(
    pattern: str | Pattern,
    workload: Workload,
    *,
    limits: Iterable[int],
    service: Service,
    on_report: Callable[[Report], None] | None = None,
    clock: Clock = time.perf_counter,
    transport: Transport = "sleep",
    client: str = "httpx2",
) -> list[Report]:
    """``pattern`` on ``workload`` at each of ``limits``, against the same ``service`` (a fresh
    copy each run): how much to bound, seen. :func:`knee` finds where goodput stops growing.
    Over http, one server serves the whole sweep, its counters afresh for each limit."""
    limits = list(limits)
    if not limits:
        raise ValueError("limits is empty: give the sweep at least one limit")
    one = partial(
        ameasure,
        pattern,
        workload,
        clock=clock,
        transport=transport,
        service=service,
        client=client,
    )

    async def each_limit(served: Served | None) -> list[Report]:
        reports = []
        for limit in limits:
            reports.append(await one(limit=limit, served=served))
            if on_report is not None:
                on_report(reports[-1])
        return reports

    if transport == "http":
        async with serving(service) as served:
            return await each_limit(served)
    return await each_limit(None)


#: Within this share of the best goodput, a limit has gained what there was to gain.
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


def sweep(
    pattern: str | Pattern,
    workload: Workload,
    *,
    limits: Iterable[int],
    service: Service,
    backend: Backend = "asyncio",
    on_report: Callable[[Report], None] | None = None,
    clock: Clock = time.perf_counter,
    transport: Transport = "sleep",
    client: str = "httpx2",
) -> list[Report]:
    """:func:`asweep` in a fresh event loop of the chosen backend."""
    run = partial(
        asweep,
        pattern,
        workload,
        limits=limits,
        service=service,
        on_report=on_report,
        clock=clock,
        transport=transport,
        client=client,
    )
    return _in_a_fresh_loop(backend, run)


def _announcing(work: Work[T, R], announce: Callable[[], None]) -> Work[T, R]:
    async def announced(item: T) -> R:
        announce()
        return await work(item)

    return announced


def _in_a_fresh_loop(backend: str, run: Callable[[], Awaitable[T]]) -> T:
    """``run()`` in a fresh event loop of ``backend``: the sync forms' one way in."""
    name, options = check_backend(backend)
    return anyio.run(run, backend=name, backend_options=options)


def check_backend(backend: str) -> tuple[str, dict[str, Any]]:
    """anyio.run's backend and options for ``backend``; a clear error if it cannot run here."""
    check_choice("backend", backend, BACKENDS)
    needed = _NEEDS.get(backend)
    if needed is not None and importlib.util.find_spec(needed) is None:
        raise BackendUnavailable(
            f"backend {backend!r} needs the {needed} package: pip install -e '.[backends]'"
        )
    if backend == "uvloop":
        return "asyncio", {"use_uvloop": True}
    return backend, {}


def measure(
    pattern: str | Pattern,
    workload: Workload | None = None,
    *,
    limit: int = 5,
    backend: Backend = "asyncio",
    on_progress: Progress | None = None,
    clock: Clock = time.perf_counter,
    transport: Transport = "sleep",
    run_in: RunIn | None = None,
    service: Service | None = None,
    client: str = "httpx2",
) -> Report:
    """:func:`ameasure` in a fresh event loop of the chosen backend."""
    run = partial(
        ameasure,
        pattern,
        workload,
        limit=limit,
        on_progress=on_progress,
        clock=clock,
        transport=transport,
        run_in=run_in,
        service=service,
        client=client,
    )
    return _in_a_fresh_loop(backend, run)


def compare(
    workload: Workload | None = None,
    *,
    limit: int = 5,
    backend: Backend = "asyncio",
    patterns: Iterable[str] | None = None,
    on_start: Callable[[str], Progress | None] | None = None,
    on_report: Callable[[Report], None] | None = None,
    clock: Clock = time.perf_counter,
    transport: Transport = "sleep",
    run_in: RunIn | None = None,
    service: Service | None = None,
    client: str = "httpx2",
) -> list[Report]:
    """:func:`acompare` in a fresh event loop of the chosen backend."""
    run = partial(
        acompare,
        workload,
        limit=limit,
        patterns=patterns,
        on_start=on_start,
        on_report=on_report,
        clock=clock,
        transport=transport,
        run_in=run_in,
        service=service,
        client=client,
    )
    return _in_a_fresh_loop(backend, run)
