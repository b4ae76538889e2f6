"""The adaptive limit (patterns.adaptive): its gate, and how AIMD and Gradient move.

The conformance suite runs every recipe with one; these are the rules of the limit itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from patterns.adaptive import AIMD, Gradient

pytestmark = pytest.mark.anyio


class Overloaded(Exception):
    """The service turned the call away."""


class Other(Exception):
    """A failure that says nothing of load (a 404)."""


def aimd(initial: int = 4, **kwargs: Any) -> AIMD:
    return AIMD(initial, overload=(Overloaded,), **kwargs)


async def call(limit: AIMD | Gradient, go: anyio.Event, error: Exception | None = None) -> None:
    """One call through the gate: in, wait for ``go``, then succeed or raise ``error``."""

    async def work(item: None) -> None:
        await go.wait()
        if error is not None:
            raise error

    with contextlib.suppress(Overloaded, Other):
        await limit.gate(work)(None)


async def _run(work: Callable[[Any], Awaitable[Any]], item: Any) -> None:
    await work(item)


async def at_once(limit: AIMD | Gradient, errors: list[Exception | None]) -> None:
    """Calls that start together (all in the gate) and end together, with these outcomes."""
    go = anyio.Event()
    async with anyio.create_task_group() as tg:
        for error in errors:
            tg.start_soon(call, limit, go, error)
        await anyio.wait_all_tasks_blocked()
        go.set()


# The limit grows on success only while at least half of it is in use: calls one at a time
# under a limit of 4 are no evidence that 5 would do.
async def test_grows_only_when_in_use() -> None:
    limit = aimd(4)
    for _ in range(10):
        await at_once(limit, [None])  # one in flight of 4
    assert limit.limit == 4
    await at_once(limit, [None] * 4)  # all 4 in use: slow start, +1 per success in use
    assert limit.limit > 4


# One cut per overshoot: the first call turned away cuts by `backoff`, each further call of the
# same overshoot (started before that cut) takes one more off; a call started after the cut
# and turned away cuts again.
async def test_one_cut_per_overshoot() -> None:
    limit = aimd(10, backoff=0.5)
    seen: list[int] = []
    limit.on_change = seen.append
    await at_once(limit, [Overloaded(), Overloaded(), Overloaded()])
    assert seen == [5, 4, 3]
    await at_once(limit, [Overloaded()])  # started after the cut: a new overshoot
    assert seen == [5, 4, 3, 1]
    assert limit._cuts == 2
    assert limit.in_flight == 0


# A failure that says nothing of load moves nothing, however many.
async def test_other_failures_do_not_move_it() -> None:
    limit = aimd(6)
    await at_once(limit, [Other() for _ in range(6)])
    assert (limit.limit, limit._cuts) == (6, 0)


# The minimum and the maximum hold, whatever the outcomes.
async def test_minimum_and_maximum_hold() -> None:
    limit = aimd(3, minimum=2, maximum=5)
    for _ in range(4):
        await at_once(limit, [Overloaded()] * 3)
    assert limit.limit == 2
    for _ in range(20):
        await at_once(limit, [None] * limit.limit)
    assert limit.limit == 5
    gradient = Gradient(3, minimum=2, maximum=5, overload=(Overloaded,))
    for _ in range(4):
        await at_once(gradient, [Overloaded()] * 3)
    assert gradient.limit == 2


# Waiters go in first come, first in.
async def test_waiters_are_fifo() -> None:
    limit = aimd(1, maximum=1)
    order: list[int] = []
    release = anyio.Event()

    async def work(item: int) -> None:
        order.append(item)
        if item == 0:
            await release.wait()

    async with anyio.create_task_group() as tg:
        for item in range(6):
            tg.start_soon(_run, limit.gate(work), item)
            await anyio.wait_all_tasks_blocked()  # queued in this order
        release.set()
    assert order == list(range(6))


# A waiter let in and cancelled before it ran passes its place on: the next waiter gets in,
# and the count stays true.
async def test_waiter_let_in_then_cancelled_passes_its_place_on() -> None:
    limit = aimd(1, maximum=1)
    release = anyio.Event()
    ran: list[str] = []

    async def work(name: str) -> None:
        ran.append(name)
        if name == "holder":
            await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(_run, limit.gate(work), "holder")
        await anyio.wait_all_tasks_blocked()
        with anyio.CancelScope() as scope:
            tg.start_soon(_run, limit.gate(work), "behind")  # queued behind the cancelled one
            release.set()  # the holder leaves and hands its place to the waiter below...
            scope.cancel()  # ...cancelled before it runs
            await limit.gate(work)("cancelled")
    assert ran == ["holder", "behind"]
    assert (limit.in_flight, len(limit._waiting)) == (0, 0)


# Cancelled while waiting: nothing is left behind, in the line or in the count.
async def test_cancelled_waiters_leave_nothing_behind() -> None:
    limit = aimd(1, maximum=1)
    release = anyio.Event()

    async def hold(item: int) -> None:
        await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(_run, limit.gate(hold), 0)
        await anyio.wait_all_tasks_blocked()
        for item in range(5):
            with anyio.move_on_after(0.001):
                await limit.gate(hold)(item)
        assert (limit.in_flight, len(limit._waiting)) == (1, 0)
        release.set()
    assert limit.in_flight == 0
    with anyio.fail_after(1):
        await limit.gate(anyio.sleep)(0)  # the place is there to take


# Bad arguments raise at once, naming the argument.
@pytest.mark.parametrize(
    ("kind", "kwargs", "error", "name"),
    [
        (AIMD, {"initial": 0}, ValueError, "initial"),
        (AIMD, {"initial": 2.5}, TypeError, "initial"),
        (AIMD, {"minimum": 0}, ValueError, "minimum"),
        (AIMD, {"minimum": 5, "initial": 4}, ValueError, "initial"),
        (AIMD, {"maximum": 2, "initial": 4}, ValueError, "initial"),
        (AIMD, {"maximum": True}, TypeError, "maximum"),
        (AIMD, {"backoff": 1.5}, ValueError, "backoff"),
        (AIMD, {"overload": Overloaded}, TypeError, "overload"),
        (Gradient, {"tolerance": 0.5}, ValueError, "tolerance"),
        (Gradient, {"smoothing": 0}, ValueError, "smoothing"),
        (Gradient, {"backoff": "0.9"}, TypeError, "backoff"),
    ],
)
async def test_bad_arguments(
    kind: type[AIMD | Gradient], kwargs: dict[str, Any], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=name):
        kind(**kwargs)
    with pytest.raises(TypeError, match="work"):
        AIMD().gate(42)  # type: ignore[arg-type]


# Gradient backs off when round trips grow, before anything is turned away: calls queueing at
# the service show as latency first. (Fed its outcomes directly: round trips, no clock.)
def test_gradient_backs_off_on_latency() -> None:
    limit = Gradient(20, maximum=100, overload=(Overloaded,))
    for _ in range(20):  # calm: 10 ms round trips with the limit in use
        for _ in range(limit.limit):
            limit._observe(None, 0.010, limit.limit, limit._cuts)
    calm = limit.limit
    assert calm > 20  # it probes upwards while round trips hold
    for _ in range(5):  # round trips triple: the service is queueing
        for _ in range(limit.limit):
            limit._observe(None, 0.030, limit.limit, limit._cuts)
    assert limit.limit < calm * 0.7
    assert limit._cuts == 0  # no call was turned away


# Calls quicker than the clock's tick (uvloop counts whole ms; trio's mock clock stands still)
# give Gradient round trips of 0: no reading, not a ZeroDivisionError after the work succeeded.
def test_gradient_takes_round_trips_of_zero() -> None:
    limit = Gradient(initial=4)
    for _ in range(50):
        limit._observe(None, 0.0, limit.limit, 0)
    assert limit.limit == 4


# A call started before the last cut says nothing of the new limit: its success does not grow
# it (counted, it undid every cut at a capacity of 2 or 3).
def test_a_success_from_before_the_cut_does_not_grow_it() -> None:
    limit = AIMD(initial=3)
    limit._observe(TimeoutError(), 0.01, 3, 0)  # the cut: 3 -> 2.7
    assert limit.limit == 2
    for _ in range(10):
        limit._observe(None, 0.01, 3, 0)  # calls from before the cut
    assert limit.limit == 2
    for _ in range(10):
        limit._observe(None, 0.01, 2, 1)  # calls since: +1/limit each
    assert limit.limit > 2


# A limit sizes one throttle's pool, and only that: a second throttle, a recipe's gate, or a
# throttle over a limit a recipe is using would wait on a line nobody wakes; each is refused.
async def test_one_limit_one_throttle() -> None:
    from patterns import worker_pool
    from patterns.throttle import Throttle

    owned = AIMD()
    Throttle(owned)
    with pytest.raises(ValueError, match="max_concurrency"):
        Throttle(owned)
    with pytest.raises(ValueError, match="sizes a Throttle's pool"):
        await worker_pool.run(_one, range(3), limit=owned)
    busy, go = AIMD(), anyio.Event()

    async def held(item: int) -> int:
        await go.wait()
        return item

    async with worker_pool.stream(held, range(3), limit=busy) as results:
        while not busy.in_flight:
            await anyio.lowlevel.checkpoint()
        with pytest.raises(ValueError, match="max_concurrency"):
            Throttle(busy)
        go.set()
        assert sorted([r async for r in results]) == [0, 1, 2]


async def _one(item: int) -> int:
    await anyio.lowlevel.checkpoint()
    return item


class _NoRoom:
    """A limit whose maximum allows nothing: refused, naming it, before any call."""

    maximum = 0

    def gate(self, work: Any) -> Any:
        return work


# A limit's maximum is the recipes' fixed bound: one below 1 is refused at once, not a hang.
async def test_a_limit_without_room_is_refused() -> None:
    from patterns import PATTERNS

    for pattern in PATTERNS.values():
        if pattern.BOUNDED:
            with pytest.raises(ValueError, match=r"limit\.maximum|max_concurrency"):
                await pattern.run(_one, range(2), limit=_NoRoom())
