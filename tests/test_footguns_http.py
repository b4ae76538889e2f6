"""The footguns over real HTTP: the pattern's limit above the client's pool, and the client as
the bottleneck. Each version starts its own server (uvicorn, in a child process): the broken
version fails as predicted, the fixed one passes, on every backend; cancelled mid-run, a broken
one leaves no server process and nothing else behind (the suite runs with warnings as errors).
The client-bottleneck exhibit runs smaller here (CALLS, PHASE_S): the same growth in the
client's cost, in less time."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

for _package in ("uvicorn", "httpx2", "httpx"):
    pytest.importorskip(_package, reason=f"the http extra is not installed: {_package} is missing")

from patterns.footguns import Verdict, client_bottleneck, two_limits  # noqa: E402
from patterns.lab.http import Call, Served, calling  # noqa: E402
from patterns.lab.probe import cpu_times  # noqa: E402
from patterns.lab.workload import Item  # noqa: E402

pytestmark = pytest.mark.anyio

MODULES: dict[str, ModuleType] = {"two-limits": two_limits, "client-bottleneck": client_bottleneck}
# What each broken version's measurement must say: the predicted failure, not just "not ok".
PREDICTED = {
    "two-limits": (
        "20 of 40 calls failed with PoolTimeout, waiting for one of the client's 5 connections; "
        "the server saw 20, at most 5 at once",
    ),
    "client-bottleneck": ("httpx made ", " with 50: each call cost it ", "× as much"),
}
# What each fixed version's measurement says: nothing failed; the CPU a call held.
PASSED = {
    "two-limits": (
        "0 of 40 calls failed, the client's 20 connections enough for the 20 in flight; the "
        "server saw 40, at most 20 at once",
    ),
    "client-bottleneck": ("httpx2 made ", " with 50: each call cost it ", "about as much ("),
}
#: What each exhibit draws red, and how many of its spans (None: at least one) when broken.
RED = {
    "two-limits": ("(timed out)", 20),
    "client-bottleneck": ("(blocked on the client's CPU)", None),
}


# For a reader the client-bottleneck exhibit measures up to 100 calls or 0.5 s at each limit;
# 50 calls or 0.3 s show the same growth in the CPU a call, in about half the time (httpx
# 4.3-6.9× at 50 in flight, httpx2 0.9-1.1×, in 12 runs on the three backends beside a
# CPU-bound process; the verdict's line is at 2×).
@pytest.fixture(autouse=True)
def _shorter_phases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_bottleneck, "CALLS", 50)
    monkeypatch.setattr(client_bottleneck, "PHASE_S", 0.3)


# The broken version fails as predicted, well within a timeout, and draws what failed red.
@pytest.mark.parametrize("name", MODULES)
async def test_broken_fails_as_predicted(name: str) -> None:
    with anyio.fail_after(10):
        verdict = await MODULES[name].broken()
    assert not verdict.ok, verdict.observed
    assert all(words in verdict.observed for words in PREDICTED[name]), verdict.observed
    mark, count = RED[name]
    red = [label for label, _, _ in verdict.spans if mark in label]
    assert red, verdict.spans
    assert count is None or len(red) == count


# The fixed version passes, and draws nothing red.
@pytest.mark.parametrize("name", MODULES)
async def test_fixed_passes(name: str) -> None:
    with anyio.fail_after(10):
        verdict = await MODULES[name].fixed()
    assert verdict.ok, verdict.observed
    assert all(words in verdict.observed for words in PASSED[name]), verdict.observed
    assert verdict.spans
    assert not [label for label, _, _ in verdict.spans if RED[name][0] in label]


# Cancelled mid-run (calls in flight), a broken version leaves no server process, no task, and
# no unawaited coroutine or unclosed socket (each would warn, and warnings are errors).
@pytest.mark.parametrize("name", MODULES)
async def test_broken_cleans_up_when_cancelled(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = MODULES[name]
    servers = _record_servers(module, monkeypatch)
    midway = _midway(module, servers, monkeypatch)
    children, tasks = set(cpu_times().children), len(anyio.get_running_tasks())
    ended: list[Verdict] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_run_to_end, module.broken, ended)
            # Cut as Ctrl+C would, wherever the run is then (polled: the server is another
            # process, and the counts are the exhibit's own).
            while not await midway():  # noqa: ASYNC110
                await anyio.sleep(0.005)
            tg.cancel_scope.cancel()
    gc.collect()  # a coroutine left unawaited or a socket left open warns here
    assert not ended  # cut off mid-run, not after it
    assert len(anyio.get_running_tasks()) == tasks
    [served] = servers
    assert gone(served.pid)
    assert set(cpu_times().children) <= children


def gone(pid: int) -> bool:
    """No such process, not even a zombie (a zombie keeps its /proc entry, and takes signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return not Path(f"/proc/{pid}").exists()
    return False


def _record_servers(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[Served]:
    """Every server the module's ``serving`` starts, recorded as it starts."""
    servers: list[Served] = []
    real = module.serving

    @asynccontextmanager
    async def recorded(*args: Any, **kwargs: Any) -> AsyncIterator[Served]:
        async with real(*args, **kwargs) as served:
            servers.append(served)
            yield served

    monkeypatch.setattr(module, "serving", recorded)
    return servers


def _midway(
    module: ModuleType, servers: list[Served], monkeypatch: pytest.MonkeyPatch
) -> Callable[[], Awaitable[bool]]:
    """When the broken run is midway: calls served, and calls in flight."""
    if module is two_limits:

        async def a_round_served() -> bool:  # the first round served, the next in service
            if not servers:
                return False
            felt = await servers[0].felt()
            return felt.served >= two_limits.CONNECTIONS and felt.in_service > 0

        return a_round_served
    # The server counts nothing without a capacity: count the deepest limit's calls here.
    deepest = max(client_bottleneck.DEPTHS)
    counts = {"in flight": 0, "done": 0}

    @asynccontextmanager
    async def counted(*args: Any, connections: int, **kwargs: Any) -> AsyncIterator[Call]:
        async with calling(*args, connections=connections, **kwargs) as call:
            if connections != deepest:
                yield call
                return

            async def counting(item: Item) -> str:
                counts["in flight"] += 1
                try:
                    return await call(item)
                finally:
                    counts["in flight"] -= 1
                    counts["done"] += 1

            yield counting

    monkeypatch.setattr(client_bottleneck, "calling", counted)

    async def deepest_under_way() -> bool:  # at the deepest limit, past its warm-up
        return counts["done"] > deepest and counts["in flight"] > 0

    return deepest_under_way


async def _run_to_end(version: Callable[[], Awaitable[Verdict]], ended: list[Verdict]) -> None:
    ended.append(await version())
