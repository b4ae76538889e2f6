"""The simulated workload every recipe runs: seeded latencies, optional failures, drawn lazily.

The defaults are those of the source article on the four patterns (article 002): 20 items,
each sleeping 0.5-1.5 s, run 5 at a time. A :class:`Workload` is an iterable of :class:`Item`;
each item carries its own latency and whether it fails, both drawn from one seeded generator
as the item is reached, so a workload of a billion items costs nothing until it is iterated,
and the same seed always gives the same items. :func:`do_work` is the call the patterns run.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Literal, get_args

import anyio

from patterns.contract import check, check_choice

#: What an item's latency is spent on: awaiting (io), a blocking call, or the CPU.
WorkKind = Literal["io", "blocking", "cpu"]
WORK_KINDS: tuple[WorkKind, ...] = get_args(WorkKind)
Distribution = Literal["uniform", "exponential", "pareto"]
#: The latency distributions; each has minimum ``low`` and mean ``(low + high) / 2``.
DISTRIBUTIONS: tuple[Distribution, ...] = get_args(Distribution)

# The Pareto shape: 1.5 has a finite mean and an infinite variance, the classic heavy tail.
_PARETO_SHAPE = 1.5
# A heavy tail without a cap can draw a latency of hours; truncating at 20 spreads above the
# minimum keeps a demo a demo while leaving rare items ~20x slower than typical ones.
_PARETO_CAP = 20.0


def _pareto_spread_per_scale() -> float:
    """spread / scale that gives the truncated tail a mean of exactly spread / 2.

    With X = scale * (Pareto(a) - 1) truncated at c = CAP * spread, E[X] is the integral of
    P(X > x) from 0 to c: 2 * scale * (1 - (1 + c / scale) ** -0.5) for a = 1.5. Setting it to
    spread / 2 and writing u = spread / scale gives 4 * (1 - (1 + CAP * u) ** -0.5) = u,
    solved here by bisection (u = 4 without the cap; the cap takes about 12% of the mean).
    """
    low, high = 1.0, 4.0
    for _ in range(60):
        u = (low + high) / 2
        if 4 * (1 - (1 + _PARETO_CAP * u) ** -0.5) > u:
            low = u
        else:
            high = u
    return (low + high) / 2


_PARETO_U = _pareto_spread_per_scale()


@dataclass(frozen=True, slots=True)
class Item:
    """One unit of simulated work: its position, how long it takes, and whether it fails."""

    index: int
    latency: float
    fails: bool = False

    def __str__(self) -> str:
        return f"item_{self.index}"


class WorkFailed(Exception):
    """Raised by :func:`do_work` for an item drawn to fail."""

    def __init__(self, item: Item) -> None:
        super().__init__(f"{item} failed (simulated failure)")
        self.item = item

    def __reduce__(self) -> tuple[type[WorkFailed], tuple[Item]]:
        # Rebuilt from its item, not its message, when it comes back from a worker process.
        return WorkFailed, (self.item,)


async def do_work(item: Item) -> str:
    """Wait for the item's latency, as an I/O call would, then name it or fail."""
    await anyio.sleep(item.latency)
    if item.fails:
        raise WorkFailed(item)
    return f"{item}_processed"


def block(item: Item) -> str:
    """The ``blocking`` kind: the item's latency spent in ``time.sleep``, as a sync SDK call
    (``requests.get``, a database driver without async support) would spend it."""
    time.sleep(item.latency)
    if item.fails:
        raise WorkFailed(item)
    return f"{item}_processed"


def burn(item: Item, *, rate: float) -> str:
    """The ``cpu`` kind: the item's latency spent in a pure-Python loop, holding the GIL, at
    ``rate`` turns a second (:func:`spin_rate`, measured once per process)."""
    total = 0
    for turn in range(round(item.latency * rate)):
        total ^= turn  # not +=: a sum outgrows one machine word and slows the loop as it runs
    if item.fails:
        raise WorkFailed(item)
    return f"{item}_processed"


@functools.cache
def spin_rate() -> float:
    """How many turns of :func:`burn`'s loop this process runs in a second of CPU (measured
    over 0.2 s, once): the ``cpu`` kind's calibration."""
    # CPU time, not wall time: a calibration the OS interrupts must not read as a slow CPU.
    turns, started = 0, time.process_time()
    while (elapsed := time.process_time() - started) < 0.2:
        burn(Item(0, 1.0), rate=20_000)  # 20,000 turns: about a millisecond
        turns += 20_000
    return turns / elapsed


def over_tcp(port: int, host: str = "127.0.0.1") -> Callable[[Item], Awaitable[str]]:
    """``do_work`` over a real socket: ask the toy server on ``port`` for the item's latency.

    The client side of the toy protocol (:mod:`patterns.lab.toy` serves it): each call opens a
    connection, sends ``delay SECONDS``, and reads until the server closes after ``end N``; an
    item drawn to fail fails after its answer, as with ``do_work``.
    """

    async def call(item: Item) -> str:
        async with await anyio.connect_tcp(host, port) as stream:
            await stream.send(f"delay {item.latency!r}\n".encode())
            answer = b""
            try:
                while True:
                    answer += await stream.receive()
            except anyio.EndOfStream:
                pass
        if b"end" not in answer:
            raise ConnectionError(f"{item}: the server answered {answer!r}")
        if item.fails:
            raise WorkFailed(item)
        return f"{item}_processed"

    return call


@dataclass(frozen=True, slots=True)
class Workload:
    """N items with seeded latencies between ``low`` and ``high`` seconds.

    ``uniform``: evenly between ``low`` and ``high``. ``exponential``: ``low`` plus an
    exponential tail with the same mean as the uniform one. ``pareto``: ``low`` plus a Pareto
    tail (shape 1.5) truncated at ``low + 20 * (high - low)`` and scaled so that its mean is
    that same mean: most items are fast, a few are very slow. ``failure_rate`` is each item's
    chance to fail. Changing the failure rate never changes the latencies of a seed.
    ``kind`` says what each latency is spent on: ``io`` awaits it (:func:`do_work`),
    ``blocking`` sleeps through it in a sync call (:func:`block`), ``cpu`` burns it
    (:func:`burn`); :func:`sync_work` gives the sync function of the last two.
    """

    items: int = 20
    low: float = 0.5
    high: float = 1.5
    distribution: Distribution = "uniform"
    failure_rate: float = 0.0
    seed: int = 0
    kind: WorkKind = "io"

    def __post_init__(self) -> None:
        check("items", self.items, 0)
        check("low", self.low, 0, whole=False)
        check("high", self.high, 0, whole=False)
        if self.low > self.high:
            raise ValueError(f"latency must satisfy low <= high, got {self.low}, {self.high}")
        check_choice("distribution", self.distribution, DISTRIBUTIONS)
        check("failure_rate", self.failure_rate, 0, 1, whole=False)
        check("seed", self.seed, -math.inf)
        check_choice("kind", self.kind, WORK_KINDS)

    def __len__(self) -> int:
        return self.items

    def __iter__(self) -> Iterator[Item]:
        rng = random.Random(self.seed)
        draw = self._drawer(rng)
        for index in range(self.items):
            latency = draw()
            # Always drawn, even at rate 0, so that the failure rate never shifts latencies.
            fails = rng.random() < self.failure_rate
            yield Item(index, latency, fails)

    def latencies(self) -> Iterator[float]:
        """The items' latencies, in input order, drawn afresh from the seed."""
        return (item.latency for item in self)

    def describe(self) -> str:
        """``20 items of 0.5–1.5 s``, for sentences and titles (``of CPU`` for cpu work)."""
        spread = f"{self.low:g}–{self.high:g} s"
        if self.distribution != "uniform":
            spread += f" ({self.distribution})"
        spent = {"io": "", "blocking": " blocking", "cpu": " of CPU"}[self.kind]
        return f"{self.items:,} items of {spread}{spent}"

    def sync_work(self) -> Callable[[Item], str]:
        """The sync function of a ``blocking`` or ``cpu`` workload; it pickles, for processes."""
        if self.kind == "blocking":
            return block
        if self.kind == "cpu":
            return functools.partial(burn, rate=spin_rate())
        raise ValueError("io work is async (do_work): it has no sync function")

    def _drawer(self, rng: random.Random) -> Callable[[], float]:
        low, spread = self.low, self.high - self.low
        if spread == 0:
            return lambda: low
        if self.distribution == "uniform":
            return lambda: rng.uniform(low, self.high)
        if self.distribution == "exponential":
            mean_extra = spread / 2
            return lambda: low + rng.expovariate(1 / mean_extra)
        # Pareto: scaled so that, truncated at the cap, its mean is still spread / 2.
        scale = spread / _PARETO_U
        cap = low + _PARETO_CAP * spread
        return lambda: min(cap, low + scale * (rng.paretovariate(_PARETO_SHAPE) - 1))
