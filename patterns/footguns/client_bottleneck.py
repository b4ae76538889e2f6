"""Footgun: the client is the bottleneck (httpx #3215), over real HTTP.

The limit is raised for the service's sake, as many calls in flight as it can take. But each
call also costs the caller CPU, in its HTTP client, and a client whose cost per call grows with
the calls in flight gets slower as the limit rises: past its peak, more in flight buys fewer
calls a second, and the service is never the narrow part. httpx 0.29 is such a client: its
connection pool (httpcore 1.0) walks its connections again for each request every time one is
queued or released, O(N²+N×M) for N connections and M requests (httpcore PR #1035, which makes
it O(N+M); httpx #3215: much slower than aiohttp with concurrent requests).
Measured here against a real server (uvicorn in a process of its own, no capacity limit, calls
of no service time), through a worker pool at each limit with a client of as many connections,
best of 2 rounds of up to 100 calls or 0.5 s, 2 cores, some 40 runs: httpx made 650-1,000
calls/s with 1 in flight, 650-1,150 with 5 and 120-265 with 50, where each call cost it 3.8-6.4
ms of CPU instead of 0.9-1.0 (4.3-6.8× as much: 4.3-4.8× on trio, 5.4-6.8× on asyncio and
uvloop); the bench (``bench/test_http.py``, 1,000 calls) has 874, 712, 433 and 185 calls/s at
1, 10, 20 and 50 on asyncio. httpx2, its maintained continuation (the same API, its pool fixed),
made 700-1,250 with 1, 850-1,700 with 5 and 650-1,500 with 50, at 0.7-0.9 ms of CPU a call at
every depth (0.9-1.07×). The verdict is on the CPU a call, the cause, rather than on the calls a
second, its effect: beside a CPU-bound process the rate with 1 in flight halved at times, and
the ratio of the rates with it (at 50 to at 1: httpx's rose to 0.38, httpx2's fell to 0.75),
while the CPU a call held (httpx 4.5-6.9×, httpx2 0.9-1.1×, one or two such processes beside
it). The fix, when the
client sets the pace: a client that scales (httpx2; aiohttp on asyncio, 5,500-6,200 calls/s in
the bench); where the client cannot change, the limit at what the client carries, the depth
where its calls a second peak (about 5 here for httpx: measure it), not at what the service
could take.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from patterns import worker_pool
from patterns.footguns.exhibit import Exhibit, Instrument, Spans, Verdict
from patterns.lab.http import calling, serving
from patterns.lab.probe import Call
from patterns.lab.workload import Item

#: The limits measured, each with a client of as many connections; the verdict compares the
#: deepest with the first, one call at a time (5 is about where httpx's rate peaks).
DEPTHS = (1, 5, 50)
#: Calls at each limit, unless PHASE_S runs out first (no new call starts after it); the
#: limits are measured ROUNDS times in turn, and each one's best kept (the machine's other
#: work only ever slows a round down, or costs it CPU).
CALLS, PHASE_S, ROUNDS = 100, 0.5, 2
#: At the deepest limit, a client that scales costs at most this many times its CPU a call one
#: at a time. Measured: httpx 4.3-6.9×, httpx2 0.8-1.1×, quiet or beside CPU-bound processes.
GROWTH = 2.0
#: Each call's own timeout in the client (the wait for a connection included): a bound.
TIMEOUT_S = 10.0


async def broken() -> Verdict:
    """httpx 0.29, whose CPU per call grows with the calls in flight."""
    return await _measure("httpx")


async def fixed() -> Verdict:
    """httpx2, the same API, whose CPU per call stays flat."""
    return await _measure("httpx2")


async def _measure(client: str) -> Verdict:
    rates: dict[int, float] = {}  # calls in flight: the best calls a second
    cpu: dict[int, float] = {}  # calls in flight: the least CPU seconds a call
    phases: list[tuple[int, list[Call[Item]]]] = []
    async with serving() as served:  # no capacity: the server is never the narrow part
        probe = Instrument()
        for _ in range(ROUNDS):
            for depth in DEPTHS:
                calls, rate, cost = await _phase(served.url, client, depth, probe)
                rates[depth] = max(rate, rates.get(depth, 0.0))
                cpu[depth] = min(cost, cpu.get(depth, cost))
                phases.append((depth, calls))
    first, deepest = DEPTHS[0], DEPTHS[-1]
    grew = cpu[deepest] / cpu[first]
    deeper = [f"{rates[d]:,.0f} with {d}" for d in DEPTHS[1:]]
    if len(deeper) > 1:
        deeper[-2:] = [" and ".join(deeper[-2:])]
    observed = (
        f"{client} made {rates[first]:,.0f} calls/s with {first} in flight, {', '.join(deeper)}: "
        f"each call cost it {cpu[first] * 1e3:.2f} ms of CPU with {first} in flight and "
        f"{cpu[deepest] * 1e3:.2f} ms with {deepest}, "
        + (f"{grew:.1f}× as much" if grew > GROWTH else f"about as much ({grew:.1f}×)")
    )
    slow = {d for d in DEPTHS if cpu[d] > GROWTH * cpu[first]}
    return Verdict(grew <= GROWTH, observed, _spans(phases, rates, cpu, slow))


async def _phase(
    url: str, client: str, depth: int, probe: Instrument
) -> tuple[list[Call[Item]], float, float]:
    """One round at one limit, through a worker pool of ``depth`` and a client of as many
    connections: each call, the calls a second, and the caller's CPU seconds a call."""
    async with calling(url, client=client, connections=depth, timeout=TIMEOUT_S) as call:
        # The pool's connections opened first, by as many calls at once, uncounted.
        await worker_pool.run(call, [Item(index, 0.0) for index in range(depth)], limit=depth)
        before, started, cpu = len(probe.calls), probe.clock(), time.process_time()
        items = _until(probe, started + PHASE_S, CALLS)
        await worker_pool.run(probe.wrap(call), items, limit=depth)
        calls = probe.calls[before:]
        elapsed, used = probe.clock() - started, time.process_time() - cpu
        return calls, len(calls) / elapsed, used / len(calls)


def _until(probe: Instrument, deadline: float, calls: int) -> Iterator[Item]:
    """``calls`` items, fewer if the deadline passes first: the calls in flight then finish."""
    for index in range(calls):
        if probe.clock() > deadline:
            return
        yield Item(index, 0.0)


def _spans(
    phases: list[tuple[int, list[Call[Item]]]],
    rates: dict[int, float],
    cpu: dict[int, float],
    slow: set[int],
) -> Spans:
    """A row per lane at each limit, its calls end to end (both rounds in the same rows); at a
    limit where each call cost the client more than GROWTH times its CPU one at a time, the
    calls are drawn red: blocked on the client's CPU, not on the server."""
    rows: list[tuple[str, float, float]] = []
    for depth, calls in phases:
        head = f"{depth} in flight ({rates[depth]:,.0f}/s, {cpu[depth] * 1e3:.1f} ms CPU a call)"
        mark = " (blocked on the client's CPU)" if depth in slow else ""
        rows.extend((f"{head}: lane {c.lane}{mark}", c.start, c.end) for c in calls)
    return tuple(rows)


EXHIBIT = Exhibit(
    name="client-bottleneck",
    title="The client is the bottleneck",
    article="httpx #3215 and httpcore PR #1035: the pool's CPU per call grows with calls in flight",
    why=(
        "The limit was raised for the service, but the client was the narrow part: each call "
        "cost httpx 0.29 more CPU the more calls it had in flight (its pool walks every "
        "connection for each request), so at 50 in flight it made fewer calls a second than "
        "one at a time, while the server had room to spare. When the client sets the pace, "
        "choose a client that scales (httpx2, the same API; aiohttp on asyncio). If the client "
        "cannot change, set the limit at what it carries, the depth where its calls a second "
        "peak (measure it: about 5 here), not at what the service could take."
    ),
    broken=broken,
    fixed=fixed,
)
