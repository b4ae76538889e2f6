"""A probe the patterns never see: it wraps ``work`` and watches every call go in and out.

The idea is aiometer's ``Spy``: count calls in flight on entry and exit. The probe also notes
each call's start and end (on an injected clock, so tests can drive time) and gives it a
*lane*, the lowest one free when it starts, so a timeline can draw one row per lane: a bounded
pattern never uses more than ``limit`` lanes. Given a limit that moves (``patterns.adaptive``),
it notes the limit's value each time it changes (:meth:`Probe.watch`).
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from patterns.lab.core import R, T, Work

L = TypeVar("L")


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One observed call: which item, on which lane, from when to when, and how it ended."""

    item: T
    lane: int
    start: float
    end: float
    ok: bool


@runtime_checkable
class Moving(Protocol):
    """A limit that moves and says so: ``patterns.adaptive``'s ``AIMD`` and ``Gradient``."""

    @property
    def limit(self) -> int: ...

    on_change: Callable[[int], None] | None


class Probe(Generic[T]):
    """Counts calls in flight and records each one; wrap ``work`` with :meth:`wrap`."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter, *, record: bool = True):
        self.clock = clock
        self.record = record
        self.in_flight = 0
        self.peak = 0
        self.started = 0
        self.finished = 0
        #: Sum of every finished call's duration: divided by the makespan, the mean concurrency.
        self.busy = 0.0
        self.calls: list[Call[T]] = []
        #: The watched limit's value from each change on: ``(clock time, limit)``.
        self.limits: list[tuple[float, int]] = []
        self._free_lanes: list[int] = []
        self._lanes = 0

    def wrap(self, work: Work[T, R]) -> Callable[[T], Coroutine[Any, Any, R]]:
        """``work`` as before, counted and recorded."""

        async def probed(item: T) -> R:
            lane = self._enter()
            start = self.clock()
            ok = False
            try:
                result = await work(item)
                ok = True
                return result
            finally:
                self._exit(item, lane, start, ok)

        return probed

    def watch(self, limit: L) -> L:
        """``limit``, its value noted now and each time it changes (through its ``on_change``,
        which this takes), if it says when it does; returned, to gate the work with."""
        if isinstance(limit, Moving):
            self.limits.append((self.clock(), limit.limit))

            def changed(value: int) -> None:
                self.limits.append((self.clock(), value))

            limit.on_change = changed
        return limit

    def _enter(self) -> int:
        self.in_flight += 1
        self.started += 1
        self.peak = max(self.peak, self.in_flight)
        if self._free_lanes:
            return heapq.heappop(self._free_lanes)
        self._lanes += 1
        return self._lanes - 1

    def _exit(self, item: T, lane: int, start: float, ok: bool) -> None:
        end = self.clock()
        self.in_flight -= 1
        self.finished += 1
        self.busy += end - start
        heapq.heappush(self._free_lanes, lane)
        if self.record:
            self.calls.append(Call(item, lane, start, end, ok))


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """CPU seconds (user + system) so far: this process, each live child, the reaped ones."""

    own: float
    children: dict[int, float]
    reaped: float


def cpu_times() -> CpuTimes:
    """A snapshot for :func:`cpu_used`.

    ``os.times()`` counts this process's threads, and its children only once they have
    exited and been waited for; a worker process kept alive between calls (anyio's process
    pool) is counted from ``/proc`` instead, on Linux. Elsewhere, live children count once
    they exit.
    """
    times = os.times()
    return CpuTimes(
        times.user + times.system, _live_children(), times.children_user + times.children_system
    )


def cpu_used(before: CpuTimes, after: CpuTimes) -> float:
    """CPU seconds this process and its children used between two snapshots."""
    live = sum(cpu - before.children.get(pid, 0.0) for pid, cpu in after.children.items())
    # A child seen alive before and reaped since is in ``reaped`` whole: count only its rest.
    gone = sum(cpu for pid, cpu in before.children.items() if pid not in after.children)
    return after.own - before.own + live + (after.reaped - before.reaped - gone)


def _live_children() -> dict[int, float]:
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    found: dict[int, float] = {}
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children") as children:
                pids = [int(pid) for pid in children.read().split()]
        except OSError:
            continue
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    # Fields after the command name (in parentheses, maybe with spaces):
                    # utime and stime are the 12th and 13th.
                    fields = stat.read().rpartition(")")[2].split()
                found[pid] = (int(fields[11]) + int(fields[12])) / tick
            except (OSError, IndexError, ValueError):
                continue
    return found


def peak_rss_kib() -> int:
    """This process's own peak resident memory, in KiB.

    VmHWM is the process's own high-water mark; ``ru_maxrss`` would include what a parent had,
    since a child inherits it. Off Linux, ``ru_maxrss`` it is (bytes on macOS).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
