"""The toy and echo protocols: what the bounded server serves when the lab calls over TCP.

toy (source article 004): on connect the server may read one line ``delay SECONDS`` (sent at
once by a client that wants its own delay, at most ``max_delay``; a client that sends nothing,
or only closes its side, gets the default after ``hello_window`` seconds; any other line is
answered ``error: ...`` and closed), writes ``start N``, waits the delay, writes ``end N`` and
closes. :func:`patterns.lab.workload.over_tcp` is its client: each call of the workload asks for
its item's latency. echo: every line is sent back until the client closes, is idle for
``idle_timeout`` seconds (or does not read what it is sent for as long), or sends a line longer
than ``max_line`` bytes. Every wait for the client has a deadline; the accept loop, the cap on
connections and the shutdown are the recipe's, :class:`patterns.server.Server`.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any, Literal, NoReturn

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from patterns.contract import check, check_choice
from patterns.server import Server

Mode = Literal["toy", "echo"]


class BadRequest(Exception):
    """A client sent something the protocol does not allow; it has been told so."""


def toy_server(
    *,
    mode: Mode = "toy",
    delay: float = 1.0,
    max_delay: float = 10.0,
    max_line: int = 1024,
    idle_timeout: float = 10.0,
    hello_window: float = 0.05,
    **options: Any,
) -> Server:
    """A :class:`~patterns.server.Server` speaking ``mode``; ``options`` are the Server's own
    (host, port, max_connections, policy, drain)."""
    protocol = Toy(
        mode=mode,
        delay=delay,
        max_delay=max_delay,
        max_line=max_line,
        idle_timeout=idle_timeout,
        hello_window=hello_window,
    )
    return Server(protocol, **options)


class Toy:
    """The connection handler: one connection in the toy protocol, or in echo."""

    def __init__(
        self,
        *,
        mode: Mode,
        delay: float,
        max_delay: float,
        max_line: int,
        idle_timeout: float,
        hello_window: float,
    ) -> None:
        check_choice("mode", mode, ("toy", "echo"))
        for name, value in (
            ("delay", delay),
            ("max_delay", max_delay),
            ("idle_timeout", idle_timeout),
            ("hello_window", hello_window),
        ):
            check(name, value, 0, whole=False)
        check("max_line", max_line, 8)  # room for "error: " and a word
        self.mode, self.delay, self.max_delay = mode, delay, max_delay
        self.max_line, self.idle_timeout, self.hello_window = max_line, idle_timeout, hello_window
        self._number = 0

    async def __call__(self, stream: SocketStream) -> None:
        self._number += 1
        if self.mode == "toy":
            await self._toy(stream, self._number)
        else:
            await self._echo(stream)

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
