"""Bounded TCP server: cap the connections it holds, and shut down without cutting requests off.

What it is
    The toy server of the source article on async I/O from scratch (each connection gets
    ``start N``, a delay, then ``end N``) and an echo mode, on anyio, with the two things an
    accept loop needs and the listener helpers of anyio and trio do not give: a cap on open
    connections (the article on bounding a tokio accept loop with a semaphore) and a graceful
    shutdown (the forum thread on stopping a server blocked in ``accept()``).

When to use it
    Any server of your own whose clients you do not control: the cap keeps a flood from taking
    every socket and every byte of memory; the shutdown lets the requests in flight finish.

Failure mode
    The cap done wrong does nothing: a permit taken around ``start_soon`` is back before the
    handler runs (the ``early-release`` footgun). Shutdown done wrong hangs in ``accept()`` or
    cuts requests off: stop accepting by cancelling the accept loop (not with dummy
    connections or accept timeouts), close the listening socket so that new clients are
    refused at once, give the handlers a deadline, then cancel them. And a server is only as
    strong as its weakest handler: one client that connects and closes at once must end its
    own connection, not the server. Every wait for a client here has a deadline, and a
    handler's failure, whatever the client did, is counted and ends that connection only.

Protocol
    toy: on connect the server may read one line ``delay SECONDS`` (sent at once by a client
    that wants its own delay, at most ``max_delay``; a client that sends nothing, or only
    closes its side, gets the default after ``hello_window`` seconds; any other line is
    answered ``error: ...`` and closed), writes ``start N``, waits the delay, writes
    ``end N`` and closes. echo: every line is sent back until the client closes, is idle for
    ``idle_timeout`` seconds (or does not read what it is sent for as long), or sends a line
    longer than ``max_line`` bytes. Admission, ``policy="reject"``: accept, and when
    ``max_connections`` are open already, write ``busy`` and close (the article's choice); at
    most ``max_connections`` busy answers are under way at once, and past that a connection
    is closed at once with no answer. ``policy="queue"``: do not accept while full; the
    kernel's listen backlog holds the rest.
"""

from __future__ import annotations

import errno
import os
import re
import socket
from dataclasses import dataclass
from typing import Literal, NoReturn, cast

import anyio
from anyio.abc import SocketAttribute, SocketListener, SocketStream, TaskGroup, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream

from .contract import check, check_choice

Mode = Literal["toy", "echo"]
Policy = Literal["reject", "queue"]
BUSY = b"busy\n"
# accept() fails this way when the process or the machine is out of sockets or memory: every
# accept would fail alike until some connection closes, so wait a little instead of spinning.
# (trio's own serve_listeners makes the same choice.)
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
# accept() fails this way when one client was gone before it was taken: go on to the next.
_CLIENT_GONE = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM}


@dataclass
class Counts:
    """What the server did.

    Every accepted connection ends one way: ``accepted = completed + cancelled + timed_out +
    failed`` once none is open. ``failed`` counts connections that ended in an error,
    whatever its cause: a client that reset, closed mid-request, or sent a bad request.
    ``rejected`` counts connections turned away because the server was full, apart.
    """

    accepted: int = 0
    completed: int = 0
    cancelled: int = 0
    timed_out: int = 0
    failed: int = 0
    rejected: int = 0
    open: int = 0
    peak_open: int = 0

    def add_up(self) -> bool:
        """Every accepted connection is accounted for, once nothing is open."""
        ended = self.completed + self.cancelled + self.timed_out + self.failed
        return self.accepted == ended + self.open


class BadRequest(Exception):
    """A client sent something the protocol does not allow; it has been told so."""


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
        max_delay: float = 10.0,
        drain: float = 5.0,
        idle_timeout: float = 10.0,
        max_line: int = 1024,
        hello_window: float = 0.05,
    ) -> None:
        check_choice("mode", mode, ("toy", "echo"))
        check_choice("policy", policy, ("reject", "queue"))
        check("max_connections", max_connections)
        for name, value in (
            ("delay", delay),
            ("max_delay", max_delay),
            ("drain", drain),
            ("idle_timeout", idle_timeout),
            ("hello_window", hello_window),
        ):
            check(name, value, 0, whole=False)
        check("max_line", max_line, 8)  # room for "error: " and a word
        self.host, self.port, self.mode, self.policy = host, port, mode, policy
        self.max_connections = max_connections
        self.delay, self.max_delay = delay, max_delay
        self.drain, self.idle_timeout = drain, idle_timeout
        self.max_line, self.hello_window = max_line, hello_window
        self.counts = Counts()
        self._number = 0
        self._rejecting = 0
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

        ``await task_group.start(server.serve)`` returns the address once it listens (the
        first one, when the host resolves to several: every one of them is served). An address
        that cannot be bound raises OSError before anything is served.
        """
        self._stop_accepting = anyio.CancelScope()
        if self._stopping:
            self._stop_accepting.cancel()
        self._idle = anyio.Event()
        self._idle.set()
        self._room = anyio.Semaphore(self.max_connections)
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        # A host such as "localhost" may resolve to an IPv4 and an IPv6 address: one listening
        # socket each, and each gets its own accept loop.
        sockets = [cast(SocketListener, one) for one in listener.listeners]
        async with anyio.create_task_group() as handlers:
            try:
                address = sockets[0].extra(SocketAttribute.local_address)
                task_status.started(cast(tuple[str, int], address[:2]))
                # Stop accepting by cancelling this scope: accept() returns at once, with no
                # dummy connection and no accept timeout.
                with self._stop_accepting:
                    async with anyio.create_task_group() as acceptors:
                        for one in sockets:
                            acceptors.start_soon(self._accept_loop, one, handlers)
            finally:
                # Stopping means closing the door too: a client that connects from now on is
                # refused at once (ECONNREFUSED), instead of waiting in the kernel's backlog
                # for a reset when the drain ends. Shielded: it must happen even when serve()
                # itself is being cancelled.
                with anyio.CancelScope(shield=True):
                    await listener.aclose()
            # Drain: let the requests in flight finish until the deadline, then cancel the rest.
            with anyio.move_on_after(self.drain):
                if self._idle is not None:  # the latest one: _opened() replaces a set event
                    await self._idle.wait()
            handlers.cancel_scope.cancel()
        return self.counts

    async def _accept_loop(self, listener: SocketListener, handlers: TaskGroup) -> None:
        room = self._room
        assert room is not None
        while True:
            if self.policy == "queue":
                # Full: do not accept; the kernel's backlog holds the next clients. Wait for a
                # client at the door before taking room: with several listeners, a permit
                # held in an accept() on a quiet one would keep the others' clients waiting.
                await anyio.wait_readable(listener.extra(SocketAttribute.raw_socket))
                await room.acquire()
            try:
                stream = await listener.accept()
            except (OSError, anyio.BrokenResourceError) as exc:
                if self.policy == "queue":
                    room.release()
                await _after_accept_error(exc)
                continue
            if self.policy == "reject" and self.counts.open >= self.max_connections:
                self.counts.rejected += 1
                if self._rejecting >= self.max_connections:
                    # Busy answers are bounded too: past the cap, close at once, unanswered.
                    # A flood must not grow a second, unbounded crowd of "busy" connections.
                    await stream.aclose()
                    continue
                self._rejecting += 1
                handlers.start_soon(self._reject, stream)
                continue
            self._opened()
            handlers.start_soon(self._handle, stream)

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
        try:
            async with stream:
                with anyio.move_on_after(1):
                    await stream.send(BUSY)
                    # Half-close, then read what the client sent until it closes: closing a
                    # socket with unread data makes the kernel send a reset, and the client
                    # could lose the busy line.
                    await stream.send_eof()
                    while await stream.receive():
                        pass
        except Exception:
            pass  # the client is turned away either way: nothing more to do for it
        finally:
            self._rejecting -= 1

    async def _handle(self, stream: SocketStream) -> None:
        self._number += 1
        number = self._number
        _read_on_demand(stream)
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
        except Exception:
            # Whatever the client did (reset, closed mid-request, sent garbage), or whatever
            # went wrong here, ends this connection only: counted, and the server goes on.
            self.counts.failed += 1
        finally:
            self._closed()

    async def _send(self, stream: SocketStream, data: bytes) -> None:
        # A client that never reads fills the socket's buffers, and then send() waits: give it
        # the same deadline as a silent client, or it holds its slot for ever.
        with anyio.fail_after(self.idle_timeout):
            await stream.send(data)

    async def _toy(self, stream: SocketStream, number: int) -> None:
        reader = BufferedByteReceiveStream(stream)
        # A client that wants its own delay says so at once; one that sends nothing (nc, the
        # article's client) gets the default. The window is short and is not an idle timeout:
        # a toy client that only listens is not idle.
        line = b""
        with anyio.move_on_after(self.hello_window):
            try:
                line = await reader.receive_until(b"\n", self.max_line)
            except anyio.IncompleteRead:
                pass  # the client closed its side without asking: the default delay
            except anyio.DelimiterNotFound:
                line = b"x" * (self.max_line + 1)
        if len(line) > self.max_line:
            await self._refuse(stream, "line too long")
        try:
            delay = self._requested_delay(line)
        except BadRequest as exc:
            await self._refuse(stream, str(exc))
        await self._send(stream, f"start {number}\n".encode())
        # Keep reading while the delay runs: a client that resets is noticed now and frees its
        # slot at once, and what it sends meanwhile is dropped instead of piling up.
        with anyio.move_on_after(delay):
            await _until_reset(reader, stream)
        await self._send(stream, f"end {number}\n".encode())

    def _requested_delay(self, line: bytes) -> float:
        request = line.strip()
        if not request:
            return self.delay
        word, _, value = request.partition(b" ")
        if word != b"delay":
            raise BadRequest("expected 'delay SECONDS'")
        try:
            delay = float(value)
        except ValueError:
            raise BadRequest("delay must be a number of seconds") from None
        # NaN fails both comparisons; infinity fails the second.
        if not 0 <= delay <= self.max_delay:
            raise BadRequest(f"delay must be between 0 and {self.max_delay:g} s")
        return delay

    async def _refuse(self, stream: SocketStream, reason: str) -> NoReturn:
        await self._send(stream, f"error: {reason}\n".encode())
        raise BadRequest(reason)

    async def _echo(self, stream: SocketStream) -> None:
        too_long = re.compile(b"[^\n]{%d}" % (self.max_line + 1))
        pending = b""  # the start of a line whose end has not come yet
        began = anyio.current_time()  # when that line began
        while True:
            # Every wait for the client has a deadline, and a line must be whole within it:
            # a silent client, or one that drips a line a byte at a time, cannot hold a slot.
            with anyio.fail_after(began + self.idle_timeout - anyio.current_time()):
                try:
                    chunk = await stream.receive()
                except anyio.EndOfStream:
                    return
            data = pending + chunk
            # The first run of more than max_line bytes without a newline, if any: found in
            # place, because splitting a read of 64 KiB of empty lines into a list of lines
            # costs half a MiB of pointers per read (and RSS the allocator keeps).
            long_line = too_long.search(data)
            end = data.rfind(b"\n", 0, long_line.start() if long_line else len(data)) + 1
            whole, pending = data[:end], data[end:]
            if whole:
                # The whole lines of a read go back in one send: a client that sends a
                # million empty lines costs the server a send per read, not one per line.
                await self._send(stream, whole)
                began = anyio.current_time()
            if long_line:
                await self._refuse(stream, "line too long")


async def _until_reset(reader: BufferedByteReceiveStream, stream: SocketStream) -> None:
    """Read and drop what the client sends until cancelled; raise if it hangs up on us."""
    try:
        while True:
            await reader.receive()
    except anyio.EndOfStream:
        pass
    # The client closed its side. One that only half-closed still reads; one that hung up (a
    # port scanner, a health check) answers our first write with a reset. The event loop reads
    # no more after the end of the stream, so look at the socket's pending error instead,
    # every 50 ms: a client that hung up frees its slot at once, not at the end of its delay.
    raw = stream.extra(SocketAttribute.raw_socket)
    while True:
        error = raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise ConnectionResetError(error, os.strerror(error))
        await anyio.sleep(0.05)


def _read_on_demand(stream: SocketStream) -> None:
    """Read from the client only when a handler asks to: a flood waits in the kernel.

    On asyncio (and uvloop), anyio's socket stream is a transport that starts reading at
    accept and pauses only after a receive that had to wait for data. A client that sends
    without pause and never reads (so our answers to it block) keeps every receive finding
    data already queued: reading is never paused, and the queue grows by whatever the client
    sends, 140 MiB in 1.5 s here from five such clients. Pausing once, at the start, puts
    anyio's own pause-after-wait logic in charge. Trio reads only on demand: nothing to do.
    """
    transport = getattr(stream, "_transport", None)  # anyio's asyncio stream only
    if transport is not None and hasattr(transport, "pause_reading"):
        transport.pause_reading()


async def _after_accept_error(exc: Exception) -> None:
    # anyio raises the OSError itself on asyncio, a BrokenResourceError caused by it on trio.
    cause = exc if isinstance(exc, OSError) else exc.__cause__
    code = getattr(cause, "errno", None)
    if code in _OUT_OF_RESOURCES:
        await anyio.sleep(0.1)
    elif code not in _CLIENT_GONE:
        raise exc
