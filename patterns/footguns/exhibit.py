"""What every footgun exhibit is made of: the :class:`Exhibit` it declares, the
:class:`Instrument` that watches its calls, and the :class:`Verdict` each version returns.

The exhibits import this module; :mod:`patterns.footguns` lists them, and hands these names on.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from patterns.lab.probe import Probe

T = TypeVar("T")
R = TypeVar("R")
Spans = tuple[tuple[str, float, float], ...]
Gauges = tuple[tuple[float, int, float], ...]


@dataclass(frozen=True)
class Verdict:
    """What one version did: whether it behaved, the measured sign, and its timeline."""

    ok: bool
    observed: str
    #: (label, start, end) in seconds from the start, for a picture of the run.
    spans: Spans = field(default=(), repr=False)
    #: (time, items held, MiB they hold), sampled while it ran, where what it holds matters.
    gauges: Gauges = field(default=(), repr=False)


class Instrument(Probe[Any]):
    """Every exhibit's one instrument: the harness's probe, on a clock that starts at zero.

    Wrap the calls with :meth:`wrap` (in flight, peak, each call's span, as the harness counts
    them); wrap the input with :meth:`source` to count the items pulled ahead of the calls that
    finished; :meth:`mark` what is not a call (a consumer left waiting). A call cut short (by
    the exhibit's timeout, when the broken version hangs) is drawn "(stuck)". Sync work handed
    to threads is wrapped with :meth:`wrap_sync`, inside the thread.
    """

    def __init__(self, origin: float | None = None) -> None:
        #: perf_counter() at zero: give it to a second instrument to share the clock.
        self.origin = time.perf_counter() if origin is None else origin
        super().__init__(lambda: time.perf_counter() - self.origin)
        self.pulled = 0
        #: The most items pulled and not finished at once: what a pattern holds in memory.
        self.most_ahead = 0
        self.marks: list[tuple[str, float, float]] = []
        self.gauges: list[tuple[float, int, float]] = []
        self._lock = threading.Lock()

    def wrap_sync(self, fn: Callable[[T], R]) -> Callable[[T], R]:
        """Sync ``fn`` counted and recorded as :meth:`wrap` does, from inside the worker thread
        that runs it: the count is of the threads running calls, not of the calls awaiting one."""

        def probed(item: T) -> R:
            # Several threads count at once, and `+=` on an attribute is not atomic: one at a
            # time. (Not to be mixed with wrap() in one instrument: that counts unlocked.)
            with self._lock:
                lane = self._enter()
            start = self.clock()
            ok = False
            try:
                result = fn(item)
                ok = True
                return result
            finally:
                with self._lock:
                    self._exit(item, lane, start, ok)

        return probed

    def source(self, items: Iterable[T]) -> Iterator[T]:
        for item in items:
            self.pulled += 1
            self.most_ahead = max(self.most_ahead, self.pulled - self.finished)
            yield item

    @asynccontextmanager
    async def sampling(self, every: float = 0.005) -> AsyncIterator[None]:
        """While the block runs, sample the items held (pulled, not finished) and the memory
        they hold: what a timeline cannot show of an unbounded pattern."""
        # tracemalloc, not the process's resident size: what the Python objects allocated
        # since the block began still hold, whatever memory the process had freed before.
        # The instrument's own record of the calls (about 0.16 KiB a call) counts in both.
        tracing = tracemalloc.is_tracing()
        if not tracing:
            tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]

        def sample() -> None:
            held = self.pulled - self.finished
            allocated = tracemalloc.get_traced_memory()[0] - base
            self.gauges.append((self.clock(), held, allocated / 2**20))

        async def sampler() -> None:
            while True:
                sample()
                await anyio.sleep(every)

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sampler)
                yield
                sample()  # the end, however late the sampler's last wake-up was
                tg.cancel_scope.cancel()
        finally:
            if not tracing:
                tracemalloc.stop()

    def mark(self, label: str, start: float, end: float | None = None) -> None:
        self.marks.append((label, start, self.clock() if end is None else end))

    def spans(self, label: Callable[[Any], str] = "call {}".format) -> Spans:
        """Each call as (label, start, end), and the marks, in order of start."""
        calls = [(label(c.item) + ("" if c.ok else " (stuck)"), c.start, c.end) for c in self.calls]
        return tuple(sorted(calls + self.marks, key=lambda span: span[1]))


@dataclass(frozen=True)
class Exhibit:
    """A footgun: what goes wrong, why, and where the lesson comes from."""

    name: str
    title: str
    article: str
    why: str
    broken: Callable[[], Awaitable[Verdict]]
    fixed: Callable[[], Awaitable[Verdict]]
