"""Run by tests/test_copies.py in a fresh process, beside copies of server.py and contract.py.

``python copied_server.py PACKAGE.MODULE BACKEND``: `import patterns` is made impossible first,
then the copied server must keep its promises on its own, serving a handler of the reader's:
never above ``max_connections``; when full, ``reject`` answers ``busy`` and ``queue`` waits;
on shutdown nothing more is accepted, the connections in flight finish within the drain and
the rest are cancelled at its end; every socket it opened is closed once it returns. Exits 0,
or with the broken promise. Stands alone on purpose: it imports anyio and the copy only.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import SocketStream

sys.modules["patterns"] = None  # type: ignore[assignment]  # `import patterns` now fails

HELLO, BYE = b"hello\n", b"bye\n"
FDS = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"


class Handler:
    """Says hello, holds the connection until released, says bye; counts those running."""

    def __init__(self) -> None:
        self.running = self.peak = 0
        self.release = anyio.Event()

    async def __call__(self, stream: SocketStream) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await stream.send(HELLO)
            await self.release.wait()
            await stream.send(BYE)
        finally:
            self.running -= 1


async def answer(port: int, answers: list[bytes]) -> None:
    """One client: everything the server sends until it closes."""
    data = b""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        try:
            while True:
                data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass
    answers.append(data)


async def until(condition: Callable[[], bool], seconds: float = 5) -> bool:
    """Whether ``condition()`` came true within ``seconds``, polled."""
    with anyio.move_on_after(seconds):
        while not condition():  # noqa: ASYNC110 - polling the server's state, in a test
            await anyio.sleep(0.01)
        return True
    return False


async def clients_against(
    server: Any, handler: Handler, clients: int, full: Callable[[], bool]
) -> list[bytes]:
    """``clients`` at once against ``server``; once ``full()``, release them; their answers."""
    answers: list[bytes] = []
    async with anyio.create_task_group() as tg:
        _, port = await tg.start(server.serve)
        async with anyio.create_task_group() as group:
            for _ in range(clients):
                group.start_soon(answer, port, answers)
            assert await until(full), (handler.running, server.counts)
            await anyio.sleep(0.1)  # time for the server to take one too many, if it would
            assert handler.running == server.max_connections, handler.running
            handler.release.set()
        server.shutdown()
    return answers


@asynccontextmanager
async def in_flight(
    module: Any, clients: int, **options: Any
) -> AsyncIterator[tuple[Any, Handler, int, list[bytes]]]:
    """A server with ``clients`` connections held in its handler; the block must shut it down."""
    handler = Handler()
    server = module.Server(handler, port=0, **options)
    answers: list[bytes] = []
    async with anyio.create_task_group() as tg:
        _, port = await tg.start(server.serve)
        for _ in range(clients):
            tg.start_soon(answer, port, answers)
        assert await until(lambda: handler.running == clients), (handler.running, server.counts)
        yield server, handler, port, answers


async def check(module: Any) -> None:
    # Reject: never above the cap; the rest are told "busy" at once.
    handler = Handler()
    server = module.Server(handler, port=0, max_connections=3, policy="reject")
    answers = await clients_against(server, handler, 10, lambda: server.counts.rejected == 7)
    # (Past max_connections busy answers under way at once, one is closed unanswered.)
    assert sorted(answers)[-3:] == [HELLO + BYE] * 3, answers
    assert set(sorted(answers)[:-3]) <= {module.BUSY, b""}, answers
    assert module.BUSY in answers, answers
    assert (handler.peak, server.counts.peak_open, server.counts.completed) == (3, 3, 3)
    # Queue: never above the cap; the rest wait in the backlog, none is turned away.
    handler = Handler()
    server = module.Server(handler, port=0, max_connections=2, policy="queue")
    answers = await clients_against(server, handler, 6, lambda: handler.running == 2)
    assert answers == [HELLO + BYE] * 6, answers
    assert (handler.peak, server.counts.rejected, server.counts.completed) == (2, 0, 6)
    # Graceful: after shutdown nothing is accepted, and what is in flight finishes.
    async with in_flight(module, 4, drain=5) as (server, handler, port, answers):
        server.shutdown()
        await anyio.sleep(0.05)
        try:
            await anyio.connect_tcp("127.0.0.1", port)
        except OSError:
            pass
        else:
            raise AssertionError("a client connected after the shutdown")
        handler.release.set()
    assert answers == [HELLO + BYE] * 4, answers
    assert (server.counts.accepted, server.counts.completed) == (4, 4)
    # A drain shorter than the work: the rest are cancelled at its end, and counted.
    async with in_flight(module, 3, drain=0.2) as (server, handler, port, answers):
        begun = anyio.current_time()
        server.shutdown()
    assert anyio.current_time() - begun < 0.2 + 1.0
    assert answers == [HELLO] * 3, answers
    assert (server.counts.cancelled, server.counts.open) == (3, 0)
    assert server.counts.add_up()


async def check_sockets_closed(module: str) -> None:
    """Every check above, then every file descriptor it opened is closed again."""
    server_module = importlib.import_module(module)
    # A first connection, not counted: the event loop opens some files of its own on first use
    # (uvloop's resolver its eventfd), and keeps them.
    handler = Handler()
    handler.release.set()
    server = server_module.Server(handler, port=0)
    async with anyio.create_task_group() as tg:
        _, port = await tg.start(server.serve)
        await answer(port, [])
        server.shutdown()
    before = len(os.listdir(FDS))
    with anyio.fail_after(20):  # a client left waiting for the server to close is a failure
        await check(server_module)
    await until(lambda: len(os.listdir(FDS)) <= before, 2)  # a loop may close on its next turn
    left = os.listdir(FDS)
    assert len(left) <= before, f"{len(left) - before} more open: {_named(left)}"


def _named(fds: list[str]) -> list[str]:
    return [os.readlink(f"{FDS}/{fd}") for fd in fds if os.path.exists(f"{FDS}/{fd}")]


def main(module: str, backend: str) -> None:
    name, options = ("asyncio", {"use_uvloop": True}) if backend == "uvloop" else (backend, {})
    anyio.run(check_sockets_closed, module, backend=name, backend_options=options)
    print(f"{module} on {backend}: ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
