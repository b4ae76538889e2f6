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

An optional ``rate`` (calls admitted a second, spaced evenly: a quota) applies on top: a call
that comes before its turn is turned away with the time to its turn as the hint (``reject``),
or waits for it (``queue`` and ``degrade``).

It is deterministic (no randomness of its own: the same calls in the same order are treated
alike), costs nothing without a capacity or a rate, and counts what it felt: calls served and
turned away, the most in service and waiting at once, time spent waiting, and each served
call's time in service.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal, get_args

import anyio
import anyio.lowlevel

from patterns.contract import check, check_choice
from patterns.lab.workload import Item, WorkFailed, do_work

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
    #: Each served call's time in service, in the order they finished (not the wait).
    service_s: list[float] = field(default_factory=list)


class Service:
    """Calls served ``capacity`` at a time (None: no limit, and no cost), and past that,
    ``behaviour``: ``reject``, ``queue`` (at most ``queue_limit`` waiting) or ``degrade``;
    at most ``rate`` calls admitted a second, if given."""

    def __init__(
        self,
        capacity: int | None = None,
        *,
        behaviour: Behaviour = "reject",
        queue_limit: int = 1_000_000,
        retry_after: float = 0.1,
        rate: float | None = None,
    ) -> None:
        if capacity is not None:
            check("capacity", capacity)
        if rate is not None:
            check("rate", rate, 0, whole=False)  # a number: its type named if not
            if rate == 0:
                raise ValueError("rate must be a finite number > 0, got 0")
        self.capacity = capacity
        self.behaviour: Behaviour = check_choice("behaviour", behaviour, BEHAVIOURS)
        self.queue_limit: int = check("queue_limit", queue_limit, 0)
        self.retry_after: float = check("retry_after", retry_after, 0, whole=False)
        self.rate = rate
        self.felt = Felt()
        # The capacity, by hand rather than an anyio.Semaphore: a call stops waiting when a
        # leaving call hands it the slot, not when its task next runs, so that the queue counts
        # only the calls that have no slot (and nothing is made outside the serving loop).
        self._free = 0 if capacity is None else capacity
        self._queue: deque[anyio.Event] = deque()
        self._next_turn: float | None = None  # when the rate admits the next call

    def fresh(self) -> Service:
        """A service like this one, with nothing felt yet: one for each run to measure."""
        return Service(
            self.capacity,
            behaviour=self.behaviour,
            queue_limit=self.queue_limit,
            retry_after=self.retry_after,
            rate=self.rate,
        )

    def describe(self) -> str:
        """``a service that serves 5 at once and turns the rest away``, for titles."""
        if self.capacity is None and self.rate is None:
            return "a service without a limit"
        limits = [] if self.capacity is None else [f"serves {self.capacity:,} at once"]
        if self.rate is not None:
            limits.append(f"admits {self.rate:g} a second")
        past = {
            "reject": "turns the rest away",
            "queue": "queues the rest",
            "degrade": "slows down past it",
        }[self.behaviour]
        if self.capacity is None and self.behaviour == "degrade":
            past = "queues the rest"  # with no capacity, there is nothing to slow down past
        return f"a service that {' and '.join(limits)} and {past}"

    def resize(self, capacity: int) -> None:
        """The capacity changes now (the service scaled, or another client came): calls in
        service over the new capacity finish; none starts until they are under it."""
        if self.capacity is None:
            raise ValueError("resize needs a service with a capacity")
        check("capacity", capacity)
        self._free += capacity - self.capacity
        self.capacity = capacity
        while self._queue and self._free > 0:  # more room: the queue's head goes in
            self._free -= 1
            self.felt.waiting -= 1
            self._queue.popleft().set()

    async def call(self, item: Item) -> str:
        """Serve ``item`` as the service would: ``do_work`` within the capacity; past it, turn
        the call away, queue it, or serve it slower."""
        if self.capacity is None and self.rate is None:
            return await do_work(item)
        # The request on its way: whatever the service decides, the caller has sent the call
        # and waits for the answer, if only for a turn of the loop (a call turned away is
        # still a call the caller had in flight).
        await anyio.lowlevel.checkpoint()
        if self.rate is not None:
            await self._admit(item, self.rate)
        if self.capacity is None:
            return await self._served(item, item.latency)
        if self.behaviour == "degrade":
            return await self._degraded(item, self.capacity)
        felt = self.felt
        if self._free <= 0:  # full: turned away, or into the queue if there is room
            if self.behaviour == "reject" or felt.waiting >= self.queue_limit:
                felt.turned_away += 1
                raise Overloaded(item, self.retry_after)
            await self._wait_for_a_slot()
        else:
            self._free -= 1
        try:
            return await self._served(item, item.latency)
        finally:
            self._leave()

    async def _wait_for_a_slot(self) -> None:
        """Queue, first come first served, until a leaving call hands this one its slot."""
        felt = self.felt
        handed = anyio.Event()
        self._queue.append(handed)
        felt.waiting += 1
        felt.peak_waiting = max(felt.peak_waiting, felt.waiting)
        queued = anyio.current_time()
        try:
            await handed.wait()
        except BaseException:  # cancelled: give back the place, or the slot if it came
            if handed in self._queue:
                self._queue.remove(handed)
                felt.waiting -= 1
            else:
                self._leave()
            raise
        finally:
            felt.waited_s += anyio.current_time() - queued

    def _leave(self) -> None:
        """A call leaves service: its slot goes to the first in the queue (who stops waiting
        now, not when its task next runs), or back to the free ones; or, over a capacity
        that has shrunk, away."""
        if self._queue and self._free >= 0:
            self.felt.waiting -= 1
            self._queue.popleft().set()
        else:
            self._free += 1

    async def _admit(self, item: Item, rate: float) -> None:
        """The rate: each call's turn comes ``1 / rate`` after the one before it."""
        now = anyio.current_time()
        turn = now if self._next_turn is None else max(now, self._next_turn)
        if turn > now and self.behaviour == "reject":
            self.felt.turned_away += 1
            raise Overloaded(item, turn - now)
        self._next_turn = turn + 1 / rate
        if turn > now:
            felt = self.felt
            felt.waiting += 1
            felt.peak_waiting = max(felt.peak_waiting, felt.waiting)
            try:
                await anyio.sleep(turn - now)
            finally:
                felt.waiting -= 1
                felt.waited_s += anyio.current_time() - now

    async def _degraded(self, item: Item, capacity: int) -> str:
        crowd = self.felt.in_service + 1  # this call included
        return await self._served(item, item.latency * max(1.0, crowd / capacity) ** 2)

    async def _served(self, item: Item, seconds: float) -> str:
        """``do_work``, for ``seconds`` (the item's latency, or longer in a crowd)."""
        felt = self.felt
        felt.in_service += 1
        felt.peak_in_service = max(felt.peak_in_service, felt.in_service)
        started = anyio.current_time()
        try:
            await anyio.sleep(seconds)
        finally:
            felt.in_service -= 1
        felt.served += 1
        felt.service_s.append(anyio.current_time() - started)
        if item.fails:
            raise WorkFailed(item)
        return f"{item}_processed"
