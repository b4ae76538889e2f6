"""The harness: run any registered pattern on a workload and measure it the same way.

Three ways to run: :func:`ameasure` one pattern, :func:`acompare` every pattern on the same
workload, :func:`asweep` one pattern at a range of limits against a service. They run in the
caller's loop (for Jupyter's top-level ``await``, no nest_asyncio); :func:`measure`,
:func:`compare` and :func:`sweep` are the same in a fresh event loop of a chosen backend (for
scripts and the CLI). Each run gives a :class:`Report`: throughput, makespan against the ideal,
peak and mean concurrency, time-to-result percentiles, and the failures it collected.

Where the calls go (how they travel, where sync work runs, the service they reach) is set up
by :mod:`patterns.lab.calls`; the report and its maths are :mod:`patterns.lab.report`'s.
"""

from __future__ import annotations

import copy
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from patterns.contract import Limit
from patterns.lab.backends import (
    BACKENDS,
    Backend,
    BackendUnavailable,
    check_backend,
    current_backend,
    run_on,
)
from patterns.lab.calls import (
    DEFAULT_RUN_IN,
    RUN_IN,
    TRANSPORTS,
    Calls,
    RunIn,
    Transport,
    check_run_in,
    check_transport,
    open_calls,
    serving,
)
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
from patterns.lab.service import Overloaded, Service
from patterns.lab.workload import Item, WorkFailed, Workload

if TYPE_CHECKING:
    from patterns.lab.http import Served

# The report, the backends and the calls' set-up live in modules of their own; their names are
# here too, where the harness's users have always found them.
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
    "check_transport",
    "compare",
    "current_backend",
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

#: Called after each result reaches the consumer with (results so far, calls in flight).
Progress = Callable[[int, int], None]
Clock = Callable[[], float]


async def ameasure(
    pattern: str | Pattern,
    workload: Workload | None = None,
    *,
    limit: int | Limit = 5,
    on_progress: Progress | None = None,
    clock: Clock = time.perf_counter,
    transport: Transport = "simulated",
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
    (:func:`serving`), whose counters start afresh (``"sleep"``, simulated's old name, warns).
    An adaptive ``limit`` bounds the pattern by its maximum and every call by its gate (inside
    collect mode: it sees each call turned away); the report holds its ``limits`` over time.
    """
    workload = Workload() if workload is None else workload
    opened = open_calls(
        workload,
        limit=limit if isinstance(limit, int) else limit.maximum,
        transport=transport,
        run_in=run_in,
        service=service,
        client=client,
        served=served,
    )
    async with opened as calls:
        return await _measured(pattern, workload, limit, calls, on_progress, clock)


async def _measured(
    pattern: str | Pattern,
    workload: Workload,
    limit: int | Limit,
    calls: Calls,
    on_progress: Progress | None,
    clock: Clock,
) -> Report:
    """``pattern`` driving ``calls`` over ``workload``, through the probe, timed by ``clock``."""
    module = get_pattern(pattern) if isinstance(pattern, str) else pattern
    probe: Probe[Item] = Probe(clock)
    arrivals: list[float] = []
    call = calls.call
    if on_progress is not None:
        progress = on_progress
        # Report calls as they start too, or "in flight" reads 0 until the first result (inside
        # the probe: the count includes the call announcing itself).
        call = _announcing(call, lambda: progress(len(arrivals), probe.in_flight))
    work: Work[Item, object] = probe.wrap(call)
    bound = limit if isinstance(limit, int) else limit.maximum
    if not isinstance(limit, int) and module.BOUNDED:  # outside the probe, inside collect mode
        work = probe.watch(limit).gate(work)
    if calls.service is not None:
        # Collect mode for what the workload and the service decide (a failed item, a call
        # turned away): an Outcome, not the end of the run. Anything else (a server gone, a
        # refused connection) is no result of the model's: it ends the run, raised.
        work = collect_errors(work, only=(WorkFailed, Overloaded))
    elif workload.failure_rate > 0:
        # Collect mode: a failed item comes back as an Outcome instead of cancelling the run.
        work = collect_errors(work)
    failed = turned_away = 0
    cpu_before, start = cpu_times(), clock()
    async with module.stream(work, workload, limit=bound) as results:
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
    felt = None
    if calls.service is not None and calls.felt is not None:
        felt = (calls.service, await calls.felt())
    return build_report(
        module.__name__.rpartition(".")[2],
        workload,
        limit=bound,
        bounded=module.BOUNDED,
        makespan=makespan,
        peak=probe.peak,
        busy=probe.busy,
        arrivals=arrivals,
        calls=[Call(c.item, c.lane, c.start - start, c.end - start, c.ok) for c in probe.calls],
        failed=failed,
        transport=calls.transport,
        run_in=calls.run_in,
        cpu=cpu,
        turned_away=turned_away,
        felt=felt,
        client=calls.client,
        adaptive=None if isinstance(limit, int) or not module.BOUNDED else type(limit).__name__,
        limits=[(max(0.0, at - start), value) for at, value in probe.limits],
    )


def _announcing(work: Work[T, R], announce: Callable[[], None]) -> Work[T, R]:
    async def announced(item: T) -> R:
        announce()
        return await work(item)

    return announced


async def acompare(
    workload: Workload | None = None,
    *,
    limit: int | Limit = 5,
    patterns: Iterable[str] | None = None,
    on_start: Callable[[str], Progress | None] | None = None,
    on_report: Callable[[Report], None] | None = None,
    clock: Clock = time.perf_counter,
    transport: Transport = "simulated",
    run_in: RunIn | None = None,
    service: Service | None = None,
    client: str = "httpx2",
) -> list[Report]:
    """Every registered pattern (or those named) on the same workload, one after another.

    ``on_start(name)`` is called before each pattern runs and may return a progress callback;
    ``on_report(report)`` as each one finishes, so that a run cut short keeps what it did.
    Over http, one server serves every pattern, its counters afresh for each. Each pattern
    gets a copy of an adaptive ``limit``, as given.
    """
    workload = Workload() if workload is None else workload
    names = PATTERNS if patterns is None else patterns
    runs = ((n, copy.deepcopy(limit), None if on_start is None else on_start(n)) for n in names)
    return await _in_turn(
        workload, runs, on_report, clock, transport, run_in=run_in, service=service, client=client
    )


async def asweep(
    pattern: str | Pattern,
    workload: Workload,
    *,
    limits: Iterable[int],
    service: Service,
    on_report: Callable[[Report], None] | None = None,
    clock: Clock = time.perf_counter,
    transport: Transport = "simulated",
    client: str = "httpx2",
) -> list[Report]:
    """``pattern`` on ``workload`` at each of ``limits``, against the same ``service`` (a fresh
    copy each run): how much to bound, seen. :func:`knee` finds where goodput stops growing.
    Over http, one server serves the whole sweep, its counters afresh for each limit."""
    limits = list(limits)
    if not limits:
        raise ValueError("limits is empty: give the sweep at least one limit")
    runs = ((pattern, limit, None) for limit in limits)
    return await _in_turn(
        workload, runs, on_report, clock, transport, run_in=None, service=service, client=client
    )


async def _in_turn(
    workload: Workload,
    runs: Iterable[tuple[str | Pattern, int | Limit, Progress | None]],
    on_report: Callable[[Report], None] | None,
    clock: Clock,
    transport: Transport,
    *,
    run_in: RunIn | None,
    service: Service | None,
    client: str,
) -> list[Report]:
    """Each (pattern, limit, progress callback) of ``runs`` measured on ``workload``, one after
    another. Over http, one server serves them all (each run resets its counters)."""
    transport = check_transport(transport)
    reports = []
    async with _one_server(workload, transport, service) as served:
        for pattern, limit, progress in runs:
            report = await ameasure(
                pattern,
                workload,
                limit=limit,
                on_progress=progress,
                clock=clock,
                transport=transport,
                run_in=run_in,
                service=service,
                client=client,
                served=served,
            )
            reports.append(report)
            if on_report is not None:
                on_report(report)
    return reports


def _one_server(
    workload: Workload, transport: Transport, service: Service | None
) -> AbstractAsyncContextManager[Served | None]:
    """One HTTP server for every run of a comparison or a sweep (None where they need none)."""
    if transport == "http" and workload.kind == "io":
        return serving(service or Service())
    return nullcontext()


# The same in a fresh event loop, for scripts and the command line.


class _Run(TypedDict, total=False):
    """The keywords every sync form passes on as they are: typed, for the reader's checker."""

    clock: Clock
    transport: Transport
    client: str


class MeasureOptions(_Run, total=False):
    limit: int | Limit
    on_progress: Progress | None
    run_in: RunIn | None
    service: Service | None


class CompareOptions(_Run, total=False):
    limit: int | Limit
    patterns: Iterable[str] | None
    on_start: Callable[[str], Progress | None] | None
    on_report: Callable[[Report], None] | None
    run_in: RunIn | None
    service: Service | None


class SweepOptions(_Run, total=False):
    on_report: Callable[[Report], None] | None


def measure(
    pattern: str | Pattern,
    workload: Workload | None = None,
    *,
    backend: Backend = "asyncio",
    **options: Unpack[MeasureOptions],
) -> Report:
    """:func:`ameasure`, with the same keywords, in a fresh event loop of ``backend``."""
    return _in_a_fresh_loop(backend, ameasure, pattern, workload, **options)


def compare(
    workload: Workload | None = None,
    *,
    backend: Backend = "asyncio",
    **options: Unpack[CompareOptions],
) -> list[Report]:
    """:func:`acompare`, with the same keywords, in a fresh event loop of ``backend``."""
    return _in_a_fresh_loop(backend, acompare, workload, **options)


def sweep(
    pattern: str | Pattern,
    workload: Workload,
    *,
    limits: Iterable[int],
    service: Service,
    backend: Backend = "asyncio",
    **options: Unpack[SweepOptions],
) -> list[Report]:
    """:func:`asweep`, with the same keywords, in a fresh event loop of ``backend``."""
    return _in_a_fresh_loop(
        backend, asweep, pattern, workload, limits=limits, service=service, **options
    )


def _in_a_fresh_loop(
    backend: str, afn: Callable[..., Awaitable[T]], *args: Any, **options: Any
) -> T:
    """``afn(*args, **options)`` in a fresh event loop of ``backend``. Its arguments are
    checked first, here: a misspelt keyword is the sync form's TypeError, raised before any
    loop starts, and the old name of a transport warns at the caller's line."""
    name = afn.__name__.removeprefix("a")
    try:
        inspect.signature(afn).bind(*args, **options)
    except TypeError as exc:
        raise TypeError(f"{name}() {exc}") from None
    if "transport" in options:
        options["transport"] = check_transport(options["transport"])  # the caller's line: 4
    return run_on(backend, lambda: afn(*args, **options))
