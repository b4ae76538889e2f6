"""Footgun: the loop that polls instead of sleeping (article 004's first async version).

The article's first async ``read`` tries a non-blocking socket, and when the answer is
``WouldBlock`` it wakes its own task at once and returns ``Pending``: correct, and a busy loop
that burns a whole core for as long as it waits. In Python the same loop tries ``sock.recv``,
catches ``BlockingIOError`` and yields with ``await anyio.sleep(0)``: the task is ready again at
once, so the event loop never has nothing to do and never sleeps. The fix is the article's next
step: wait for readiness. ``await anyio.wait_readable(sock)`` registers the socket with the
event loop, which sleeps in poll(2) (epoll, kqueue) until input arrives, or a timer is due;
anyio's socket streams (``await stream.receive()``) wait the same way. Both versions here wait
the same wall-clock time for the same input; the CPU time each spends meanwhile is the
difference. On a loaded machine the busy loop gets less of a core, and spends the rest of its
wait runnable, in the kernel's run queue: that time is measured too (on Linux), and counts as
busy, for the loop never slept.
"""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from patterns.footguns.exhibit import Exhibit, Instrument, Spans, Verdict

#: The peer sends its input after this long: the wait both versions measure.
WAIT_S = 0.25
#: A wait on the CPU (or runnable, queued for one) for more than this share of its wall-clock
#: time burned a core: the busy loop takes all it is given, all of a core on a quiet machine;
#: awaiting readiness takes well under 1%.
BUSY = 0.2
#: The CPU row of the picture: a span per this much time at most.
SAMPLE_S = 0.005

#: What a version does when the input is not there yet, before it tries ``recv`` again.
Waiter = Callable[[socket.socket], Awaitable[None]]


async def polling(sock: socket.socket) -> None:
    """The footgun: yield, and try again. The task is ready again at once, so the event loop
    never sleeps."""
    await anyio.sleep(0)  # noqa: ASYNC115 - the footgun on show


async def awaiting_readiness(sock: socket.socket) -> None:
    """The fix: sleep until the socket is readable. The event loop sleeps in poll(2) (epoll,
    kqueue) until the input arrives."""
    await anyio.wait_readable(sock)


async def receive(sock: socket.socket, wait: Waiter, woke: Callable[[], None]) -> bytes:
    """What arrives on the non-blocking ``sock``, trying ``recv`` and, while nothing is there,
    awaiting ``wait`` (``woke()`` is told of each try)."""
    while True:
        woke()
        try:
            return sock.recv(1024)
        except BlockingIOError:
            await wait(sock)


@dataclass(frozen=True)
class Waited:
    """One wait for input: its wall-clock and CPU seconds, the seconds it was runnable but
    queued for a CPU (0 where unknown), the tries of ``recv``, and samples of (seconds from the
    start, CPU seconds) taken as it tried, for the picture."""

    wall: float
    cpu: float
    queued: float
    tries: int
    samples: tuple[tuple[float, float], ...]

    @property
    def share(self) -> float:
        """The share of the wait spent on the CPU."""
        return self.cpu / self.wall

    @property
    def awake(self) -> float:
        """The share of the wait it did not sleep: on the CPU, or queued for one."""
        return (self.cpu + self.queued) / self.wall


async def measure(wait: Waiter, wait_s: float) -> Waited:
    """Wait with ``wait`` for input that a peer sends after ``wait_s`` seconds."""
    probe = Instrument()
    samples: list[tuple[float, float]] = []
    tries = 0

    def woke() -> None:
        nonlocal tries
        tries += 1
        now = probe.clock()
        if now - samples[-1][0] >= SAMPLE_S:
            samples.append((now, time.process_time()))

    async def send_later(peer: socket.socket) -> None:
        await anyio.sleep(wait_s)
        peer.send(b"input\n")

    here, peer = socket.socketpair()
    with here, peer:
        here.setblocking(False)
        async with anyio.create_task_group() as tg:
            tg.start_soon(send_later, peer)
            queued = _queued()
            samples.append((probe.clock(), time.process_time()))
            await receive(here, wait, woke)
            samples.append((probe.clock(), time.process_time()))
            queued = _queued() - queued
    (start, cpu), (end, cpu_end) = samples[0], samples[-1]
    return Waited(end - start, cpu_end - cpu, queued, tries, tuple(samples))


def _queued() -> float:
    """Seconds this thread has spent runnable but waiting for a CPU, in the kernel's run queue
    (Linux's schedstat); 0 where it is not known."""
    try:
        with open("/proc/thread-self/schedstat") as schedstat:
            return int(schedstat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _verdict(waited: Waited) -> Verdict:
    busy = waited.awake > BUSY
    # Queued for a CPU is news only when it is a part of the wait (a busy machine).
    queued = waited.queued * 1000
    more = (
        f", and {queued:.0f} ms more queued for one" if queued > 0.05 * waited.wall * 1000 else ""
    )
    observed = (
        f"waited {waited.wall * 1000:.0f} ms for input, {waited.cpu * 1000:.1f} ms of it on the "
        f"CPU ({waited.share:.0%}){more}: "
        + ("it never slept" if busy else "it slept until the input came")
        + f", {waited.tries:,} tries of recv()"
    )
    return Verdict(not busy, observed, _spans(waited, busy))


def _spans(waited: Waited, busy: bool) -> Spans:
    """The wait, and below it when the process was on the CPU: between two samples, a span as
    long as the CPU time spent, ending at the later one (red when the wait was busy)."""
    samples = waited.samples
    label = "on the CPU (busy: blocked a core)" if busy else "on the CPU"
    on_cpu = [
        (label, t1 - min(c1 - c0, t1 - t0), t1)
        for (t0, c0), (t1, c1) in itertools.pairwise(samples)
        if c1 > c0
    ]
    return (("waiting for input", samples[0][0], samples[-1][0]), *on_cpu)


async def broken() -> Verdict:
    """``recv`` on a non-blocking socket, retried after ``await anyio.sleep(0)``."""
    return _verdict(await measure(polling, WAIT_S))


async def fixed() -> Verdict:
    """``await anyio.wait_readable(sock)`` before each ``recv``: the loop sleeps meanwhile."""
    return _verdict(await measure(awaiting_readiness, WAIT_S))


EXHIBIT = Exhibit(
    name="busy-poll",
    title="The loop that polls instead of sleeping",
    article="004: async I/O from scratch, threads vs an event loop",
    why=(
        "sleep(0) yields, but the task is ready again at once: the event loop always has work, "
        "never sleeps, and tries recv() again and again, on a whole core, until the input comes "
        "(the article's first async read, which wakes its own task before returning Pending). "
        "Await readiness instead: anyio.wait_readable(sock), or anyio's socket streams, which "
        "wait the same way. The event loop then sleeps in poll(2) (epoll, kqueue), as the "
        "article's next step does: the kernel wakes it when input arrives, and the wait costs "
        "no CPU."
    ),
    broken=broken,
    fixed=fixed,
)
