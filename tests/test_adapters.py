"""The adapters keep the contract: sync work in threads or processes, through any pattern, on
every backend; exactly once, within the limit, the first failure bare, nothing left running
that nobody waits for (or only what the page documents), bad arguments named."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_process
import pytest

from patterns import Pattern, buffered_unordered, worker_pool
from patterns.contract import RemoteError
from patterns.lab.probe import cpu_times
from patterns.lab.report import peak_overlap
from patterns.lab.workload import Item, WorkFailed, Workload, block
from patterns.processes import in_processes
from patterns.threads import in_threads

from .sync_work import (
    double,
    fails_on_three,
    pid_then_nap,
    raises_odd,
    raises_with_note,
    timed_nap,
)

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

ADAPT: dict[str, Callable[..., Any]] = {"threads": in_threads, "processes": in_processes}


class AsyncCall:
    async def __call__(self, n: int) -> int:
        return n


class Running:
    """Counts the calls running in threads, and the most at once."""

    def __init__(self) -> None:
        self.now = self.peak = self.done = 0
        self._lock = threading.Lock()

    def nap(self, seconds: float) -> float:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            time.sleep(seconds)
        finally:
            with self._lock:
                self.now -= 1
                self.done += 1
        return seconds


# Every item once, its own result, through every pattern, in threads.
async def test_exactly_once_in_threads(pattern: Pattern) -> None:
    results = await pattern.run(in_threads(double), range(12), limit=3)
    assert results == [2 * n for n in range(12)]


# And in processes (through two patterns: a process is the same to all of them, and costs
# an interpreter start each; scatter/gather would start one per item).
@pytest.mark.parametrize("pattern", [worker_pool, buffered_unordered], ids=lambda p: p.__name__)
async def test_exactly_once_in_processes(pattern: Pattern) -> None:
    results = await pattern.run(in_processes(double), range(12), limit=3)
    assert results == [2 * n for n in range(12)]


# A thread never runs more calls at once than the pattern's limit allows.
async def test_threads_within_the_pattern_limit(bounded: Pattern) -> None:
    running = Running()
    await bounded.run(in_threads(running.nap), [0.01] * 12, limit=3)
    assert (running.peak, running.done) == (3, 12)


# Processes too: their calls' spans, on the machine's one monotonic clock, overlap 2 at most.
async def test_processes_within_the_pattern_limit() -> None:
    spans = await worker_pool.run(in_processes(timed_nap), [0.05] * 8, limit=2)
    assert peak_overlap(spans) == 2


# The adapter's own limit caps below the pattern's, across every stream that shares it.
async def test_adapter_limit_caps_every_stream() -> None:
    running = Running()
    shared = in_threads(running.nap, limit=2)
    async with anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(partial(worker_pool.run, shared, [0.01] * 6, limit=5))
    assert (running.peak, running.done) == (2, 12)


# anyio's default thread limiter (40) does not cap the pattern's limit: 50 calls meet at once.
async def test_threads_are_not_capped_at_anyio_default() -> None:
    meeting = threading.Barrier(50, timeout=10)  # broken unless all 50 wait at the same time
    await worker_pool.run(in_threads(lambda _: meeting.wait()), range(50), limit=50)


# A failing sync call's exception comes out bare, its type and message kept.
@pytest.mark.parametrize("where", list(ADAPT))
async def test_failure_is_bare(where: str) -> None:
    with pytest.raises(ValueError, match=r"^three$"):
        await worker_pool.run(ADAPT[where](fails_on_three), range(8), limit=2)


# The workload's simulated failure crosses from a process whole, its item with it.
async def test_work_failed_crosses_from_a_process() -> None:
    with pytest.raises(WorkFailed) as raised:
        await in_processes(block)(Item(7, 0.0, fails=True))
    assert raised.value.item == Item(7, 0.0, fails=True)


# Cancelled, a stream waits for the calls already running in threads: none runs on after it.
async def test_cancel_waits_for_threads() -> None:
    running = Running()
    work = in_threads(running.nap)
    await cancel_once_running(lambda: worker_pool.run(work, [0.3] * 4, limit=4), running, 4)
    assert running.now == 0
    assert running.done == 4


# With abandon_on_cancel, as documented: the stream returns at once, the threads run on.
async def test_abandon_on_cancel_leaves_threads_running() -> None:
    running = Running()
    work = in_threads(running.nap, abandon_on_cancel=True)
    cancelled = await cancel_once_running(
        lambda: worker_pool.run(work, [0.3] * 4, limit=4), running, 4
    )
    assert time.monotonic() - cancelled < 0.2  # returned at once, not after the 0.3 s naps
    assert running.now == 4
    with anyio.fail_after(5):  # they end on their own, later: no thread outlives the test
        while running.done < 4:  # noqa: ASYNC110 - a count kept by the threads
            await anyio.sleep(0.01)


async def cancel_once_running(run: Callable[[], Any], running: Running, calls: int) -> float:
    """Run ``run`` and cancel it once ``calls`` calls are running in threads (on a loaded
    machine threads start late: a fixed delay would cancel some before they began); return
    when the cancellation was asked for."""
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            with anyio.fail_after(10):
                while running.now < calls:  # noqa: ASYNC110 - a count kept by the threads
                    await anyio.sleep(0.002)
            cancelled = time.monotonic()
            scope.cancel()
    return cancelled


# Cancelled, a stream kills the worker processes running its calls: no call runs on.
async def test_cancel_kills_processes(tmp_path: Path) -> None:
    paths = [str(tmp_path / f"call{n}") for n in range(2)]
    started = time.monotonic()
    with anyio.move_on_after(20) as scope:
        async with worker_pool.stream(in_processes(pid_then_nap), paths, limit=2):
            for _ in range(500):  # cancelled once both calls run, in their processes
                if _all_written(paths):
                    break
                await anyio.sleep(0.02)
            scope.cancel()
    assert time.monotonic() - started < 10  # not the calls' 30 s
    assert _still_running(paths) == []


def _all_written(paths: list[str]) -> bool:
    return all(Path(path).exists() for path in paths)


def _still_running(paths: list[str]) -> list[int]:
    """Of the processes that wrote their pid to ``paths``, those still alive."""
    pids = [int(Path(path).read_text()) for path in paths]
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


# No worker process outlives the event loop that started it, on any backend.
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_no_process_outlives_the_loop(backend: str) -> None:
    async def main() -> None:
        await worker_pool.run(in_processes(double), range(6), limit=2)
        assert cpu_times().children  # the workers are alive while the loop runs

    before = set(cpu_times().children)  # another loop's workers may be alive meanwhile
    anyio.run(main, backend=backend)
    assert set(cpu_times().children) - before == set()


# Bad arguments are refused when the adapter is made, naming the argument.
@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: in_threads(worker_pool.run), TypeError, "fn must be a plain"),  # type: ignore[arg-type]
        (lambda: in_processes(lambda n: n), TypeError, "fn must pickle"),
        (lambda: in_processes(42), TypeError, "fn must be a plain"),  # type: ignore[arg-type]
        (lambda: in_threads(double, limit=0), ValueError, "limit must be >= 1, got 0"),
        (lambda: in_processes(double, limit=True), TypeError, "limit must be an int"),
    ],
)
def test_bad_arguments(make: Callable[[], object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()


# The harness measures each place the same way: where the run went, and the CPU it used.
@pytest.mark.parametrize(("kind", "where"), [("blocking", "threads"), ("cpu", "processes")])
def test_harness_reports_place_and_cpu(kind: str, where: str) -> None:
    from patterns.lab.harness import measure

    workload = Workload(items=6, low=0.02, high=0.02, kind=kind)  # type: ignore[arg-type]
    report = measure("worker_pool", workload, limit=2, run_in=where)  # type: ignore[arg-type]
    assert (report.work, report.run_in, report.peak_concurrency) == (kind, where, 2)
    assert report.cpu_s is not None
    if kind == "cpu":
        assert report.cpu_s >= 0.5 * 6 * 0.02  # the workers' CPU, counted from /proc
    else:
        assert report.cpu_s < 6 * 0.02  # asleep in threads: little CPU


# A notebook's function pickles by name but cannot be imported by a worker: refused at once,
# with what to do, instead of a ModuleNotFoundError at the first call.
def test_notebook_function_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = types.ModuleType("__main__")  # a kernel's __main__ has no file

    def fetch(n: int) -> int:
        return n

    fetch.__module__, fetch.__qualname__ = "__main__", "fetch"
    notebook.fetch = fetch  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__main__", notebook)
    with pytest.raises(TypeError, match=r"defined in a notebook.*move it into a module"):
        in_processes(fetch)


# Cancelled while its worker processes start, a stream leaves none behind, alive or zombie.
@pytest.mark.timeout(20)  # where they are left, uvloop's loop may never close: fail sooner
@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_cancelled_start_leaves_no_process(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _slow_to_start(tmp_path, monkeypatch)

    async def main() -> None:
        with anyio.move_on_after(0.2):
            async with worker_pool.stream(in_processes(double), range(4), limit=4) as results:
                async for _ in results:
                    pass

    before = set(_children())
    run(main, backend=backend)
    assert _left_behind(before) == {}


# A start left unshielded (another user of anyio's pool took the idle worker) is reaped too.
@pytest.mark.timeout(20)
@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_unshielded_start_cancelled_leaves_no_process(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _slow_to_start(tmp_path, monkeypatch)

    async def main() -> None:
        await in_processes(double)(1)  # one worker, idle: the adapter counts on it
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(anyio.to_process.run_sync, time.sleep, 5, cancellable=True))
            await anyio.sleep(0.1)  # it has taken the idle worker
            with anyio.move_on_after(0.2):
                await in_processes(double)(2)  # finds none idle: anyio starts one, unshielded
            tg.cancel_scope.cancel()

    before = set(_children())
    run(main, backend=backend)
    assert _left_behind(before) == {}


# A worker whose start fails (its main script raises) fails the call naming why, and is reaped.
@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_failed_start_says_why_and_is_reaped(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "script.py"
    script.write_text('raise RuntimeError("boom at import")\n')
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    before = set(_children())
    with pytest.raises(anyio.BrokenWorkerProcess, match=r"RuntimeError: boom at import$") as e:
        run(in_processes(double), 1, backend=backend)
    assert isinstance(e.value.__cause__, RuntimeError)
    assert _left_behind(before) == {}


# A failure whose type cannot be rebuilt from its pickle comes back as a RemoteError naming it.
async def test_unrebuildable_error_comes_back_named() -> None:
    with pytest.raises(RemoteError, match=r"^tests\.sync_work\.OddInit: 1/2 \("):
        await in_processes(partial(raises_odd, b=2))(1)


# Any other comes back as itself: its type, its message and its notes.
async def test_error_comes_back_with_its_notes() -> None:
    with pytest.raises(ValueError, match=r"^bad 3\b") as raised:
        await in_processes(raises_with_note)(3)
    assert (str(raised.value), raised.value.__notes__) == ("bad 3", ["while testing"])


# An object whose __call__ is async is refused when the adapter is made, as an async def is.
@pytest.mark.parametrize("where", list(ADAPT))
def test_async_callable_object_refused(where: str) -> None:
    with pytest.raises(TypeError, match=r"^fn must be a plain \(sync\) function, got <.*AsyncCall"):
        ADAPT[where](AsyncCall())


# The harness starts a worker process per item at most, whatever the limit: 2 for 2 items.
def test_harness_starts_no_more_processes_than_items() -> None:
    from patterns.lab.harness import ameasure

    async def main() -> set[int]:
        before = set(_children())
        workload = Workload(items=2, low=0.001, high=0.001, kind="cpu")
        await ameasure("worker_pool", workload, limit=40, run_in="processes")
        return set(_children()) - before  # its workers, idle in the pool until the loop ends

    assert len(anyio.run(main)) <= 2


def _slow_to_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each worker process started from now on takes 0.5 s more to say it is ready (a
    sitecustomize that sleeps): a cancellation 0.2 s in lands while it starts."""
    (tmp_path / "sitecustomize.py").write_text("import time\n\ntime.sleep(0.5)\n")
    paths = [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))


def run(fn: Callable[..., Any], *args: Any, backend: str) -> Any:
    """``anyio.run`` on a new event loop of ``backend``: asyncio, uvloop or trio."""
    options = {"use_uvloop": True} if backend == "uvloop" else {}
    return anyio.run(
        fn, *args, backend="trio" if backend == "trio" else "asyncio", backend_options=options
    )


def _children() -> dict[int, str]:
    """This process's children, each with its state from /proc (Z for a zombie)."""
    found: dict[int, str] = {}
    for children in Path("/proc/self/task").glob("*/children"):
        pids: list[str] = []
        with contextlib.suppress(OSError):  # a thread gone meanwhile
            pids = children.read_text().split()
        for pid in pids:
            with contextlib.suppress(OSError):  # a child gone meanwhile
                stat = Path(f"/proc/{pid}/stat").read_text()
                found[int(pid)] = stat.rpartition(")")[2].split()[0]
    return found


def _left_behind(before: set[int], within: float = 3.0) -> dict[int, str]:
    """The children started since ``before`` still there after ``within`` seconds (polled:
    no waiting once there are none), with their state; killed and reaped, for the tests after."""
    deadline = time.monotonic() + within
    while (left := {p: s for p, s in _children().items() if p not in before}) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return left
