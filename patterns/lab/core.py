"""What the package shares above the recipes: the contract as a type, and collect mode.

The recipes themselves need only :mod:`patterns.contract` (and anyio): that is what a reader
copies. This module is for the layers above them (the registry, the harness, the CLI).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, cast

from patterns.contract import Items, Limit, R, T, Work, check_work

__all__ = ["Items", "Outcome", "Pattern", "R", "T", "Work", "collect_errors"]


class Pattern(Protocol):
    """The contract of a recipe module: ``stream`` and ``run``, swappable one for another."""

    __name__: str

    @property
    def BOUNDED(self) -> bool:
        """False for a pattern that starts everything at once and ignores ``limit``."""
        ...

    def stream(
        self, work: Work[T, R], items: Items[T], *, limit: int | Limit
    ) -> AbstractAsyncContextManager[AsyncIterator[R]]:
        """Results as they complete; leaving the block cancels whatever is still running.
        ``limit``: an int, or a limit that adapts (``patterns.adaptive``)."""
        ...

    async def run(self, work: Work[T, R], items: Items[T], *, limit: int | Limit) -> list[R]:
        """All results, in input order."""
        ...


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T, R]):
    """One item's fate in collect mode: its result, or the exception it raised."""

    item: T
    value: R | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> R:
        """The result, or raise the item's exception."""
        if self.error is not None:
            raise self.error
        return cast(R, self.value)


def collect_errors(
    work: Work[T, R], only: tuple[type[Exception], ...] = (Exception,)
) -> Callable[[T], Coroutine[Any, Any, Outcome[T, R]]]:
    """Collect mode: wrap ``work`` so that a failing item becomes an :class:`Outcome`.

    The wrapped call never raises an ``Exception``, so no pattern ever cancels anything on its
    account; every item comes back, with its result or its error, and none is lost.
    Cancellation (a BaseException) still passes through untouched::

        outcomes = await worker_pool.run(collect_errors(fetch), urls, limit=10)
        failed = [o for o in outcomes if not o.ok]

    ``only`` narrows what is collected (say, the errors an item may end in); any other
    exception is raised, and ends the run as without collect mode.
    """
    check_work(work)

    async def outcome_of(item: T) -> Outcome[T, R]:
        try:
            return Outcome(item, await work(item))
        except only as exc:
            return Outcome(item, error=exc)

    return outcome_of
