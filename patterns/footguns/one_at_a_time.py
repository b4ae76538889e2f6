"""Footgun: the server that serves one client at a time (article 004's first server).

The article's toy server accepts a connection, writes ``start N``, sleeps a second, writes
``end N``, and only then accepts the next: ten clients that connect together take ten seconds,
each one waiting in the kernel's backlog for all those before it. In async code the same
server is an accept loop that awaits each client's handler to the end (``await
handler(stream)``) where it should start it as a task. The fix is the bounded server recipe
(:class:`patterns.server.Server`): a task per connection, at most ``max_connections`` at once,
so the ten are served together and take one delay, as the article's server with a thread (then
a task) per connection does. Both serve the lab's toy protocol (:mod:`patterns.lab.toy`) with
the same handler: only the accept loop differs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import cast

import anyio
from anyio.abc import SocketAttribute, SocketListener

from patterns.footguns.exhibit import Exhibit, Instrument, Spans, Verdict
from patterns.lab.toy import Toy
from patterns.server import Server

#: Clients that connect at once, each asking for a reply that takes DELAY seconds; the bounded
#: server holds BOUND connections at once, and queues the rest in the kernel's backlog.
CLIENTS, DELAY, BOUND = 10, 0.1, 10

#: Serves the toy protocol for a block, and gives the port it listens on.
Serving = Callable[[float, int], AbstractAsyncContextManager[int]]


@dataclass(frozen=True)
class Served:
    """What the clients saw: each one's connect, first byte and end, in seconds from the start
    (in the order they connected), and how long they all took."""

    clients: tuple[tuple[float, float, float], ...]
    makespan: float

    @property
    def waits(self) -> tuple[float, ...]:
        """Each client's wait, from its connect to the first byte of the answer."""
        return tuple(first - connect for connect, first, _ in self.clients)


def _toy(delay: float) -> Toy:
    """The toy protocol's handler: ``start N``, the client's delay, ``end N``."""
    return Toy(
        mode="toy",
        delay=delay,  # also what a client that asks nothing in time gets
        max_delay=max(delay, 1.0),
        max_line=64,
        idle_timeout=10.0,
        hello_window=0.05,
    )


@asynccontextmanager
async def one_at_a_time(delay: float, bound: int) -> AsyncIterator[int]:
    """The footgun: each client is served to the end before the next is accepted (``bound`` is
    moot: one at a time)."""
    handler = _toy(delay)
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listeners:
        listener = cast(SocketListener, listeners.listeners[0])

        async def accept_loop() -> None:
            while True:
                stream = await listener.accept()
                async with stream:
                    await handler(stream)  # to the end: nobody else is accepted meanwhile

        async with anyio.create_task_group() as tg:
            tg.start_soon(accept_loop)
            yield listener.extra(SocketAttribute.local_port)
            tg.cancel_scope.cancel()


@asynccontextmanager
async def bounded(delay: float, bound: int) -> AsyncIterator[int]:
    """The recipe: a task per connection, at most ``bound`` at once (the rest wait in the
    backlog)."""
    server = Server(_toy(delay), port=0, max_connections=bound, policy="queue", drain=1.0)
    async with anyio.create_task_group() as tg:
        _, port = await tg.start(server.serve)
        yield port
        server.shutdown()


async def measure(serving: Serving, clients: int, delay: float, bound: int = BOUND) -> Served:
    """``clients`` connect at once to the server ``serving`` starts, each asking for ``delay``."""
    probe = Instrument()
    seen: list[tuple[float, float, float]] = []

    async def client() -> None:
        connect = probe.clock()
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(f"delay {delay}\n".encode())
            await stream.receive()  # "start N": the server has begun on this client
            first = probe.clock()
            try:
                while await stream.receive():  # to "end N" and the close
                    pass
            except anyio.EndOfStream:
                pass
        seen.append((connect, first, probe.clock()))

    # However slow the server, the exhibit ends: every client served one after another, twice.
    with anyio.fail_after(10 + 2 * clients * delay):
        async with serving(delay, bound) as port:
            started = probe.clock()
            async with anyio.create_task_group() as tg:
                for _ in range(clients):
                    tg.start_soon(client)
            makespan = probe.clock() - started
    return Served(tuple(sorted(seen)), makespan)


def _verdict(served: Served, delay: float) -> Verdict:
    clients = len(served.clients)
    # One at a time takes every client's delay in turn; within the bound, about one delay.
    ok = served.makespan < clients * delay / 2
    how = "served together" if ok else "served one at a time"
    waits = ", ".join(f"{wait * 1000:.0f}" for wait in sorted(served.waits))
    observed = (
        f"{clients} clients of {delay * 1000:.0f} ms each took {served.makespan:.2f} s, {how}: "
        f"each waited {waits} ms for its first byte"
    )
    return Verdict(ok, observed, _spans(served, delay))


def _spans(served: Served, delay: float) -> Spans:
    """Two rows per client, in the order they were answered: its wait for a first byte (red
    when it waited over half a delay: held up by the others), then its answer."""
    rows: list[tuple[str, float, float]] = []
    answered = sorted(served.clients, key=lambda client: client[1])
    for number, (connect, first, end) in enumerate(answered, 1):
        held_up = " (blocked)" if first - connect > delay / 2 else ""
        rows.append((f"client {number} waiting{held_up}", connect, first))
        rows.append((f"client {number} served", first, end))
    return tuple(rows)


async def broken() -> Verdict:
    """An accept loop that awaits each client's handler before it accepts the next."""
    return _verdict(await measure(one_at_a_time, CLIENTS, DELAY), DELAY)


async def fixed() -> Verdict:
    """The bounded server recipe: each client's handler a task of its own, up to the bound."""
    return _verdict(await measure(bounded, CLIENTS, DELAY), DELAY)


EXHIBIT = Exhibit(
    name="one-at-a-time",
    title="The server that serves one client at a time",
    article="004: async I/O from scratch, threads vs an event loop",
    why=(
        "The accept loop awaited each client's handler to the end before it accepted the next, "
        "so the clients that connected together waited in the kernel's backlog, one after "
        "another: the makespan is the clients times the delay, and the last one waits for all "
        "the others. Start each handler as a task of its own and bound how many run at once "
        "(patterns.server.Server): they are served together, in about one delay, up to the "
        "bound."
    ),
    broken=broken,
    fixed=fixed,
)
