"""The simulated service keeps its capacity and does what it says past it, on every backend:
turns calls away, queues them (within its queue), or serves them slower; and counts it all."""

from __future__ import annotations

import pickle

import anyio
import pytest

from patterns import buffered_unordered, collect_errors, scatter_gather
from patterns.lab.service import Overloaded, Service
from patterns.lab.workload import Item, WorkFailed

pytestmark = pytest.mark.anyio


def items(n: int, latency: float = 0.02) -> list[Item]:
    return [Item(index, latency) for index in range(n)]


async def all_at_once(service: Service, n: int, latency: float = 0.02) -> list[object]:
    """``n`` calls at once (scatter/gather), each outcome kept: a result or its error."""
    outcomes = await scatter_gather.run(collect_errors(service.call), items(n, latency), limit=1)
    return [o.value if o.ok else o.error for o in outcomes]


# Without a capacity, nothing is limited and nothing counted: the plain do_work.
async def test_no_capacity_is_the_plain_workload() -> None:
    service = Service()
    assert await all_at_once(service, 30) == [f"item_{n}_processed" for n in range(30)]
    assert service.felt.turned_away == 0
    assert service.felt.peak_in_service == 0  # not even counted


# reject: the first `capacity` calls are served, the rest turned away at once, with a hint.
async def test_reject_turns_away_what_is_over_capacity() -> None:
    service = Service(5, behaviour="reject", retry_after=0.25)
    with anyio.fail_after(0.5):  # turned away at once, not after a wait
        found = await all_at_once(service, 12)
    away = [o for o in found if isinstance(o, Overloaded)]
    assert len(away) == 7
    assert all(o.retry_after == 0.25 for o in away)
    assert service.felt.served == 5
    assert service.felt.turned_away == 7
    assert service.felt.peak_in_service == 5


# queue: calls over capacity wait, first come first served, and are all served; never more
# than `capacity` in service; the wait is counted.
async def test_queue_serves_everyone_within_capacity() -> None:
    service = Service(3, behaviour="queue")
    started = anyio.current_time()
    found = await all_at_once(service, 9, latency=0.03)
    assert found == [f"item_{n}_processed" for n in range(9)]
    assert service.felt.peak_in_service == 3
    assert service.felt.peak_waiting == 6
    assert service.felt.waited_s > 0.03 * 3  # 3 waited one latency, 3 waited two
    # Three rounds of three; uvloop's timers count whole ms and may fire up to 1 ms early.
    assert anyio.current_time() - started >= 3 * (0.03 - 0.001)


# queue: a full queue turns the next call away.
async def test_a_full_queue_turns_away() -> None:
    service = Service(2, behaviour="queue", queue_limit=3)
    found = await all_at_once(service, 8)
    assert sum(isinstance(o, Overloaded) for o in found) == 3
    assert service.felt.peak_waiting == 3


# A call cancelled while it waits in the queue gives its place back: no slot is lost.
async def test_cancelled_waiter_takes_no_slot() -> None:
    service = Service(1, behaviour="queue")
    with anyio.move_on_after(0.05):
        await all_at_once(service, 5, latency=1)
    assert service.felt.waiting == 0
    assert service.felt.in_service == 0
    with anyio.fail_after(1):
        assert await service.call(Item(0, 0.001)) == "item_0_processed"


# degrade: everyone served at once, but a call that enters with n > capacity in service takes
# (n / capacity)**2 times its latency: the crowd makes everyone slower.
async def test_degrade_serves_slower_past_capacity() -> None:
    service = Service(4, behaviour="degrade")
    started = anyio.current_time()
    assert await all_at_once(service, 8, latency=0.02) == [f"item_{n}_processed" for n in range(8)]
    took = anyio.current_time() - started
    assert service.felt.peak_in_service == 8
    assert service.felt.turned_away == 0
    assert took >= 0.02 * (8 / 4) ** 2 * 0.9  # the last to enter, with 8 in service: 4x (a loop
    # whose clock counts whole ms, uvloop, reads 0.0799... for 0.08)


# A bounded pattern at the capacity loses nothing: no call turned away, none slowed.
@pytest.mark.parametrize("behaviour", ["reject", "queue", "degrade"])
async def test_bounded_at_capacity_loses_nothing(behaviour: str) -> None:
    service = Service(4, behaviour=behaviour)  # type: ignore[arg-type]
    found = await buffered_unordered.run(service.call, items(16), limit=4)
    assert len(found) == 16
    assert service.felt.turned_away == 0
    assert service.felt.peak_waiting == 0
    assert service.felt.peak_in_service == 4


# A failing item fails as it does without the service, after being served.
async def test_failures_pass_through() -> None:
    service = Service(2, behaviour="queue")
    with pytest.raises(WorkFailed):
        await service.call(Item(0, 0.001, fails=True))
    assert service.felt.served == 1


# The overload error crosses processes as itself (threads, processes, a cluster).
def test_overloaded_pickles() -> None:
    error = pickle.loads(pickle.dumps(Overloaded(Item(3, 0.1), 0.5)))
    assert isinstance(error, Overloaded)
    assert (error.item.index, error.retry_after) == (3, 0.5)


# Bad arguments are named.
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity": 0}, "capacity must be >= 1"),
        ({"capacity": 2, "behaviour": "drop"}, "behaviour must be one of reject, queue, degrade"),
        ({"capacity": 2, "queue_limit": -1}, "queue_limit must be >= 0"),
        ({"capacity": 2, "retry_after": -1.0}, "retry_after must be a finite number >= 0"),
        ({"rate": 0.0}, "rate must be a finite number > 0, got 0"),
        ({"rate": -1.0}, "rate must be a finite number >= 0"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        Service(**kwargs)  # type: ignore[arg-type]


# A rate spaces admissions 1 / rate apart: reject turns an early call away with the time to
# its turn as the hint; queue makes it wait for its turn, and serves everyone.
async def test_a_rate_spaces_the_calls() -> None:
    service = Service(behaviour="reject", rate=50)
    found = await all_at_once(service, 5, latency=0.001)
    away = [o for o in found if isinstance(o, Overloaded)]
    assert len(away) == 4
    assert all(0 < o.retry_after <= 0.02 + 1e-9 for o in away)  # the time left to its turn
    queued = Service(behaviour="queue", rate=50)
    started = anyio.current_time()
    found = await all_at_once(queued, 5, latency=0.001)
    assert found == [f"item_{n}_processed" for n in range(5)]
    # Four waits of 20 ms, to turns on a schedule; uvloop's timers may fire up to 1 ms early.
    assert anyio.current_time() - started >= 0.08 - 0.001
    assert queued.felt.peak_waiting == 4
    assert queued.felt.served == 5


# A service says what it is, for titles and sentences.
def test_a_service_describes_itself() -> None:
    assert Service().describe() == "a service without a limit"
    assert Service(5).describe() == "a service that serves 5 at once and turns the rest away"
    assert (
        Service(5, behaviour="degrade", rate=20).describe()
        == "a service that serves 5 at once and admits 20 a second and slows down past it"
    )
    assert Service(rate=2, behaviour="queue").describe() == (
        "a service that admits 2 a second and queues the rest"
    )
