"""Where a run's calls go: how they travel, where sync work runs, what the other side is.

The harness measures one thing, a pattern driving calls; this module sets the calls up for it.
How each call travels (:data:`Transport`): *simulated* (the workload's latency waited out in the
process, no socket), *tcp* (a real connection to a toy server started on a free loopback port)
or *http* (a real HTTP request to the service model, served by uvicorn in a process of its own).
Where a blocking or cpu workload's sync calls run (:data:`RunIn`): on the loop (the footgun:
everything else stalls), in worker threads, or in worker processes. And, given a
:class:`~patterns.lab.service.Service`, the capacity on the other side.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import anyio

from patterns.contract import check_choice
from patterns.lab.service import Felt, Service
from patterns.lab.toy import toy_server
from patterns.lab.workload import Item, Workload, do_work, over_tcp
from patterns.processes import in_processes
from patterns.threads import in_threads

if TYPE_CHECKING:
    from patterns.lab.http import Served

Transport = Literal["simulated", "tcp", "http"]
TRANSPORTS: tuple[Transport, ...] = get_args(Transport)
RunIn = Literal["loop", "threads", "processes"]
RUN_IN: tuple[RunIn, ...] = get_args(RunIn)
#: Where each kind of work runs unless told: io awaits; blocking calls go to threads; CPU
#: work to processes.
DEFAULT_RUN_IN: dict[str, RunIn] = {"io": "loop", "blocking": "threads", "cpu": "processes"}


def check_transport(transport: str) -> Transport:
    """``transport``, or a ValueError naming the choices. ``"sleep"``, its old name, still
    means ``"simulated"``, with a DeprecationWarning."""
    if transport == "sleep":
        # stacklevel 4: the caller of ameasure, acompare or asweep, past the checks inside.
        warnings.warn(
            'transport "sleep" is deprecated; use "simulated"', DeprecationWarning, stacklevel=4
        )
        return "simulated"
    checked: Transport = check_choice("transport", transport, TRANSPORTS)
    return checked


def check_run_in(workload: Workload, run_in: RunIn | None, transport: Transport) -> RunIn:
    """Where ``workload``'s calls run: ``run_in``, or its kind's default; an error naming the
    mismatch (io work cannot go to threads, tcp and http carry only io)."""
    where = DEFAULT_RUN_IN[workload.kind] if run_in is None else run_in
    check_choice("run_in", where, RUN_IN)
    transport = check_transport(transport)
    if workload.kind == "io" and where != "loop":
        raise ValueError(f"io work awaits: it runs on the loop, not in {where}")
    if transport != "simulated" and workload.kind != "io":
        raise ValueError(f"transport {transport} runs io work, not {workload.kind}")
    return where


@dataclass(frozen=True)
class Calls:
    """What a run calls, and what its report says of them: where they ran, how they travelled,
    the service they reached (and how to ask it what it felt), the HTTP client."""

    call: Callable[[Item], Awaitable[str]]
    run_in: RunIn = "loop"
    transport: Transport = "simulated"
    service: Service | None = None
    felt: Callable[[], Awaitable[Felt]] | None = None
    client: str | None = None


def open_calls(
    workload: Workload,
    *,
    limit: int,
    transport: Transport,
    run_in: RunIn | None,
    service: Service | None,
    client: str,
    served: Served | None,
) -> AbstractAsyncContextManager[Calls]:
    """The calls for one run of ``workload`` at ``limit``, set up for the block (a server
    started, worker processes warmed) and taken down after it. Checked here, before anything
    starts: a mismatch is a ValueError naming it."""
    transport = check_transport(transport)
    where = check_run_in(workload, run_in, transport)
    if transport == "http":
        from patterns.lab.http import CLIENTS

        check_choice("client", client, CLIENTS)
    if service is not None and workload.kind != "io":
        raise ValueError(f"a service serves io work, not {workload.kind}")
    if service is not None and transport == "tcp":
        raise ValueError(
            "transport tcp has its own toy server: a service runs on simulated or http"
        )
    if where != "loop":
        return _offloaded(workload, where, limit)
    # Room for every connection the pattern may open (scatter/gather opens one per item).
    if transport == "http":
        return _over_http(service or Service(), served, client, max(limit, workload.items))
    if transport == "tcp":
        return _over_tcp(max(limit, workload.items, 1))
    return _simulated(workload, service)


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


@asynccontextmanager
async def _simulated(workload: Workload, service: Service | None) -> AsyncIterator[Calls]:
    if service is not None:
        fresh = service.fresh()  # a fresh copy for the run: nothing it felt before counts

        async def felt() -> Felt:
            return fresh.felt

        yield Calls(fresh.call, service=fresh, felt=felt)
    elif workload.kind == "io":
        yield Calls(do_work)
    else:
        yield Calls(_on_the_loop(workload.sync_work()))


def _on_the_loop(fn: Callable[[Item], str]) -> Callable[[Item], Awaitable[str]]:
    async def on_the_loop(item: Item) -> str:
        return fn(item)  # a sync call on the event loop: nothing else runs until it returns

    return on_the_loop


@asynccontextmanager
async def _offloaded(workload: Workload, where: RunIn, limit: int) -> AsyncIterator[Calls]:
    """The workload's sync function in threads or processes. Processes are capped at
    ``limit`` even for a pattern that bounds nothing (one process per item would bring the
    machine down), and started before the run, as a long-running service would have them."""
    fn = workload.sync_work()
    if where == "threads":
        yield Calls(in_threads(fn), run_in=where)
        return
    call = in_processes(fn, limit=limit)
    await _start_workers(call, limit, workload.items)
    yield Calls(call, run_in=where)


async def _start_workers(call: Callable[[Item], Awaitable[str]], limit: int, items: int) -> None:
    """Start the worker processes the run will use (each pays its interpreter's start-up
    once) before the clock starts: an item of no latency through each, all at once. No more
    than ``items``: a run never has more calls in flight than items, so ``limit=40`` for 2
    items starts 2 processes, not 40. A limit above the cores is not capped here: the run
    measures the limit asked for (the report shows what the extra processes bought)."""

    async def start_one() -> None:
        await call(Item(-1, 0.0))

    async with anyio.create_task_group() as tg:
        for _ in range(min(limit, items)):
            tg.start_soon(start_one)


@asynccontextmanager
async def _over_tcp(connections: int) -> AsyncIterator[Calls]:
    """Every call a connection to a toy server on a free loopback port, for the block."""
    server = toy_server(
        port=0,
        max_connections=connections,
        # Clients always send their delay at once, so a generous window costs nothing.
        hello_window=1.0,
        # The workload decides the delays (a heavy tail reaches 20 times its range).
        max_delay=3600.0,
    )
    async with anyio.create_task_group() as tg:
        _, port = await tg.start(server.serve)
        try:
            yield Calls(over_tcp(port), transport="tcp")
        finally:
            server.shutdown()


@asynccontextmanager
async def _over_http(
    service: Service, served: Served | None, client: str, connections: int
) -> AsyncIterator[Calls]:
    """Every call an HTTP request to ``service``'s model with ``client``: on ``served``, from
    its counters afresh, or on a server started for the block."""
    from patterns.lab import http

    async with AsyncExitStack() as stack:
        if served is None:
            served = await stack.enter_async_context(serving(service))
        await served.reset()
        # No timeout of the client's own (a day): the run measures the service, and a call of
        # the model may wait in its queue for as long as the work ahead of it takes.
        opened = http.calling(served.url, client=client, connections=connections, timeout=86_400.0)
        call = await stack.enter_async_context(opened)
        yield Calls(call, transport="http", service=service, felt=served.felt, client=client)
