"""A service whose capacity changes mid-run, and the callers that must follow it.

The scenario: a :class:`~patterns.lab.service.Service` that queues a few calls past its
capacity and turns the rest away (a 429 with its Retry-After); its capacity is 20, then 5, then
20 again, for 1.5, 3 and 1.5 s (:data:`SCENARIO`). Each row is one way to call it: an adaptive
limit (AIMD, Gradient), a fixed one (5, 10, 20, 40), none (unbounded), a peer package that
adapts, and a caller *told* the capacity, its limit set to it as the service changes. The
same endless stream of calls runs through ``worker_pool`` for the schedule's length, then stops
(every row takes the same time); every row retries with :func:`patterns.retry.retrying` under
a :class:`~patterns.retry.Budget` and counts a call that still fails, without ending the run.

The *oracle* is the service's own ceiling: the capacity at each moment, times its seconds,
over a call's time in service measured on the calm service (the capacity in flight, nothing
queued: :func:`~patterns.lab.changing_run.calm`); no caller can get more done. Each row's
figures are the median of its runs (by goodput): goodput, its share of the oracle's, calls
turned away (a share of the calls the service received, retries included), the p95 of a
successful call as the caller saw it (from its first attempt: queueing and retries included),
failures. :func:`verdict` checks the issue's claims on them; :mod:`patterns.lab.changing_run`
runs the rows, on the simulated service or over real HTTP.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import anyio

from patterns import worker_pool
from patterns.adaptive import AIMD, Adaptive, Gradient
from patterns.lab.core import Work, collect_errors
from patterns.lab.probe import Probe
from patterns.lab.service import Felt, Overloaded, Service
from patterns.lab.workload import Item, WorkFailed
from patterns.retry import Budget, retrying


@dataclass(frozen=True)
class Scenario:
    """The service's capacity over time (``phases``: capacity, seconds), each call's time in
    service, the queue past the capacity, the service's Retry-After hint, and the callers'
    retry budget (a share of calls)."""

    phases: tuple[tuple[int, float], ...] = ((20, 1.5), (5, 3.0), (20, 1.5))
    call_s: float = 0.02
    queue_limit: int = 5
    retry_after: float = 0.02
    budget: float = 0.2

    @property
    def seconds(self) -> float:
        return sum(seconds for _, seconds in self.phases)

    @property
    def most(self) -> int:
        return max(capacity for capacity, _ in self.phases)

    def capacity_at(self, t: float) -> int:
        """The capacity ``t`` seconds from the start (the last phase's, past the end)."""
        for capacity, seconds in self.phases:
            if t < seconds:
                return capacity
            t -= seconds
        return self.phases[-1][0]

    def changes(self) -> list[tuple[float, int]]:
        """When the capacity changes, from the start, and to what."""
        found, at = [], 0.0
        for (_, seconds), (capacity, _) in itertools.pairwise(self.phases):
            at += seconds
            found.append((at, capacity))
        return found

    def ideal_calls(self, per_call_s: float) -> float:
        """What a caller keeping exactly the capacity in service at every moment would get done:
        capacity times seconds, summed over the phases, over ``per_call_s``."""
        return sum(c * s for c, s in self.phases) / per_call_s

    def service(self) -> Service:
        return Service(
            self.phases[0][0],
            behaviour="queue",
            queue_limit=self.queue_limit,
            retry_after=self.retry_after,
        )

    def scaled(self, factor: float) -> Scenario:
        """The same scenario, its phases ``factor`` times as long (the tests' is shorter)."""
        return replace(self, phases=tuple((c, s * factor) for c, s in self.phases))


SCENARIO = Scenario()
ORACLE, TOLD, PEER = "oracle", "told the capacity", "adaptive-concurrency"
#: ``unbounded`` is a worker pool with this many workers: more than ever fit in the service.
UNBOUNDED = 1_000
FIXED = (5, 10, 20, 40)
ADAPTIVE = ("AIMD", "Gradient")
#: Every row that calls, in the table's order (the oracle, computed, comes first).
ROWS = (TOLD, *ADAPTIVE, *(f"fixed {n}" for n in FIXED), "unbounded", PEER)


class Known(Adaptive):
    """The limit of the caller told the capacity: set from outside as it changes; no call's
    outcome moves it."""

    def __init__(self, capacity: int, most: int) -> None:
        super().__init__(capacity, minimum=1, maximum=most, overload=lambda error: False)

    def set(self, capacity: int) -> None:
        self._estimate = float(capacity)
        self._let_in()
        if self.on_change is not None:
            self.on_change(self.limit)

    def on_success(self, rtt: float) -> None:
        pass

    def on_overload(self) -> None:
        pass


def limit_of(row: str, scenario: Scenario) -> int | Adaptive:
    """A fresh limit for ``row``: a number, or a limit that moves (the told caller's too)."""
    most = scenario.most
    if row == TOLD:
        return Known(scenario.phases[0][0], most)
    if row == "AIMD":
        return AIMD(maximum=10 * most)
    if row == "Gradient":
        return Gradient(maximum=10 * most)
    if row == "unbounded":
        return UNBOUNDED
    if row.startswith("fixed "):
        return int(row.removeprefix("fixed "))
    raise ValueError(f"unknown row {row!r}; choose from: {', '.join(ROWS)}")


@dataclass(frozen=True)
class Target:
    """Where the calls go: ``call`` an item, ``resize`` the service, ask what it ``felt``."""

    call: Callable[[Item], Awaitable[str]]
    resize: Callable[[int], Awaitable[None]]
    felt: Callable[[], Awaitable[Felt]]


def simulated(scenario: Scenario) -> Target:
    """A fresh simulated service for one run."""
    service = scenario.service()

    async def resize(capacity: int) -> None:
        service.resize(capacity)

    async def felt() -> Felt:
        return service.felt

    return Target(service.call, resize, felt)


@dataclass(frozen=True)
class Run:
    """One row's one run: what got done in the scenario's time, and what the service felt."""

    row: str
    backend: str
    transport: str
    seconds: float
    succeeded: int = 0
    failed: int = 0
    turned_away: int = 0
    received: int = 0  # calls the service received: served or turned away, retries included
    retried: int = 0
    p95_s: float | None = None
    #: The row's limit over time, from the start: (seconds, limit); empty for a fixed one.
    limits: tuple[tuple[float, int], ...] = ()
    #: Why the row did not run here (a peer that does not fit this backend), or None.
    skipped: str | None = None
    #: The oracle's: a call's mean time in service, measured on the calm service.
    call_s: float | None = None

    @property
    def goodput(self) -> float:
        return self.succeeded / self.seconds if self.seconds > 0 else 0.0

    @property
    def away_share(self) -> float:
        return self.turned_away / self.received if self.received else 0.0


async def run_row(
    row: str, scenario: Scenario, target: Target, *, backend: str, transport: str, seed: int = 0
) -> Run:
    """``row`` calling ``target`` for the scenario's length, its capacity changed on schedule."""
    limit = limit_of(row, scenario)
    budget = Budget(scenario.budget)
    probe: Probe[Item] = Probe(anyio.current_time)
    retried = retrying(target.call, budget=budget, rng=random.Random(seed))
    work: Work[Item, str] = probe.wrap(retried)
    start = anyio.current_time()
    trace: list[tuple[float, int]] = []
    if isinstance(limit, Adaptive):
        held = limit  # the gate inside collect mode: it sees every failure, as its outcome

        def changed(n: int) -> None:
            trace.append((anyio.current_time() - start, n))

        held.on_change = changed
        trace.append((0.0, held.limit))
        work, bound = held.gate(work), held.maximum
    else:
        bound = limit
    collected = collect_errors(work, only=(Overloaded, WorkFailed))
    succeeded = failed = 0
    with anyio.move_on_after(scenario.seconds):
        async with anyio.create_task_group() as group:
            group.start_soon(follow, scenario, target, limit, start)
            async with worker_pool.stream(collected, endless(scenario), limit=bound) as outcomes:
                async for outcome in outcomes:
                    succeeded += outcome.ok
                    failed += not outcome.ok
    felt = await target.felt()
    return Run(
        row, backend, transport, scenario.seconds, succeeded=succeeded, failed=failed,
        turned_away=felt.turned_away, received=felt.served + felt.turned_away,
        retried=budget.retried, p95_s=p95(probe), limits=tuple(trace),
    )  # fmt: skip


async def follow(scenario: Scenario, target: Target, limit: object, start: float) -> None:
    """Change the service's capacity on schedule (and the told caller's limit with it)."""
    for at, capacity in scenario.changes():
        await anyio.sleep_until(start + at)
        await target.resize(capacity)
        if isinstance(limit, Known):
            limit.set(capacity)


def oracle(scenario: Scenario, service_s: Sequence[float], *, backend: str, transport: str) -> Run:
    """The oracle's row, from calls' times in service on the calm service: what keeping exactly
    the capacity in service at every moment gets done (:meth:`Scenario.ideal_calls`)."""
    if not service_s:
        raise ValueError("service_s is empty: the oracle needs calls measured on a calm service")
    per_call = statistics.fmean(service_s)
    return Run(
        ORACLE, backend, transport, scenario.seconds,
        succeeded=round(scenario.ideal_calls(per_call)), received=len(service_s),
        p95_s=_p95(sorted(service_s)), call_s=per_call,
    )  # fmt: skip


def endless(scenario: Scenario) -> Iterator[Item]:
    """Calls without end, each ``call_s`` in service: the run stops them when its time is up."""
    return (Item(i, scenario.call_s) for i in itertools.count())


def p95(probe: Probe[Item]) -> float | None:
    """The p95 of the calls that succeeded, first attempt to answer (retries included)."""
    return _p95(sorted(c.end - c.start for c in probe.calls if c.ok))


def _p95(ordered: Sequence[float]) -> float | None:
    """The nearest-rank p95 of values in order (None for none)."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


# --- the table: medians, shares of the oracle, and the verdict -----------------------------------


@dataclass(frozen=True)
class Row:
    """A row of the table: its median run (by goodput) of ``runs``, and its share of the
    oracle's goodput (the oracle's median run, on the same backend and transport)."""

    run: Run
    share: float | None
    runs: int

    @property
    def name(self) -> str:
        return self.run.row


def median_run(runs: Sequence[Run]) -> Run:
    """The run whose goodput is the median (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda r: r.goodput)
    return ordered[(len(ordered) - 1) // 2]


def table(runs: Sequence[Run]) -> list[Row]:
    """``runs`` of every row on each backend and transport, as the table's rows: one per row,
    backend and transport, in the order first seen, each its median run and share."""
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.backend, run.transport, run.row), []).append(run)
    rows = []
    for (backend, transport, _), group in groups.items():
        median = median_run(group)
        oracle = groups.get((backend, transport, ORACLE))
        base = median_run(oracle).goodput if oracle else 0.0
        share = median.goodput / base if base > 0 and median.skipped is None else None
        rows.append(Row(median, share, len(group)))
    return rows


#: The issue's claims: an adaptive limit at least this share of the oracle's goodput with at
#: most this share turned away; every fixed limit below that share or above this one turned
#: away; the HTTP adaptive row within this many points of its simulated figures.
ADAPTIVE_SHARE, ADAPTIVE_AWAY = 0.90, 0.05
FIXED_SHARE, FIXED_AWAY = 0.75, 0.20
HTTP_WITHIN = 0.10


@dataclass(frozen=True)
class Verdict:
    """Each claim checked on the table: what held, and what did not, in words."""

    held: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.held) and not self.failed


def adaptive_holds(row: Row) -> bool:
    return (
        row.share is not None
        and row.share >= ADAPTIVE_SHARE
        and (row.run.away_share <= ADAPTIVE_AWAY)
    )


def fixed_fails(row: Row) -> bool:
    """A fixed limit falls short one way or the other: too little done, or too much sent."""
    return row.share is not None and (row.share < FIXED_SHARE or row.run.away_share > FIXED_AWAY)


def within(http: Row, simulated: Row) -> bool:
    """The HTTP row's share and calls turned away within 10 points of the simulated row's."""
    if http.share is None or simulated.share is None:
        return False
    return (
        abs(http.share - simulated.share) <= HTTP_WITHIN
        and abs(http.run.away_share - simulated.run.away_share) <= HTTP_WITHIN
    )


def verdict(rows: Sequence[Row]) -> Verdict:
    """The claims on ``rows``: every adaptive row holds, every fixed row falls short, each
    adaptive row over HTTP within 10 points of the same row simulated on the same backend."""
    found = Verdict()
    for row in rows:
        where = f"{row.name} ({row.run.backend}, {row.run.transport})"
        if row.name in ADAPTIVE:
            (found.held if adaptive_holds(row) else found.failed).append(f"{where} adapts")
        elif row.name.startswith("fixed "):
            (found.held if fixed_fails(row) else found.failed).append(f"{where} falls short")
    simulated = {(r.name, r.run.backend): r for r in rows if r.run.transport == "simulated"}
    for row in rows:
        twin = simulated.get((row.name, row.run.backend))
        if row.name in ADAPTIVE and row.run.transport == "http" and twin is not None:
            said = f"{row.name} over http ({row.run.backend}) is within 10 points of simulated"
            (found.held if within(row, twin) else found.failed).append(said)
    return found


def spread(values: Sequence[float]) -> float:
    """The largest value's distance from the smallest, as a share of the median (0 for one)."""
    middle = statistics.median(values) if values else 0.0
    return (max(values) - min(values)) / middle if len(values) > 1 and middle else 0.0
