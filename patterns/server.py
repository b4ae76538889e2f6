"""Bounded TCP server: cap the connections it holds, and shut down without cutting requests off.

What it is
    The toy server of source article 004 (each connection gets ``start N``, a delay, then
    ``end N``) and an echo mode, on anyio, with the two things an accept loop needs and the
    listener helpers of anyio and trio do not give: a cap on open connections (article 000)
    and a graceful shutdown (article 001).

When to use it
    Any server of your own whose clients you do not control: the cap keeps a flood from taking
    every socket and every byte of memory; the shutdown lets the requests in flight finish.

Failure mode
    The cap done wrong does nothing: a permit taken around ``start_soon`` is back before the
    handler runs (article 000, the ``early-release`` footgun). Shutdown done wrong hangs in
    ``accept()`` or cuts requests off: stop accepting by cancelling the accept loop (not with
    dummy connections or accept timeouts), give the handlers a deadline, then cancel them.

Protocol
    toy: on connect the server may read one line ``delay SECONDS`` (sent at once by a client
    that wants its own delay; a client that sends nothing gets the default after
    ``hello_window`` seconds), writes ``start N``, waits the delay, writes ``end N`` and
    closes. echo: every line is sent back until the client closes, is idle for
    ``idle_timeout`` seconds, or sends a line longer than ``max_line`` bytes.
    Admission, ``policy="reject"``: accept, and when ``max_connections`` are open already,
    write ``busy`` and close at once (the article's choice). ``policy="queue"``: do not
    accept while full; the kernel's listen backlog holds the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, cast

import anyio
from anyio.abc import SocketAttribute, SocketListener, SocketStream, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream

Mode = Literal["toy", "echo"]
Policy = Literal["reject", "queue"]
BUSY = b"busy\n"


@dataclass
class Counts:
    """What the server did: accepted = completed + cancelled + timed out; rejected apart."""

    accepted: int = 0
    completed: int = 0
    cancelled: int = 0
    timed_out: int = 0
    rejected: int = 0
    open: int = 0
    peak_open: int = 0

    def add_up(self) -> bool:
        """Every accepted connection is accounted for, once nothing is open."""
        return self.accepted == self.completed + self.cancelled + self.timed_out + self.open


class Server:
    """A TCP server holding at most ``max_connections`` connections, with graceful shutdown."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        mode: Mode = "toy",
        max_connections: int = 100,
        policy: Policy = "reject",
        delay: float = 1.0,
        drain: float = 5.0,
        idle_timeout: float = 10.0,
        max_line: int = 1024,
        hello_window: float = 0.05,
    ) -> None:
        if mode not in ("toy", "echo"):
            raise ValueError(f"mode must be toy or echo, got {mode!r}")
        if policy not in ("reject", "queue"):
            raise ValueError(f"policy must be reject or queue, got {policy!r}")
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise TypeError(f"max_connections must be an int >= 1, got {max_connections!r}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        for name, value in (("delay", delay), ("drain", drain), ("idle_timeout", idle_timeout)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if isinstance(max_line, bool) or not isinstance(max_line, int) or max_line < 8:
            raise ValueError(f"max_line must be an int >= 8, got {max_line!r}")
        self.host, self.port, self.mode, self.policy = host, port, mode, policy
        self.max_connections = max_connections
        self.delay, self.drain, self.idle_timeout = delay, drain, idle_timeout
        self.max_line, self.hello_window = max_line, hello_window
        self.counts = Counts()
        self._number = 0
        self._stopping = False
        # Made by serve(), in the event loop that runs it.
        self._stop_accepting: anyio.CancelScope | None = None
        self._idle: anyio.Event | None = None  # set whenever no connection is open
        self._room: anyio.Semaphore | None = None  # the queue policy waits on it

    def shutdown(self) -> None:
        """Stop accepting now; connections in flight get ``drain`` seconds to finish."""
        self._stopping = True
        if self._stop_accepting is not None:
            self._stop_accepting.cancel()

    async def serve(
        self, *, task_status: TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED
    ) -> Counts:
        """Serve until :meth:`shutdown` (or cancellation); return the counts.

        ``await task_group.start(server.serve)`` returns the address once it listens.
        """
        self._stop_accepting = anyio.CancelScope()
        if self._stopping:
            self._stop_accepting.cancel()
        self._idle = anyio.Event()
        self._idle.set()
        self._room = anyio.Semaphore(self.max_connections)
        room, stop_accepting = self._room, self._stop_accepting
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        async with listener, anyio.create_task_group() as handlers:
            socket = cast(SocketListener, listener.listeners[0])
            address = cast(tuple[str, int], socket.extra(SocketAttribute.local_address))
            task_status.started((address[0], address[1]))
            # Stop accepting by cancelling this scope: accept() returns at once, with no dummy
            # connection and no accept timeout (article 001).
            with stop_accepting:
                while True:
                    if self.policy == "queue":
                        # Full: do not accept. The kernel's backlog holds the next clients.
                        await room.acquire()
                    stream = await socket.accept()
                    if self.policy == "reject" and self.counts.open >= self.max_connections:
                        handlers.start_soon(self._reject, stream)
                        continue
                    self._opened()
                    handlers.start_soon(self._handle, stream)
            # Drain: let the requests in flight finish until the deadline, then cancel the rest.
            with anyio.move_on_after(self.drain):
                if self._idle is not None:  # the latest one: _opened() replaces a set event
                    await self._idle.wait()
            handlers.cancel_scope.cancel()
        return self.counts

    def _opened(self) -> None:
        self.counts.accepted += 1
        self.counts.open += 1
        self.counts.peak_open = max(self.counts.peak_open, self.counts.open)
        if self._idle is None or self._idle.is_set():
            self._idle = anyio.Event()

    def _closed(self) -> None:
        self.counts.open -= 1
        if self.policy == "queue" and self._room is not None:
            self._room.release()
        if not self.counts.open and self._idle is not None:
            self._idle.set()

    async def _reject(self, stream: SocketStream) -> None:
        self.counts.rejected += 1
        async with stream:
            with anyio.move_on_after(1):
                try:
                    await stream.send(BUSY)
                    # Half-close, then read what the client sent until it closes: closing a
                    # socket with unread data makes the kernel send a reset, and the client
                    # could lose the busy line.
                    await stream.send_eof()
                    while await stream.receive():
                        pass
                except (anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                    pass

    async def _handle(self, stream: SocketStream) -> None:
        self._number += 1
        number = self._number
        try:
            async with stream:
                if self.mode == "toy":
                    await self._toy(stream, number)
                else:
                    await self._echo(stream)
            self.counts.completed += 1
        except TimeoutError:
            self.counts.timed_out += 1
        except anyio.get_cancelled_exc_class():
            self.counts.cancelled += 1
            raise
        except (anyio.BrokenResourceError, anyio.EndOfStream, OSError):
            self.counts.completed += 1  # the client went away: nothing more to do for it
        finally:
            self._closed()

    async def _toy(self, stream: SocketStream, number: int) -> None:
        delay = self.delay
        reader = BufferedByteReceiveStream(stream)
        # A client that wants its own delay says so at once; one that sends nothing (nc, the
        # article's client) gets the default. The window is short and is not an idle timeout:
        # a toy client that only listens is not idle.
        with anyio.move_on_after(self.hello_window):
            line = await reader.receive_until(b"\n", self.max_line)
            delay = _parse_delay(line, self.delay)
        await stream.send(f"start {number}\n".encode())
        await anyio.sleep(delay)
        await stream.send(f"end {number}\n".encode())

    async def _echo(self, stream: SocketStream) -> None:
        reader = BufferedByteReceiveStream(stream)
        while True:
            # Every wait for the client has a deadline: a silent client cannot hold a slot.
            with anyio.fail_after(self.idle_timeout):
                try:
                    line = await reader.receive_until(b"\n", self.max_line)
                except anyio.IncompleteRead:
                    return
                except anyio.DelimiterNotFound:
                    line = b"x" * (self.max_line + 1)
            if len(line) > self.max_line:
                # receive_until() returns a longer line when it arrives in one read: check here.
                await stream.send(b"line too long\n")
                return
            await stream.send(line + b"\n")


def _parse_delay(line: bytes, default: float) -> float:
    word, _, value = line.decode("ascii", "replace").strip().partition(" ")
    if word != "delay":
        return default
    try:
        delay = float(value)
    except ValueError:
        return default
    return delay if math.isfinite(delay) and 0 <= delay <= 3600 else default
