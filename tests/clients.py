"""Clients of the toy server for the tests, polite and hostile, and a real `serve` process.

Every client here talks to loopback only, and every one of its waits is bounded.
"""

from __future__ import annotations

import re
import signal
import socket
import struct
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import pytest
from anyio.abc import Process, SocketAttribute, SocketStream


async def read_all(stream: SocketStream) -> bytes:
    """Everything the server sends until it closes (or resets) the connection."""
    data = b""
    try:
        while True:
            data += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return data


async def ask(port: int, delay: float | None = None, send: bytes = b"") -> bytes:
    """One client: optionally ask for a delay, send some bytes, read until the server closes."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        try:
            if delay is not None:
                await stream.send(f"delay {delay}\n".encode())
            if send:
                await stream.send(send)
        except anyio.BrokenResourceError:
            # The server answered and closed before we finished sending (a refused line of a
            # megabyte): what it said is still there to read, unless a reset swallowed it.
            pass
        return await read_all(stream)


def full_answer(data: bytes) -> bool:
    """``start N`` then ``end N``: the toy protocol's whole answer."""
    lines = data.decode().split()
    return len(lines) == 4 and lines[0] == "start" and lines[2] == "end"


def reset(stream: SocketStream) -> None:
    """Make the coming close send a reset (RST) instead of an orderly FIN: SO_LINGER 0."""
    try:
        raw = stream.extra(SocketAttribute.raw_socket)
    except AttributeError:  # uvloop, once the peer has closed: its transport has no socket left
        return  # the connection is gone already: nothing to reset
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def enough_open_files(needed: int) -> None:
    """Raise the soft open-files limit to ``needed`` if it is lower, or skip saying why.

    Child processes inherit it, so a server started afterwards can hold as many.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        pytest.skip("no resource module to check the open-files limit")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed or soft == resource.RLIM_INFINITY:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the test needs {needed} open files; the hard limit here is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def backend_name(anyio_backend: tuple[str, dict[str, object]]) -> str:
    """The ``--backend`` value that runs the server on the same backend as the test."""
    return "uvloop" if anyio_backend[1] else anyio_backend[0]


_SUMMARY = re.compile(
    rb"accepted (\d+) = completed (\d+) \+ cancelled (\d+) \+ timed out (\d+) \+ failed (\d+); "
    rb"rejected (\d+)"
)


@dataclass
class Served:
    """A running ``python -m patterns serve``: its port, and what it said when it stopped."""

    process: Process
    port: int
    output: bytes = b""
    status: int | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def rss_kib(self) -> int:
        """The server's resident memory now, from /proc."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS line")  # pragma: no cover

    def interrupt(self) -> None:
        """Ctrl+C, as a terminal would send it."""
        self.process.send_signal(signal.SIGINT)

    async def wait(self) -> None:
        """Read the rest of its output and its exit status; parse the closing counts."""
        assert self.process.stdout is not None
        async for chunk in self.process.stdout:
            self.output += chunk
        self.status = await self.process.wait()
        found = _SUMMARY.search(self.output)
        if found:
            names = ("accepted", "completed", "cancelled", "timed_out", "failed", "rejected")
            self.counts = dict(zip(names, map(int, found.groups()), strict=True))


# Starts `python -m patterns ARGS` with its soft open-files limit set first.
_LIMITED = (
    "import resource, runpy, sys; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), "
    "resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
    "sys.argv = ['patterns', *sys.argv[2:]]; "
    "runpy.run_module('patterns', run_name='__main__', alter_sys=True)"
)


@asynccontextmanager
async def serving(*options: str, open_files: int | None = None) -> AsyncIterator[Served]:
    """Start ``python -m patterns serve --port 0 OPTIONS``; yield once it listens.

    ``open_files`` starves it: its soft limit of open files, set before it starts.
    """
    arguments = ["serve", "--port", "0", *options]
    command = [sys.executable, "-m", "patterns", *arguments]
    if open_files is not None:
        command = [sys.executable, "-c", _LIMITED, str(open_files), *arguments]
    process = await anyio.open_process(command)
    try:
        assert process.stdout is not None
        with anyio.fail_after(20):
            first = b""
            while not first.endswith(b"\n"):
                first += await process.stdout.receive(1)
        assert first.startswith(b"listening on 127.0.0.1:"), first
        yield Served(process, int(first.split(b":")[-1]))
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.CancelScope(shield=True):
            await process.aclose()
