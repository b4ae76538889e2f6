"""A probe the patterns never see: it wraps ``work`` and watches every call go in and out.

The idea is aiometer's ``Spy``: count calls in flight on entry and exit. The probe also notes
each call's start and end (on an injected clock, so tests can drive time) and gives it a
*lane*, the lowest one free when it starts, so a timeline can draw one row per lane: a bounded
pattern never uses more than ``limit`` lanes.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic

from patterns.core import R, T, Work


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One observed call: which item, on which lane, from when to when, and how it ended."""

    item: T
    lane: int
    start: float
    end: float
    ok: bool


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
