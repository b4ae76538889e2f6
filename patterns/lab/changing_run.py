"""Running the changing-capacity scenario (:mod:`patterns.lab.changing`): every row, round by
round, on the simulated service or over real HTTP; the oracle measured on the calm service; and
the peer package's row.

The peer is ``adaptive-concurrency`` (PyPI): its ``arun_adaptive`` runs batches of calls, its
workers (batches in flight) moved by a controller that watches each batch's latency and its
failures. With batches of one call, its workers are a concurrency limit that adapts, as ours is.
It runs on asyncio (and uvloop) alone; on trio its row says so.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import logging
import math
import random
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import anyio

from patterns import worker_pool
from patterns.contract import check_choice
from patterns.lab.backends import current_backend
from patterns.lab.changing import (
    PEER,
    ROWS,
    UNBOUNDED,
    Run,
    Scenario,
    Target,
    endless,
    follow,
    oracle,
    p95,
    run_row,
    simulated,
)
from patterns.lab.probe import Probe
from patterns.lab.service import Overloaded
from patterns.lab.workload import Item, WorkFailed
from patterns.retry import Budget, retrying

if TYPE_CHECKING:
    from patterns.lab.http import Served

#: Calls the oracle's calm measurement times, the capacity in flight at once.
CALM_CALLS = 200


async def measure(
    scenario: Scenario,
    *,
    rows: Sequence[str] = ROWS,
    rounds: int = 3,
    transport: str = "simulated",
    client: str = "httpx2",
    on_run: Callable[[Run], None] | None = None,
) -> list[Run]:
    """Every row of ``rows``, ``rounds`` times, in the running loop: round by round (every row
    once, then again), so that a machine slowing down mid-measurement slows every row alike.
    ``transport`` "http" calls the same service model served over real HTTP, with ``client``."""
    backend = current_backend()
    runs: list[Run] = []

    def record(run: Run) -> None:
        runs.append(run)
        if on_run is not None:
            on_run(run)

    async with _targets(scenario, transport, client) as fresh:
        for round_ in range(rounds):
            service_s = await calm(scenario, await fresh())
            record(oracle(scenario, service_s, backend=backend, transport=transport))
            for row in rows:
                target = await fresh()
                if row == PEER:
                    record(await run_peer(scenario, target, transport=transport, seed=round_))
                else:
                    where = {"backend": backend, "transport": transport}
                    record(await run_row(row, scenario, target, **where, seed=round_))
    return runs


async def calm(scenario: Scenario, target: Target) -> list[float]:
    """Each call's time in service on the calm service: the first phase's capacity in flight,
    nothing queued, :data:`CALM_CALLS` calls."""
    items = itertools.islice(endless(scenario), CALM_CALLS)
    await worker_pool.run(target.call, items, limit=scenario.phases[0][0])
    return list((await target.felt()).service_s)


@asynccontextmanager
async def _targets(
    scenario: Scenario, transport: str, client: str
) -> AsyncIterator[Callable[[], Awaitable[Target]]]:
    """A fresh target for each run: a new simulated service; or, over HTTP, one server for all
    (uvicorn in a process of its own), its counters reset and its capacity set back each run."""
    if transport == "simulated":

        async def new() -> Target:
            return simulated(scenario)

        yield new
        return
    check_choice("transport", transport, ("simulated", "http"))
    from patterns.lab import http

    service = scenario.service()
    async with http.serving(
        service.capacity,
        behaviour=service.behaviour,
        queue_limit=service.queue_limit,
        retry_after=service.retry_after,
    ) as served:
        opened = http.calling(served.url, client=client, connections=UNBOUNDED, timeout=86_400.0)
        async with opened as call:

            async def again() -> Target:
                await _reset(served)
                await served.resize(scenario.phases[0][0])
                return Target(call, _resize(served), served.felt)

            yield again


def _resize(served: Served) -> Callable[[int], Awaitable[None]]:
    async def resize(capacity: int) -> None:
        await served.resize(capacity)

    return resize


async def _reset(served: Served) -> None:
    """The server's counters afresh, once the last run's calls (cancelled as it ended, each
    hanging up) have left it."""
    from patterns.lab.http import UnexpectedAnswer

    for _ in range(100):
        try:
            await served.reset()
            return
        except UnexpectedAnswer as busy:
            if busy.status != 409:
                raise
            await anyio.sleep(0.02)
    await served.reset()


# --- the peer: adaptive-concurrency's arun_adaptive, a batch of one call --------------------------


def peer_fits(backend: str) -> str | None:
    """Why the peer cannot run here, or None: it is an install away, and asyncio's alone."""
    if importlib.util.find_spec("adaptive_concurrency") is None:
        return "not installed (pip install adaptive-concurrency)"
    if backend == "trio":
        return "asyncio only: its runner awaits asyncio.wait"
    return None


async def run_peer(scenario: Scenario, target: Target, *, transport: str, seed: int = 0) -> Run:
    """adaptive-concurrency's ``arun_adaptive`` calling ``target``: batches of one call, its
    workers (batches in flight) free to move from 4 to ten times the largest capacity, each
    call retried inside the batch as every row's is. Its limit over time is read from its log
    of each change ("tune: ... -> workers=N")."""
    backend = current_backend()
    skipped = peer_fits(backend)
    if skipped is not None:
        return Run(PEER, backend, transport, scenario.seconds, skipped=skipped)
    # The peer is no dependency of the package: found by name, as the HTTP clients are.
    peer: Any = importlib.import_module("adaptive_concurrency")
    AdaptiveConfig, arun_adaptive = peer.AdaptiveConfig, peer.arun_adaptive

    budget = Budget(scenario.budget)
    probe: Probe[Item] = Probe(anyio.current_time)
    work = probe.wrap(retrying(target.call, budget=budget, rng=random.Random(seed)))
    done = {True: 0, False: 0}

    async def batch(chunk: list[Item]) -> tuple[bool, int, str]:
        try:
            await work(chunk[0])
        except (Overloaded, WorkFailed) as error:
            done[False] += 1
            return False, 0, str(error)
        done[True] += 1
        return True, 1, ""

    config = AdaptiveConfig(
        label=PEER, batch_size=1, max_batch_size=1, workers=4, max_workers=10 * scenario.most,
        max_consecutive_failures=sys.maxsize,  # a failure counted, never the end of the run
    )  # fmt: skip
    # Its runner takes a list: more calls than any row gets through in the time.
    items = list(itertools.islice(endless(scenario), 20 * math.ceil(scenario.ideal_calls(0.02))))
    start = anyio.current_time()
    trace = [(0.0, config.workers)]
    with _tuning(lambda n: trace.append((anyio.current_time() - start, n))):
        with anyio.move_on_after(scenario.seconds):
            async with anyio.create_task_group() as group:
                group.start_soon(follow, scenario, target, None, start)
                await arun_adaptive(items, batch, config)
                group.cancel_scope.cancel()
    felt = await target.felt()
    return Run(
        PEER, backend, transport, scenario.seconds, succeeded=done[True], failed=done[False],
        turned_away=felt.turned_away, received=felt.served + felt.turned_away,
        retried=budget.retried, p95_s=p95(probe), limits=tuple(trace),
    )  # fmt: skip


@contextmanager
def _tuning(note: Callable[[int], None]) -> Iterator[None]:
    """The peer's log of its own changes, read for its workers, and kept from the terminal."""
    logger = logging.getLogger("adaptive_concurrency")

    class Tuned(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "tune:" in str(record.msg) and isinstance(record.args, tuple):
                note(int(str(record.args[2])))

    handler, level, propagate = Tuned(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
