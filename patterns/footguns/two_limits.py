"""Footgun: the pattern's limit above the client's pool (httpx #1171), over real HTTP.

Two limits on the same calls, set in two places: the pattern's ``limit`` of 20, and the HTTP
client's pool of 5 connections (``httpx2.Limits(max_connections=5)``). The pattern starts 20
calls, and 15 of them wait inside the client for a pooled connection, where neither the
pattern nor the server sees them; the client's pool timeout counts that wait, and a call that
spends it fails with ``PoolTimeout`` though it never reached the server (httpx #1171:
"PoolTimeout when num tasks in asyncio.gather() exceeds client max_connections").
Measured here against a real server (uvicorn in a process of its own, no capacity limit): 40
calls of 150 ms through a worker pool of 20, a pool timeout of 200 ms, longer than a call: the
connections go round first come first served, so a call queued two rounds back (300 ms) spends
its 200 ms and fails: 20 of the 40 failed with PoolTimeout (10 of the first 20, 10 of those
queued behind them), and the server saw the other 20, at most 5 at once, on asyncio, uvloop
and trio alike. Collected, not raised, so that each is counted. The fix is one limit, set in
one place: the client's pool sized from the pattern's limit (``max_connections=limit``), so
that a call the pattern starts has a connection at once: 0 of 40 failed, the server saw all
40, 20 at once, in 2 rounds (0.3 s). If the 5 connections are the real limit (the server's,
say), set the pattern's limit to 5 instead: the limit that holds is the smaller, and the other
only queues calls out of sight.
"""

from __future__ import annotations

from typing import Any

import anyio

from patterns import worker_pool
from patterns.footguns.exhibit import Exhibit, Instrument, Spans, Verdict
from patterns.lab.core import Outcome, collect_errors
from patterns.lab.http import Served, outcome, path_of, serving
from patterns.lab.workload import Item

ITEMS, LIMIT, CONNECTIONS, CALL_S = 40, 20, 5, 0.15
#: The client's pool timeout: longer than a call, shorter than two. A call one round back in
#: the pool's queue gets a connection after 150 ms; one two rounds back would after 300 ms.
POOL_S = 0.2
#: A call that had its connection sooner than this did not wait for one: it waited for its
#: turn of the loop, as 20 calls started at once do (up to 10 ms on trio).
NO_WAIT_S = 0.02
#: Every other timeout of the client's (connect, read, write): a bound, never reached.
TIMEOUT_S = 5.0
#: A server with room for every call (a capacity never reached), so that it counts each one.
ROOM = 1_000


async def broken() -> Verdict:
    """A worker pool of 20 through one client whose pool has 5 connections."""
    return await _measure(connections=CONNECTIONS)


async def fixed() -> Verdict:
    """One limit, in one place: the client's pool sized from the pattern's limit."""
    return await _measure(connections=LIMIT)


async def _measure(connections: int) -> Verdict:
    import httpx2

    async with serving(ROOM, behaviour="queue") as served:
        http = httpx2.AsyncClient(
            base_url=served.url,
            limits=httpx2.Limits(
                max_connections=connections, max_keepalive_connections=connections
            ),
            timeout=httpx2.Timeout(TIMEOUT_S, pool=POOL_S),
            trust_env=False,  # loopback: no proxy from the environment
            verify=False,  # plain HTTP: no TLS context to build
        )
        try:
            # A fresh server's first call takes 10-25 ms longer, and a new connection's first
            # call 5-10 ms: the pool's connections opened first, by as many calls at once,
            # uncounted, so that the first round is on time.
            async with anyio.create_task_group() as tg:
                for index in range(connections):
                    tg.start_soon(http.get, path_of(Item(ITEMS + index, 0.0)))
            await served.reset()
            probe, got = Instrument(), dict[int, float]()  # item index: when it had a connection

            async def call(item: Item) -> str:
                async def trace(event: str, info: dict[str, Any]) -> None:
                    # The first thing the client does on a connection (connect a new one, or
                    # send on one kept alive) is when the call stopped waiting for one.
                    got.setdefault(item.index, probe.clock())

                response = await http.get(path_of(item), extensions={"trace": trace})
                return outcome(item, response.status_code, response.content, response.headers.get)

            # Collect mode: a call that fails comes back as an Outcome, and the others run on.
            items = [Item(index, CALL_S) for index in range(ITEMS)]
            outcomes: list[Outcome[Item, str]] = await worker_pool.run(
                collect_errors(probe.wrap(call)), items, limit=LIMIT
            )
        finally:  # shielded: a close cut short by a cancellation would leave sockets open
            with anyio.CancelScope(shield=True):
                await http.aclose()
        return await _verdict(served, probe, outcomes, got, connections)


async def _verdict(
    served: Served,
    probe: Instrument,
    outcomes: list[Outcome[Item, str]],
    got: dict[int, float],
    connections: int,
) -> Verdict:
    import httpx2

    timed_out = {o.item.index for o in outcomes if isinstance(o.error, httpx2.PoolTimeout)}
    errors = [o.error for o in outcomes if o.error is not None and o.item.index not in timed_out]
    if errors:  # anything else is not this footgun: say so rather than miscount
        raise errors[0]
    felt = await served.felt()
    seen = f"the server saw {felt.served}, at most {felt.peak_in_service} at once"
    if timed_out:
        observed = (
            f"{len(timed_out)} of {ITEMS} calls failed with PoolTimeout, waiting for one of the "
            f"client's {connections} connections; {seen}"
        )
    else:
        observed = (
            f"0 of {ITEMS} calls failed, the client's {connections} connections enough for the "
            f"{LIMIT} in flight; {seen}"
        )
    return Verdict(not timed_out and felt.served == ITEMS, observed, _spans(probe, got, timed_out))


def _spans(probe: Instrument, got: dict[int, float], timed_out: set[int]) -> Spans:
    """Each call's wait for a connection (where it waited), then its time at the server; a
    call that spent its pool timeout waiting is drawn "(timed out)"."""
    rows: list[tuple[int, str, float, float]] = []
    for c in probe.calls:
        index = c.item.index
        if index in timed_out:
            rows.append(
                (index, f"call {index} waiting for a connection (timed out)", c.start, c.end)
            )
            continue
        start = got.get(index, c.start)
        if start - c.start > NO_WAIT_S:  # it waited for a connection
            rows.append((index, f"call {index} waiting for a connection", c.start, start))
        rows.append((index, f"call {index}", start, c.end))
    # A row per label, each call's wait above its time at the server.
    return tuple((label, start, end) for _, label, start, end in sorted(rows, key=_by_call))


def _by_call(row: tuple[int, str, float, float]) -> tuple[int, float]:
    return row[0], row[2]


EXHIBIT = Exhibit(
    name="two-limits",
    title="The pattern's limit above the client's pool",
    article="httpx #1171: PoolTimeout when the tasks outnumber the client's max_connections",
    why=(
        "Two limits held the same calls: the pattern's 20, and the client's pool of 5 "
        "connections. The pattern started 20 calls, and 15 waited inside the client, out of "
        "sight of the pattern and the server, until the pool timeout failed those queued two "
        "rounds back. Set the limit in one place and derive the other from it: the pool sized "
        "from the pattern's limit (max_connections=limit), or the pattern's limit set to the "
        "pool's, if the connections are the real limit."
    ),
    broken=broken,
    fixed=fixed,
)
