"""The harness for the cluster recipes: the same workload, the same Report, across processes.

In one process the probe counts calls in flight as they enter and leave. On a cluster the
calls run in other processes, perhaps on other machines, so each call brings its own start and
end times back with its result, and the figures are computed from those spans on the client:
the peak is the most spans that overlap, the lanes are given as the probe gives them.

The clock: ``time.time()`` on the worker that ran the call, against the client's. On one
machine that is one clock. Across machines it assumes their clocks agree (NTP keeps them within
a few milliseconds): a skew shifts the spans, and can blur the peak by that much.
"""

from __future__ import annotations

import heapq
import signal
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import anyio.abc

from patterns.contract import leaves
from patterns.lab.backends import run_on
from patterns.lab.core import Outcome, collect_errors
from patterns.lab.probe import Call, cpu_times, cpu_used
from patterns.lab.registry import CLUSTER_PATTERNS
from patterns.lab.report import Report, build_report, peak_overlap
from patterns.lab.workload import Item, Workload, do_work


def spanned(work: Callable[[Item], Awaitable[Any]]) -> Callable[[Item], Awaitable[Any]]:
    """``work``, returning ``(item, start, end, result)``, times on the worker's wall clock."""

    async def timed(item: Item) -> tuple[Item, float, float, Any]:
        start = time.time()
        result = await work(item)
        return item, start, time.time(), result

    return timed


async def ameasure_cluster(
    name: str, workload: Workload, *, limit: int, address: str | None, local: bool = False
) -> Report:
    """Run the cluster recipe ``name`` on ``workload`` (a local cluster when ``address`` is
    None, or when ``local`` says the address is one) and report on it, from the spans its
    calls bring back."""
    recipe = CLUSTER_PATTERNS[name]
    work: Callable[[Item], Awaitable[Any]] = spanned(do_work)
    if workload.failure_rate > 0:
        work = spanned(collect_errors(do_work))
    stream = partial(recipe.stream, address=address)
    spans: list[tuple[Item, float, float, bool]] = []
    arrivals: list[float] = []
    cpu_before = cpu_times()
    async with stream(work, workload, limit=limit) as results:
        # Timed from the stream's start: a local cluster's start-up is not the work's.
        origin = time.time()
        async for item, start, end, result in results:
            arrivals.append(time.time() - origin)
            ok = not (isinstance(result, Outcome) and not result.ok)
            spans.append((item, start - origin, end - origin, ok))
        makespan = time.time() - origin
    cpu = cpu_used(cpu_before, cpu_times())
    calls = _lanes(spans)
    return build_report(
        name,
        workload,
        limit=limit,
        bounded=True,
        makespan=makespan,
        peak=peak_overlap((c.start, c.end) for c in calls),
        busy=sum(c.end - c.start for c in calls),
        arrivals=arrivals,
        calls=calls,
        failed=sum(not c.ok for c in calls),
        transport="simulated",
        run_in="cluster" if address is None or local else address,
        cpu=cpu,
    )


def _lanes(spans: list[tuple[Item, float, float, bool]]) -> list[Call[Item]]:
    """Each span on the lowest lane free when it starts, as the probe gives lanes."""
    free: list[int] = []
    busy: list[tuple[float, int]] = []
    lanes = 0
    calls: list[Call[Item]] = []
    for item, start, end, ok in sorted(spans, key=lambda span: span[1]):
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane, lanes = lanes, lanes + 1
        heapq.heappush(busy, (end, lane))
        calls.append(Call(item, lane, start, end, ok))
    return calls


def compare_on_cluster(
    workload: Workload,
    *,
    limit: int,
    where: str,
    backend: str = "asyncio",
    on_start: Callable[[str], object] | None = None,
    on_report: Callable[[Report], None] | None = None,
) -> list[Report]:
    """Every cluster recipe on ``workload``, ``where`` being ``local`` (a local cluster per
    recipe) or a scheduler's address, in one fresh asyncio (or uvloop) event loop."""
    from patterns.cluster import connect

    address = None if where == "local" else where
    reports: list[Report] = []
    interrupted = False

    async def run_all() -> None:
        async with anyio.create_task_group() as group:
            await group.start(ctrl_c_cancels, group.cancel_scope)
            if address is None:  # one local cluster for every recipe: one start to pay
                async with connect(None, slots=limit) as client:
                    await run_each(client.scheduler.address)
            else:
                await run_each(address)
            group.cancel_scope.cancel()

    async def run_each(address: str) -> None:
        for recipe in CLUSTER_PATTERNS:
            if on_start is not None:
                on_start(recipe)
            report = await ameasure_cluster(
                recipe, workload, limit=limit, address=address, local=where == "local"
            )
            reports.append(report)
            if on_report is not None:
                on_report(report)

    async def ctrl_c_cancels(
        scope: anyio.CancelScope, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        # Ctrl+C as a cancellation, not a KeyboardInterrupt raised wherever Dask's code happens
        # to be: the cluster is closed in order, and the caller is told after.
        nonlocal interrupted
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            task_status.started()
            async for _ in signals:
                interrupted = True
                scope.cancel()
                return

    try:
        run_on(backend, run_all)
    except BaseExceptionGroup as failures:  # the task group's: the one failure, as itself
        if interrupted:  # a Ctrl+C while the workers started: some died of it
            raise KeyboardInterrupt from None
        if len(found := leaves(failures)) == 1:
            raise found[0] from None
        raise
    except Exception:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    if interrupted:
        raise KeyboardInterrupt
    return reports
