"""The bounded TCP server, over loopback only; every load bounded in count and time."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from functools import partial

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.stapled import MultiListener

from patterns import PATTERNS
from patterns import server as server_page
from patterns.lab.harness import ameasure
from patterns.lab.threads_vs_async import measure as threads_vs_async
from patterns.lab.toy import toy_server
from patterns.lab.workload import Workload
from patterns.server import BUSY, Server, serve_until_signalled

from .clients import ask, backend_name, enough_open_files, full_answer, read_all, serving

pytestmark = pytest.mark.anyio


# A flood of 500 clients against 50 slots: never more than 50 held, every client answered.
async def test_flood_is_bounded() -> None:
    # Each client holds a socket on both ends, in this one process.
    enough_open_files(2 * 500 + 200)
    server = toy_server(port=0, max_connections=50, delay=0.05, drain=2)
    answers: list[bytes] = []

    async def client(i: int) -> None:
        answers.append(await ask(port, 0.05 if i % 2 else None))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            async with anyio.create_task_group() as clients:
                for i in range(500):
                    clients.start_soon(client, i)
            assert full_answer(await ask(port, 0.0))  # and it still answers afterwards
            server.shutdown()
    assert server.counts.peak_open <= 50
    assert all(full_answer(a) or a == BUSY for a in answers), {a for a in answers if a != BUSY}
    assert server.counts.rejected == sum(a == BUSY for a in answers) > 0
    assert server.counts.add_up()


# Graceful shutdown: no accepts after the trigger, all 30 in flight finish, the counts add up.
async def test_graceful_shutdown_lets_requests_finish() -> None:
    server = toy_server(port=0, max_connections=100, drain=5)
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
    server = toy_server(port=0, drain=0.2)
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
    server = toy_server(port=0, mode="echo", idle_timeout=0.2, max_connections=1)
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
    server = toy_server(port=0, mode="echo", idle_timeout=0.2, max_line=16)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            assert await ask(port, send=b"x" * 64 + b"\n") == b"error: line too long\n"
            server.shutdown()


# Echo answers every whole line before a long one, even across reads, then refuses.
@pytest.mark.parametrize(
    ("pieces", "answer"),
    [
        ([b"a" * 16 + b"\n"], b"a" * 16 + b"\n"),  # exactly max_line: fine
        ([b"ab\ncd\n" + b"x" * 17 + b"\nef\n"], b"ab\ncd\nerror: line too long\n"),
        ([b"ab\nc", b"d\n"], b"ab\ncd\n"),  # a line whole only on the second read
        ([b"ab\n" + b"y" * 10, b"y" * 10], b"ab\nerror: line too long\n"),  # long across reads
    ],
)
async def test_echo_lines_across_reads(pieces: list[bytes], answer: bytes) -> None:
    server = toy_server(port=0, mode="echo", idle_timeout=0.3, max_line=16)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                for piece in pieces:
                    await stream.send(piece)
                    await anyio.sleep(0.05)  # a read of its own
                await stream.send_eof()
                assert await read_all(stream) == answer
            server.shutdown()


# The queue policy holds the rest in the backlog instead of refusing them.
async def test_queue_policy() -> None:
    server = toy_server(port=0, max_connections=2, policy="queue", delay=0.05)
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
        toy_server(**kwargs)  # type: ignore[arg-type]


# The server's page reads as the other recipe pages do: every section they have (its opening
# example runs against a copy in tests/test_copies.py).
def test_server_page_has_the_recipe_sections() -> None:
    doc = server_page.__doc__ or ""
    sections = ("What it is", "When to use it", "Failure mode", "Cost (measured)")
    for heading in (*sections, "Beside the textbook version"):
        assert f"\n{heading}\n" in doc, heading


# A handler that is not an async function (not callable, or a plain def, which would fail on
# every connection) is refused at once, by name; an async callable object or a partial is not.
def test_handler_must_be_async() -> None:
    def plain(stream: SocketStream) -> None:
        pass

    for wrong in (42, plain):
        with pytest.raises(TypeError, match="handler must be an async function"):
            Server(wrong)  # type: ignore[arg-type]

    async def handler(stream: SocketStream, greeting: bytes) -> None:
        await stream.send(greeting)

    Server(partial(handler, greeting=b"hi"))
    toy_server(port=0)  # an object with an async __call__


# A handler that raises ends its connection only, counted as failed, and its traceback goes to
# the server's logger at DEBUG: a bug in a handler can be seen, a client that resets is quiet.
async def test_a_failing_handler_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(stream: SocketStream) -> None:
        raise RuntimeError("a bug in the handler")

    server = Server(broken, port=0)
    with caplog.at_level("DEBUG", logger="patterns.server"):
        async with anyio.create_task_group() as tg:
            host, port = await tg.start(server.serve)
            async with await anyio.connect_tcp(host, port) as client:
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await client.receive()
            server.shutdown()
    assert (server.counts.failed, server.counts.completed) == (1, 0)
    (record,) = [r for r in caplog.records if r.name == "patterns.server"]
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "a bug in the handler"


# serve_until_signalled: the address once the signals are caught; on SIGTERM it stops
# accepting, lets the request in flight finish, and returns.
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_serve_until_signalled_drains_on_sigterm() -> None:
    server = toy_server(port=0, drain=5)
    addresses: list[tuple[str, int]] = []
    answers: list[bytes] = []

    def listening(host: str, port: int) -> None:
        addresses.append((host, port))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(serve_until_signalled, server, on_listening=listening))
            while not addresses:  # noqa: ASYNC110 - polling a list, in a test
                await anyio.sleep(0.01)

            async def client() -> None:
                answers.append(await ask(addresses[0][1], 0.3))

            tg.start_soon(client)
            while not server.counts.open:  # noqa: ASYNC110 - polling a counter, in a test
                await anyio.sleep(0.01)
            os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(OSError, match=r"connection attempts failed|refused"):
            await anyio.connect_tcp("127.0.0.1", addresses[0][1])
    assert full_answer(answers[0])
    assert (server.counts.accepted, server.counts.completed) == (1, 1)


# serve_until_signalled returns, too, when the server is shut down some other way.
async def test_serve_until_signalled_returns_on_shutdown() -> None:
    server = toy_server(port=0)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            stop = partial(serve_until_signalled, server, on_listening=lambda *_: server.shutdown())
            tg.start_soon(stop)
    assert server.counts.accepted == 0


# A real SIGINT to `python -m patterns serve`: the address first, then exit 0 and the summary.
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_serve_shuts_down_on_sigint(anyio_backend: tuple[str, dict[str, object]]) -> None:
    options = ["--delay", "0.3", "--backend", backend_name(anyio_backend)]
    with anyio.fail_after(20):
        async with serving(*options) as server:
            async with anyio.create_task_group() as tg:
                answers: list[bytes] = []

                async def client() -> None:
                    answers.append(await ask(server.port))

                tg.start_soon(client)
                await anyio.sleep(0.1)  # the request is in flight...
                server.interrupt()  # ...when Ctrl+C arrives
            await server.wait()
    assert server.status == 0
    assert full_answer(answers[0])  # the request in flight finished
    assert b"accepted 1 = completed 1 + cancelled 0 + timed out 0 + failed 0; rejected 0" in (
        server.output
    )


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


# A client that connects and closes at once ends its own connection, not the server.
async def test_connect_and_close_does_not_kill_the_server() -> None:
    server = toy_server(port=0, delay=0.05)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            for _ in range(20):
                stream = await anyio.connect_tcp("127.0.0.1", port)
                await stream.aclose()
            assert full_answer(await ask(port, 0.0))
            server.shutdown()
    assert server.counts.accepted == 21
    assert server.counts.add_up()


# A client that hung up frees its slot at once, not at the end of its delay.
async def test_client_that_hung_up_frees_its_slot() -> None:
    server = toy_server(port=0, delay=5, max_connections=5)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            for _ in range(5):
                stream = await anyio.connect_tcp("127.0.0.1", port)
                await stream.aclose()
            while server.counts.accepted < 5:  # noqa: ASYNC110 - polling a counter, in a test
                await anyio.sleep(0.01)
            with anyio.fail_after(2):  # well before the 5 s delay they would have held
                while server.counts.open:  # noqa: ASYNC110 - polling a counter, in a test
                    await anyio.sleep(0.01)
            server.shutdown()
    assert server.counts.failed == 5


# A request for a delay the server will not grant gets an error line, not a slot for ever.
@pytest.mark.parametrize(
    "request_line", [b"delay -1", b"delay nan", b"delay inf", b"delay 11", b"delay x", b"hello"]
)
async def test_bad_delay_is_refused(request_line: bytes) -> None:
    server = toy_server(port=0, max_delay=10)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            answer = await ask(port, send=request_line + b"\n")
            assert full_answer(await ask(port, 0.01))  # a delay within the cap is granted
            server.shutdown()
    assert answer.startswith(b"error: "), answer
    assert (server.counts.failed, server.counts.completed) == (1, 1)
    assert server.counts.add_up()


# An echo client that sends and never reads cannot hold its slot: it times out.
async def test_client_that_never_reads_times_out() -> None:
    server = toy_server(port=0, mode="echo", idle_timeout=0.3, max_connections=1)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                with anyio.move_on_after(0.5), contextlib.suppress(anyio.BrokenResourceError):
                    while True:  # the server's answers pile up in the socket buffers
                        await stream.send(b"y" * 60 + b"\n" * 1000)
                # (Cut off already, if the server's send to us timed out within the 0.5 s.)
                # Now it only sits there, connected: the server's send waits, then gives up.
                while not server.counts.timed_out:  # noqa: ASYNC110 - polling a counter
                    await anyio.sleep(0.01)
            assert await ask(port, send=b"next\n") == b"next\n"  # the slot is free again
            server.shutdown()
    # Both timed out: the polite client too, which goes quiet after its line (echo serves on).
    assert server.counts.timed_out == 2
    assert server.counts.add_up()


# Shutdown closes the listening socket at once: a new client is refused during the drain.
async def test_listener_closes_when_shutdown_begins() -> None:
    server = toy_server(port=0, drain=5)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            async with await anyio.connect_tcp("127.0.0.1", port) as in_flight:
                await in_flight.send(b"delay 0.5\n")
                assert (await in_flight.receive()).startswith(b"start")
                server.shutdown()
                await anyio.sleep(0.05)
                # Refused: nobody listens any more.
                with pytest.raises(OSError, match=r"connection attempts failed|refused"):
                    await anyio.connect_tcp("127.0.0.1", port)
                assert server.counts.open == 1  # ...while the drain is still going on
    assert server.counts.completed == 1
    assert server.counts.add_up()


def _dual_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every host resolve to 127.0.0.1 and ::1, as "localhost" does on many machines."""
    real = anyio.create_tcp_listener
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")

    async def both(*, local_host: str, local_port: int) -> MultiListener[SocketStream]:
        v4 = await real(local_host="127.0.0.1", local_port=local_port)
        port = v4.extra(SocketAttribute.local_port)
        v6 = await real(local_host="::1", local_port=port)
        return MultiListener([*v4.listeners, *v6.listeners])

    monkeypatch.setattr(anyio, "create_tcp_listener", both)


# A host with two addresses gets two listeners, and both are served, under either policy.
@pytest.mark.parametrize("policy", ["reject", "queue"])
async def test_every_listener_is_served(monkeypatch: pytest.MonkeyPatch, policy: str) -> None:
    _dual_stack(monkeypatch)
    server = toy_server(port=0, delay=0.01, max_connections=1, policy=policy)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            for host in ("::1", "127.0.0.1", "::1"):
                async with await anyio.connect_tcp(host, port) as stream:
                    assert full_answer(await read_all(stream)), host
            server.shutdown()
    assert server.counts.completed == 3


# An address that cannot be bound raises OSError itself, before anything is served.
async def test_bind_error_is_raised_bare() -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            first = toy_server(port=0)
            _, port = await tg.start(first.serve)
            with pytest.raises(OSError, match="in use"):
                await tg.start(toy_server(port=port).serve)
            first.shutdown()


# Out of file descriptors, accept() fails: the server waits for some to close, and goes on.
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX open-files limit")
async def test_server_survives_running_out_of_file_descriptors(
    anyio_backend: tuple[str, dict[str, object]],
) -> None:
    # 40 files: the interpreter and its event loop take about 15, so about 25 connections fit;
    # 60 clients at once must wait in the backlog until earlier ones are done.
    options = ["--delay", "0.3", "--backend", backend_name(anyio_backend)]
    with anyio.fail_after(30):
        async with serving(*options, open_files=40) as server:
            answers: list[bytes] = []

            async def client() -> None:
                answers.append(await ask(server.port))

            async with anyio.create_task_group() as tg:
                for _ in range(60):
                    tg.start_soon(client)
            server.interrupt()
            await server.wait()
    assert all(full_answer(a) for a in answers), [a for a in answers if not full_answer(a)]
    assert server.status == 0
    assert server.counts["completed"] == 60, server.output


# A flood of empty lines costs the server a send per read, not one per line: a client that
# sends 200,000 of them at once is answered in full within moments.
async def test_flood_of_empty_lines_is_echoed_in_bulk() -> None:
    server = toy_server(port=0, mode="echo", idle_timeout=5)
    flood = b"\n" * 200_000
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                await stream.send(flood)
                echoed = b""
                with anyio.fail_after(2):  # a send per line did not finish in 2 s here
                    while len(echoed) < len(flood):
                        echoed += await stream.receive()
            server.shutdown()
    assert echoed == flood
