"""Retries (patterns.retry): the caller's error as raised, full jitter over the service's hint,
the budget, and the adaptive limit's place given back while backing off. On every backend."""

from __future__ import annotations

import email.utils
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import anyio
import anyio.lowlevel
import httpx
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from tenacity import RetryError

from patterns.adaptive import AIMD
from patterns.retry import Budget, retry_after, retrying

pytestmark = pytest.mark.anyio


class Overloaded(Exception):
    """A 429, with the service's Retry-After in seconds."""

    def __init__(self, message: str = "turned away", retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Flaky:
    """Work that is turned away ``fails`` times, then succeeds; records its attempts."""

    def __init__(self, fails: int, hint: float = 0.0) -> None:
        self.fails = fails
        self.hint = hint
        self.attempts = 0
        self.raised: list[BaseException] = []

    async def work(self, item: int) -> int:
        self.attempts += 1
        if self.attempts <= self.fails:
            try:
                raise KeyError("underneath")
            except KeyError as cause:
                error = Overloaded(f"attempt {self.attempts}", self.hint)
                self.raised.append(error)
                raise error from cause
        return item


class Sleeps:
    """anyio.sleep, recorded: the waits a retry chose (and no time spent on them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seconds: list[float] = []
        monkeypatch.setattr(anyio, "sleep", self.sleep)  # as the retry calls it

    async def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)
        await anyio.lowlevel.checkpoint()


class Edge(random.Random):
    """An rng that always draws the low or the high end: the jitter's bounds, exactly."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


def generous() -> Budget:
    return Budget(1.0, reserve=1000)


# After the last attempt the caller gets the work's own exception, as raised: the same object,
# its message and its __cause__, not tenacity's RetryError; and exactly `attempts` attempts.
@pytest.mark.parametrize("attempts", [1, 3])
async def test_last_error_as_raised(attempts: int) -> None:
    flaky = Flaky(fails=10)
    work = retrying(flaky.work, attempts=attempts, base=0.0, budget=generous())
    with pytest.raises(Overloaded) as caught:
        await work(1)
    assert not isinstance(caught.value, RetryError)
    assert caught.value is flaky.raised[-1]
    assert str(caught.value) == f"attempt {attempts}"
    assert isinstance(caught.value.__cause__, KeyError)
    assert flaky.attempts == attempts


# An error that is not an overload is not retried: raised at once, as raised.
async def test_other_errors_are_not_retried() -> None:
    attempts = 0

    async def work(item: int) -> int:
        nonlocal attempts
        attempts += 1
        raise ValueError("bad request")

    with pytest.raises(ValueError, match="bad request"):
        await retrying(work, budget=generous())(1)
    assert attempts == 1


# Full jitter over the hint: the n-th wait lies in [hint, hint + min(cap, base * 2**(n-1))],
# and reaches both ends (an rng that draws the low end, then one that draws the high end).
@pytest.mark.parametrize("high", [False, True])
async def test_full_jitter_within_its_bounds(monkeypatch: pytest.MonkeyPatch, high: bool) -> None:
    sleeps = Sleeps(monkeypatch)
    base, cap, hint = 0.01, 0.05, 0.2
    flaky = Flaky(fails=6, hint=hint)
    work = retrying(flaky.work, attempts=7, base=base, cap=cap, budget=generous(), rng=Edge(high))
    assert await work(5) == 5
    tops = [min(cap, base * 2**n) for n in range(6)]
    assert sleeps.seconds == pytest.approx([hint + (top if high else 0) for top in tops])


# A random rng stays within the bounds too.
async def test_jitter_is_random_within_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = Sleeps(monkeypatch)
    flaky = Flaky(fails=6)
    await retrying(flaky.work, attempts=7, base=0.01, cap=0.05, budget=generous())(1)
    for n, seconds in enumerate(sleeps.seconds):
        assert 0 <= seconds <= min(0.05, 0.01 * 2**n)
    assert len(set(sleeps.seconds)) > 1


def _http_date(seconds_from_now: float, zone: str = "GMT") -> str:
    when = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    return email.utils.format_datetime(when, usegmt=True).replace("GMT", zone)


def _httpx_error(status: int, headers: dict[str, str]) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "http://service.test/item")
    response = httpx.Response(status, headers=headers, request=request)
    return httpx.HTTPStatusError("turned away", request=request, response=response)


def _aiohttp_error(status: int, headers: dict[str, str]) -> aiohttp.ClientResponseError:
    info: Any = None
    proxy = CIMultiDictProxy(CIMultiDict(headers))
    return aiohttp.ClientResponseError(info, (), status=status, headers=proxy)


# Retry-After: seconds, or an HTTP date, on an error's `retry_after`, on httpx's error (its
# response's headers) and on aiohttp's (its own headers); absent or unreadable, no hint.
@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0", 0.0), ("-4", 0.0), ("soon", 0.0), (None, 0.0), ("date:30", 30.0)],
)
@pytest.mark.parametrize("make", [_httpx_error, _aiohttp_error], ids=["httpx", "aiohttp"])
def test_retry_after_parsing(
    header: str | None, expected: float, make: Callable[[int, dict[str, str]], BaseException]
) -> None:
    if header is not None and header.startswith("date:"):
        header = _http_date(float(header[5:]))
    error = make(429, {} if header is None else {"Retry-After": header})
    assert retry_after(error) == pytest.approx(expected, abs=2)
    assert retry_after(Overloaded(retry_after=1.5)) == 1.5


# A hostile or odd header never hangs nor breaks the retry: "inf" is no number of seconds
# (unreadable: no hint), and a date in the "-0000" zone (which Python reads as a naive
# datetime) is read as UTC.
@pytest.mark.parametrize(("header", "expected"), [("inf", 0.0), ("date-0000:30", 30.0)])
def test_retry_after_odd_headers(header: str, expected: float) -> None:
    if header.startswith("date-0000:"):
        header = _http_date(float(header.split(":")[1]), zone="-0000")
    assert retry_after(_httpx_error(503, {"Retry-After": header})) == pytest.approx(expected, abs=2)


# Retry-After-Ms (milliseconds, as Azure and OpenAI send it beside the standard header) is
# read first: it says what the whole seconds of Retry-After round up.
@pytest.mark.parametrize("make", [_httpx_error, _aiohttp_error], ids=["httpx", "aiohttp"])
def test_retry_after_ms_comes_first(make: Callable[[int, dict[str, str]], BaseException]) -> None:
    assert retry_after(make(429, {"Retry-After-Ms": "150", "Retry-After": "1"})) == 0.15
    assert retry_after(make(429, {"Retry-After-Ms": "soon", "Retry-After": "1"})) == 1.0


# A service that asks for more than `patience` seconds gets its error back at once, not a wait
# (a Retry-After of a year would otherwise hold the item, if not the place, for a year).
async def test_a_hint_past_patience_ends_the_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps = Sleeps(monkeypatch)
    for hint, attempts in [(31.0, 1), (29.0, 3)]:
        flaky = Flaky(fails=5, hint=hint)
        with pytest.raises(Overloaded) as raised:
            await retrying(flaky.work, attempts=3, patience=30, budget=generous())(1)
        assert raised.value is flaky.raised[-1]
        assert flaky.attempts == attempts
    assert sleeps.seconds
    assert min(sleeps.seconds) >= 29.0


# The budget: retries stay within reserve + ratio * calls, the ones refused are counted, and
# each call is counted once.
async def test_budget_bounds_retries() -> None:
    budget = Budget(0.1, reserve=2)

    async def always(item: int) -> int:
        raise Overloaded

    work = retrying(always, attempts=5, base=0.0, budget=budget)
    for item in range(20):
        with pytest.raises(Overloaded):
            await work(item)
    assert budget.calls == 20
    assert 0 < budget.retried <= 2 + 0.1 * 20
    assert budget.refused > 0
    assert budget.retried + budget.refused <= 20 * 4


async def _backing_off(limit: AIMD, hint: float) -> tuple[Flaky, Callable[[int], Awaitable[int]]]:
    flaky = Flaky(fails=1, hint=hint)
    return flaky, limit.gate(retrying(flaky.work, base=0.0, budget=generous()))


# While a call backs off, its place in the gate is free: another call gets in and finishes
# before the retry; the retry comes back in at the head of the line, before a call that was
# already waiting when it came back.
async def test_place_given_back_while_backing_off() -> None:
    limit = AIMD(1, maximum=1, overload=(Overloaded,))
    flaky, first = await _backing_off(limit, hint=0.02)
    order: list[str] = []
    release = anyio.Event()

    async def other(name: str) -> None:
        async def work(item: int) -> None:
            order.append(name)
            if name == "holder":
                await release.wait()

        await limit.gate(work)(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(_run, first, 1)
        await anyio.wait_all_tasks_blocked()  # turned away once, backing off out of the gate
        assert limit.in_flight == 0
        tg.start_soon(other, "holder")  # gets the place the retry gave back
        await anyio.sleep(0.05)  # the back-off is over: the retry waits, at the head
        assert (flaky.attempts, limit.in_flight) == (1, 1)
        tg.start_soon(other, "behind")  # comes to the line after the retry
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert order == ["holder", "behind"]
    assert flaky.attempts == 2
    assert limit.in_flight == 0


# The retry comes back at the head of the line: ahead of a call that was already waiting when
# it came back.
async def test_retry_comes_back_at_the_head_of_the_line() -> None:
    limit = AIMD(1, maximum=1, overload=(Overloaded,))
    order: list[str] = []
    release = anyio.Event()
    failed = False

    async def retried(item: int) -> None:
        nonlocal failed
        order.append("retry" if failed else "first try")
        if not failed:
            failed = True
            raise Overloaded(retry_after=0.02)

    async def holder(item: int) -> None:
        order.append("holder")
        await release.wait()

    async def behind(item: int) -> None:
        order.append("behind")

    async with anyio.create_task_group() as tg:
        tg.start_soon(_run, limit.gate(retrying(retried, base=0.0, budget=generous())), 0)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(_run, limit.gate(holder), 0)  # takes the place the retry gave back
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(_run, limit.gate(behind), 0)  # waits for it: first in the line, for now
        await anyio.sleep(0.05)  # the retry is back: at the head of the line, before "behind"
        release.set()
    assert order == ["first try", "holder", "retry", "behind"]
    assert limit.in_flight == 0


# Cancelled while backing off (out of the gate) or while waiting to come back in, the call
# leaves the gate's count and line as they should be.
@pytest.mark.parametrize("when", ["backing off", "waiting to come back"])
async def test_cancel_during_back_off(when: str) -> None:
    limit = AIMD(1, maximum=1, overload=(Overloaded,))
    flaky, first = await _backing_off(limit, hint=0.02 if when != "backing off" else 10)
    release = anyio.Event()

    async def holder(item: int) -> None:
        await release.wait()

    async with anyio.create_task_group() as tg:
        scope = anyio.CancelScope()
        tg.start_soon(_in_scope, scope, first)
        await anyio.wait_all_tasks_blocked()  # turned away, backing off out of the gate
        tg.start_soon(_run, limit.gate(holder), 0)  # takes the place; the retry will wait for it
        await anyio.sleep(0.05)
        scope.cancel()
        await anyio.wait_all_tasks_blocked()
        assert (limit.in_flight, len(limit._waiting)) == (1, 0)  # the holder's place only
        release.set()
    assert limit.in_flight == 0
    assert flaky.attempts == 1
    with anyio.fail_after(1):
        await limit.gate(anyio.sleep)(0)


async def _run(work: Callable[[int], Awaitable[Any]], item: int) -> None:
    await work(item)


async def _in_scope(scope: anyio.CancelScope, work: Callable[[int], Awaitable[int]]) -> None:
    with scope:
        await work(0)


# A retry in a child task that the work started does not give its parent's place away: the
# child holds no place of its own, so while it backs off the parent's place stays taken.
async def test_retry_in_a_child_task_keeps_the_parents_place() -> None:
    limit = AIMD(1, maximum=1, overload=(Overloaded,))
    flaky = Flaky(fails=2, hint=0.01)
    during: list[int] = []
    others: list[int] = []

    async def parent(item: int) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_run, retrying(flaky.work, base=0.0, budget=generous()), item)
            await anyio.sleep(0.015)  # the child is backing off now
            during.append(limit.in_flight)

    async def other(item: int) -> None:
        others.append(flaky.attempts)

    async with anyio.create_task_group() as tg:
        tg.start_soon(_run, limit.gate(parent), 0)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(_run, limit.gate(other), 0)
    assert during == [1]
    assert others == [3]  # the other call got in only once the parent (and its child) ended
    assert limit.in_flight == 0


# Hints that are no number of seconds never break the retry: too large for a float, a date in
# the year 99999, a negative Retry-After-Ms; an `inf` attribute means "not for a long while"
# (past any patience), a timedelta is read as its seconds.
def test_retry_after_never_raises() -> None:
    assert retry_after(Overloaded(retry_after=10**400)) == 0.0
    assert retry_after(_httpx_error(429, {"Retry-After": "Wed, 21 Oct 99999 07:28:00 GMT"})) == 0
    assert retry_after(_httpx_error(429, {"Retry-After-Ms": "-100"})) == 0.0
    assert retry_after(Overloaded(retry_after=float("inf"))) == float("inf")
    assert retry_after(Overloaded(retry_after=timedelta(seconds=3))) == 3.0  # type: ignore[arg-type]


# The arguments are checked when the retrying work is made, naming the bad one; `on` takes a
# tuple of exception types as `overload=` does, and `patience=inf` always waits as asked.
async def test_retrying_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="budget must be a Budget"):
        retrying(Flaky(0).work, budget=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"rng must be a random\.Random"):
        retrying(Flaky(0).work, rng=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="patience"):
        retrying(Flaky(0).work, patience=-1)
    flaky = Flaky(fails=2)
    work = retrying(flaky.work, on=(Overloaded,), base=0.0, patience=float("inf"))
    assert await work(7) == 7
    assert flaky.attempts == 3
