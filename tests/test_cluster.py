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
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("distributed", reason="the cluster extra is not installed")

from patterns import cluster_limit, cluster_window
from patterns.cluster import ClusterUnavailable, require
from patterns.contract import RemoteError

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]
DASK = str(Path(sys.executable).parent / "dask")
RECIPES = [cluster_window, cluster_limit]
LEASE_TIMEOUT = "1s"


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
        "env": {
            **os.environ,
            "PYTHONPATH": str(Path(__file__).parent.parent),
            # Leases checked often and timed out soon, so that a lease that lapses while its
            # call still runs does so within a test (test_a_blocked_worker_cannot_overbook).
            "DASK_DISTRIBUTED__SCHEDULER__LOCKS__LEASE_VALIDATION_INTERVAL": "0.2s",
            "DASK_DISTRIBUTED__SCHEDULER__LOCKS__LEASE_TIMEOUT": LEASE_TIMEOUT,
        },
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
        # Stopped as a user stops them, SIGTERM, the workers first: each nanny closes its
        # worker and leaves (0.3 s in all). Not the scheduler first, nor all at once: then each
        # worker waits for the scheduler it lost (8 s); nor Dask's client.shutdown() (2 s).
        workers = [pid for process in started[1:] for pid in _workers_of(process.pid)]
        for group in (started[1:], started[:1]):
            for process in group:
                process.terminate()
            for process in group:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()  # deaf to SIGTERM: the check below says so
    # Everything it started is gone: no scheduler, nanny or worker process left behind.
    assert [p.returncode for p in started if p.returncode is None] == []
    assert [pid for pid in workers if Path(f"/proc/{pid}").exists()] == []


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

    from patterns.door.cli import main

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
    from patterns.lab.probe import cpu_times

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
        (["--cluster", "foo://bar"], "argument --cluster: expected local or tcp://HOST:PORT"),
        (["--cluster", "tcp://[::1"], "argument --cluster: expected local or tcp://HOST:PORT"),
        (["--cluster", "tcp://host"], "argument --cluster: expected local or tcp://HOST:PORT"),
        (["--cluster", "tcp://h:99999"], "argument --cluster: expected local or tcp://HOST:PORT"),
        (["--cluster", "tcp://h:1/x"], "argument --cluster: expected local or tcp://HOST:PORT"),
        (["--cluster", "tls://"], "argument --cluster: expected local or tcp://HOST:PORT"),
        (["--cluster", "inproc://"], "argument --cluster: expected local or tcp://HOST:PORT"),
        (["--cluster", "local", "--limit", "20000"], "argument --limit: must be at most 10000"),
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

    from patterns.door.cli import main

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


# -- What a stream leaves behind on the cluster, watched where the calls run -----------------


async def logged(path: str, fail: bool, item: int) -> int:
    """A call of 1 s (item 1 fails at once, if ``fail``) that writes, on its worker, when it
    started and when it ended or was stopped."""
    with open(path, "a") as log:  # noqa: ASYNC230 (a line on a local disk, in the worker)
        log.write(f"start {item} {time.time()}\n")
    try:
        if fail and item == 1:
            raise ValueError("one")
        await anyio.sleep(1)
    finally:
        with open(path, "a") as log:  # noqa: ASYNC230
            log.write(f"end {item} {time.time()}\n")
    return item


def _read_lines(path: str) -> list[list[str]]:
    return [line.split() for line in Path(path).read_text().splitlines()]


async def _leave(how: str, recipe: Any, path: str, address: str) -> float:
    """Run 40 calls at limit 4 and leave the block by ``how``; when it was left."""
    work = partial(logged, path, how == "failure")
    with anyio.move_on_after(0.3 if how == "cancel" else 60):
        try:
            async with recipe.stream(work, range(40), limit=4, address=address) as results:
                async for _ in results:
                    assert how == "break"
                    break
        except ValueError:
            assert how == "failure"
    return time.time()


# After a break, a failure or a cancellation, no call starts on a worker later than 0.2 s after
# the block exits, and every call still running there (calls of 1 s) is stopped within 0.5 s.
@pytest.mark.parametrize("how", ["break", "failure", "cancel"])
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.__name__.rpartition(".")[2])
async def test_nothing_runs_on_after_the_block(
    recipe: Any, how: str, scheduler: str, tmp_path: Path
) -> None:
    path = str(tmp_path / "calls.log")
    exited = await _leave(how, recipe, path, scheduler)
    for _ in range(20):  # until every call that started has ended, for up to 1 s
        lines = _read_lines(path)
        if sum(kind == "start" for kind, *_ in lines) == sum(kind == "end" for kind, *_ in lines):
            break
        await anyio.sleep(0.05)
    await anyio.sleep(0.3)  # time for a late start to show in the log
    lines = _read_lines(path)
    starts = {int(item): float(t) for kind, item, t in lines if kind == "start"}
    ends = {int(item): float(t) for kind, item, t in lines if kind == "end"}
    assert [item for item, t in starts.items() if t > exited + 0.2] == []
    assert set(ends) == set(starts)  # every call that started has ended or was stopped
    assert max(ends.values()) < exited + 0.5
    assert len(starts) < 40  # the stream was left early: the rest never ran


# Everything a stream takes, it gives back: 200 calls (four times the limit's leases) through
# cluster_limit leave no semaphore on the scheduler, no Semaphore (each with its refresh timer)
# on a worker or here.
async def test_cluster_limit_gives_back_its_semaphore(scheduler: str) -> None:
    import gc

    from distributed import Client

    async with Client(scheduler, asynchronous=True, set_as_default=False) as observer:
        before = await _semaphores(observer)
        found = await cluster_limit.run(_quick, range(200), limit=50, address=scheduler)
        assert len(found) == 200
        gc.collect()
        assert await _semaphores(observer) == before
        # A named one is shared with other jobs: it stays on the scheduler, once for the name.
        for _ in range(2):
            await cluster_limit.run(_quick, range(20), limit=8, address=scheduler, name="shared")
        (on_scheduler, callbacks), *elsewhere = await _semaphores(observer)
        assert (on_scheduler, callbacks, *elsewhere) == (
            before[0][0] + 1,
            before[0][1],
            *before[1:],
        )


async def _quick(item: int) -> int:
    return item


def _live_semaphores() -> int:
    import gc

    from distributed import Semaphore

    gc.collect()
    return sum(isinstance(o, Semaphore) for o in gc.get_objects())


def _on_scheduler(dask_scheduler: Any) -> tuple[int, int]:
    extension = dask_scheduler.extensions["semaphores"]
    return len(extension.max_leases), len(dask_scheduler.periodic_callbacks)


async def _semaphores(client: Any) -> tuple[Any, ...]:
    on_workers = await client.run(_live_semaphores)
    return (
        await client.run_on_scheduler(_on_scheduler),
        sorted(on_workers.values()),
        _live_semaphores(),
    )


def blocks_its_loop(item: int) -> tuple[int, float, float, int]:
    """A sync call inside async work: the worker's event loop stands still while it runs."""
    start = time.time()
    time.sleep(1.6)  # past the 1 s lease timeout of the test cluster
    return item, start, time.time(), os.getpid()


async def blocking(item: int) -> tuple[int, float, float, int]:
    return blocks_its_loop(item)


# A call that blocks its worker's event loop past the lease timeout cannot let a second call
# in: the lease is held, and kept alive, by the client, whose loop is free.
async def test_a_blocked_worker_cannot_overbook(scheduler: str) -> None:
    import dask

    with dask.config.set({"distributed.scheduler.locks.lease-timeout": LEASE_TIMEOUT}):
        found = await cluster_limit.run(blocking, range(2), limit=1, address=scheduler)
    assert peak(found) == 1


# A failure whose type cannot be rebuilt on the client comes back named, type and message;
# one that can, comes back as itself.
async def test_failure_types_cross_the_cluster(scheduler: str) -> None:
    with pytest.raises(RemoteError, match=r"OddInit: 1/2"):
        await cluster_window.run(odd_init, range(3), limit=2, address=scheduler)
    with pytest.raises(ValueError, match=r"^seven$"):
        await cluster_window.run(fails_on_seven, range(9), limit=2, address=scheduler)


class OddInit(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")


async def odd_init(item: int) -> int:
    raise OddInit(1, 2)


# run() closes an async generator given as its input, when it is left half-read.
async def test_run_closes_an_async_generator_input(scheduler: str) -> None:
    closed = []

    async def source() -> AsyncIterator[int]:
        try:
            for n in range(40):
                yield n
        finally:
            closed.append(True)

    with pytest.raises(ValueError, match=r"^seven$"):
        await cluster_window.run(fails_on_seven, source(), limit=2, address=scheduler)
    assert closed == [True]


# A local cluster whose start is cut short (a timeout) leaves no process behind 3 s later.
@pytest.mark.parametrize(
    "anyio_backend", [("asyncio", {}), ("asyncio", {"use_uvloop": True})], ids=["asyncio", "uvloop"]
)
async def test_cancelled_local_cluster_start_leaves_no_process(anyio_backend: Any) -> None:
    from patterns.cluster import connect

    before = _children()
    with anyio.move_on_after(0.1) as scope:
        async with connect(None, slots=2):
            pytest.fail("the local cluster started within 0.1 s: cut it shorter")
    assert scope.cancelled_caught
    for _ in range(30):  # up to 3 s
        if not [pid for pid in _children() if pid not in before]:
            break
        await anyio.sleep(0.1)
    assert [pid for pid in _children() if pid not in before] == []


# A limit that would cost the cluster a task and a slot each is capped, named, before a start.
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.__name__.rpartition(".")[2])
async def test_limit_has_a_ceiling(recipe: Any) -> None:
    with pytest.raises(ValueError, match=r"limit must be between 1 and 10000, got 100000000"):
        await recipe.run(spans, range(2), limit=10**8)


# Ctrl+C from a terminal (SIGINT to every process of the job) while the cluster rows run: the
# cluster is closed in order, no worker prints a traceback of its own, nothing is left.
CTRL_C_SCRIPT = """
import sys
from patterns.lab.on_cluster import compare_on_cluster
from patterns.lab.workload import Workload

if __name__ == "__main__":
    try:
        compare_on_cluster(
            Workload(items=8, low=0.5, high=0.5), limit=2, where="local",
            on_start=lambda name: print(name, flush=True),
        )
    except KeyboardInterrupt:
        sys.exit(130)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_the_cluster_rows(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(CTRL_C_SCRIPT)
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, str(script)], **options, env=env, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "cluster_window"  # the cluster is up
        time.sleep(1)  # into the calls
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err == ""
    assert _workers_of(proc.pid) == []


def _workers_of(pid: int) -> list[int]:
    """The Dask worker processes that ``pid`` started (multiprocessing's spawned children)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


# Two streams sharing a named limit both finish (neither waits on a lease the other keeps for
# a call already done), and together they stay within it.
async def test_two_streams_share_a_named_limit(scheduler: str) -> None:
    found: list[list[tuple[int, float, float, int]]] = [[], []]

    async def one(n: int) -> None:
        found[n] = await cluster_limit.run(spans, range(6), limit=2, address=scheduler, name="two")

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(one, 0)
            group.start_soon(one, 1)
    assert [len(f) for f in found] == [6, 6]
    assert peak(found[0] + found[1]) <= 2


# A failure of a class the workers cannot import (defined in a function, or in your __main__)
# travels by value, as Dask sends it, and comes back as itself; so does sync work's result.
async def test_a_class_of_your_own_comes_back_as_itself(scheduler: str) -> None:
    class Declined(Exception):
        pass

    async def decline(item: int) -> int:
        raise Declined(f"card {item} declined")

    with pytest.raises(Declined, match=r"^card \d declined$"):
        await cluster_window.run(decline, range(3), limit=2, address=scheduler)
    # A plain function is outside the typed contract: Dask runs it as it runs any.
    sync: Any = plain_double
    assert await cluster_window.run(sync, range(4), limit=2, address=scheduler) == [0, 2, 4, 6]


def plain_double(n: int) -> int:  # a plain function: Dask runs it in a worker's thread
    return 2 * n
