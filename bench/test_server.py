"""Scenario: the server recipe's cost per connection, against the textbook accept loop.

A handler writes one line and returns; the server closes the connection. Clients in another
process (20 threads with blocking sockets) make the connections one after another, each
reading to the end, so the server's process does the serving and nothing else. The figure is
the server process's CPU time per connection (user + system: the wall time moves with whatever
else runs on the machine, CPU time much less), median of the rounds, which alternate between
the recipe (``Server``, never full) and the textbook accept loop, anyio's ``listener.serve``
with a handler that closes the stream itself. The difference is what the cap, the policy, the
counts and the shutdown cost per connection; the rest is the kernel's and the event loop's.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream

from patterns.lab.backends import run_on
from patterns.server import Server

from .conftest import EXTRA_SUMMARIES
from .scenarios import SCALES, Scale

BACKENDS = ["asyncio", "uvloop", "trio"]
CLIENT_THREADS = 20
#: Connections per round, at full size and tiny (seconds in all, so the scenario cannot rot).
CONNECTIONS = {"full": 5_000, "tiny": 100}
ROUNDS = {"full": 7, "tiny": 1}

# The clients: blocking sockets in threads, in a process of their own.
CLIENTS = """
import socket, sys, threading
port, left, threads = map(int, sys.argv[1:])
lock = threading.Lock()
def client():
    global left
    while True:
        with lock:
            if not left:
                return
            left -= 1
        with socket.create_connection(("127.0.0.1", port)) as s:
            while s.recv(64):
                pass
crew = [threading.Thread(target=client) for _ in range(threads)]
for t in crew:
    t.start()
for t in crew:
    t.join()
"""


async def hello(stream: SocketStream) -> None:
    await stream.send(b"hello\n")


async def _cpu_for(port: int, connections: int) -> float:
    """The CPU seconds this process spends while the clients make their connections."""
    started = time.process_time()
    arguments = [str(port), str(connections), str(CLIENT_THREADS)]
    await anyio.run_process([sys.executable, "-c", CLIENTS, *arguments])
    return time.process_time() - started


async def recipe(connections: int) -> float:
    server = Server(hello, port=0, max_connections=4 * CLIENT_THREADS)  # never full
    async with anyio.create_task_group() as tg:
        _, port = await tg.start(server.serve)
        cpu = await _cpu_for(port, connections)
        server.shutdown()
    assert server.counts.completed == connections, server.counts
    return cpu


async def textbook(connections: int) -> float:
    async def closing_hello(stream: SocketStream) -> None:
        async with stream:
            await hello(stream)

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, closing_hello)
            cpu = await _cpu_for(port, connections)
            tg.cancel_scope.cancel()
    return cpu


SERVERS: dict[str, Callable[[int], Awaitable[float]]] = {"recipe": recipe, "textbook": textbook}
#: Microseconds of CPU per connection, by (backend, server), this session.
MEASURED: dict[tuple[str, str], float] = {}


def summary_lines() -> list[str]:
    lines = ["the server's CPU per connection (one line each), median of alternating rounds"]
    for backend in BACKENDS:
        ours, floor = MEASURED.get((backend, "recipe")), MEASURED.get((backend, "textbook"))
        if ours is not None and floor is not None:
            lines.append(
                f"  {backend:<8} recipe {ours:6.1f} µs, textbook {floor:6.1f} µs: "
                f"{ours - floor:+.1f} µs per connection"
            )
    return lines


EXTRA_SUMMARIES.append(("server: cost per connection", summary_lines))


# The recipe and the textbook loop, round by round in turn, on each backend.
@pytest.mark.parametrize("backend", BACKENDS)
def test_cost_per_connection(benchmark: Any, backend: str, scale: Scale) -> None:
    size = "full" if scale == SCALES["full"] else "tiny"
    connections = CONNECTIONS[size]
    benchmark.group = f"server: {connections:,} connections, {backend}"
    cpu: dict[str, list[float]] = {name: [] for name in SERVERS}

    def rounds() -> None:
        for name, serve in SERVERS.items():
            cpu[name].append(run_on(backend, partial(serve, connections)))

    benchmark.pedantic(rounds, rounds=ROUNDS[size], iterations=1, warmup_rounds=0)
    for name, seconds in cpu.items():
        MEASURED[backend, name] = statistics.median(seconds) / connections * 1e6
    benchmark.extra_info.update({name: MEASURED[backend, name] for name in SERVERS})
    assert all(MEASURED[backend, name] > 0 for name in SERVERS)
