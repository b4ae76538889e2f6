"""Footgun: retries without a budget, under overload (issue 22: adaptive limits and retries).

A retry is one more call to a service that has just said it cannot keep up. Retried up to 5
times, a call that times out is sent 5 times: while the service is overloaded every caller
multiplies its load by up to 5, and the overload that a moment of lost capacity started
outlives it. Here calls arrive at 375 a second (3 every 8 ms, each from a caller of its own,
as users of an app send them), and each attempt is given 24 ms before the caller stops
waiting and tries again, after a jittered back-off, up to 5 times. The service serves 10 calls
of 8 ms at once (1,250 a second) and queues the rest; it does not know when a caller has
stopped waiting, and serves the call all the same, as a server serves a request whose client
has gone. Its capacity dips to 1 for 80 ms: the queue grows past what 24 ms can wait for,
calls time out and are sent again, and without a budget the calls sent a second climb past
the capacity. Every call now waits in a queue longer than its timeout, goodput falls to
nothing and stays there long after the capacity came back, and the service works flat out on
calls nobody waits for. With a budget (:class:`patterns.retry.Budget`, 20%: retries at most a
fifth of calls, past a reserve of 10) the calls sent stay near the arrivals, the queue drains
once the capacity is back, and goodput returns to the arrival rate. Both retry alike
otherwise (full jitter, 5 attempts): only the budget differs. Every call is counted where it
lands, at the service.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup

from patterns.footguns.exhibit import Exhibit, Instrument, Spans, Verdict
from patterns.footguns.retry_holding import (
    Attempt,
    Call,
    LoopWatch,
    Outcome,
    follow,
    unstalled,
)
from patterns.footguns.retry_waves import levels
from patterns.lab.service import Felt, Service
from patterns.lab.workload import Item
from patterns.retry import Budget, retrying

#: The service: 10 calls of 8 ms at once (1,250 a second), the rest queued.
CAPACITY, CALL_S = 10, 0.008
#: (capacity, seconds): it dips to 1 for 80 ms, then comes back for the rest of the run.
SCHEDULE = ((CAPACITY, 0.024), (1, 0.08), (CAPACITY, 0.16))
#: Calls arrive 3 every 8 ms (375 a second, 30% of the capacity); each attempt gets 24 ms.
EVERY_S, ARRIVING, TIMEOUT_S = 0.008, 3, 0.024
#: Both retries: 5 attempts at most, full jitter from an 8 ms window (then 16, 32, 64).
ATTEMPTS, BASE_S = 5, 0.008
#: The picture's bars: calls sent and answered per 8 ms.
WINDOW_S = 0.008
#: "After" is measured from here: the capacity back for 80 ms, time to drain the queue the
#: dip left (with a budget), to the end of the run.
SETTLED_S = SCHEDULE[0][1] + SCHEDULE[1][1] + 0.08


@dataclass
class Sent:
    """Every call sent to the service, and what became of it: the caller waits ``TIMEOUT_S``
    for each, and past it stops waiting (a TimeoutError, to retry); the service does not know,
    and serves it all the same."""

    service: Service
    clock: Callable[[], float]
    group: TaskGroup
    log: list[Attempt] = field(default_factory=list)
    #: When the service finished each call, and whether its caller still waited for it.
    finished: list[tuple[float, bool]] = field(default_factory=list)
    _tries: dict[int, int] = field(default_factory=dict)

    async def attempt(self, item: Item) -> str:
        number = self._tries[item.index] = self._tries.get(item.index, 0) + 1
        start, done, waiting = self.clock(), anyio.Event(), [True]
        self.group.start_soon(self._served, item, done, waiting)  # the service's own task
        outcome: Outcome = "cut off"
        try:
            with anyio.fail_after(TIMEOUT_S):
                await done.wait()
            outcome = "served"
            return f"{item}_processed"
        except TimeoutError:
            outcome = "timed out"
            raise
        finally:
            waiting[0] = False
            self.log.append(Attempt(item.index, number, start, self.clock(), outcome))

    async def _served(self, item: Item, done: anyio.Event, waiting: list[bool]) -> None:
        await self.service.call(item)
        self.finished.append((self.clock(), waiting[0]))
        done.set()


def unbudgeted(call: Call) -> Call:
    """The footgun: retried on a timeout up to ``ATTEMPTS`` times, with full jitter, and no
    budget: every call that times out is sent again, however many do."""

    async def retried(item: Item) -> str:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await call(item)
            except TimeoutError:
                if attempt == ATTEMPTS:
                    raise
                await anyio.sleep(random.uniform(0, BASE_S * 2 ** (attempt - 1)))
        raise AssertionError("unreachable")

    return retried


def budgeted(call: Call) -> Call:
    """The fix: ``retrying`` with a budget of 20%: past a reserve of 10 retries, one retry for
    every five calls."""
    return retrying(call, attempts=ATTEMPTS, base=BASE_S, budget=Budget(0.2))


@dataclass(frozen=True)
class Run:
    """One version's run: every call sent, when callers got their answers, when the service
    finished each call (and whether its caller still waited), how many calls arrived, and
    what the service felt."""

    sent: list[Attempt]
    answered: list[float]
    finished: list[tuple[float, bool]]
    arrived: int
    felt: Felt

    def rate(self, times: list[float]) -> float:
        """How many of ``times`` fell after the dip (from ``SETTLED_S``), a second."""
        end = sum(seconds for _, seconds in SCHEDULE)
        return sum(SETTLED_S <= t < end for t in times) / (end - SETTLED_S)

    @property
    def sent_rate(self) -> float:
        return self.rate([a.start for a in self.sent])

    @property
    def goodput(self) -> float:
        return self.rate(self.answered)

    @property
    def wasted(self) -> float:
        """The share of the calls the service finished after the dip whose caller had gone."""
        after = [waited for t, waited in self.finished if t >= SETTLED_S]
        return sum(not waited for waited in after) / max(1, len(after))


async def measure(retry: Callable[[Call], Call]) -> Run:
    """Calls arriving for the schedule's time, each through ``retry``."""
    return await unstalled(functools.partial(_measure, retry))


async def _measure(retry: Callable[[Call], Call], watch: LoopWatch) -> Run:
    service, probe = Service(CAPACITY, behaviour="queue"), Instrument()
    answered: list[float] = []
    arrived = 0
    # Duration-bound: the same time for both; what is still waiting at the end is cut off.
    with anyio.move_on_after(sum(seconds for _, seconds in SCHEDULE)):
        async with anyio.create_task_group() as tg:
            sent = Sent(service, probe.clock, tg)
            work = retry(sent.attempt)

            async def one(item: Item) -> None:
                try:
                    await work(item)
                except TimeoutError:
                    return  # given up: counted by its attempts
                answered.append(probe.clock())

            tg.start_soon(follow, service, SCHEDULE)
            tg.start_soon(watch.run)
            start = anyio.current_time()
            for tick in itertools.count(1):
                for _ in range(ARRIVING):
                    tg.start_soon(one, Item(arrived, CALL_S))
                    arrived += 1
                await anyio.sleep_until(start + tick * EVERY_S)
    return Run(sent.log, answered, sent.finished, arrived, service.felt)


def verdict(run: Run) -> Verdict:
    """Whether the calls sent stayed within the capacity and goodput came back after the dip."""
    arriving, capacity = ARRIVING / EVERY_S, CAPACITY / CALL_S
    timed_out = sum(a.outcome == "timed out" for a in run.sent)
    recovered = run.goodput >= 0.5 * arriving and run.sent_rate <= capacity
    since = (SETTLED_S - SCHEDULE[0][1] - SCHEDULE[1][1]) * 1000
    observed = (
        f"{len(run.sent):,} calls sent for {run.arrived:,} arrived, {timed_out:,} timed out; "
        f"from {since:.0f} ms after the capacity came back, {run.sent_rate:,.0f} calls sent "
        f"a second (capacity {capacity:,.0f}, arrivals {arriving:,.0f}), {run.goodput:,.0f} "
        f"answered in time a second, {run.wasted:.0%} of the service's work for callers gone: "
        + ("goodput came back" if recovered else "goodput fell, and stayed down")
    )
    return Verdict(recovered, observed, _spans(run))


def _spans(run: Run) -> Spans:
    """Bars of the calls sent and the calls answered in time per 8 ms, a row per level (the
    service serves 10 per 8 ms), then a row per try: its attempts, those that timed out red
    (the storm: second, third, ... tries piling up)."""
    per = round(CAPACITY / CALL_S * WINDOW_S)  # the capacity, per window
    starts = [a.start for a in run.sent]
    sent = levels(starts, "sent", window=WINDOW_S, step=per, top=2 * per)
    done = levels(run.answered, "answered", window=WINDOW_S, step=per // 2, top=per)
    names = {1: "1st", 2: "2nd", 3: "3rd"}

    def row(a: Attempt) -> str:
        name = f"{names.get(a.number, f'{a.number}th')} try"
        return f"{name} (timed out)" if a.outcome == "timed out" else name

    tries = sorted(
        (a for a in run.sent if a.outcome != "cut off"),
        key=lambda a: (a.number, a.outcome != "served", a.start),
    )
    return (*sent, *done, *((row(a), a.start, a.end) for a in tries))


async def broken() -> Verdict:
    """Retried up to 5 times on a timeout, with jitter and without a budget."""
    return verdict(await measure(unbudgeted))


async def fixed() -> Verdict:
    """``retrying`` with ``Budget(0.2)``: retries at most a fifth of calls."""
    return verdict(await measure(budgeted))


EXHIBIT = Exhibit(
    name="retry-storm",
    title="Retries without a budget, under overload",
    article="issue 22: adaptive limits, and retries that don't make it worse",
    why=(
        "Each call that timed out was sent again, up to 5 times: while the service was "
        "overloaded every caller multiplied its load, the calls sent a second climbed past the "
        "capacity, every call waited longer than its timeout, and the service worked flat out "
        "on calls nobody waited for any more. The dip was over; the overload was not. A retry "
        "budget (patterns.retry.Budget: retries at most a share of calls, 20% here) caps the "
        "extra load at that share, so the queue drains once the capacity is back."
    ),
    broken=broken,
    fixed=fixed,
)
