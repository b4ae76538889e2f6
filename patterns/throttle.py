"""Shared throttler: one limit for a whole application, and nested calls that never deadlock.

Calls flow every call site → one ``Throttle`` (permits, start rate, priority) → the work; a
call lends its permit to the calls it makes.

```python
import anyio

from patterns.throttle import Throttle  # copied: from yourapp.throttle import Throttle

api = Throttle(5, max_per_second=200)  # created once, shared by every call site


async def get_avatar(user_id: int) -> str:
    await anyio.sleep(0.01)  # stands in for a network call
    return f"avatar {user_id}"


async def get_user(user_id: int) -> str:
    # A throttled call making a throttled call: it lends its permit, so no deadlock.
    return f"user {user_id} with " + await api.run(get_avatar, user_id)


async def main() -> None:
    print(await api.map(get_user, range(20)))  # in input order
    print(api.statistics())


anyio.run(main)
```

What it is
    A :class:`Throttle` is created once and shared by every call site, whatever the work:
    ``await throttle.run(fetch, url)`` here, ``await throttle.run(upload, row)`` there, all
    under one limit of calls in flight, and optionally a rate (at most R starts per second)
    and priorities. ``throttle.stream(work, items)`` and ``await throttle.map(work, items)``
    are the bulk forms, and the module's ``stream``/``run`` give it the cookbook's contract.

    ``Throttle(AIMD())`` (``patterns.adaptive``): a limit that adapts sizes the pool, moved by
    every call's outcome (a nested call's too); shrunk, it cancels none and grants none until
    under it. A retry (``patterns.retry``) backs off with its permit back in the pool. The limit
    is the throttle's own (another user is refused): share the throttle, not the limit.

When to use it
    One resource (an API with a quota, a database, a rate-limited service) is reached from
    many places, some of which call each other: a throttled ``get_user`` calls a throttled
    ``get_avatar``. The other recipes bound one batch; this bounds an application.

Failure mode
    Nested use. With a plain semaphore, once the outer calls hold every permit, their inner
    calls wait for a permit that only the outer calls can give back, and they will not until
    the inner calls finish: deadlock (source article 003; ``patterns.footguns.nested_throttle``
    runs it). asyncio's Semaphore deadlocks this way; anyio's and trio's CapacityLimiter raise
    instead when one task borrows twice.

    Here a call lends its permit to the calls it makes, through a context variable that both
    asyncio and trio copy into every task started from the call. A nested call takes its
    parent's lent permit or a fresh one from the pool, whichever is free first, so a fan-out
    still runs in parallel when the pool has room; siblings waiting for the lent permit are
    woken when it comes back, without polling. The permit is lent on the understanding that
    the parent waits for its children (as ``await throttle.run(...)`` does): a parent that
    keeps working while its children run shares its permit with them. When the parent
    returns, its scope closes: no call started later borrows from it, and a child still
    running on the borrowed permit sends it back up to the nearest open scope or the pool.
    So a tree of nested calls of any depth completes, and the permits out of the pool never
    exceed the limit.

    Priorities: a waiting call with a higher number starts first, FIFO among equals, both for a
    permit and for a start slot. The bulk forms take each call's permit and place in the start
    queue in input order, before its task first runs: with a rate limit their calls start in
    input order on every backend. (Without one, calls given permits in the same instant begin
    in the order the event loop runs their tasks: on trio, any order.) A nested call does not
    inherit its parent's priority. There is no aging: under constant load from higher
    priorities, a low priority waits indefinitely.

    Stopping: once a bulk form has stopped (a call failed, the consumer left the block, or a
    cancellation), no call starts, not even one whose task was started, or given a permit a
    cancelled call handed back, just before the stop: each call checks for cancellation
    (``checkpoint_if_cancelled``, which only yields to raise) just before its work begins, and
    gives its permit and its place back if it is cancelled there.

    What lending cannot fix: two throttles taken in opposite orders (one task holds A and
    wants B while another holds B and wants A) deadlock like any two locks; take them in one
    order. "Any depth" holds through task groups; nesting by plain ``await`` stops at Python's
    own recursion limit (about 400 levels here).

Cost (measured)
    190k CPU instructions per item of plumbing (work = one pass through the event loop, limit
    100, asyncio; counted by ``python -m patterns.lab.costs``, as the README's chooser quotes
    it): a task start per item, like the semaphore recipe (170k), plus the permit's scope;
    about 20 µs per item in the full benchmark (docs/benchmarks.md). Nesting costs a
    context-variable copy per call; a nested call that finds its parent's permit free takes it
    without waiting.
    The check for cancellation before each call starts (see Stopping) adds up to about 1 µs
    per item on asyncio (17.4 and 17.6 µs per item without it, 17.8 and 18.7 with it, in
    alternating runs of ``pytest bench/test_overhead.py --benchmark-only -k throttle``).

    On fast calls that cost shows: on 20,000 calls of 1–3 ms at limit 100 the throttle reached
    60% of the ideal on asyncio and 22% on trio, where the worker pool reached 81% and 63%
    (``pytest bench/test_fast_calls.py --benchmark-only``; docs/benchmarks.md, "Fast calls").

    The start queue (with ``max_per_second``) costs O(log n) per start and per cancellation.
    With ``Throttle(N, max_per_second=1000)`` and N calls always queued, the start rate with
    20,000 queued is that with 100, and the rate asked for: 985 and 988 starts/s on asyncio,
    1000 and 1001 on uvloop, 990 and 987 on trio. Each start's slot counts from the schedule,
    not from the moment its timer woke, up to a millisecond or so late: counted from the wake,
    that lateness pushed the schedule back at every start (830, 552 and 807 starts/s in the same
    benchmark). Only a wake more than an interval late is lost, like a stall: at a load average
    of 3-5, asyncio and trio gave 903-991 starts/s over five runs, uvloop 585-1001.
    Cancelling all 20,000 returns in 0.24 s on asyncio, 0.20 s on uvloop,
    0.68 s on trio, against 0.21, 0.18 and 0.63 s for as many tasks each blocked on an event, no
    throttle (median of 3; ``pytest bench/test_throttle_queue.py --benchmark-only``). When a
    start and a cancellation re-sorted the whole queue, the same run gave about 300 starts/s
    with 20,000 queued, and 39-40 s to cancel them.

Beside the textbook version
    The textbook shared limit is one module-level ``asyncio.Semaphore`` that every call site
    takes with ``async with``: as fast as a permit can be, and deadlocked the first time the
    outer calls hold every permit and their inner calls wait for one
    (``python -m patterns footgun nested-throttle`` runs it, broken beside fixed). This
    throttler pays a task start and a context-variable copy per call (20 µs against a few)
    to lend permits down the call tree, and adds the rate and the priorities.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar, TypeVarTuple, Unpack

import anyio
import anyio.lowlevel

from .contract import (
    HELD,
    Items,
    Limit,
    R,
    T,
    Work,
    check,
    check_work,
    checked,
    drain,
    fail_fast,
    run_in_order,
    send,
)

Ts = TypeVarTuple("Ts")

#: At most ``limit`` calls in flight.
BOUNDED = True


P = TypeVar("P", bound="_Place")


class _Place:
    """A place in a line: higher priority first (a lower ``key``), then first come."""

    __slots__ = ("gone", "key", "order")

    def __init__(self, key: float, order: int) -> None:
        self.key = key
        self.order = order
        self.gone = False  # out of the line (served or given up), if maybe still in the heap

    def __lt__(self, other: _Place) -> bool:
        return (self.key, self.order) < (other.key, other.order)


class _Line(list[P]):
    """Places in priority order (``line[0]`` first), which a place may leave from anywhere.

    A heap with lazy deletion: taking a place out of the middle of a heap costs O(n), and with
    20,000 calls waiting that stalled the event loop for minutes when all were cancelled. So a
    place that leaves is only marked gone; gone places are popped when they reach the head
    (which is so always live), and once they are the majority (low priorities cancelled under
    constant high-priority load never reach it) the heap is rebuilt without them. A departure
    costs O(log n) at the head, O(1) amortized elsewhere.
    """

    __slots__ = ("live",)

    def __init__(self) -> None:
        super().__init__()
        self.live = 0  # places in the line that have not left it

    def join(self, place: P) -> None:
        heapq.heappush(self, place)
        self.live += 1

    def leave(self, place: P) -> None:
        """``place`` leaves, wherever it stands (once per line it stands in)."""
        place.gone = True
        self.live -= 1
        while self and self[0].gone:
            heapq.heappop(self)
        if len(self) > 2 * self.live:
            self[:] = [waiting for waiting in self if not waiting.gone]
            heapq.heapify(self)


class _Scope:
    """The permit a running call lends to the calls it makes, and the call's round trip."""

    __slots__ = ("available", "begun", "closed", "parent", "throttle", "waiters")

    def __init__(self, parent: _Scope | None, throttle: Throttle) -> None:
        self.parent = parent  # where the permit goes home: the scope it came from, or the pool
        self.available = True
        self.closed = False
        self.waiters: _Line[_Waiter] = _Line()
        self.throttle = throttle
        self.begin()

    def begin(self) -> None:
        """The round trip starts: when, the permits out, the limit's cuts (None: a fixed limit)."""
        p = self.throttle._pool
        self.begun = None if isinstance(p, _Fixed) else (anyio.current_time(), p.in_flight, p._cuts)

    @asynccontextmanager
    async def away(self, error: BaseException) -> AsyncIterator[None]:
        """A retry backs off (``contract.HELD``): the attempt counts, and the permit is back in
        the pool meanwhile (kept if a child runs on it), taken again at the head of the line."""
        throttle, held = self.throttle, self.available
        throttle._observe(error, self)
        if held:
            self.available = False
            throttle._give_back(None)
        yield  # cancelled here or below, the call has no permit: none goes home
        if held:
            await throttle._acquire(math.inf, back=True)
            throttle._give_back(self)  # to its own scope: available again, or to a child
        self.begin()


class _Fixed:
    """A fixed limit as the pool sees an adaptive one: ``in_flight`` permits out of ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = self.maximum = limit
        self.in_flight = 0


class _Waiter(_Place):
    """A call waiting for a permit, in the pool's line and its parent scope's if any."""

    __slots__ = ("event", "granted_from", "lines")

    def __init__(self, key: float, order: int, lines: list[_Line[_Waiter]]) -> None:
        super().__init__(key, order)
        self.lines = lines
        self.event = anyio.Event()
        #: The scope whose permit this waiter was given, or None for one from the pool.
        self.granted_from: _Scope | None = None


class _RateWaiter(_Place):
    """A call's place in the start queue (kept only with a rate limit)."""

    __slots__ = ("head_since", "turn")

    def __init__(self, key: int, order: int) -> None:
        super().__init__(key, order)
        self.turn = anyio.Event()
        #: When it last became the head of the queue: its arrival, for GCRA (see _pace).
        self.head_since = math.inf


# Each call sets, for its own task and every task started from it, the scope it lends. One
# mapping holds the scopes of every Throttle, so separate throttles never lend to each other.
_LENT: ContextVar[dict[int, _Scope]] = ContextVar("patterns_throttle_lent", default={})  # noqa: B039 - never mutated, only replaced


@dataclass(frozen=True)
class ThrottleStatistics:
    """A snapshot: permits in use now, calls waiting, calls started so far, peak in use."""

    in_use: int
    waiting: int
    started: int
    peak: int


class Throttle:
    """One limit on calls in flight, and optionally on starts per second, shared app-wide.

    ``max_per_second`` spaces starts with GCRA (the generic cell rate algorithm): one start
    every ``1 / max_per_second`` seconds, with up to ``burst`` starts at once after a quiet
    spell. The starts keep to that schedule: one whose timer fires late does not push back
    the ones after it, so with calls always waiting the rate asked for is the rate delivered.
    A stall of the event loop is not made up: after one, the call that was due starts, then
    at most ``burst`` more at once. A call takes its permit first, then its start slot, so
    the rate is held by calls already counted against the concurrency limit; both queues go
    by priority.
    """

    def __init__(
        self, max_concurrency: int | Limit, *, max_per_second: float | None = None, burst: int = 1
    ) -> None:
        pool: Any = max_concurrency  # the permits: `in_flight` out of `limit`
        if not isinstance(pool, Limit):
            pool = _Fixed(check("max_concurrency", pool))
        elif getattr(pool, "owner", pool) is not None or getattr(pool, "in_flight", 1) != 0:
            raise ValueError(f"max_concurrency: an adaptive limit no one else uses, got {pool!r}")
        pool.owner = self  # its own gate would not wake this pool's line: none may use it
        if max_per_second is not None:
            check("max_per_second", max_per_second, 0, whole=False)
            if not max_per_second:  # 0 would be "never": None is the way to say "no rate limit"
                raise ValueError("max_per_second must be > 0, or None for no rate limit, got 0")
        check("burst", burst)
        self.max_concurrency = max_concurrency
        self.max_per_second = max_per_second
        self._interval = 1 / max_per_second if max_per_second else 0.0
        self._tolerance = (burst - 1) * self._interval
        self._next_start = -math.inf  # GCRA's "theoretical arrival time"
        self._pool = pool
        self._pool_waiters: _Line[_Waiter] = _Line()
        self._rate_waiters: _Line[_RateWaiter] = _Line()
        self._order = itertools.count()
        self._started = 0
        self._peak = 0
        self._key = id(self)

    # --- one call -------------------------------------------------------------------------

    async def run(
        self, fn: Callable[[Unpack[Ts]], Awaitable[R]], *args: *Ts, priority: int = 0
    ) -> R:
        """Run ``fn(*args)`` under the limits and return its result."""
        check_work(fn)
        _check_priority(priority)
        lent_by = await self._acquire(priority)
        await self._start(lent_by, self._queue_for_start(priority))
        return await self._lending(lent_by, fn, *args)

    async def _start(self, lent_by: _Scope | None, place: _RateWaiter | None) -> None:
        """Wait for the call's start slot; cancelled, it gives its permit and place back."""
        try:
            # Nothing so far need have noticed a cancellation: a free permit is taken without an
            # await, one handed over may arrive just as the call is cancelled, and a stream's
            # task started on one a cancelled call handed back is cancelled already. Check
            # before the work begins: once a stream has stopped, no call may start.
            await anyio.lowlevel.checkpoint_if_cancelled()
            await self._pace(place)
        except BaseException:
            self._withdraw(lent_by, place)
            raise

    async def _lending(
        self, lent_by: _Scope | None, fn: Callable[[Unpack[Ts]], Awaitable[R]], *args: *Ts
    ) -> R:
        """Run the call with its permit on loan to the calls it makes; then send it home."""
        scope = _Scope(lent_by, self)
        token = _LENT.set({**_LENT.get(), self._key: scope})
        # With an adaptive limit, a retry backs off without the permit (kept if borrowed).
        away = scope.begun is not None and lent_by is None
        held = HELD.set((anyio.get_current_task().id, scope) if away else None)
        try:
            result = await fn(*args)
        except Exception as error:
            self._observe(error, scope)
            raise
        else:
            self._observe(None, scope)
            return result
        finally:
            _LENT.reset(token)
            HELD.reset(held)
            # The scope closes with the call. Calls still queued on it wait on the pool
            # alone (they are in its line too); none borrows from it from now on.
            scope.closed = True
            if scope.available:
                self._give_back(lent_by)
            # Otherwise a child that outlives this call still runs on the permit, and sends
            # it home (past this closed scope) when it is done.

    # --- permits ----------------------------------------------------------------------------

    async def _acquire(self, priority: float, *, back: bool = False) -> _Scope | None:
        """Take a permit: the parent's lent one or one from the pool, whichever comes first
        (``back`` from a retry's back-off: the pool's, at the head of its line). Returns the
        scope it was borrowed from, or None for a permit from the pool."""
        parent = None if back else _LENT.get().get(self._key)
        if parent is not None and parent.closed:
            parent = None
        # Fast paths: a free permit is taken without a trip through the event loop.
        if parent is not None and parent.available:
            parent.available = False
            return parent
        if self._pool.in_flight < self._pool.limit and not self._pool_waiters:
            self._pool.in_flight += 1
            self._peak = max(self._peak, self._pool.in_flight)
            return None
        lines = [self._pool_waiters] + ([parent.waiters] if parent is not None else [])
        waiter = _Waiter(-priority, next(self._order), lines)
        for line in lines:
            line.join(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.gone:
                # Granted, then cancelled before it could run: hand the permit straight on,
                # or a cancelled waiter would keep it (the bug of cpython#90155).
                self._give_back(waiter.granted_from)
            else:
                for line in waiter.lines:  # withdrawn
                    line.leave(waiter)
            raise
        return waiter.granted_from

    def _grant(self, waiter: _Waiter, lent_by: _Scope | None) -> None:
        for line in waiter.lines:
            line.leave(waiter)
        waiter.granted_from = lent_by
        waiter.event.set()

    def _give_back(self, lent_by: _Scope | None) -> None:
        """A call is done with its permit: send it home."""
        scope = lent_by
        # Home is the scope the permit was borrowed from, if its call is still running;
        # past a closed scope, the permit goes further up, to the pool at the last.
        while scope is not None and scope.closed:
            scope = scope.parent
        if scope is None:
            self._pool.in_flight -= 1
            self._fill()
        elif scope.waiters:
            self._grant(scope.waiters[0], scope)
        else:
            scope.available = True

    def _fill(self) -> None:
        """Grant permits from the pool to its line while under the limit (it may have grown)."""
        while self._pool_waiters and self._pool.in_flight < self._pool.limit:
            self._pool.in_flight += 1
            self._peak = max(self._peak, self._pool.in_flight)
            self._grant(self._pool_waiters[0], None)

    def _observe(self, error: BaseException | None, scope: _Scope) -> None:
        if scope.begun is not None:  # an adaptive limit: the call's outcome may move it
            since, in_flight, cuts = scope.begun
            self._pool._observe(error, anyio.current_time() - since, in_flight, cuts)
            self._fill()

    def _withdraw(self, lent_by: _Scope | None, place: _RateWaiter | None) -> None:
        """A call ends before it started: its start-queue place and its permit go back."""
        self._leave_queue(place)
        self._give_back(lent_by)

    # --- start slots ------------------------------------------------------------------------

    def _queue_for_start(self, priority: int) -> _RateWaiter | None:
        """Take a place in the start queue, now: the order of places is the order of starts.

        Synchronous, so a spawner takes its calls' places in the order it starts them, before
        their tasks first run (trio runs new tasks in no set order). Without a rate limit there
        is nothing to queue for: None.
        """
        if not self._interval:
            return None
        place = _RateWaiter(-priority, next(self._order))
        self._rate_waiters.join(place)
        if self._rate_waiters[0] is place:
            place.head_since = anyio.current_time()  # the head at once: it arrives now
        return place

    async def _pace(self, place: _RateWaiter | None) -> None:
        """Wait for a start slot: GCRA, one start every 1/R s, ``burst`` at once when idle.

        Places start one at a time, in priority order (higher first, then FIFO), and claim a
        slot only when they start: a call cancelled while it waits takes no slot with it. Only
        the head of the queue is awake; the others wait for their turn. If this raises, the
        caller gives the place up (:meth:`_withdraw`).
        """
        if place is None:
            self._started += 1
            return
        while True:
            if self._rate_waiters[0] is not place:
                # Not our turn: wait until whoever is ahead has started (or gone). A fresh
                # event each time, as one set while we were the head is stale by now.
                place.turn = anyio.Event()
                await place.turn.wait()
                continue
            now = anyio.current_time()
            earliest = self._next_start - self._tolerance
            if now >= earliest:
                break
            await anyio.sleep(earliest - now)
        # Either wait above can end normally at the very moment the call is cancelled (the
        # turn given, or the timer fired, just before the cancellation was delivered): check,
        # so that no call starts after its stream has stopped. It only yields to raise.
        await anyio.lowlevel.checkpoint_if_cancelled()
        # GCRA: the "theoretical arrival time" moves one interval past the later of itself
        # and this call's arrival, the moment its place became the head of the queue; not
        # past now, the moment it woke. Timers fire late (up to a millisecond or so on every
        # backend here), and counting from the wake pushed the whole schedule back by that
        # lateness at every start: 78-90% of the rate at 1000/s. From the arrival, lateness
        # is credited back, and only that: not an idle spell, nor a stall of the event loop
        # before the place became the head. So after a stall the call that was due starts,
        # then the next arrives and has at most `burst` at once, as after a quiet spell.
        # (min: a place always has its arrival by now; were one missed, count from now.)
        self._next_start = max(self._next_start, min(place.head_since, now)) + self._interval
        self._started += 1
        self._leave_queue(place)

    def _leave_queue(self, place: _RateWaiter | None) -> None:
        """Give a place up, started or cancelled; if it was the head, wake the next in line."""
        if place is None or place.gone:
            return
        queue = self._rate_waiters
        was_head = queue[0] is place
        queue.leave(place)
        if was_head and queue:
            queue[0].head_since = anyio.current_time()  # its arrival, for GCRA
            queue[0].turn.set()  # the next in line may go now

    def statistics(self) -> ThrottleStatistics:
        """Permits in use (out of the pool), calls waiting, calls started, peak in use."""
        pool, waiting = self._pool, self._pool_waiters
        return ThrottleStatistics(pool.in_flight, waiting.live, self._started, self._peak)

    # --- many calls -------------------------------------------------------------------------

    @asynccontextmanager
    async def stream(
        self, work: Work[T, R], items: Items[T], *, priority: int = 0
    ) -> AsyncIterator[AsyncIterator[R]]:
        """Run ``work`` on every item under this throttle; yield results as they complete.
        (For all of them in input order, ``map``.)"""
        source = checked(work, items, self._pool.maximum)
        _check_priority(priority)
        send_results, receive_results = anyio.create_memory_object_stream[R](self._pool.maximum)

        async def call(item: T, lent_by: _Scope | None, place: _RateWaiter | None) -> None:
            try:
                await self._start(lent_by, place)  # before anything else
                await send(send_results, await self._lending(lent_by, work, item))
            except Exception:
                # Stop everything now: the task groups would notice only once this task has
                # ended, and the spawner would start more calls meanwhile.
                group.cancel_scope.cancel()
                raise

        async def spawn() -> None:
            # The result channel closes once the last call has ended: the consumer's loop ends.
            async with send_results, anyio.create_task_group() as calls:
                async for item in source:
                    # The permit and the start-queue place are taken here, before the task starts,
                    # as in the semaphore recipe (tasks alive stay at the limit however long the
                    # input), and in input order (trio runs new tasks in no set order).
                    lent_by = await self._acquire(priority)
                    place = self._queue_for_start(priority)
                    try:
                        calls.start_soon(call, item, lent_by, place, name="throttle call")
                    except BaseException:
                        self._withdraw(lent_by, place)  # no task: nobody else would
                        raise

        async with receive_results, fail_fast(source) as group:
            group.start_soon(spawn)
            yield drain(receive_results)

    async def map(self, work: Work[T, R], items: Items[T], *, priority: int = 0) -> list[R]:
        """Every result, in input order."""

        def stream(w: Work[Any, Any], i: Items[Any], *, limit: int) -> Any:
            return self.stream(w, i, priority=priority)

        return await run_in_order(stream, work, items, limit=self._pool.maximum)  # checks work


def _check_priority(priority: object) -> None:
    check("priority", priority, -math.inf)


# --- the cookbook's contract, so the throttler is a pattern like the others ---------------------


@asynccontextmanager
async def stream(
    work: Work[T, R], items: Items[T], *, limit: int | Limit
) -> AsyncIterator[AsyncIterator[R]]:
    """A fresh ``Throttle(limit)`` over ``items``; results in completion order."""
    source = checked(work, items, limit)
    async with Throttle(limit).stream(work, source) as results:
        yield results


async def run(work: Work[T, R], items: Items[T], *, limit: int | Limit) -> list[R]:
    """Every result, in input order."""
    return await run_in_order(stream, work, items, limit=limit)
