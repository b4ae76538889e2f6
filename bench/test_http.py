"""Scenario 8, real HTTP: what each client costs per call, and what a worker loop reaches.

One local server for the scenario (``patterns.lab.http.serving``: uvicorn in a process of its own,
on its own loop), called on asyncio, uvloop and trio by each client that runs there (httpx2,
httpx; aiohttp on asyncio and uvloop), through a raw worker loop: N tasks pulling from one
shared iterator, no pattern, one client with a pool of N connections, opened and warmed up
(N calls at once) before the clock starts.

1. **throughput**: calls of zero service time (latency 0, no capacity), 1,000 of them with 1,
   10, 20 and 50 in flight, median of 3: calls per second, and its inverse, the whole cost of
   a call (client, loopback, server) at that depth. On 2 cores the server's process and the
   caller's share the machine: a client that costs more CPU per call leaves the server less.
2. **goodput**: a server of capacity 10 (``reject``) and service times uniform 20-50 ms (mean
   35 ms), called by a raw httpx2 worker loop of 10: calls served per second against Little's
   law, 10 / 0.035 s = 286 calls/s, on each backend; 1,000 calls, median of 3.
3. **patterns**: the same server, each bounded pattern measured by the harness at limit 10
   (``transport="http"``) in the same rounds as the raw loop: none may be turned away; its
   goodput against Little's law (the bar: 85%) and against the loop's (the bar: 0.95×).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
import anyio.from_thread
import pytest

pytest.importorskip("uvicorn", reason="the http extra is not installed: pip install -e '.[http]'")
pytest.importorskip("httpx2", reason="the http extra is not installed: pip install -e '.[http]'")

from patterns import PATTERNS
from patterns.lab.backends import BACKENDS, run_on
from patterns.lab.harness import Report, ameasure
from patterns.lab.http import Call, Served, calling, clients_for, serving
from patterns.lab.service import Overloaded, Service
from patterns.lab.workload import Item, Workload

from .conftest import EXTRA_SUMMARIES, median_seconds
from .scenarios import SCALES, Scale

DEPTHS = (1, 10, 20, 50)
#: The goodput run: capacity and worker loop of 10, service times 20-50 ms.
CAPACITY = 10
SERVICE_S = (0.020, 0.050)


@dataclass(frozen=True)
class HttpScale:
    calls: int
    goodput_calls: int
    rounds: int


HTTP_SCALES = {
    "full": HttpScale(1_000, 1_000, 3),
    # Seconds in all: the scenario runs in the test suite, so it cannot rot.
    "tiny": HttpScale(10, 10, 1),
}


def http_scale(scale: Scale) -> HttpScale:
    return HTTP_SCALES["full" if scale == SCALES["full"] else "tiny"]


def _held(*args: Any, **kwargs: Any) -> Iterator[Served]:
    """A server for the module, held open from a thread of its own."""
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(serving(*args, **kwargs)) as served,
    ):
        yield served


@pytest.fixture(scope="module")
def free() -> Iterator[Served]:
    """No capacity: every call served at once, at no cost of the model's."""
    yield from _held()


@pytest.fixture(scope="module")
def limited() -> Iterator[Served]:
    yield from _held(CAPACITY, behaviour="reject")


async def worker_loop(call: Call, items: Iterable[Item], workers: int) -> int:
    """``workers`` tasks pulling from one shared iterator: the calls turned away, counted."""
    source = iter(items)
    away = 0

    async def worker() -> None:
        nonlocal away
        for item in source:
            try:
                await call(item)
            except Overloaded:
                away += 1

    async with anyio.create_task_group() as group:
        for _ in range(workers):
            group.start_soon(worker)
    return away


@dataclass(frozen=True)
class Timed:
    seconds: float
    #: CPU seconds spent on the calls by this process (the caller), and by the server's
    cpu_s: float
    server_cpu_s: float
    away: int


def server_cpu_s(pid: int) -> float:
    """The CPU time the server process has used so far, from /proc (0 where there is none)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def timed_calls(served: Served, client: str, workers: int, items: list[Item]) -> Timed:
    """``items`` through a warm client of ``workers`` connections: the time it took, the CPU
    time of the caller and of the server, and how many calls were turned away."""
    async with calling(served.url, client=client, connections=workers) as call:
        await worker_loop(call, (Item(0, 0.0) for _ in range(workers)), workers)
        started, cpu, server = time.perf_counter(), time.process_time(), server_cpu_s(served.pid)
        away = await worker_loop(call, items, workers)
        return Timed(
            time.perf_counter() - started,
            time.process_time() - cpu,
            server_cpu_s(served.pid) - server,
            away,
        )


#: (backend, client, calls in flight) -> calls per second; CPU µs per call, caller and server
RATES: dict[tuple[str, str, int], float] = {}
CPU_US: dict[tuple[str, str, int], tuple[float, float]] = {}
#: backend -> (goodput calls/s, share of Little's law, share of the sample's ideal, turned away)
GOODPUT: dict[str, tuple[float, float, float, int]] = {}
SERVER: list[str] = []


# Calls per second at zero service time, by client, backend and calls in flight.
@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize(("backend", "client"), [(b, c) for b in BACKENDS for c in clients_for(b)])
def test_http_throughput(
    benchmark: Any, backend: str, client: str, depth: int, free: Served, scale: Scale
) -> None:
    size = http_scale(scale)
    if not SERVER:
        about = anyio.run(free.health)
        SERVER.append(f"uvicorn {about['server'].split()[-1]}, {about['http']}, {about['loop']}")
    benchmark.group = f"http throughput: {size.calls:,} calls of 0 s, {backend}"
    items = [Item(n, 0.0) for n in range(size.calls)]
    inner: list[Timed] = []

    def once() -> None:
        inner.append(run_on(backend, lambda: timed_calls(free, client, depth, items)))
        assert inner[-1].away == 0

    median_seconds(benchmark, once, size.rounds)
    key = (backend, client, depth)
    RATES[key] = size.calls / statistics.median(t.seconds for t in inner)
    CPU_US[key] = (
        statistics.median(t.cpu_s for t in inner) / size.calls * 1e6,
        statistics.median(t.server_cpu_s for t in inner) / size.calls * 1e6,
    )
    benchmark.extra_info["calls_per_s"] = RATES[key]
    benchmark.extra_info["cpu_us_per_call"] = dict(
        zip(("caller", "server"), CPU_US[key], strict=True)
    )


# A raw httpx2 worker loop of 10 against a server of capacity 10 and 20-50 ms calls: goodput,
# as a share of Little's law (10 / 35 ms = 286 calls/s).
@pytest.mark.parametrize("backend", BACKENDS)
def test_http_goodput(benchmark: Any, backend: str, limited: Served, scale: Scale) -> None:
    size = http_scale(scale)
    benchmark.group = f"http goodput: capacity {CAPACITY}, {SERVICE_S[0]:g}-{SERVICE_S[1]:g} s"
    items = list(Workload(size.goodput_calls, *SERVICE_S, seed=0))
    inner: list[Timed] = []

    def once() -> None:
        inner.append(run_on(backend, lambda: timed_calls(limited, "httpx2", CAPACITY, items)))

    median_seconds(benchmark, once, size.rounds)
    seconds = statistics.median(t.seconds for t in inner)
    away = max(t.away for t in inner)
    goodput = (len(items) - away) / seconds
    little = CAPACITY / statistics.mean(SERVICE_S)
    sample = CAPACITY / statistics.mean(item.latency for item in items)
    GOODPUT[backend] = (goodput, goodput / little, goodput / sample, away)
    benchmark.extra_info["goodput_per_s"] = goodput
    # Faster than the capacity allows would be a measurement error.
    assert goodput <= sample * 1.02, (goodput, sample)


#: (backend, pattern) -> (goodput calls/s, the raw loop's in the same rounds, turned away)
PATTERNS_GOODPUT: dict[tuple[str, str], tuple[float, float, int]] = {}
BOUNDED = [name for name, pattern in PATTERNS.items() if pattern.BOUNDED]


# Every bounded pattern, measured by the harness over real HTTP at limit = capacity (10),
# against the raw httpx2 worker loop in the same rounds: none turned away; goodput beside the
# loop's, and against Little's law.
@pytest.mark.parametrize("backend", BACKENDS)
def test_http_patterns(benchmark: Any, backend: str, limited: Served, scale: Scale) -> None:
    size = http_scale(scale)
    benchmark.group = f"http patterns: capacity {CAPACITY}, {SERVICE_S[0]:g}-{SERVICE_S[1]:g} s"
    workload = Workload(size.goodput_calls, *SERVICE_S, seed=0)
    items = list(workload)
    raw: list[float] = []
    found: dict[str, list[Report]] = {}
    service = Service(CAPACITY)

    def once() -> None:
        raw.append(
            run_on(backend, partial(timed_calls, limited, "httpx2", CAPACITY, items)).seconds
        )
        for name in BOUNDED:
            run = partial(
                ameasure,
                name,
                workload,
                limit=CAPACITY,
                transport="http",
                service=service,
                served=limited,
            )
            found.setdefault(name, []).append(run_on(backend, run))

    median_seconds(benchmark, once, size.rounds)
    loop = len(items) / statistics.median(raw)
    for name, reports in found.items():
        goodput = statistics.median(r.goodput_per_s or 0.0 for r in reports)
        away = max(r.turned_away for r in reports)
        PATTERNS_GOODPUT[backend, name] = (goodput, loop, away)
        assert away == 0, f"{name} at limit = capacity had {away} turned away"


def summary_lines() -> list[str]:
    """Calls per second and µs per call by client and depth; goodput against Little's law."""
    lines: list[str] = []
    backend: str  # each table's rows, by backend
    if RATES:
        lines.append(
            "calls/s at zero service time (µs per call: wall · the caller's CPU · the server's "
            "CPU), by calls in flight; one server: " + (SERVER[0] if SERVER else "?")
        )
        lines.append(f"  {'backend':8} {'client':8}" + "".join(f"{d:>31}" for d in DEPTHS))
        for backend in BACKENDS:
            for client in clients_for(backend):
                keys = [(backend, client, d) for d in DEPTHS]
                if not any(k in RATES for k in keys):
                    continue
                text = "".join(
                    f"{RATES[k]:>9,.0f} ({1e6 / RATES[k]:>5,.0f} · {CPU_US[k][0]:>5,.0f} · "
                    f"{CPU_US[k][1]:>4,.0f})"
                    if k in RATES
                    else " " * 31
                    for k in keys
                )
                lines.append(f"  {backend:8} {client:8}{text}")
    if GOODPUT:
        lines.append(
            f"goodput, capacity {CAPACITY}, {SERVICE_S[0] * 1e3:g}-{SERVICE_S[1] * 1e3:g} ms, "
            f"a raw httpx2 worker loop of {CAPACITY} (Little's law: "
            f"{CAPACITY / statistics.mean(SERVICE_S):.0f} calls/s):"
        )
        for backend, (rate, little, sample, away) in GOODPUT.items():
            lines.append(
                f"  {backend:8} {rate:6.1f} calls/s = {little:.1%} of Little's law "
                f"({sample:.1%} of the sample's), {away} turned away"
            )
    if PATTERNS_GOODPUT:
        little = CAPACITY / statistics.mean(SERVICE_S)
        lines.append(
            f"each bounded pattern over http (httpx2), limit {CAPACITY} = capacity: goodput, "
            "share of Little's law, × the raw worker loop of the same rounds, turned away"
        )
        for (backend, name), (rate, loop, away) in PATTERNS_GOODPUT.items():
            met = "met" if rate >= 0.85 * little and rate >= 0.95 * loop else "NOT met"
            lines.append(
                f"  {backend:8} {name:20} {rate:6.1f} calls/s = {rate / little:.1%}, "
                f"{rate / loop:.2f}× the loop's {loop:.1f}, {away} turned away "
                f"(≥ 85% and ≥ 0.95×: {met})"
            )
    return lines


EXTRA_SUMMARIES.append(("http", summary_lines))
