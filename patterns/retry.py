"""Retries that don't make it worse: full jitter, the service's Retry-After, a budget, and the
limit's place given back while backing off.

Calls flow a recipe → the limit's gate (``patterns.adaptive``) → ``retrying(work)`` → the
work; a call turned away waits out of the gate and comes back at the head of its line.

```python
import anyio

from patterns import worker_pool  # copied: from yourapp import worker_pool
from patterns.adaptive import AIMD  # copied: from yourapp.adaptive import AIMD
from patterns.retry import Budget, retrying  # copied: from yourapp.retry import Budget, retrying

urls = [f"https://example.com/{n}" for n in range(200)]
service = anyio.CapacityLimiter(8)  # the other side: 8 calls at once, the rest turned away


class TooManyRequests(Exception):  # your client's 429, with the service's Retry-After
    retry_after = 0.01


async def fetch(url: str) -> str:
    if not service.available_tokens:
        raise TooManyRequests(url)
    async with service:
        await anyio.sleep(0.005)  # stands in for a network call
    return f"<html of {url}>"


async def main() -> None:
    budget, limit = Budget(0.2), AIMD(maximum=50)  # retries: at most 20% of calls
    pages = await worker_pool.run(retrying(fetch, budget=budget), urls, limit=limit)
    print(len(pages), "pages,", budget.retried, "retries; limit now", limit.limit)


anyio.run(main)
```

What it is
    ``retrying(work)`` runs ``work`` again when it fails with an overload (a 429, a 503, a
    timeout: ``adaptive.is_overload``, or your ``on``), up to ``attempts`` times, on tenacity's
    ``AsyncRetrying``: its stop, wait and sleep are the three decisions below.

    - *When*: never before the service's ``Retry-After`` (an error's ``retry_after``, or the
      header of httpx's or aiohttp's error), plus *full jitter*: a random wait from 0 to
      ``base * 2 ** n`` seconds, capped at ``cap`` (AWS's "Exponential Backoff and Jitter").
    - *Whether*: only while the :class:`Budget` has a retry left. Each call adds ``ratio`` to
      it, each retry takes one: retries stay under ``ratio`` of calls (past a small reserve),
      so a failing service gets at most 1 + ratio times its load, not ``attempts`` times.
    - *Holding what*: inside an adaptive limit's gate, the back-off is spent out of it. The
      call's place goes back to the gate (another call may use it), the failed attempt counts
      as one outcome (the limit may cut), and the call comes back in at the head of the line.
      The recipe's own bound is the limit's ``maximum``: leave room there above the limit for
      the calls backing off (with ``AIMD(10, maximum=10)`` a call backing off still holds one
      of ten workers, and the place it gave back has no one to take it).

When to use it
    Always around calls to a service that sheds load. A 429 means "later", and the caller
    that never retries loses the call; the caller that retries at once, or in step with the
    others, or without end, turns a brief overload into a lasting one.

Failure mode
    Three, each a footgun beside its fix (``python -m patterns footgun retry-holding``,
    ``retry-waves``, ``retry-storm``): the retry that sleeps holding its permit (the slot is
    idle while the service has room: goodput falls); retries without jitter (every call
    turned away by one overload comes back in the same instant, and is turned away again:
    the timeline shows the waves); retries without a budget (each call is sent up to
    ``attempts`` times: calls sent per second climb past the capacity while goodput falls).

Cost (measured)
    4.7k CPU instructions per item while no call is retried (the worker pool with it, less the
    worker pool; work = one pass through the event loop, limit 100, asyncio; counted by
    ``python -m patterns.lab.costs``, as the README quotes it): the first attempt runs outside
    tenacity, whose loop costs about 40 µs a call here. A retry costs its wait, and the
    budget's share of calls sent again.

Beside the textbook version
    The textbook retry is a decorator with exponential backoff (below): no jitter, no
    Retry-After, no budget, and its sleep holds whatever permit the call holds. tenacity and
    stamina both do backoff and jitter well; tenacity is used here for its ``sleep`` hook
    (where the place is given back), its full-jitter wait and a stop condition to hold the
    budget; stamina's wait is exponential with jitter added, not full jitter, and has no
    sleep hook.

```python
async def textbook_retry(work, item, attempts=5):
    for attempt in range(attempts):
        try:
            return await work(item)
        except TooManyRequests:
            if attempt == attempts - 1:
                raise
            await anyio.sleep(0.1 * 2**attempt)  # all callers in step; the permit held
```
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import anyio
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from .adaptive import Overload, is_overload, overload_test
from .contract import HELD, R, T, Work, check, check_work


class Budget:
    """Retries at most ``ratio`` of calls, past a reserve of ``reserve``: a token bucket that
    each call fills by ``ratio`` and each retry empties by one (Finagle's RetryBudget)."""

    def __init__(self, ratio: float = 0.2, *, reserve: int = 10) -> None:
        self.ratio = check("ratio", ratio, 0, 1, whole=False)
        self.reserve = check("reserve", reserve, 0)
        self._balance = float(reserve)
        self.calls = 0
        self.retried = 0
        self.refused = 0  # retries the budget did not allow

    def called(self) -> None:
        self.calls += 1
        # Capped, so a long quiet spell does not bank a storm of retries for later.
        self._balance = min(self._balance + self.ratio, self.reserve + self.ratio * 100)

    def withdraw(self) -> bool:
        """Take one retry, if the budget has it."""
        if self._balance < 1:
            self.refused += 1
            return False
        self._balance -= 1
        self.retried += 1
        return True


def retry_after(error: BaseException) -> float:
    """The service's hint, in seconds (0 without one): ``error.retry_after``; or, on httpx's or
    aiohttp's error, the ``Retry-After-Ms`` header (milliseconds, as Azure and OpenAI send it
    beside the standard one) or ``Retry-After`` (whole seconds, or an HTTP date)."""
    hint = getattr(error, "retry_after", None)
    if hint is None:
        response = getattr(error, "response", None)
        headers = getattr(response, "headers", None) or getattr(error, "headers", None) or {}
        if not hasattr(headers, "get"):
            return 0.0
        if (ms := _seconds(headers.get("Retry-After-Ms"))) is not None:
            return max(0.0, ms / 1000)
        hint = headers.get("Retry-After")
    if hint is None:
        return 0.0
    seconds = _seconds(hint)
    if seconds is None:
        try:
            when = email.utils.parsedate_to_datetime(str(hint))
        except (TypeError, ValueError, OverflowError):
            return 0.0  # unreadable: as if there were none
        if when.tzinfo is None:  # "-0000": UTC, its zone unknown (RFC 5322)
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds)


def _seconds(hint: object) -> float | None:
    """A hint as seconds: a number, or a timedelta (an ``inf`` attribute is "not for a long
    while", past any patience); None if unreadable ("soon", "inf", "nan", 10**400)."""
    try:
        seconds = float(getattr(hint, "total_seconds", lambda: hint)())  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    if math.isnan(seconds) or (isinstance(hint, str) and math.isinf(seconds)):
        return None  # a header says a number of seconds: "inf" is none
    return seconds


def retrying(
    work: Work[T, R],
    *,
    attempts: int = 5,
    base: float = 0.05,
    cap: float = 2.0,
    budget: Budget | None = None,
    patience: float = 30.0,
    on: Overload | tuple[type[BaseException], ...] = is_overload,
    rng: random.Random | None = None,
) -> Callable[[T], Awaitable[R]]:
    """``work``, retried on ``on`` (an overload, by default) up to ``attempts`` times in all:
    after the service's Retry-After plus full jitter (0 to ``base * 2 ** n``, at most ``cap``),
    while ``budget`` allows (one of 20% of calls, by default, shared by every call of this
    ``retrying``), out of the adaptive limit's gate while it waits. A Retry-After longer than
    ``patience`` seconds ends the retries: the error is raised."""
    check_work(work)
    check("attempts", attempts)
    check("base", base, 0, whole=False)
    check("cap", cap, 0, whole=False)
    if patience != math.inf:  # inf: always wait as long as the service asks
        check("patience", patience, 0, whole=False)
    budget = Budget() if budget is None else budget
    if not isinstance(budget, Budget):
        raise TypeError(f"budget must be a Budget, got {budget!r}")
    if rng is not None and not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {rng!r}")
    retryable = overload_test(on)
    draw = (rng or random.Random()).uniform

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        hint = retry_after(error) if error is not None else 0.0
        # Full jitter on top of the hint: never before the service asked, and not all at once.
        return hint + draw(0, min(cap, base * 2 ** (state.attempt_number - 1)))

    def stop(state: RetryCallState) -> bool:
        # Asked only when the error is one to retry: the budget is spent only on a retry. A
        # service that asks for more than `patience` seconds gets its error back, not a wait.
        error = state.outcome.exception() if state.outcome else None
        if state.attempt_number >= attempts or error is None or retry_after(error) > patience:
            return True
        return not budget.withdraw()

    async def retried(item: T) -> R:
        budget.called()
        # The first attempt outside tenacity: a call that succeeds pays nothing for retries
        # (tenacity's loop costs about 40 µs a call). Its error, if one to retry, is tenacity's
        # first attempt: raised again, as it was, for its stop, wait and sleep to decide.
        try:
            return await work(item)
        except Exception as error:
            if not retryable(error):
                raise
            first: list[BaseException] = [error]

        async def attempt(item: T) -> R:
            if first:
                raise first.pop()
            return await work(item)

        failed: list[BaseException] = []

        async def sleep(seconds: float) -> None:
            held = HELD.get()
            if held is not None and held[0] == anyio.get_current_task().id:
                async with held[1].away(failed[-1]):  # out of the gate while it waits
                    await anyio.sleep(seconds)
            else:
                await anyio.sleep(seconds)

        def note(state: RetryCallState) -> None:
            if state.outcome is not None and (error := state.outcome.exception()) is not None:
                failed.append(error)

        retrier = AsyncRetrying(
            retry=retry_if_exception(retryable),
            stop=stop,
            wait=wait,
            sleep=sleep,
            before_sleep=note,
            reraise=True,  # the error as the work raised it, not tenacity's RetryError
        )
        return await retrier(attempt, item)

    return retried
