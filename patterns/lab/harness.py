"""The harness: run any registered pattern on a workload and measure it the same way.

``measure`` / ``compare`` start their own event loop (for scripts and the CLI);
``ameasure`` / ``acompare`` run in the caller's loop (for Jupyter's top-level ``await``, no
nest_asyncio). Each run gives a :class:`Report`: throughput, makespan against the ideal, peak and
mean concurrency, time-to-result percentiles, and the failures it collected.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Literal, get_args

import anyio

from patterns.contract import check_choice
from patterns.lab.backends import BACKENDS, Backend, BackendUnavailable, check_backend, run_on
from patterns.lab.core import Outcome, Pattern, R, T, Work, collect_errors
from patterns.lab.probe import Call, Probe, cpu_times, cpu_used
from patterns.lab.registry import PATTERNS, get_pattern
from patterns.lab.report import (
    KNEE_WITHIN,
    Report,
    build_report,
    ideal_makespan,
    knee,
    littles_law,
    percentiles,
    serial_report,
    speedups,
)
from patterns.lab.service import Felt, Overloaded, Service
from patterns.lab.workload import Item, WorkFailed, Workload, do_work, over_tcp
from patterns.processes import in_processes
from patterns.server import Server
from patterns.threads import in_threads

if TYPE_CHECKING:
    from patterns.lab.http import Served

# The report and the backends live in their own modules; their names are here too, where the
# harness's users have always found them.
__all__ = [
    "BACKENDS",
    "DEFAULT_RUN_IN",
    "KNEE_WITHIN",
    "RUN_IN",
    "TRANSPORTS",
    "Backend",
    "BackendUnavailable",
    "Report",
    "RunIn",
    "Transport",
    "acompare",
    "ameasure",
    "asweep",
    "build_report",
    "check_backend",
    "check_run_in",
    "compare",
    "ideal_makespan",
    "knee",
    "littles_law",
    "measure",
    "percentiles",
    "serial_report",
    "serving",
    "speedups",
    "sweep",
]

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
#: Called after each result reaches the consumer with (results so far, calls in flight).
Progress = Callable[[int, int], None]
Clock = Callable[[], float]


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
    ``client`` (:data:`patterns.lab.http.CLIENTS`); or from ``served``, one already running
    (:func:`serving`), whose counters start afresh.
    """
    workload = Workload() if workload is None else workload
    where = check_run_in(workload, run_in, transport)
    if transport == "http":
        from patterns.lab.http import CLIENTS

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
    from patterns.lab import http

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
    from patterns.lab import http

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
    return run_on(backend, run)


def _announcing(work: Work[T, R], announce: Callable[[], None]) -> Work[T, R]:
    async def announced(item: T) -> R:
        announce()
        return await work(item)

    return announced


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
    return run_on(backend, run)


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
    return run_on(backend, run)
