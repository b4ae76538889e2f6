"""Adaptive limit: a limit on calls in flight that finds the service's capacity, and follows it.

Calls flow any recipe (``limit=AIMD()``) or a ``Throttle(AIMD())`` → the limit's gate (at
most ``limit.limit`` calls in flight) → the work; each call's outcome moves the limit.

```python
import anyio

from patterns import worker_pool  # copied: from yourapp import worker_pool
from patterns.adaptive import Gradient  # copied: from yourapp.adaptive import Gradient

urls = [f"https://example.com/{n}" for n in range(400)]
service = anyio.CapacityLimiter(8)  # the other side: 8 calls at once, the rest wait


async def fetch(url: str) -> str:
    async with service:  # a wait here is latency the caller sees
        await anyio.sleep(0.005)  # stands in for a network call
    return f"<html of {url}>"


async def main() -> None:
    limit = Gradient(maximum=100)  # starts at 4, and follows the round trips
    pages = await worker_pool.run(fetch, urls, limit=limit)
    print(len(pages), "pages; limit", limit.limit, "(the service's 8, and a short queue)")


anyio.run(main)
```

What it is
    A limit that moves. :class:`AIMD` is loss-based, as TCP's congestion window and Netflix's
    ``AIMDLimit``: it doubles each round trip until the service first turns a call away (slow
    start), then grows by one call per round trip while calls succeed with the limit in use,
    and cuts by 10% when a call is turned away or times out. :class:`Gradient` watches latency
    (Netflix's ``GradientLimit``, TCP Vegas): once a round trip, it scales the limit by the
    quickest round trip seen over the recent ones, so it backs off as calls start to queue at
    the service, before any is turned away. Either is passed as ``limit=`` to any recipe
    (scatter_gather, unbounded by design, ignores it as it ignores a number), or to a
    ``Throttle``: the recipe keeps ``maximum`` as its fixed bound (workers, buffer), and
    every call passes through the limit's gate, which lets at most ``limit`` in, first come
    first in. When it shrinks below the calls in flight, none is cancelled: new calls wait.

When to use it
    The service's capacity is not published, changes when it scales or another client
    shares it, and the only signals are 429s, 503s, timeouts and rising latency. With a fixed
    limit you pick between idle capacity (too low) and calls turned away (too high); this
    finds the line and follows it as it moves. AIMD keeps the service's queue full (the most
    goodput, the longest waits); Gradient keeps it short (less latency, a little less goodput).

Failure mode
    Reading the wrong signal. A failure that says nothing of load (a 404, a bad request) must
    not cut the limit, and an overload must: ``overload`` says which exceptions mean "too
    much" (by default a ``TimeoutError``, an error carrying HTTP status 429 or 503 as httpx's
    and aiohttp's errors do, or one with a ``retry_after``). So the gate must see the error:
    a wrapper that catches it first (``collect_errors`` around the gated work) shows it only
    successes, and the limit grows to its maximum. One overshoot turns several calls away at
    once: cutting 10% for each would collapse the limit, so the first cuts 10% and each other
    call of the same overshoot (started before that cut) takes one call off; nor does a call
    started before a cut grow the limit when it succeeds. And a limit that grows while it is
    not in use (the input is slow, not the service fast) grows without evidence: it grows only
    while at least half of it is in use.

Cost (measured)
    51k CPU instructions per item on top of the recipe's own (the worker pool's is 35k; work =
    one pass through the event loop, limit 100, asyncio; counted by ``python -m
    patterns.lab.costs``, as the README quotes it): the place taken and given back, two clock
    readings, the task's id (so that a retry gives back only its own place), the outcome:
    about 8 µs a call here, noise beside a service's milliseconds, the latency it adapts to.
    It also costs the probes it learns from: with no queue at the service, each round trip's
    probe past the capacity C is a call turned away. On a steady C, no retries, AIMD turned
    away 33% of calls at C = 2, 11% at 5, 4.4% at 10, 1.6% at 20, 0.5% at 50; a queue absorbs
    them (2.1–2.5% in the changing-capacity scenario, docs/adaptive.md), as do retries within
    a budget. For a capacity of a few, known and steady, a fixed limit is the better tool.

Beside the textbook version
    The textbook adaptive limit (below) moves a number but bounds nothing: a semaphore's
    permits cannot be taken back, so a shrinking limit needs a gate of its own, and it cuts
    10% for every call turned away, so one burst of 429s drives it to the floor. Here the gate
    is the limit, and one overshoot is one cut (and a call off for each extra call of it).

```python
limit = 20


class TooManyRequests(Exception):  # a 429
    pass


async def textbook_adaptive(work, item):
    global limit
    try:
        result = await work(item)
        limit += 1 / limit
        return result
    except TooManyRequests:
        limit = max(1, limit * 0.9)  # every 429 of one burst cuts again
        raise
```
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel

from .contract import HELD, R, T, Work, check, check_work


def is_overload(error: BaseException) -> bool:
    """Whether ``error`` says the service is overwhelmed: a timeout, an HTTP 429 or 503
    (httpx's ``.response.status_code``, aiohttp's ``.status``), or an error that carries a
    ``retry_after``. What an adaptive limit cuts on and a retry retries, by default."""
    if isinstance(error, TimeoutError) or getattr(error, "retry_after", None) is not None:
        return True
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", getattr(error, "status", None))
    return status in (429, 503)


#: Which exceptions say "too much": True to cut the limit.
Overload = Callable[[BaseException], bool]


class Adaptive:
    """The gate every adaptive limit shares: at most ``limit`` calls in, first come first in.
    A subclass says how an outcome moves the limit (:meth:`on_success`, :meth:`on_overload`);
    the gate keeps it within ``minimum`` and ``maximum`` and lets calls in as it grows."""

    def __init__(
        self,
        initial: int,
        *,
        minimum: int,
        maximum: int,
        overload: Overload | tuple[type[BaseException], ...],
        backoff: float = 0.9,
    ) -> None:
        check("minimum", minimum)
        check("maximum", maximum, minimum)
        check("initial", initial, minimum, maximum)
        self.minimum = minimum
        self.maximum = maximum
        self.backoff = check("backoff", backoff, 0.1, 0.99, whole=False)
        self.overload = overload_test(overload)
        self.in_flight = 0  # calls inside the gate now
        self._estimate = float(initial)  # the limit, before rounding down
        self._waiting: deque[anyio.Event] = deque()
        self._cuts = 0  # how many times the limit was cut: a call cuts only if started since
        #: Called with the new limit each time it changes (the lab's probe records it).
        self.on_change: Callable[[int], None] | None = None
        #: The Throttle whose pool this sizes, if any: then only it lets calls in.
        self.owner: object = None

    @property
    def limit(self) -> int:
        """Calls let in at once, now."""
        return max(self.minimum, min(self.maximum, int(self._estimate)))

    def gate(self, work: Work[T, R]) -> Work[T, R]:
        """``work``, let in at most ``limit`` at a time, each outcome moving the limit."""
        check_work(work)
        self._check_free()

        async def gated(item: T) -> R:
            held = await self._hold()
            try:
                result = await work(item)
            except Exception as error:
                held.outcome(error)
                raise
            else:
                held.outcome(None)
                return result
            finally:  # a cancellation moves nothing: it says nothing of the service
                held.release()

        return gated

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the ``limit`` places for the block; its outcome moves the limit. A retry
        inside it (``patterns.retry``) gives the place back while it backs off."""
        held = await self._hold()
        try:
            yield
        except Exception as error:
            held.outcome(error)
            raise
        else:
            held.outcome(None)
        finally:
            held.release()

    async def _hold(self) -> _Held:
        """Wait for a place, and hold it: for this task, not the tasks its call starts."""
        self._check_free()
        await self._enter(first=False)
        return _Held(self)

    def _check_free(self) -> None:
        if self.owner is not None:
            raise ValueError(
                f"limit: this {type(self).__name__} sizes a Throttle's pool: call through the "
                "throttle, or give this its own limit"
            )

    async def _enter(self, *, first: bool) -> None:
        """Wait for a place (``first``: at the head of the line, for a call coming back)."""
        if self.in_flight < self.limit and not self._waiting:
            self.in_flight += 1
            return
        let_in = anyio.Event()
        self._waiting.appendleft(let_in) if first else self._waiting.append(let_in)
        try:
            await let_in.wait()
        except BaseException:
            if let_in.is_set():  # let in, then cancelled before it ran: pass the place on
                self._leave()
            else:
                self._waiting.remove(let_in)
            raise
        # Let in just as the block was cancelled: start nothing (it only yields to raise).
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            self._leave()
            raise

    def _leave(self) -> None:
        self.in_flight -= 1
        self._let_in()

    def _let_in(self) -> None:
        """Hand free places to the calls waiting: the place goes with the wake-up, so a call
        woken is in even if another comes first to the gate."""
        while self._waiting and self.in_flight < self.limit:
            self.in_flight += 1
            self._waiting.popleft().set()

    def _observe(self, error: BaseException | None, rtt: float, in_flight: int, cuts: int) -> None:
        """One call's outcome: ``error`` (None: it succeeded) after ``rtt`` seconds, with
        ``in_flight`` calls in when it started, and the limit cut ``cuts`` times by then."""
        before = self.limit
        if error is None:
            # Grow only on evidence: while at least half the limit was in use, and for a call
            # started since the last cut (one from before it says nothing of the new limit:
            # counted, it undid each cut at a capacity of 2 or 3 at once).
            if 2 * in_flight >= before and cuts == self._cuts:
                self.on_success(rtt)
        elif self.overload(error):
            if cuts == self._cuts:  # the first call turned away of an overshoot: the cut
                self._cuts += 1
                self.on_overload()
            else:  # the others of the same overshoot: each was one call too many
                self._estimate -= 1
        else:
            return  # a failure that says nothing of load
        self._estimate = max(self.minimum, min(self.maximum, self._estimate))
        if self.limit != before:
            self._let_in()
            if self.on_change is not None:
                self.on_change(self.limit)

    def on_success(self, rtt: float) -> None:
        """A call succeeded in ``rtt`` seconds with the limit in use: move ``_estimate``."""
        raise NotImplementedError

    def on_overload(self) -> None:
        """The first call turned away of an overshoot: cut ``_estimate`` by ``backoff``."""
        self._estimate *= self.backoff

    def __repr__(self) -> str:
        return f"{type(self).__name__}(limit={self.limit}, in_flight={self.in_flight})"


def overload_test(overload: object) -> Overload:
    """``overload`` as a test of an exception: a tuple of exception types, or a function."""
    if isinstance(overload, tuple) and all(
        isinstance(kind, type) and issubclass(kind, BaseException) for kind in overload
    ):
        return lambda error: isinstance(error, overload)
    if callable(overload) and not isinstance(overload, type):
        return overload
    raise TypeError(
        "overload must be a tuple of exception types or a function of an exception,"
        f" got {overload!r}"
    )


class _Held:
    """One call's place in the gate, and the round trip it is timing."""

    def __init__(self, limit: Adaptive) -> None:
        self._limit = limit
        self._begin()
        # The task's id: children inherit the variable, and must not give this place back.
        self._token = HELD.set((anyio.get_current_task().id, self))

    def _begin(self) -> None:
        """In the gate: the round trip starts now, against the limit as it is."""
        self.inside = True
        self._since = anyio.current_time()
        self._in_flight = self._limit.in_flight
        self._cuts = self._limit._cuts

    def release(self) -> None:
        HELD.reset(self._token)
        if self.inside:
            self._limit._leave()

    def outcome(self, error: BaseException | None) -> None:
        limit = self._limit
        rtt = anyio.current_time() - self._since
        limit._observe(error, rtt, self._in_flight, self._cuts)

    @asynccontextmanager
    async def away(self, error: BaseException) -> AsyncIterator[None]:
        """The attempt failed with ``error``: count it, give the place back for the block
        (a retry's back-off), and come back in at the head of the line."""
        self.outcome(error)
        self.inside = False
        self._limit._leave()
        yield  # cancelled here, it is out of the gate: nothing to give back
        await self._limit._enter(first=True)
        self._begin()


class AIMD(Adaptive):
    """Additive increase, multiplicative decrease: one more call per round trip while calls
    succeed (doubling per round trip until the first cut: TCP's slow start), ``backoff``
    times the limit (0.9: a 10% cut) when one is turned away."""

    def __init__(
        self,
        initial: int = 4,
        *,
        minimum: int = 1,
        maximum: int = 1000,
        backoff: float = 0.9,
        overload: Overload | tuple[type[BaseException], ...] = is_overload,
    ) -> None:
        super().__init__(
            initial, minimum=minimum, maximum=maximum, overload=overload, backoff=backoff
        )

    def on_success(self, rtt: float) -> None:
        # +1 per call until the first cut (the limit doubles per round trip), then +1/limit
        # per call: +1 per round trip, as many calls as the limit make one.
        self._estimate += 1 if not self._cuts else 1 / self._estimate


class Gradient(Adaptive):
    """Latency-based: once per round trip, the limit times (quickest round trip / the round
    trips just seen), times ``tolerance``, plus its square root (room to probe); cut by
    ``backoff`` on an overload too. It backs off as calls start to queue at the service,
    before any is turned away."""

    def __init__(
        self,
        initial: int = 4,
        *,
        minimum: int = 1,
        maximum: int = 1000,
        tolerance: float = 1.2,
        smoothing: float = 0.5,
        backoff: float = 0.9,
        overload: Overload | tuple[type[BaseException], ...] = is_overload,
    ) -> None:
        super().__init__(
            initial, minimum=minimum, maximum=maximum, overload=overload, backoff=backoff
        )
        self.tolerance = check("tolerance", tolerance, 1, 10, whole=False)
        self.smoothing = check("smoothing", smoothing, 0.01, 1, whole=False)
        self._quickest = math.inf  # the no-load round trip: the least seen, let drift up
        self._window: list[float] = []  # the round trips of this window

    def on_success(self, rtt: float) -> None:
        self._window.append(rtt)
        if len(self._window) < self.limit:  # a window: as many calls as the limit, a round trip
            return
        recent = sum(self._window) / len(self._window)
        self._window.clear()
        if recent <= 0:  # calls quicker than the clock's tick (uvloop's is 1 ms): no reading
            return
        # The baseline drifts up 0.1% a window, so a service that has slowed for good is learnt
        # as its new normal within a thousand round trips or so.
        self._quickest = min(self._quickest * 1.001, recent)
        gradient = max(0.5, min(1.0, self.tolerance * self._quickest / recent))
        target = self._estimate * gradient + math.sqrt(self._estimate)
        self._estimate += self.smoothing * (target - self._estimate)

    def on_overload(self) -> None:
        super().on_overload()
        self._window.clear()
