"""Footgun: the retry that sleeps holding its permit (issue 22: adaptive limits and retries).

A call turned away with a 429 is retried after the service's ``Retry-After``. The textbook
retry is a loop around the call, inside whatever bounds the calls (a worker pool's worker, a
semaphore's permit), so it sleeps holding its place: while it waits, the place serves nobody.
That costs nothing while the service is full anyway, and a great deal once it has room again.
Here the service serves 10 calls of 5 ms at once, turns the rest away with a ``Retry-After`` of
100 ms, and its capacity dips to 2 for 20 ms (a replica lost, a neighbour's burst). The broken
caller is a worker pool of 10 (the capacity) whose retry loop sleeps in the worker: the 8
calls turned away in the dip hold 8 of the 10 places for the 100 ms the service asked, and
once the capacity is back the pool sends 2 calls at a time to a service with room for 10.
The fix is :func:`patterns.retry.retrying` inside an adaptive limit's gate (``limit=AIMD(...)``):
its back-off is spent out of the gate, the place goes to the next call, and the call comes
back at the head of the line. (The recipe's ``maximum`` is its workers: a call backing off
holds a worker though not a place, so the maximum leaves room above the limit for them.)
Every attempt is counted where it lands, at the service; the places held by a call that is
not at the service are sampled every millisecond.

The module also holds what the three retry exhibits share: :class:`Attempts`, the count of
every attempt at the service, the textbook retry loop, and a service that follows a schedule.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import anyio
import anyio.lowlevel

from patterns import worker_pool
from patterns.adaptive import AIMD
from patterns.footguns.exhibit import Exhibit, Instrument, Spans, Verdict
from patterns.lab.core import collect_errors
from patterns.lab.service import Felt, Overloaded, Service
from patterns.lab.workload import Item
from patterns.retry import retrying

M = TypeVar("M")

#: The service: 10 calls of 5 ms at once, the rest turned away with a Retry-After of 100 ms.
CAPACITY, CALL_S, HINT_S = 10, 0.005, 0.1
#: (capacity, seconds): it dips to 2 for 20 ms, then comes back for longer than the hint.
SCHEDULE = ((CAPACITY, 0.04), (2, 0.02), (CAPACITY, 0.12))
#: Both retries: 5 attempts at most, the first back-off 10 ms (then 20, 40, ...) past the hint.
ATTEMPTS, BASE_S = 5, 0.01
#: How often the places held and the attempts at the service are sampled; a version whose
#: calls held a place or more on average while not at the service slept holding them.
SAMPLE_S, HOLDING = 0.001, 1.0
#: The event loop standing still this long is the machine's stall, not a measurement.
STALL_S = 0.018

Call = Callable[[Item], Awaitable[str]]
#: How an attempt ended: served, turned away (a 429), timed out at the caller, or cut off by
#: the end of the run.
Outcome = Literal["served", "turned away", "timed out", "cut off"]


@dataclass(frozen=True)
class Attempt:
    """One attempt as the service saw it: which call, which try of it (1 is the first), from
    when to when (seconds from the start), how it ended, and the place it ran in."""

    call: int
    number: int
    start: float
    end: float
    outcome: Outcome
    place: int = 0


@dataclass
class Attempts:
    """Counts every attempt where it lands, at the service: wrap the service's call with
    :meth:`wrap`. Each attempt takes the lowest place free while it runs (a row to draw)."""

    clock: Callable[[], float]
    log: list[Attempt] = field(default_factory=list)
    in_flight: int = 0
    _tries: dict[int, int] = field(default_factory=dict)
    _free: list[int] = field(default_factory=list)
    _places: int = 0

    def wrap(self, call: Call) -> Call:
        async def attempt(item: Item) -> str:
            number = self._tries[item.index] = self._tries.get(item.index, 0) + 1
            if not self._free:
                self._places += 1
                heapq.heappush(self._free, self._places)
            place = heapq.heappop(self._free)
            self.in_flight += 1
            start = self.clock()
            outcome: Outcome = "cut off"
            try:
                result = await call(item)
                outcome = "served"
                return result
            except Overloaded:
                outcome = "turned away"
                raise
            except TimeoutError:
                outcome = "timed out"
                raise
            finally:
                self.in_flight -= 1
                heapq.heappush(self._free, place)
                self.log.append(Attempt(item.index, number, start, self.clock(), outcome, place))

        return attempt


def textbook(call: Call, attempts: int, base: float) -> Call:
    """The retry loop every tutorial shows: the service's Retry-After, then an exponential
    back-off (``base``, ``2 * base``, ...), the same for every call, slept wherever the loop
    runs (inside the caller's place, here)."""

    async def retried(item: Item) -> str:
        for attempt in range(1, attempts + 1):
            try:
                return await call(item)
            except Overloaded as error:
                if attempt == attempts:
                    raise
                await anyio.sleep(error.retry_after + base * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    return retried


async def follow(service: Service, schedule: tuple[tuple[int, float], ...]) -> None:
    """Resize ``service`` as ``schedule`` says: each (capacity, seconds) in turn."""
    at = anyio.current_time()
    for (_, seconds), (capacity, _) in itertools.pairwise(schedule):
        at += seconds
        await anyio.sleep_until(at)
        service.resize(capacity)


def backoffs(log: list[Attempt]) -> list[tuple[int, float, float]]:
    """Each wait between two attempts of one call: (call, from the end of one, to the next)."""
    by_call = sorted(log, key=lambda a: (a.call, a.number))
    return [
        (a.call, a.end, b.start)
        for a, b in itertools.pairwise(by_call)
        if a.call == b.call and b.number == a.number + 1
    ]


@dataclass(frozen=True)
class Run:
    """One version's run: every attempt, when each call was served, the samples of (time,
    places held, attempts at the service), what the service felt, and its time per call."""

    attempts: list[Attempt]
    served: list[float]
    samples: list[tuple[float, int, int]]
    felt: Felt
    #: Where the caller's place is the whole call (the pool): each call's place.
    place_of: dict[int, int]

    def goodput(self, since: float = 0.0) -> float:
        """Calls served a second, since ``since``."""
        end = sum(seconds for _, seconds in SCHEDULE)
        return sum(t >= since for t in self.served) / (end - since)

    def share(self, since: float = 0.0) -> float:
        """The goodput since ``since``, as a share of what the capacity allowed then (at the
        service's time per call, measured: a timer adds a little to each 5 ms)."""
        allowed, at = 0.0, 0.0
        for capacity, seconds in SCHEDULE:
            allowed += capacity * max(0.0, min(seconds, at + seconds - since))
            at += seconds
        call_s = sum(self.felt.service_s) / max(1, len(self.felt.service_s))
        return self.goodput(since) * (at - since) * call_s / allowed

    @property
    def held_asleep(self) -> float:
        """On average, the places held by a call that was not at the service: asleep."""
        idle = sum(held - attempting for _, held, attempting in self.samples)
        return idle / max(1, len(self.samples))


class LoopWatch:
    """The longest the event loop stood still while :meth:`run` ran: a task waking every ms."""

    def __init__(self) -> None:
        self.longest = 0.0

    async def run(self) -> None:
        last = anyio.current_time()
        while True:
            await anyio.sleep(SAMPLE_S)
            now = anyio.current_time()
            self.longest, last = max(self.longest, now - last), now


async def unstalled(measure: Callable[[LoopWatch], Awaitable[M]]) -> M:
    """``measure(watch)``, run again (twice in all, at most) if the event loop stood still for
    ``STALL_S`` through it: the machine starved the process, and the run says nothing."""
    for _ in range(2):
        watch = LoopWatch()
        found = await measure(watch)
        if watch.longest <= STALL_S:
            break
    return found


async def measure(adaptive: bool) -> Run:
    """The pool of ``CAPACITY`` around the textbook retry, or ``retrying`` in an AIMD's gate."""
    return await unstalled(functools.partial(_measure, adaptive))


async def _measure(adaptive: bool, watch: LoopWatch) -> Run:
    service, probe = Service(CAPACITY, behaviour="reject", retry_after=HINT_S), Instrument()
    attempts = Attempts(probe.clock)
    call = attempts.wrap(service.call)
    served: list[float] = []
    samples: list[tuple[float, int, int]] = []
    limit = AIMD(CAPACITY, maximum=4 * CAPACITY)
    if adaptive:
        work, workers = limit.gate(retrying(call, attempts=ATTEMPTS, base=BASE_S)), limit.maximum
    else:
        work, workers = probe.wrap(textbook(call, ATTEMPTS, BASE_S)), CAPACITY

    async def sample() -> None:
        while True:
            # Once the tasks woken with this one have run: a place handed to a waiting call in
            # this very turn of the loop is not a place held idle.
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
            held = limit.in_flight if adaptive else probe.in_flight
            samples.append((probe.clock(), held, attempts.in_flight))
            await anyio.sleep(SAMPLE_S)

    items = (Item(index, CALL_S) for index in itertools.count())
    # Duration-bound: the same time for both, however many calls each gets through.
    with anyio.move_on_after(sum(seconds for _, seconds in SCHEDULE)):
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow, service, SCHEDULE)
            tg.start_soon(sample)
            tg.start_soon(watch.run)
            # Collected outside the gate: the gate sees each call's failure, the run goes on.
            async with worker_pool.stream(collect_errors(work), items, limit=workers) as done:
                async for outcome in done:
                    if outcome.ok:
                        served.append(probe.clock())
    place_of = {c.item.index: c.lane + 1 for c in probe.calls}
    return Run(attempts.log, served, samples, service.felt, place_of)


def verdict(run: Run) -> Verdict:
    """Whether calls backing off held places, and what the service got done."""
    back = SCHEDULE[0][1] + SCHEDULE[1][1]  # when the capacity came back
    after = (sum(seconds for _, seconds in SCHEDULE) - back) * 1000
    holding = run.held_asleep >= HOLDING
    away = sum(a.outcome == "turned away" for a in run.attempts)
    observed = (
        f"{run.held_asleep:.1f} places held on average by calls asleep in a back-off"
        + (f", of the pool's {CAPACITY}" if holding else " (out of the gate)")
        + f": {run.goodput():,.0f} calls served a second, {run.share():.0%} of what the "
        f"capacity allowed, {run.share(back):.0%} in the {after:.0f} ms after it came back "
        f"from {SCHEDULE[1][0]} to {CAPACITY}; {len(run.attempts)} attempts at the service, "
        f"{away} turned away"
    )
    return Verdict(not holding, observed, _spans(run))


def _spans(run: Run) -> Spans:
    """A row per place: its attempts at the service, and below it, where the caller's place is
    the whole call (the pool), its calls' back-offs, asleep holding the place (red). Where the
    back-off is out of the gate, the back-offs share a row of their own."""
    rows: dict[tuple[int, int], list[tuple[str, float, float]]] = {}
    for a in run.attempts:
        place = run.place_of.get(a.call, 0) if run.place_of else a.place
        rows.setdefault((place, 0), []).append((f"place {place}", a.start, a.end))
    for call, start, end in backoffs(run.attempts):
        if run.place_of:
            place = run.place_of.get(call, 0)
            label = f"place {place} asleep, held (blocked)"
            rows.setdefault((place, 1), []).append((label, start, end))
        else:
            rows.setdefault((1_000_000, 0), []).append(("backing off, out of the gate", start, end))
    return tuple(span for row in sorted(rows) for span in rows[row])


async def broken() -> Verdict:
    """A worker pool of 10 around the textbook retry loop: it sleeps in the worker."""
    return verdict(await measure(adaptive=False))


async def fixed() -> Verdict:
    """``retrying`` inside ``limit=AIMD(10, maximum=40)``: the back-off out of the gate."""
    return verdict(await measure(adaptive=True))


EXHIBIT = Exhibit(
    name="retry-holding",
    title="The retry that sleeps holding its permit",
    article="issue 22: adaptive limits, and retries that don't make it worse",
    why=(
        "The retry loop slept inside the caller's place (a worker, a permit): the calls turned "
        "away in the dip held most of the pool's places for the whole Retry-After, and once the "
        "capacity was back the pool sent a few calls at a time to a service with room for "
        "all. A back-off is time the place could serve another call: give the place back while "
        "waiting, and leave room above the limit for the calls that wait (the fixed version, "
        "patterns.retry.retrying inside an adaptive limit's gate with a maximum of 40 workers, "
        "does both; the call comes back at the head of the line), or retry around the bound."
    ),
    broken=broken,
    fixed=fixed,
)
