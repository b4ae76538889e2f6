"""The service model over real HTTP, on every backend: a uvicorn process serving one Service,
and each client calling it. Every result comes back once; at capacity the server answers as
the model does and the client raises the model's own errors; the server process never outlives
its block, however the block ends; and nothing a client sends can crash it."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest

for _package in ("uvicorn", "httpx2", "httpx", "aiohttp"):
    pytest.importorskip(_package, reason=f"the http extra is not installed: {_package} is missing")

import httpx2  # noqa: E402 - only once the extra is known to be there

from patterns import buffered_unordered, collect_errors, scatter_gather  # noqa: E402
from patterns.lab.http import (  # noqa: E402
    CLIENTS,
    Call,
    HTTPUnavailable,
    Served,
    ServerFailed,
    UnexpectedAnswer,
    calling,
    clients_for,
    require,
    serving,
)
from patterns.lab.service import Felt, Overloaded  # noqa: E402
from patterns.lab.workload import Item, WorkFailed, Workload  # noqa: E402

pytestmark = pytest.mark.anyio

ON_LINUX = Path("/proc/self/stat").exists()
#: The conftest's anyio_backend values, by name.
_BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}
#: Each client on each backend it runs on: aiohttp is not on trio.
PAIRS = [
    pytest.param(_BACKENDS[backend], client, id=f"{backend}-{client}")
    for backend in _BACKENDS
    for client in clients_for(backend)
]
#: What a test does to a server under load, given the calls' latency.
Step = Callable[[float], Awaitable[None]]


@contextmanager
def module_server(*args: Any, **kwargs: Any) -> Iterator[Served]:
    """``serving(...)`` held open from a thread of its own, for a module's tests to share (a
    server is a process: any test's event loop can call it)."""
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(serving(*args, **kwargs)) as served,
    ):
        yield served


@pytest.fixture(scope="module")
def roomy() -> Iterator[Served]:
    """Room for every call (a capacity that is never reached), so that each call is counted."""
    with module_server(1000, behaviour="queue") as served:
        yield served


@pytest.fixture(scope="module")
def rejecting() -> Iterator[Served]:
    with module_server(4, behaviour="reject", retry_after=0.25) as served:
        yield served


@pytest.fixture(scope="module")
def queueing() -> Iterator[Served]:
    with module_server(3, behaviour="queue") as served:
        yield served


@pytest.fixture(scope="module")
def degrading() -> Iterator[Served]:
    with module_server(2, behaviour="degrade") as served:
        yield served


def gone(pid: int) -> bool:
    """No such process, not even a zombie (a zombie still takes signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def port_is_free(port: int) -> bool:
    """A new server could listen on ``port`` (with SO_REUSEADDR, as servers bind)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            probe.listen()
        except OSError:
            return False
    return True


def http_children() -> set[int]:
    """This process's children running ``patterns.lab.http`` (zombies included), from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue  # gone while we looked
        # A zombie has no cmdline left: count it if it is ours at all.
        if int(fields[1]) == os.getpid() and (b"patterns.lab.http" in cmdline or fields[0] == "Z"):
            found.add(int(stat.parent.name))
    return found


async def at_once(call: Any, items: list[Item]) -> list[object]:
    """Every item called at once; each outcome kept: its result, or its error."""
    outcomes = await scatter_gather.run(collect_errors(call), items, limit=1)
    return [o.value if o.ok else o.error for o in outcomes]


# Through each client on each backend, every item's result comes back exactly once (an item
# drawn to fail fails after its answer), the server served each exactly once, and a pool of 4
# connections never had more than 4 calls in the server at once.
@pytest.mark.parametrize(("anyio_backend", "client"), PAIRS)
async def test_every_result_once_through_each_client(client: str, roomy: Served) -> None:
    workload = Workload(60, 0.0, 0.003, failure_rate=0.1, seed=3)
    await roomy.reset()
    async with calling(roomy.url, client=client, connections=4) as call:
        outcomes = await buffered_unordered.run(collect_errors(call), workload, limit=16)
    assert sorted(o.item.index for o in outcomes) == list(range(60))
    for o in outcomes:
        if o.item.fails:
            assert isinstance(o.error, WorkFailed)
            assert o.error.item == o.item
        else:
            assert o.value == f"{o.item}_processed"
    assert sum(o.item.fails for o in outcomes) > 0  # the seed draws some failures
    felt = await roomy.felt()
    assert felt.served == 60
    assert 1 <= felt.peak_in_service <= 4


# reject: at capacity the server answers 429 and the client raises the model's own Overloaded,
# with the server's exact retry-after; the client's count of each agrees with the server's.
@pytest.mark.parametrize(("anyio_backend", "client"), PAIRS)
async def test_reject_at_capacity_is_overloaded(client: str, rejecting: Served) -> None:
    await rejecting.reset()
    items = [Item(n, 0.1) for n in range(12)]
    async with calling(rejecting.url, client=client) as call:
        found = await at_once(call, items)
    away = [o for o in found if isinstance(o, Overloaded)]
    done = [o for o in found if o in {f"{item}_processed" for item in items}]
    assert len(away) + len(done) == 12
    assert away, "12 calls at once at capacity 4: some must be turned away"
    assert all(o.retry_after == 0.25 for o in away)
    assert {o.item.index for o in away}.isdisjoint(int(d.split("_")[1]) for d in done)
    felt = await rejecting.felt()
    assert (felt.served, felt.turned_away) == (len(done), len(away))
    assert felt.peak_in_service <= 4


# The 429 says when to come back: Retry-After in whole seconds (rounded up), the exact float in
# X-Retry-After, which the client prefers.
async def test_429_carries_retry_after(rejecting: Served) -> None:
    async with (
        httpx2.AsyncClient(base_url=rejecting.url, trust_env=False) as client,
        anyio.create_task_group() as group,
    ):
        for n in range(4):  # the capacity, held for a while
            group.start_soon(client.get, f"/work?index={n}&latency=0.15")
        await wait_for(rejecting, in_service=4)
        answer = await client.get("/work?index=9&latency=0")
    assert answer.status_code == 429
    assert (answer.headers["retry-after"], answer.headers["x-retry-after"]) == ("1", "0.25")


async def wait_for(served: Served, in_service: int) -> None:
    with anyio.fail_after(5):
        while (await served.felt()).in_service < in_service:  # noqa: ASYNC110 - another process
            await anyio.sleep(0.005)


# The server's connections send at once (TCP_NODELAY): a keep-alive call is not held back by
# Nagle's algorithm until the delayed ACK, 40 ms later (uvicorn's fd= would lose it).
async def test_no_nagle_stall(roomy: Served) -> None:
    async with calling(roomy.url) as call:
        took = []
        for n in range(10):
            started = anyio.current_time()
            await call(Item(n, 0.0))
            took.append(anyio.current_time() - started)
    assert statistics.median(took) < 0.02, took


# queue: every call is served, never more than the capacity at once; the rest waited.
async def test_queue_serves_all_within_capacity(queueing: Served) -> None:
    await queueing.reset()
    async with calling(queueing.url) as call:
        found = await at_once(call, [Item(n, 0.05) for n in range(9)])
    assert found == [f"item_{n}_processed" for n in range(9)]
    felt = await queueing.felt()
    assert (felt.served, felt.turned_away, felt.in_service, felt.waiting) == (9, 0, 0, 0)
    assert felt.peak_in_service == 3  # 9 sent at once: full, and never past it
    assert felt.peak_waiting >= 1
    assert felt.waited_s > 0


# The capacity changes mid-run, over HTTP, and the server follows it. Shrunk from 3 to 1 under
# a steady load: the calls over it finish, then never more than 1 is in service and the calls
# served fit one at a time (each is in service for its latency, so 1 slot serves at most
# window / latency + 1 of them: 3 slots serve about three times that); a fresh burst peaks
# at 1. Grown to 4 under load: the waiting calls go in at once. No call turned away or
# lost. (The server is the same whatever the client's loop; it is given back its capacity.)
@pytest.mark.parametrize("anyio_backend", [pytest.param(_BACKENDS["asyncio"], id="asyncio")])
async def test_resize_mid_run_is_followed(queueing: Served) -> None:
    latency = 0.01
    await queueing.reset()
    try:
        async with calling(queueing.url) as call:
            done = await under_load(call, latency, queueing, full=3, then=shrunk(queueing, 1))
            assert done, "the load ran"
            with anyio.fail_after(5):
                await idle(queueing)  # the callers' hang-ups reach the server
            await queueing.reset()
            assert await at_once(call, [Item(n, latency) for n in range(5)]) == [
                f"item_{n}_processed" for n in range(5)
            ]
            felt = await queueing.felt()
            assert (felt.peak_in_service, felt.served) == (1, 5)
            await under_load(call, latency, queueing, full=1, then=grown(queueing, 4))
        felt = await queueing.felt()
        assert felt.turned_away == 0
        assert felt.peak_in_service == 4
        assert (await queueing.health())["capacity"] == 4
    finally:
        with anyio.fail_after(5):
            await idle(queueing)
        await queueing.resize(3)


async def under_load(
    call: Call, latency: float, served: Served, full: int, then: Step
) -> list[str]:
    """Six callers calling in a loop until the service has ``full`` in service and at least one
    waiting, and ``then`` has run; what they got back (each call's result)."""
    done: list[str] = []

    async def caller(first: int) -> None:
        for n in range(first, 1_000_000, 6):
            done.append(await call(Item(n, latency)))

    async with anyio.create_task_group() as group:
        for first in range(6):
            group.start_soon(caller, first)
        with anyio.fail_after(5):
            await until(served, lambda felt: felt.in_service == full and felt.waiting > 0)
            await then(latency)
        group.cancel_scope.cancel()
    assert all(d == f"item_{d.split('_')[1]}_processed" for d in done), done[:5]
    return done


def shrunk(served: Served, capacity: int) -> Step:
    async def shrink(latency: float) -> None:
        assert await served.resize(capacity) > capacity
        await until(served, lambda felt: felt.in_service <= capacity)  # those over it finish
        started = anyio.current_time()  # the server's window is within this one
        seen: list[int] = []
        first = await served.felt()
        while len(seen) < 10 or anyio.current_time() - started < 0.1:
            seen.append((await served.felt()).in_service)
        last = await served.felt()
        window = anyio.current_time() - started
        assert max(seen) == capacity, seen  # full, and never over
        # Half as much again for the server's ms-coarse timers (uvloop): 3 slots serve ~2x more.
        assert last.served - first.served <= 1.5 * capacity * (window / latency + 1)

    return shrink


def grown(served: Served, capacity: int) -> Step:
    async def grow(latency: float) -> None:
        assert await served.resize(capacity) < capacity
        await until(served, lambda felt: felt.in_service == capacity)  # the waiting go in

    return grow


async def idle(served: Served) -> None:
    """Wait until nothing is in service or waiting (a call cancelled by its client leaves)."""
    await until(served, lambda felt: not (felt.in_service or felt.waiting))


async def until(served: Served, ready: Callable[[Felt], bool]) -> None:
    """Ask the server what it felt until ``ready`` says yes (another process: no event)."""
    while not ready(await served.felt()):  # noqa: ASYNC110 - another process
        await anyio.sleep(0.002)


# degrade: nothing turned away, everyone served, more than the capacity in service at once.
async def test_degrade_serves_everyone(degrading: Served) -> None:
    await degrading.reset()
    async with calling(degrading.url) as call:
        found = await at_once(call, [Item(n, 0.05) for n in range(4)])
    assert found == [f"item_{n}_processed" for n in range(4)]
    felt = await degrading.felt()
    assert (felt.served, felt.turned_away, felt.in_service) == (4, 0, 0)
    assert felt.peak_in_service > 2  # past the capacity of 2: served, slower


# reset is refused while a call is in service (409, as an UnexpectedAnswer), and then clears
# every counter.
async def test_reset_waits_for_an_idle_service(rejecting: Served) -> None:
    await rejecting.reset()
    async with calling(rejecting.url) as call, anyio.create_task_group() as group:
        group.start_soon(call, Item(0, 0.2))
        await wait_for(rejecting, in_service=1)
        with pytest.raises(UnexpectedAnswer, match=r"409: cannot reset: 1 in service"):
            await rejecting.reset()
    assert (await rejecting.felt()).served == 1
    await rejecting.reset()
    assert (await rejecting.felt()).served == 0


# A client that hangs up mid-call (cancelled, or it gave up) cancels its call in the server
# too: nothing left in service for nobody. (The server is the same whatever the client's loop.)
@pytest.mark.parametrize("anyio_backend", [_BACKENDS["asyncio"]])
async def test_a_client_that_hangs_up_cancels_its_call(roomy: Served) -> None:
    async with (
        httpx2.AsyncClient(base_url=roomy.url, trust_env=False) as client,
        anyio.create_task_group() as group,
    ):
        group.start_soon(client.get, "/work?index=0&latency=30")
        await wait_for(roomy, in_service=1)
        group.cancel_scope.cancel()
    with anyio.fail_after(2):  # not the 30 s the call asked for
        while (await roomy.felt()).in_service:  # noqa: ASYNC110 - another process
            await anyio.sleep(0.01)


# aiohttp runs on asyncio alone: on trio, calling() refuses it before opening anything; and
# clients_for() says which clients each backend has.
@pytest.mark.parametrize("anyio_backend", [_BACKENDS["trio"]])
async def test_aiohttp_is_refused_on_trio() -> None:
    with pytest.raises(ValueError, match="aiohttp runs on asyncio only"):
        async with calling("http://127.0.0.1:9", client="aiohttp"):
            pytest.fail("opened")
    assert clients_for("trio") == ("httpx2", "httpx")
    assert clients_for("uvloop") == clients_for("asyncio") == CLIENTS


# Leaving the block by an exception, with calls made, stops and reaps the server process, and
# its port can be listened on again.
async def test_exit_by_exception_leaves_nothing() -> None:
    seen: list[Served] = []
    with pytest.raises(ZeroDivisionError):
        await fail_inside(seen)
    assert gone(seen[0].pid)
    assert port_is_free(seen[0].port)


async def fail_inside(seen: list[Served]) -> None:
    async with serving() as served:
        seen.append(served)
        async with calling(served.url) as call:
            assert await call(Item(1, 0.0)) == "item_1_processed"
        with pytest.raises(UnexpectedAnswer, match="409: cannot resize: this service has no"):
            await served.resize(2)  # no capacity to change
        1 / 0  # noqa: B018


# Leaving the block by a cancellation, with a call in flight, does too (and closes the client).
async def test_exit_by_cancellation_leaves_nothing() -> None:
    with anyio.move_on_after(10) as scope:
        async with (
            serving(capacity=2) as served,
            calling(served.url) as call,
            anyio.create_task_group() as group,
        ):
            group.start_soon(call, Item(0, 30.0))
            await wait_for(served, in_service=1)
            scope.cancel()
    assert scope.cancelled_caught
    assert gone(served.pid)
    assert port_is_free(served.port)


# A block cancelled during the server's start-up, whenever it comes, leaves no process behind
# (not even a zombie).
@pytest.mark.skipif(not ON_LINUX, reason="reads this process's children from /proc")
async def test_cancelled_start_leaves_no_process() -> None:
    before = http_children()
    for delay in (0, 0.001, 0.005, 0.02, 0.1):
        with anyio.move_on_after(delay):
            async with serving():
                pass
        assert http_children() <= before, f"left behind, cancelled after {delay} s"


# A server that dies at start-up, or never answers, is an error that says so, with what it
# wrote on stderr; and it is stopped.
@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("echo 'no such thing' >&2; exit 3", "exited with 3 before it answered:\nno such thing"),
        ("exec sleep 30", "did not answer within 0.2 s"),
    ],
)
async def test_a_server_that_fails_to_start_is_named(
    script: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    before = http_children() if ON_LINUX else set()
    with pytest.raises(ServerFailed, match=message):
        async with serving(start_timeout=0.2):
            pytest.fail("started")
    if ON_LINUX:
        assert http_children() <= before


# A server that dies during the block (killed from outside) is an error on the way out, not a
# silent end.
async def test_a_server_killed_during_the_block_is_named() -> None:
    seen: list[Served] = []
    with pytest.raises(ServerFailed, match="exited with -9 during the block"):
        await kill_inside(seen)
    assert gone(seen[0].pid)


async def kill_inside(seen: list[Served]) -> None:
    async with serving() as served:
        seen.append(served)
        os.kill(served.pid, signal.SIGKILL)
        with anyio.fail_after(5):
            while not gone(served.pid) and not zombie(served.pid):  # noqa: ASYNC110
                await anyio.sleep(0.01)
        await anyio.sleep(0.05)  # for the event loop to hear of it


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


# Ctrl+C in a terminal reaches the whole process group: the server ignores it (it still
# answers), and the parent, interrupted, stops it on the way out, on every backend.
def test_ctrl_c_reaches_the_parent_not_the_server(roomy: Served) -> None:
    os.kill(roomy.pid, signal.SIGINT)
    time.sleep(0.3)  # time enough for a server that took it as a signal to stop to have stopped
    assert httpx2.get(f"{roomy.url}/health", trust_env=False).status_code == 200
    script = (
        "import signal, sys, anyio\n"
        # As a terminal's job has it, even if this test runs where SIGINT is ignored (a
        # background job of a script), which a child would inherit.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from patterns.lab.http import serving\n"
        "async def main():\n"
        "    async with serving() as served:\n"
        "        print(served.pid, flush=True)\n"
        "        await anyio.sleep(30)\n"
        "name = sys.argv[1]\n"
        "anyio.run(main, backend='trio' if name == 'trio' else 'asyncio',\n"
        "          backend_options={'use_uvloop': True} if name == 'uvloop' else {})\n"
    )
    parents = {
        backend: subprocess.Popen(  # each in its own process group, as a terminal's job
            [sys.executable, "-c", script, backend],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        for backend in _BACKENDS
    }
    try:
        servers = {}
        for backend, parent in parents.items():
            assert parent.stdout is not None
            servers[backend] = int(parent.stdout.readline())
            os.killpg(parent.pid, signal.SIGINT)
        for backend, parent in parents.items():
            _, err = parent.communicate(timeout=20)
            assert parent.returncode != 0, backend
            assert b"KeyboardInterrupt" in err, (backend, err)
            assert gone(servers[backend]), backend
    finally:
        for parent in parents.values():
            if parent.poll() is None:
                parent.kill()
                parent.communicate()


# The server dies with its parent: once the parent's end of its stdin closes (the parent
# gone, however it went), it stops rather than serve on for nobody.
def test_the_server_dies_with_its_parent() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        fd, port = listener.fileno(), listener.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "patterns.lab.http", "--fd", str(fd)],
            stdin=subprocess.PIPE,
            pass_fds=[fd],
        )
    assert server.stdin is not None
    try:
        deadline = time.monotonic() + 20
        while not _answers(f"http://127.0.0.1:{port}/health"):
            assert time.monotonic() < deadline, "the server never answered"
            time.sleep(0.02)
        server.stdin.close()  # as the parent's death would
        assert server.wait(timeout=5) == -signal.SIGTERM
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def _answers(url: str) -> bool:
    try:
        return httpx2.get(url, trust_env=False).status_code == 200
    except httpx2.TransportError:
        return False


# A malformed /work (a bad, negative or missing number) is a 400 that says what is wrong, an
# unknown route a 404, a wrong method a 405; and the server goes on serving.
def test_bad_requests_are_refused_and_the_server_stays(roomy: Served) -> None:
    bad = {
        "/work?index=1&latency=abc": "latency must be a number of seconds, got 'abc'",
        "/work?index=1&latency=-0.5": "latency must be between 0 and 86400, got -0.5",
        "/work?index=1&latency=nan": "latency must be between 0 and 86400, got nan",
        "/work?index=1&latency=1e999": "latency must be between 0 and 86400, got inf",
        "/work?index=1&latency=1e300": "latency must be between 0 and 86400, got 1000000",
        "/work?index=-1&latency=0": "index must be an int >= 0, got '-1'",
        "/work?index=x&latency=0": "index must be an int",
        "/work?index=1": "/work needs index=N&latency=SECONDS",
        "/work": "/work needs index",
        "/work?index=1&index=2&latency=0": "index given twice",
        "/work?index": "a malformed query",
        "/resize": "/resize needs capacity=N",
        "/resize?capacity=2&latency=1": "/resize needs capacity=N",
        "/resize?capacity=0": "capacity must be >= 1, got 0",
        "/resize?capacity=-1": "capacity must be an int >= 1, got '-1'",
        "/resize?capacity=2.5": "capacity must be an int >= 1, got '2.5'",
        "/resize?capacity=1&capacity=2": "capacity given twice",
    }
    with httpx2.Client(base_url=roomy.url, trust_env=False) as client:
        for path, message in bad.items():
            answer = client.request("POST" if path.startswith("/resize") else "GET", path)
            assert (answer.status_code, message in answer.text) == (400, True), path
        assert client.get("/nowhere").status_code == 404
        assert client.post("/work?index=1&latency=0").status_code == 405
        assert client.get("/reset").headers["allow"] == "POST"
        assert client.get("/resize?capacity=2").headers["allow"] == "POST"
        assert client.get("/health").json()["capacity"] == 1000  # not resized by any of them
        assert client.get("/health").json()["ok"] is True
        assert client.get("/work?index=7&latency=0").text == "item_7_processed"


# Bad arguments are named before any process starts; a missing extra names the command that
# installs it.
async def test_bad_arguments_and_a_missing_extra_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        async with serving(0):
            pass
    with pytest.raises(ValueError, match="behaviour must be one of"):
        async with serving(2, behaviour="drop"):  # type: ignore[arg-type]
            pass
    with pytest.raises(ValueError, match="client must be one of httpx2, httpx, aiohttp"):
        async with calling("http://127.0.0.1:9", client="requests"):
            pass
    with pytest.raises(ValueError, match="connections must be >= 1"):
        async with calling("http://127.0.0.1:9", connections=0):
            pass
    nowhere = Served("http://127.0.0.1:9", 9, 0)  # nothing is sent: it would be a ServerFailed
    with pytest.raises(ValueError, match="capacity must be >= 1, got 0"):
        await nowhere.resize(0)
    with pytest.raises(TypeError, match=r"capacity must be an int >= 1, got 2.5 \(float\)"):
        await nowhere.resize(2.5)  # type: ignore[arg-type]
    real = __import__("importlib.util").util.find_spec
    monkeypatch.setattr(
        "importlib.util.find_spec", lambda name, *a: None if name == "httpx" else real(name, *a)
    )
    with pytest.raises(HTTPUnavailable, match=r"needs httpx: pip install -e '\.\[http\]'"):
        require()


# The module imports without the extra (the server and clients are imported where used), and
# then says what to install.
def test_imports_without_the_extra() -> None:
    script = (
        "import sys\n"
        "sys.modules.update(dict.fromkeys(['uvicorn', 'httpx2', 'httpx', 'aiohttp']))\n"
        "import patterns.lab.http as http\n"
        "try:\n"
        "    http.require()\n"
        "except http.HTTPUnavailable as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    assert done.stdout.decode().strip() == (
        "the HTTP service needs uvicorn, httpx2, httpx, aiohttp: pip install -e '.[http]'"
    )
