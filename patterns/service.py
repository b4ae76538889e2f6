"""The other side of the calls: a simulated service with a capacity, and what it felt.

The workload's ``do_work`` sleeps its latency however many calls are in flight, so nothing in
it can be overwhelmed. A real service has a capacity (a connection limit, a worker pool) and,
past it, does one of three things. :class:`Service` simulates each, on any anyio backend:

- ``reject``: a call over capacity is turned away at once with :class:`Overloaded`, which
  carries a retry-after hint, as an HTTP 429 or 503 with ``Retry-After`` would.
- ``queue``: it waits in a bounded first-come queue (``queue_limit`` places; past them it is
  turned away), so the caller's latency includes the wait.
- ``degrade``: every call is served at once, but a call that enters with ``n`` in service,
  ``n`` over ``capacity``, takes ``(n / capacity) ** 2`` times its latency: throughput
  ``n / latency`` up to the capacity, then ``capacity ** 2 / (n * latency)``, falling past the
  knee as in the universal scalability law's retrograde region (contention and coherence
  costs that grow with the crowd).

It is deterministic (no randomness of its own: the same calls in the same order are treated
alike), costs nothing without a capacity, and counts what it felt: calls served and turned
away, the most in service and waiting at once, and time spent waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import anyio

from patterns.contract import check, check_choice
from patterns.workload import Item, WorkFailed, do_work

#: What the service does with a call over its capacity.
Behaviour = Literal["reject", "queue", "degrade"]
BEHAVIOURS: tuple[Behaviour, ...] = get_args(Behaviour)


class Overloaded(Exception):
    """The service turned the call away: it was at capacity. ``retry_after`` is its hint, in
    seconds, of when to try again (HTTP's ``Retry-After``)."""

    def __init__(self, item: Item, retry_after: float) -> None:
        super().__init__(f"{item} turned away: over capacity (retry after {retry_after:g} s)")
        self.item = item
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[type[Overloaded], tuple[Item, float]]:
        return Overloaded, (self.item, self.retry_after)


@dataclass
class Felt:
    """What the service felt: its own counts, for the harness to report beside the caller's."""

    served: int = 0
    turned_away: int = 0
    in_service: int = 0
    peak_in_service: int = 0
    waiting: int = 0
    peak_waiting: int = 0
    waited_s: float = 0.0  # time calls spent in the queue, summed


class Service:
    """Calls served ``capacity`` at a time (None: no limit, and no cost), and past that,
    ``behaviour``: ``reject``, ``queue`` (at most ``queue_limit`` waiting) or ``degrade``."""

    def __init__(
        self,
        capacity: int | None = None,
        *,
        behaviour: Behaviour = "reject",
        queue_limit: int = 1_000_000,
        retry_after: float = 0.1,
    ) -> None:
        if capacity is not None:
            check("capacity", capacity)
        self.capacity = capacity
        self.behaviour: Behaviour = check_choice("behaviour", behaviour, BEHAVIOURS)
        self.queue_limit: int = check("queue_limit", queue_limit, 0)
        self.retry_after: float = check("retry_after", retry_after, 0, whole=False)
        self.felt = Felt()
        # A service is made outside any event loop (a harness builds it before the run), so
        # its semaphore is made at the first call, in the loop that serves it.
        self._slots: anyio.Semaphore | None = None

    async def call(self, item: Item) -> str:
        """Serve ``item`` as the service would: ``do_work`` within the capacity; past it, turn
        the call away, queue it, or serve it slower."""
        if self.capacity is None:
            return await do_work(item)
        if self.behaviour == "degrade":
            return await self._degraded(item, self.capacity)
        felt = self.felt
        if self._slots is None:
            self._slots = anyio.Semaphore(self.capacity, fast_acquire=True)
        if self._slots.value == 0:  # full: turned away, or into the queue if there is room
            if self.behaviour == "reject" or felt.waiting >= self.queue_limit:
                felt.turned_away += 1
                raise Overloaded(item, self.retry_after)
            felt.waiting += 1
            felt.peak_waiting = max(felt.peak_waiting, felt.waiting)
            queued = anyio.current_time()
            try:
                await self._slots.acquire()  # first come, first served
            finally:
                felt.waiting -= 1
                felt.waited_s += anyio.current_time() - queued
        else:
            self._slots.acquire_nowait()
        try:
            return await self._served(item, item.latency)
        finally:
            self._slots.release()

    async def _degraded(self, item: Item, capacity: int) -> str:
        crowd = self.felt.in_service + 1  # this call included
        return await self._served(item, item.latency * max(1.0, crowd / capacity) ** 2)

    async def _served(self, item: Item, seconds: float) -> str:
        """``do_work``, for ``seconds`` (the item's latency, or longer in a crowd)."""
        felt = self.felt
        felt.in_service += 1
        felt.peak_in_service = max(felt.peak_in_service, felt.in_service)
        try:
            await anyio.sleep(seconds)
        finally:
            felt.in_service -= 1
        felt.served += 1
        if item.fails:
            raise WorkFailed(item)
        return f"{item}_processed"
