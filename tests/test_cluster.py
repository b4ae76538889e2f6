"""The cluster recipes keep the contract on a real cluster: a scheduler and two workers started
with Dask's own command line (``dask scheduler``, ``dask worker``), as a user would start them;
exactly once, within the limit across workers, the first failure bare, nothing left running on
the cluster when the stream is left, a worker killed mid-run survived; and all of it stopped
at the end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("distributed", reason="the cluster extra is not installed")

from patterns import cluster_limit, cluster_window
from patterns.cluster import ClusterUnavailable, require

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]
DASK = str(Path(sys.executable).parent / "dask")
RECIPES = [cluster_window, cluster_limit]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Dask's client runs on asyncio


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A scheduler and two worker processes (4 slots each), started as a user would."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    # The scheduler and the workers import the work by name, as they would a user's code:
    # from the clone (the scheduler unpickles each task too).
    options: dict[str, Any] = {
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "env": {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
    }
    scheduler = [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    scheduler += ["--no-dashboard", "--dashboard-address", ":0"]  # its /health page: any port
    started = [subprocess.Popen(scheduler, **options)]
    try:
        for n in range(2):
            worker = [DASK, "worker", address, "--nthreads", "4", "--name", f"w{n}"]
            started.append(subprocess.Popen([*worker, "--no-dashboard"], **options))
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in reversed(started):
            process.terminate()
        for process in started:
            process.wait(timeout=30)
    # Everything it started is gone: no scheduler, nanny or worker process left behind.
    assert [p.returncode for p in started if p.returncode is None] == []


async def spans(item: int) -> tuple[int, float, float, int]:
    """A call that says which item, when it ran (wall clock: one machine, one clock), where."""
    start = time.time()
    await anyio.sleep(0.05)
    return item, start, time.time(), os.getpid()


async def fails_on_seven(item: int) -> int:
    await anyio.sleep(0.02)
    if item == 7:
        raise ValueError("seven")
    return item


async def sleepy(item: int) -> int:
    await anyio.sleep(30)
    return item


def peak(found: list[tuple[int, float, float, int]]) -> int:
    events = sorted([(s, 1) for _, s, _, _ in found] + [(e, -1) for _, _, e, _ in found])
    now = most = 0
    for _, change in events:
        now += change
        most = max(most, now)
    return most


async def quiet_cluster(address: str, within: float = 10) -> bool:
    """True once the scheduler has no task running or waiting for this test's client."""
    from distributed import Client

    async with Client(address, asynchronous=True, set_as_default=False) as observer:
        with anyio.move_on_after(within):
            while True:
                processing = await observer.processing()
                if not any(processing.values()):
                    return True
                await anyio.sleep(0.1)
    return False


# Every item exactly once, its own result, in input order, from both workers.
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.__name__.rpartition(".")[2])
async def test_exactly_once(recipe: Any, scheduler: str) -> None:
    found = await recipe.run(spans, range(24), limit=4, address=scheduler)
    assert [item for item, *_ in found] == list(range(24))
    assert len({pid for *_, pid in found}) == 2


# Never more than `limit` calls at once, counted across the worker processes, and the limit
# reached: the calls' own spans overlap exactly `limit` deep.
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.__name__.rpartition(".")[2])
async def test_within_the_limit_across_workers(recipe: Any, scheduler: str) -> None:
    found = await recipe.run(spans, range(24), limit=3, address=scheduler)
    assert peak(found) == 3


# The window reads its input only as places free: never more than `limit` items ahead.
async def test_input_read_lazily(scheduler: str) -> None:
    pulled, done = [0], [0]
    most_ahead = 0

    def source() -> Iterator[int]:
        nonlocal most_ahead
        for item in range(20):
            pulled[0] += 1
            most_ahead = max(most_ahead, pulled[0] - done[0])
            yield item

    async with cluster_window.stream(spans, source(), limit=3, address=scheduler) as results:
        async for _ in results:
            done[0] += 1
    assert most_ahead <= 3 + 1  # the place freed by a result is refilled before it is handed


# A failing call's exception comes out bare, and the calls still on the cluster are cancelled.
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.__name__.rpartition(".")[2])
async def test_failure_is_bare_and_the_rest_cancelled(recipe: Any, scheduler: str) -> None:
    with pytest.raises(ValueError, match=r"^seven$"):
        await recipe.run(fails_on_seven, range(40), limit=4, address=scheduler)
    assert await quiet_cluster(scheduler)


# Leaving the block by cancellation cancels the submitted calls: nothing runs on, for nobody.
async def test_cancellation_cancels_the_submitted_calls(scheduler: str) -> None:
    started = time.monotonic()
    with anyio.move_on_after(1):
        async with cluster_window.stream(sleepy, range(10), limit=4, address=scheduler) as out:
            async for _ in out:
                pass
    assert time.monotonic() - started < 10  # not the calls' 30 s
    assert await quiet_cluster(scheduler)


# A worker process killed mid-run: Dask runs its calls again elsewhere, the run completes, and
# each item's result is delivered once (the call itself may have run twice, as documented).
async def test_worker_killed_mid_run(scheduler: str) -> None:
    from distributed import Client

    async with Client(scheduler, asynchronous=True, set_as_default=False) as client:
        pids = await client.run(os.getpid)
    victim = sorted(pids.values())[0]
    seen: list[int] = []
    async with cluster_window.stream(spans, range(40), limit=6, address=scheduler) as results:
        async for item, *_ in results:
            seen.append(item)
            if len(seen) == 6:
                os.kill(victim, signal.SIGKILL)  # its nanny starts a new one
    assert sorted(seen) == list(range(40))
    async with Client(scheduler, asynchronous=True, set_as_default=False) as client:
        await client.wait_for_workers(2, timeout=60)  # the nanny's replacement, for the rest


# With no address, the recipe starts a local cluster for the stream and stops it after.
async def test_local_cluster_started_and_stopped() -> None:
    before = _children()
    found = await cluster_window.run(spans, range(6), limit=2)
    assert [item for item, *_ in found] == list(range(6))
    assert [pid for pid in _children() if pid not in before] == []  # no worker, no nanny


# On trio, and without Dask, one clear line says why, before anything starts.
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_refused() -> None:
    with pytest.raises(ClusterUnavailable, match="need asyncio"):
        await cluster_window.run(spans, range(2), limit=1)


def test_missing_extra_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "distributed" else real(n, *a)
    )
    with pytest.raises(ClusterUnavailable, match=r"pip install -e '\.\[cluster\]'"):
        require()


# The command line: compare --cluster against the running scheduler adds the cluster rows,
# each within the limit across workers.
def test_compare_on_the_cluster(scheduler: str) -> None:
    import io
    import json

    from rich.console import Console

    from patterns.cli import main

    out = io.StringIO()
    argv = ["compare", "--items", "12", "--latency", "0.02", "0.05", "--limit", "3", "--json"]
    status = main(
        [*argv, "--cluster", scheduler],
        console=Console(file=out),
        err_console=Console(file=io.StringIO()),
    )
    assert status == 0
    rows = {r["pattern"]: r for r in json.loads(out.getvalue())}
    for name in ("cluster_window", "cluster_limit"):
        assert rows[name]["items"] == 12
        assert 1 <= rows[name]["peak_concurrency"] <= 3


def _children() -> list[int]:
    """This process's children, but multiprocessing's resource tracker: the spawn start
    method starts one, once, for the life of the process (it is no worker)."""
    from patterns.probe import cpu_times

    found = []
    for pid in cpu_times().children:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # gone already
            continue
        if b"multiprocessing.resource_tracker" not in command:
            found.append(pid)
    return sorted(found)


# The command line refuses, in one line with exit 2, what the cluster rows cannot run.
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cluster", "nowhere"], "argument --cluster: expected local or tcp://HOST:PORT"),
        (["--cluster", "local", "--backend", "trio"], "the cluster recipes need asyncio"),
        (["--cluster", "local", "--work", "cpu"], "the cluster rows run io work"),
    ],
)
def test_cluster_option_misuse(argv: list[str], message: str) -> None:
    status, err = _cli(["compare", *argv])
    assert status == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


# Without the cluster extra, --cluster names the extra to install, in one line.
def test_cluster_option_without_dask(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "distributed" else real(n, *a)
    )
    status, err = _cli(["compare", "--cluster", "local"])
    assert status == 2
    assert "argument --cluster: the cluster recipes need Dask distributed: pip install" in err


def _cli(argv: list[str]) -> tuple[int, str]:
    import io

    from rich.console import Console

    from patterns.cli import main

    err = io.StringIO()
    status = main(argv, console=Console(file=io.StringIO()), err_console=Console(file=err))
    return status, err.getvalue()


# A scheduler that is not there: a clear error once the connect timeout passes, not a hang.
async def test_scheduler_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    from patterns import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    nobody = f"tcp://127.0.0.1:{_free_port()}"
    with anyio.fail_after(20), pytest.raises(OSError, match=r"(?i)timed out trying to connect"):
        await cluster_window.run(spans, range(3), limit=2, address=nobody)
