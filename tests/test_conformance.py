"""One conformance suite for every registered pattern, on every backend.

Each test states its property in the comment above it. The fixtures ``pattern`` (every
registered pattern), ``bounded`` (those that honour ``limit``) and ``anyio_backend`` (asyncio,
uvloop, trio) come from conftest.py.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patterns import Outcome, Pattern, collect_errors
from patterns.adaptive import AIMD
from patterns.buffered_ordered import stream as ordered_stream
from patterns.retry import Budget, retrying

from .spy import Boom, Spy, consume, expected, task_ids

pytestmark = pytest.mark.anyio

# Races are found by repetition: each racing test runs this many times per pattern and backend.
# trio shuffles the order in which ready tasks run, so its runs differ and a race shows in some
# of them (a check removed from a recipe showed in 2% to all of its runs). asyncio and uvloop run
# ready tasks first in, first out: without a timer in the work, every run of a test is the same
# run, so a few say as much as many (the same removed checks showed in all or none of 200 runs).
RACE_RUNS = {"trio": 200, "asyncio": 20}


# How many items a bounded pattern may have pulled and not finished: `limit` in flight, plus
# the one its spawner holds while it waits for room; the worker pool's channel holds up to
# `limit` more, as an asyncio.Queue(limit) would. A generator is never read further ahead.
def pull_ahead(pattern: Pattern, limit: int) -> int:
    if pattern.__name__ == "patterns.worker_pool":
        return 2 * limit + 1
    return limit + 1


# run returns every result exactly once, in input order, whatever order the calls finish in.
async def test_run_returns_results_in_input_order(pattern: Pattern) -> None:
    spy = Spy()
    work = spy.work(latency=lambda i: 0.001 * ((i * 7) % 5))
    assert await pattern.run(work, range(23), limit=4) == expected(23)
    assert sorted(spy.started) == list(range(23))


# stream yields each result exactly once, in completion order.
async def test_stream_yields_each_result_once(pattern: Pattern) -> None:
    spy = Spy()
    got = []
    async with pattern.stream(spy.work(lambda i: 0.001 * (i % 3)), range(17), limit=3) as results:
        async for result in results:
            got.append(result)
    assert sorted(got) == sorted(expected(17))
    assert len(spy.started) == 17


# An async iterable is as good an input as a list, and is pulled in order.
async def test_async_iterable_input(pattern: Pattern) -> None:
    spy = Spy()
    assert await pattern.run(spy.work(), spy.aitems(12), limit=3) == expected(12)
    assert spy.pulled == 12


# No items: no calls, no results, no hang.
async def test_empty_input(pattern: Pattern) -> None:
    spy = Spy()
    assert await pattern.run(spy.work(), [], limit=3) == []
    async with pattern.stream(spy.work(), iter(()), limit=3) as results:
        assert [r async for r in results] == []
    assert spy.started == []


# A bounded pattern never has more than `limit` calls in flight, and reaches it when saturated.
@pytest.mark.parametrize(("n", "limit"), [(30, 4), (3, 5), (10, 1)])
async def test_never_above_limit_and_reaches_it(bounded: Pattern, n: int, limit: int) -> None:
    spy = Spy()
    await bounded.run(spy.work(lambda i: 0.002 + 0.001 * (i % 4)), range(n), limit=limit)
    assert spy.max_running == min(limit, n)


# scatter/gather is the unbounded baseline: everything runs at once, whatever the limit.
async def test_scatter_gather_runs_everything_at_once() -> None:
    from patterns import scatter_gather

    spy = Spy()
    await scatter_gather.run(spy.work(lambda i: 0.01), range(25), limit=2)
    assert spy.max_running == 25


# A bounded pattern pulls lazily: at most `limit` plus a small fixed number ahead of completion.
async def test_pulls_input_lazily(bounded: Pattern) -> None:
    spy = Spy()
    await bounded.run(spy.work(lambda i: 0.001 * (i % 3)), spy.items(40), limit=5)
    assert spy.max_ahead <= pull_ahead(bounded, 5)


# A million-item generator is never materialised: breaking out early pulls only a handful.
async def test_million_item_generator_is_not_materialised(bounded: Pattern) -> None:
    spy = Spy()
    taken = 0
    async with bounded.stream(spy.work(lambda i: 0.0), spy.items(1_000_000), limit=8) as results:
        async for _ in results:
            taken += 1
            if taken == 50:
                break
    # taken, plus pulled ahead, plus a result buffer of `limit`
    assert spy.pulled <= 50 + pull_ahead(bounded, 8) + 8


# A failing call cancels the rest, leaves nothing running, and raises itself: no ExceptionGroup.
async def test_failure_propagates_bare_and_cancels_the_rest(pattern: Pattern) -> None:
    spy = Spy()
    before = task_ids()
    work = spy.work(latency=lambda i: 0.005 if i == 2 else 5, fail=lambda i: i == 2)
    with pytest.raises(Boom) as caught:
        await pattern.run(work, range(20), limit=4)
    assert type(caught.value) is Boom
    assert caught.value.item == 2
    assert spy.running == 0
    assert spy.cancelled  # the slow calls in flight were cancelled, not awaited to the end
    assert task_ids() == before


# The same holds in a stream block: the failure, bare, out of the block.
async def test_failure_in_stream_block(pattern: Pattern) -> None:
    spy = Spy()
    work = spy.work(latency=lambda i: 0.001 if i < 3 else 5, fail=lambda i: i == 2)
    with pytest.raises(Boom):
        await consume(pattern, work, range(10), limit=3)
    assert spy.running == 0


# The failure is raised as the work raised it: its own __cause__ and `from None`, not the
# exception group's, in run and in a stream block; on trio its __context__ too. (On asyncio,
# Python itself re-chains an implicit __context__ to the CancelledError of the block the
# failure leaves, as coroutine.throw() does: docs/contract.md says so.)
@pytest.mark.parametrize("chained", ["from", "during", "from None"])
async def test_failure_keeps_its_cause_and_context(
    pattern: Pattern, chained: str, anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    async def work(item: int) -> str:
        await anyio.sleep(0.001 if item == 1 else 1)
        if item != 1:
            return str(item)
        try:
            raise KeyError("inner")
        except KeyError as inner:
            if chained == "from":
                raise ValueError("outer") from inner
            if chained == "during":
                raise ValueError("outer")  # noqa: B904 (the implicit context is the point)
            raise ValueError("outer") from None

    for run in (pattern.run, functools.partial(consume, pattern)):
        with pytest.raises(ValueError, match=r"^outer$") as caught:
            await run(work, range(4), limit=4)
        error = caught.value
        assert type(error.__cause__) is (KeyError if chained == "from" else type(None))
        assert error.__suppress_context__ is (chained != "during")
        if anyio_backend[0] == "trio":
            assert isinstance(error.__context__, KeyError)  # kept, even under "from None"


# Failures at the same moment: the first propagates, the others are named in its notes.
async def test_simultaneous_failures_are_noted(pattern: Pattern) -> None:
    go = anyio.Event()

    async def work(item: int) -> int:
        if item < 3:
            await go.wait()
            raise Boom(item)
        if item == 3:
            await anyio.sleep(0.01)
            go.set()  # all three failing calls wake in the same loop pass
        await anyio.sleep(5)
        return item

    with pytest.raises(Boom) as caught:
        await pattern.run(work, range(6), limit=4)
    named = {caught.value.item} | {
        i
        for i in range(3)
        for note in getattr(caught.value, "__notes__", [])
        if f"item {i}" in note
    }
    assert named == {0, 1, 2}


# The caller's own exception inside the stream block propagates bare, and cancels the calls.
async def test_consumer_exception_propagates_bare(pattern: Pattern) -> None:
    spy = Spy()
    before = task_ids()
    slow_but_first = spy.work(lambda i: 0.001 if i == 0 else 5)

    def fail(result: str) -> None:
        raise KeyError(result)

    with pytest.raises(KeyError) as caught:
        await consume(pattern, slow_but_first, range(9), limit=3, on_result=fail)
    assert type(caught.value) is KeyError
    assert spy.running == 0
    assert task_ids() == before


# Breaking out of the block cancels and awaits every call in flight before the block exits.
async def test_break_cancels_calls_in_flight(pattern: Pattern) -> None:
    spy = Spy()
    before = task_ids()
    async with pattern.stream(
        spy.work(lambda i: 0.001 if i == 0 else 5), range(9), limit=3
    ) as results:
        async for _ in results:
            break
    assert spy.running == 0
    assert spy.cancelled
    assert task_ids() == before


class _Late:
    """Work that counts the calls beginning after ``stopped`` was set, and can fail once."""

    def __init__(self, fail_at: int | None) -> None:
        self.stopped = False
        self.late = 0
        self.fail_at = fail_at

    async def work(self, item: int) -> int:
        if self.stopped:
            self.late += 1
        for _ in range(item % 3):  # finishing out of order, as real calls do
            await anyio.lowlevel.checkpoint()
        if item == self.fail_at:
            self.stopped = True
            raise Boom(item)
        return item


# No call starts once the stream has stopped: after a failure, a break, or an outer cancellation.
@pytest.mark.parametrize("how", ["failure", "break", "cancel"])
async def test_no_call_starts_after_the_stream_stops(
    pattern: Pattern, how: str, anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    late_runs = []
    runs = RACE_RUNS[anyio_backend[0]]
    for run in range(runs):
        late = _Late(fail_at=10 if how == "failure" else None)
        if how == "failure":
            with pytest.raises(Boom):
                await pattern.run(late.work, range(40), limit=5)
        else:
            with anyio.CancelScope() as outer:
                async with pattern.stream(late.work, range(40), limit=5) as results:
                    try:
                        async for result in results:
                            if result >= 10 and how == "break":
                                late.stopped = True
                                break
                            if result >= 10:
                                outer.cancel()  # reaches the consumer at its next wait...
                    except anyio.get_cancelled_exc_class():
                        late.stopped = True  # ...and from here it leaves the block
                        raise
        if late.late:
            late_runs.append((run, late.late))
    assert late_runs == [], f"(run, calls started late) over {runs} runs"


# An outer cancellation (here a timeout) reaches every call, and nothing is left running.
async def test_outer_cancellation_leaves_nothing_running(pattern: Pattern) -> None:
    spy = Spy()
    before = task_ids()
    with anyio.move_on_after(0.05) as scope:
        await pattern.run(spy.work(lambda i: 5), range(9), limit=3)
    assert scope.cancelled_caught
    assert spy.running == 0
    assert spy.cancelled
    assert task_ids() == before


# fail_after around a pattern raises TimeoutError, the caller's own exception, not a group.
async def test_timeout_raises_timeout_error(pattern: Pattern) -> None:
    spy = Spy()
    with pytest.raises(TimeoutError), anyio.fail_after(0.05):
        await consume(pattern, spy.work(lambda i: 5), range(9), limit=3)
    assert spy.running == 0


# A half-read async generator input is closed before the block exits: its cleanup has run.
async def test_async_generator_input_is_closed(pattern: Pattern) -> None:
    spy = Spy()
    closed = False

    async def source() -> AsyncIterator[int]:
        nonlocal closed
        try:
            for i in range(1000):
                await anyio.lowlevel.checkpoint()
                yield i
        finally:
            closed = True

    with pytest.raises(_Stop):
        await consume(pattern, spy.work(), source(), limit=3, on_result=_stop)
    assert closed


def _stop(result: str) -> None:
    raise _Stop


class _Stop(Exception):
    pass


# Collect mode never cancels: every item comes back with its result or its error.
async def test_collect_errors_returns_every_outcome(pattern: Pattern) -> None:
    spy = Spy()
    work = spy.work(lambda i: 0.001 * (i % 3), fail=lambda i: i % 4 == 1)
    outcomes = await pattern.run(collect_errors(work), range(13), limit=3)
    assert [o.item for o in outcomes] == list(range(13))
    for outcome in outcomes:
        if outcome.item % 4 == 1:
            assert isinstance(outcome.error, Boom)
            with pytest.raises(Boom):
                outcome.unwrap()
        else:
            assert outcome.unwrap() == f"item_{outcome.item}_processed"
    assert spy.cancelled == []


# A source that raises is a failure like any other: it propagates bare and stops the calls.
async def test_failing_source_propagates(pattern: Pattern) -> None:
    spy = Spy()

    def source() -> Any:
        yield from range(3)
        raise OSError("source broke")

    with pytest.raises(OSError, match="source broke"):
        await pattern.run(spy.work(lambda i: 5), source(), limit=5)
    assert spy.running == 0


# Bad limits fail at once, naming the argument, before any call starts.
@pytest.mark.parametrize(
    ("limit", "error"),
    [
        (True, TypeError),
        (None, TypeError),
        (1.5, TypeError),
        ("5", TypeError),
        (0, ValueError),
        (-3, ValueError),
    ],
)
async def test_bad_limit_is_rejected(pattern: Pattern, limit: Any, error: type[Exception]) -> None:
    spy = Spy()
    with pytest.raises(error, match="limit"):
        await pattern.run(spy.work(), range(5), limit=limit)
    with pytest.raises(error, match="limit"):
        async with pattern.stream(spy.work(), range(5), limit=limit):
            pass  # pragma: no cover - never entered
    assert spy.started == []


# Work that is not callable and items that are not iterable are named in the error.
async def test_bad_work_and_items_are_rejected(pattern: Pattern) -> None:
    spy = Spy()
    with pytest.raises(TypeError, match="work"):
        await pattern.run(42, range(5), limit=2)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="items"):
        await pattern.run(spy.work(), 42, limit=2)  # type: ignore[arg-type]
    assert spy.started == []


async def _agen(item: int) -> AsyncIterator[int]:
    yield item


def _gen(item: int) -> Iterator[int]:
    yield item


# What surely returns no awaitable is refused before any call, naming `work`; a plain function
# returning a coroutine is as good as an async def.
@pytest.mark.parametrize(
    "work",
    [_agen, _gen, print, str, functools.partial(_gen)],
    ids=["async-generator", "generator", "builtin", "class", "partial-of-generator"],
)
async def test_work_that_returns_no_awaitable_is_refused(pattern: Pattern, work: Any) -> None:
    with pytest.raises(TypeError, match=r"work must be an async callable.*async def"):
        await pattern.run(work, range(5), limit=2)
    spy = Spy()
    async_work = spy.work()
    assert await pattern.run(lambda i: async_work(i), range(3), limit=2) == expected(3)


# Random workloads: every item exactly once, never above the limit, and the first failure wins.
@settings(max_examples=15, deadline=None)
@given(
    latencies=st.lists(st.integers(0, 3), max_size=25),
    limit=st.integers(1, 6),
    failing=st.sets(st.integers(0, 24), max_size=3),
)
async def test_random_workloads(
    pattern: Pattern, latencies: list[int], limit: int, failing: set[int]
) -> None:
    n = len(latencies)
    failing = {i for i in failing if i < n}
    spy = Spy()
    work = spy.work(lambda i: latencies[i] / 1000, fail=lambda i: i in failing)
    outcomes: list[Outcome[int, str]] = await pattern.run(
        collect_errors(work), range(n), limit=limit
    )
    assert [o.item for o in outcomes] == list(range(n))
    assert {o.item for o in outcomes if not o.ok} == failing
    if pattern.BOUNDED:
        assert spy.max_running <= limit
    if failing:
        with pytest.raises(Boom) as caught:
            await pattern.run(work, range(n), limit=limit)
        assert caught.value.item in failing
    else:
        assert await pattern.run(work, range(n), limit=limit) == expected(n)
    assert spy.running == 0


# The ordered form yields in input order, and stays within its limit.
async def test_buffered_ordered_yields_input_order() -> None:
    spy = Spy()
    async with ordered_stream(
        spy.work(lambda i: 0.001 * ((i * 5) % 4)), range(30), limit=4
    ) as results:
        got = [r async for r in results]
    assert got == expected(30)
    assert spy.max_running <= 4


# The ordered form's reorder window: a slow head item holds back at most `window` started items.
async def test_buffered_ordered_window_bounds_the_buffer() -> None:
    spy = Spy()
    async with ordered_stream(
        spy.work(lambda i: 0.05 if i == 0 else 0.0), spy.items(100), limit=3, window=6
    ) as results:
        first = await anext(results)
        # While item 0 was slow, the other slots went on only until the window was full.
        assert len(spy.started) <= 6 + 1
    assert first == "item_0_processed"


# The ordered form's arguments are checked like limit.
async def test_buffered_ordered_bad_arguments() -> None:
    spy = Spy()
    with pytest.raises(ValueError, match="window"):
        async with ordered_stream(spy.work(), range(3), limit=4, window=2):
            pass  # pragma: no cover
    with pytest.raises(TypeError, match="window"):
        async with ordered_stream(spy.work(), range(3), limit=4, window="8"):  # type: ignore[arg-type]
            pass  # pragma: no cover


# --- an adaptive limit (patterns.adaptive) in place of an int, on every pattern and backend -------


class Overloaded(Exception):
    """The service turned the call away (a 429): what the adaptive limit cuts on, and a retry
    retries."""

    retry_after = 0.0  # the service's hint: at once (the retry adds its jitter)


def aimd(initial: int = 2, maximum: int = 8) -> AIMD:
    return AIMD(initial, maximum=maximum, overload=(Overloaded,))


class Watch:
    """Work under an adaptive limit that counts its calls in flight and holds each start to the
    ceiling: the largest limit in force since the gate last held no more calls than its limit.
    (A call let in under a larger limit may start just after a cut; none may start beyond it.)"""

    def __init__(self, limit: AIMD) -> None:
        self.limit = limit
        self.running = self.peak = 0
        self.ceiling = limit.limit
        self.limits = [limit.limit]  # the limit at each change
        self.over: list[tuple[int, int]] = []  # (in flight, ceiling) at each start above it
        self.started: list[int] = []
        self.cancelled: list[int] = []
        self.shape: list[tuple[int, int]] = []  # (in flight, limit) at each start
        limit.on_change = self.changed

    def changed(self, new: int) -> None:
        self.limits.append(new)
        self.note()

    def note(self) -> None:
        limit = self.limit
        fits = limit.in_flight <= limit.limit
        self.ceiling = limit.limit if fits else max(self.ceiling, limit.limit)

    def work(
        self, latency: float = 0.001, service: Callable[[int], None] = lambda running: None
    ) -> Callable[[int], Awaitable[str]]:
        async def work(item: int) -> str:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.started.append(item)
            self.note()
            self.shape.append((self.running, self.limit.limit))
            if self.running > self.ceiling:
                self.over.append((self.running, self.ceiling))
            try:
                service(self.running)  # may turn the call away
                await anyio.sleep(latency)
                return f"item_{item}_processed"
            except anyio.get_cancelled_exc_class():
                self.cancelled.append(item)
                raise
            finally:
                self.running -= 1
                self.note()

        return work


# With an adaptive limit, every item is run exactly once and its result comes back in input
# order; a bounded pattern never has more calls in flight than the ceiling (Watch), and the limit,
# in use, grows from where it started; every place in the gate is given back.
async def test_adaptive_limit_exactly_once_and_never_above(pattern: Pattern) -> None:
    limit = aimd()
    watch = Watch(limit)
    run: Any = pattern.run
    assert await run(watch.work(), range(40), limit=limit) == expected(40)
    assert sorted(watch.started) == list(range(40))
    if pattern.BOUNDED:
        assert watch.over == []
        assert max(watch.limits) > 2  # it grew: the check above was not of a limit standing still
        assert watch.peak > 2
    assert limit.in_flight == 0


# Shrinking under load: once the service turns away calls past 3 in flight, the retried
# overloads bring the limit down and the calls in flight follow it down (never above the ceiling),
# none cancelled; every item still runs to success exactly once, and every place is given back.
async def test_adaptive_limit_shrinks_under_load(bounded: Pattern) -> None:
    limit = aimd(initial=12, maximum=16)
    watch = Watch(limit)

    def service(running: int) -> None:
        if len(watch.started) > 30 and running > 3:  # from the 31st call on, capacity 3
            raise Overloaded

    budget = Budget(1.0, reserve=1000)
    work = retrying(watch.work(0.001, service), attempts=50, base=0.001, cap=0.004, budget=budget)
    run: Any = bounded.run
    assert await run(work, range(80), limit=limit) == expected(80)
    assert watch.over == []
    assert watch.cancelled == []
    assert budget.retried > 0
    assert min(watch.limits) <= 4  # the limit came down to the capacity...
    # ...and the calls in flight with it: the last starts ran at most a few over the capacity.
    assert max(running for running, _ in watch.shape[-20:]) <= 5
    assert max(running for running, _ in watch.shape[:30]) >= 10
    assert limit.in_flight == 0


# Fail-fast with an adaptive limit: a failing call (here one the service turned away, which
# also cuts the limit) propagates as raised, the same object, cancelling the rest; nothing runs
# on and every place in the gate is given back.
@pytest.mark.parametrize("error", [Boom(3), Overloaded("turned away")], ids=["boom", "overload"])
async def test_adaptive_limit_fails_fast(pattern: Pattern, error: Exception) -> None:
    limit = aimd(initial=3)
    watch = Watch(limit)
    before = task_ids()

    def service(running: int) -> None:
        if len(watch.started) == 6:
            raise error

    run: Any = pattern.run
    with pytest.raises(type(error)) as caught:
        await run(watch.work(0.005, service), range(20), limit=limit)
    assert caught.value is error
    assert watch.running == 0
    assert watch.cancelled
    assert task_ids() == before
    assert limit.in_flight == 0


# No orphans after a failure in the block, a break, or an outer cancellation: every call in
# flight is cancelled and awaited before the block exits, and every place is given back.
@pytest.mark.parametrize("how", ["error", "break", "cancel"])
async def test_adaptive_limit_leaves_no_orphans(pattern: Pattern, how: str) -> None:
    limit = aimd(initial=3)
    watch = Watch(limit)
    before = task_ids()
    stream: Any = pattern.stream
    with anyio.CancelScope() as outer, contextlib.suppress(_Stop):
        async with stream(watch.work(0.002), range(60), limit=limit) as results:
            async for _ in results:
                if len(watch.started) < 8:
                    continue
                if how == "error":
                    raise _Stop
                if how == "break":
                    break
                outer.cancel()
                await anyio.lowlevel.checkpoint()
    assert watch.running == 0
    assert task_ids() == before
    assert limit.in_flight == 0
    assert len(watch.started) < 60 or not pattern.BOUNDED


# Nothing starts once the stream has stopped (a failure, a break, an outer cancellation), with
# an adaptive limit too: the places the cancelled calls give back let no call in.
@pytest.mark.parametrize("how", ["failure", "break", "cancel"])
async def test_adaptive_limit_no_call_starts_after_a_stop(
    pattern: Pattern, how: str, anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    late_runs = []
    runs = {"trio": 8, "asyncio": 2}[anyio_backend[0]]
    for run in range(runs):
        limit = aimd(initial=5)
        late = _Late(fail_at=10 if how == "failure" else None)
        stream: Any = pattern.stream
        with anyio.CancelScope() as outer, contextlib.suppress(Boom):
            async with stream(late.work, range(40), limit=limit) as results:
                try:
                    async for result in results:
                        if result >= 10 and how == "break":
                            late.stopped = True
                            break
                        if result >= 10 and how == "cancel":
                            outer.cancel()
                except anyio.get_cancelled_exc_class():
                    late.stopped = True
                    raise
        if late.late:
            late_runs.append((run, late.late))
        assert limit.in_flight == 0
    assert late_runs == [], f"(run, calls started late) over {runs} runs"
