"""The bounded TCP server, over loopback only; every load bounded in count and time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import anyio
import pytest

from patterns import PATTERNS
from patterns.harness import ameasure
from patterns.server import BUSY, Server
from patterns.threads_vs_async import measure as threads_vs_async
from patterns.workload import Workload

pytestmark = pytest.mark.anyio


async def ask(port: int, delay: float | None = None, send: bytes = b"") -> bytes:
    """One client: optionally ask for a delay, send some bytes, read until the server closes."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        if delay is not None:
            await stream.send(f"delay {delay}\n".encode())
        if send:
            await stream.send(send)
        data = b""
        try:
            while True:
                data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return data


def full_answer(data: bytes) -> bool:
    lines = data.decode().split()
    return len(lines) == 4 and lines[0] == "start" and lines[2] == "end"


def _enough_open_files(needed: int) -> None:
    """Raise the soft open-files limit to ``needed`` if it is lower, or skip saying why."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        pytest.skip("no resource module to check the open-files limit")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed or soft == resource.RLIM_INFINITY:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the flood needs {needed} open files; the hard limit here is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


# A flood of 2,000 clients against 50 slots: never more than 50 held, every client answered.
async def test_flood_is_bounded() -> None:
    # Each client holds a socket on both ends, in this one process.
    _enough_open_files(2 * 2000 + 200)
    server = Server(port=0, max_connections=50, delay=0.05, drain=2)
    answers: list[bytes] = []

    async def client(i: int) -> None:
        answers.append(await ask(port, 0.05 if i % 2 else None))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            async with anyio.create_task_group() as clients:
                for i in range(2000):
                    clients.start_soon(client, i)
            assert full_answer(await ask(port, 0.0))  # and it still answers afterwards
            server.shutdown()
    assert server.counts.peak_open <= 50
    assert all(full_answer(a) or a == BUSY for a in answers), {a for a in answers if a != BUSY}
    assert server.counts.rejected == sum(a == BUSY for a in answers) > 0
    assert server.counts.add_up()


# Graceful shutdown: no accepts after the trigger, all 30 in flight finish, the counts add up.
async def test_graceful_shutdown_lets_requests_finish() -> None:
    server = Server(port=0, max_connections=100, drain=5)
    answers: list[bytes] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)

            async def client() -> None:
                answers.append(await ask(port, 0.3))

            for _ in range(30):
                tg.start_soon(client)
            while server.counts.open < 30:  # noqa: ASYNC110 - polling a counter, in a test
                await anyio.sleep(0.01)
            started = anyio.current_time()
            server.shutdown()
            await anyio.sleep(0.05)
            accepted = server.counts.accepted
    assert accepted == 30
    assert server.counts.accepted == 30  # nothing accepted after the trigger
    assert len(answers) == 30
    assert all(full_answer(a) for a in answers)
    assert server.counts.completed == 30
    assert server.counts.add_up()
    assert anyio.current_time() - started < 0.3 + 1.0  # the work, plus a small margin


# A drain deadline shorter than the work: the rest are cancelled and counted, nothing hangs.
async def test_short_drain_cancels_the_rest() -> None:
    server = Server(port=0, drain=0.2)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            for _ in range(30):
                tg.start_soon(ask, port, 5.0)
            while server.counts.open < 30:  # noqa: ASYNC110 - polling a counter, in a test
                await anyio.sleep(0.01)
            started = anyio.current_time()
            server.shutdown()
        elapsed = anyio.current_time() - started
    assert server.counts.cancelled == 30
    assert server.counts.add_up()
    assert elapsed < 0.2 + 1.0


# An idle client is dropped at the timeout, and its slot freed.
async def test_idle_client_is_dropped() -> None:
    server = Server(port=0, mode="echo", idle_timeout=0.2, max_connections=1)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            assert await ask(port) == b""  # sends nothing: closed after 0.2 s
            assert await ask(port, send=b"hello\n") == b"hello\n"  # the slot is free again
            server.shutdown()
    assert server.counts.timed_out >= 1
    assert server.counts.open == 0


# Echo mode refuses a line longer than the limit.
async def test_echo_line_limit() -> None:
    server = Server(port=0, mode="echo", idle_timeout=0.2, max_line=16)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            assert await ask(port, send=b"x" * 64 + b"\n") == b"line too long\n"
            server.shutdown()


# The queue policy holds the rest in the backlog instead of refusing them.
async def test_queue_policy() -> None:
    server = Server(port=0, max_connections=2, policy="queue", delay=0.05)
    answers: list[bytes] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)

            async def client() -> None:
                answers.append(await ask(port))

            async with anyio.create_task_group() as clients:
                for _ in range(6):
                    clients.start_soon(client)
            server.shutdown()
    assert len(answers) == 6
    assert all(full_answer(a) for a in answers)
    assert server.counts.peak_open <= 2
    assert server.counts.rejected == 0


# Bad arguments fail at once, naming them.
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"max_connections": 0}, "max_connections"), ({"policy": "drop"}, "policy"),
     ({"mode": "http"}, "mode"), ({"delay": -1}, "delay"), ({"max_line": 2}, "max_line")],
)  # fmt: skip
async def test_bad_arguments(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises((TypeError, ValueError), match=name):
        Server(**kwargs)  # type: ignore[arg-type]


# A real SIGINT to `python -m patterns serve`: the address first, then exit 0 and the summary.
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_serve_shuts_down_on_sigint(anyio_backend: tuple[str, dict[str, object]]) -> None:
    backend = "uvloop" if anyio_backend[1] else anyio_backend[0]
    command = [sys.executable, "-m", "patterns", "serve", "--port", "0", "--delay", "0.3"]
    command += ["--backend", backend]
    proc = await anyio.open_process(command)
    try:
        assert proc.stdout is not None
        with anyio.fail_after(20):
            first = b""
            while not first.endswith(b"\n"):
                first += await proc.stdout.receive(1)
            assert first.startswith(b"listening on 127.0.0.1:")
            port = int(first.split(b":")[-1])
            async with anyio.create_task_group() as tg:
                answers: list[bytes] = []

                async def client() -> None:
                    answers.append(await ask(port))

                tg.start_soon(client)
                await anyio.sleep(0.1)  # the request is in flight...
                proc.send_signal(signal.SIGINT)  # ...when Ctrl+C arrives
            rest = b""
            async for chunk in proc.stdout:
                rest += chunk
            status = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.aclose()
    assert status == 0
    assert full_answer(answers[0])  # the request in flight finished
    assert b"accepted 1 = completed 1 + cancelled 0 + timed out 0; rejected 0" in rest


# Every pattern drives real client calls against a local server, on every backend.
@pytest.mark.parametrize("name", list(PATTERNS))
async def test_tcp_workload(name: str) -> None:
    workload = Workload(items=12, low=0.01, high=0.03, failure_rate=0.2, seed=3)
    report = await ameasure(name, workload, limit=3, transport="tcp")
    assert report.transport == "tcp"
    assert report.peak_concurrency == (12 if name == "scatter_gather" else 3)
    assert report.failed == sum(item.fails for item in workload)
    assert report.makespan_s >= report.ideal_makespan_s * 0.95


# Threads vs async: both serve every client at once; threads take one per connection.
def test_threads_vs_async() -> None:
    threads = threads_vs_async("threads", clients=20, delay=0.2)
    tasks = threads_vs_async("async", clients=20, delay=0.2)
    for result in (threads, tasks):
        assert result.peak_open == 20
        assert 0.2 <= result.makespan_s < 2.0
    assert threads.peak_threads >= 20
    assert tasks.peak_threads < 20
    assert json.loads(json.dumps(tasks.__dict__))["kind"] == "async"


# `serve` misuse: one line, exit 2.
def test_serve_misuse() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "patterns", "serve", "--port", "70000"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "--port" in proc.stderr
