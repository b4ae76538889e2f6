"""The small core every recipe shares: the contract, argument checks and fail-fast.

Recipes import this module and anyio, nothing else from the package. Everything here is
plumbing that would otherwise be copied into each recipe: checking arguments, turning any
iterable into one async iterator, reading results without a needless trip through the event
loop, and *supervising* a group of tasks so that the first failure cancels the rest and
then propagates on its own, never wrapped in an ExceptionGroup.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, TypeVarTuple, Unpack, cast

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

T = TypeVar("T")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")

#: What every pattern runs: an async callable taking one item.
Work = Callable[[T], Awaitable[R]]
#: What every pattern accepts as input: any iterable, or any async iterable.
Items = Iterable[T] | AsyncIterable[T]


class Pattern(Protocol):
    """The contract of a recipe module: ``stream`` and ``run``, swappable one for another."""

    __name__: str

    @property
    def BOUNDED(self) -> bool:
        """False for a pattern that starts everything at once and ignores ``limit``."""
        ...

    def stream(
        self, work: Work[T, R], items: Items[T], *, limit: int
    ) -> AbstractAsyncContextManager[AsyncIterator[R]]:
        """Results as they complete; leaving the block cancels whatever is still running."""
        ...

    async def run(self, work: Work[T, R], items: Items[T], *, limit: int) -> list[R]:
        """All results, in input order."""
        ...


# --- argument checks: at once, before any call starts, naming the argument -----------------


def check_limit(limit: object) -> int:
    """Return ``limit`` if it is an int >= 1; raise TypeError or ValueError naming it if not."""
    # bool is a subclass of int: without this test, limit=True would quietly mean 1.
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int >= 1, got {limit!r} ({type(limit).__name__})")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    return limit


def check_work(work: object) -> None:
    """Raise TypeError naming ``work`` unless it is callable and may return an awaitable.

    What can be known without calling it is checked here: a built-in, a class, a generator
    or an async generator function never returns an awaitable. A plain ``def`` cannot be told
    apart: ``lambda url: client.get(url)`` returns a coroutine and is as right as an
    ``async def``, ``lambda x: 2 * x`` returns a number. Such a one fails at its first call,
    bare, with Python's own "object int can't be used in 'await' expression".
    """
    if not callable(work):
        raise TypeError(f"work must be an async callable taking one item, got {work!r}")
    kind = _never_awaitable(work)
    if kind:
        raise TypeError(
            f"work must be an async callable taking one item, got {kind} ({work!r}), "
            "which returns no awaitable: define it with async def"
        )


def _never_awaitable(work: object) -> str | None:
    """What ``work`` is, if calling it can never give an awaitable."""
    while isinstance(work, functools.partial):
        work = work.func
    if inspect.isasyncgenfunction(work):
        return "an async generator function"
    # A generator function decorated with types.coroutine is awaitable: the flag says so.
    if inspect.isgeneratorfunction(work) and not (
        work.__code__.co_flags & inspect.CO_ITERABLE_COROUTINE
    ):
        return "a generator function"
    if inspect.isbuiltin(work):
        return "a built-in function"
    if isinstance(work, type) and not hasattr(work, "__await__"):
        return "a class"
    return None


def checked_source(work: object, items: Items[T], limit: object) -> AsyncIterator[T]:
    """Check a recipe's three arguments at once, then return its items as one async iterator."""
    check_work(work)
    check_limit(limit)
    return iterate(items)


def iterate(items: Items[T]) -> AsyncIterator[T]:
    """One async iterator over ``items``, pulled lazily: nothing is read ahead here."""
    if isinstance(items, AsyncIterable):
        return aiter(items)
    if isinstance(items, Iterable):
        return _SyncSource(iter(items))
    raise TypeError(f"items must be an iterable or an async iterable, got {type(items).__name__}")


class _SyncSource(AsyncIterator[T]):
    # A class rather than an async generator: an async generator abandoned half-way must be
    # finalised by the event loop, this needs nothing.
    __slots__ = ("_it",)
    is_sync = True

    def __init__(self, it: Iterator[T]) -> None:
        self._it = it

    async def __anext__(self) -> T:
        try:
            return next(self._it)
        except StopIteration:
            raise StopAsyncIteration from None


def one_at_a_time(source: AsyncIterator[T]) -> Callable[[], Awaitable[T]]:
    """A pull function that many tasks may call at once without tripping over each other.

    Two tasks must never pull from one async generator at once (it raises "already
    running"), so an async source takes turns under a lock. A plain iterable's next() never
    waits, so it needs no lock at all: that saves a lock per item on the common path.
    """
    if isinstance(source, _SyncSource | Enumerate) and source.is_sync:
        return source.__anext__
    lock = anyio.Lock(fast_acquire=True)

    async def pull() -> T:
        async with lock:
            return await source.__anext__()

    return pull


class Enumerate(AsyncIterator[tuple[int, T]]):
    """``enumerate`` for an async iterator: the index is fixed when the item is pulled."""

    __slots__ = ("_count", "_source", "is_sync")

    def __init__(self, source: AsyncIterator[T]) -> None:
        self._source = source
        self._count = 0
        self.is_sync = isinstance(source, _SyncSource)

    async def __anext__(self) -> tuple[int, T]:
        item = await self._source.__anext__()
        index = self._count
        self._count += 1
        return index, item


# --- reading results ------------------------------------------------------------------------


def drain(receive: MemoryObjectReceiveStream[R]) -> AsyncIterator[R]:
    """Iterate ``receive`` until every sender has closed; what a ``stream`` block reads."""
    return _Drain(receive)


class _Drain(AsyncIterator[R]):
    __slots__ = ("_receive",)

    def __init__(self, receive: MemoryObjectReceiveStream[R]) -> None:
        self._receive = receive

    async def __anext__(self) -> R:
        # Fast path: anyio's receive() always passes through the event loop first, even when
        # a result is already waiting. Taking it directly saves a loop pass per item.
        try:
            return self._receive.receive_nowait()
        except anyio.WouldBlock:
            pass
        except anyio.EndOfStream:
            raise StopAsyncIteration from None
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


async def send(stream: MemoryObjectSendStream[T], item: T) -> None:
    """Send ``item``, waiting only if the stream is full."""
    # Fast path: anyio's send() always passes through the event loop first, even when a
    # receiver is already waiting or the buffer has room. Trying send_nowait first saves a
    # loop pass per item; only a full stream waits.
    try:
        stream.send_nowait(item)
    except anyio.WouldBlock:
        await stream.send(item)


class InOrder(AsyncIterator[R]):
    """Yield numbered results in input order, holding early ones back until their turn.

    Each yield gives a permit back to ``room``: whoever pulls items takes one first, which
    bounds how many results can wait here for a slow one ahead of them.
    """

    __slots__ = ("_early", "_next", "_results", "_room")

    def __init__(
        self, receive: MemoryObjectReceiveStream[tuple[int, R]], room: anyio.Semaphore
    ) -> None:
        self._results = drain(receive)
        self._room = room
        self._early: dict[int, R] = {}
        self._next = 0

    async def __anext__(self) -> R:
        # Keep reading (so the slots never wait on us) until the next result in order is in.
        while self._next not in self._early:
            index, result = await anext(self._results)
            self._early[index] = result
        result = self._early.pop(self._next)
        self._next += 1
        self._room.release()
        return result


# --- fail fast ------------------------------------------------------------------------------


class Supervisor:
    """Remembers the first failure of the tasks it starts and cancels all of them.

    anyio's task groups wrap failures in ExceptionGroups, and which failures share a group
    differs between asyncio and trio. A supervised task never lets an exception reach its task
    group: the supervisor records it, cancels everything, and :func:`supervise` raises the
    first one, bare, after every task has ended. Failures that raced it are named in its notes.
    """

    __slots__ = ("_failures", "_group", "stopped")

    def __init__(self, group: TaskGroup, failures: list[Exception]) -> None:
        self._group = group
        self._failures = failures
        #: True once a failure or the end of the block has cancelled everything. A task about
        #: to start a call checks it first: cancellation reaches a task only at its first
        #: await, and a call that begins before then has started after the stream stopped.
        self.stopped = False

    def start_soon(self, fn: Callable[[Unpack[Ts]], Awaitable[Any]], *args: *Ts) -> None:
        """Start ``fn(*args)``; if it fails, the failure is recorded and everything cancelled."""
        self._group.start_soon(self._guard, fn, *args)

    async def _guard(self, fn: Callable[[Unpack[Ts]], Awaitable[Any]], *args: *Ts) -> None:
        try:
            await fn(*args)
        except Exception as exc:
            self.fail(exc)

    @asynccontextmanager
    async def nested(self) -> AsyncIterator[TaskGroup]:
        """A plain task group inside the supervised one, for tasks started per item.

        The block ends only when every task started in it has ended; an exception from the
        block's body is recorded like any failure. Tasks started here are *not* guarded: each
        must catch its own exception and pass it to :meth:`fail`, which costs nothing, where a
        guard would cost a wrapper coroutine per item.
        """
        async with anyio.create_task_group() as group:
            try:
                yield group
            except Exception as exc:
                self.fail(exc)

    def fail(self, exc: Exception) -> None:
        """Record ``exc`` and cancel everything supervised."""
        self._failures.append(exc)
        self.cancel()

    def cancel(self) -> None:
        """Cancel everything supervised, as a failure would, but record nothing."""
        self.stopped = True
        self._group.cancel_scope.cancel()


@asynccontextmanager
async def supervise(source: AsyncIterator[Any] | None = None) -> AsyncIterator[Supervisor]:
    """A task group that fails fast and raises the first failure itself.

    The body of the ``async with`` block is the consumer: its own exception counts as a
    failure like any other. When the block ends, for any reason, whatever is still running is
    cancelled and awaited before control leaves: nothing outlives the block, not even the
    input, if it is an async generator left half-read (``source``): it is closed.
    """
    failures: list[Exception] = []
    try:
        async with anyio.create_task_group() as group:
            supervisor = Supervisor(group, failures)
            try:
                yield supervisor
            except Exception as exc:
                supervisor.fail(exc)
            # Whatever is still running when the block ends is cancelled: a consumer that
            # breaks out early, or ends after the last result, leaves nothing behind.
            supervisor.cancel()
    except anyio.get_cancelled_exc_class():
        # Cancelled from outside while a call was failing: the failure outranks the
        # cancellation that raced it, so it is not lost.
        _raise_first(failures)
        raise
    except BaseExceptionGroup as group:
        # Only a KeyboardInterrupt or SystemExit (a guarded task lets nothing else through)
        # gets here, wrapped by the task group; raise it bare, as Python would without us.
        _raise_interrupt(group)
        raise
    finally:
        await _close(source)
    _raise_first(failures)


async def _close(source: AsyncIterator[Any] | None) -> None:
    # An async generator abandoned half-way is finalised whenever the garbage collector gets
    # to it (trio warns about that); closing it here runs its cleanup now, shielded because
    # the block may be leaving under cancellation.
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        with anyio.CancelScope(shield=True):
            await aclose()


def _raise_interrupt(group: BaseExceptionGroup[BaseException]) -> None:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            _raise_interrupt(exc)
        elif isinstance(exc, KeyboardInterrupt | SystemExit):
            raise exc from None


def _raise_first(failures: list[Exception]) -> None:
    """Raise the first failure, if any, with the others named in its notes."""
    if not failures:
        return
    first, *others = failures
    for other in others:
        first.add_note(f"also failed before the rest were cancelled: {other!r}")
    raise first


# --- results in input order, and errors collected -------------------------------------------


async def run_in_order(
    stream: Callable[..., AbstractAsyncContextManager[AsyncIterator[Any]]],
    work: Work[T, R],
    items: Items[T],
    *,
    limit: int,
) -> list[R]:
    """Drive ``stream`` to the end and return every result in input order.

    Each item is numbered as it is pulled, so the order is the input's whatever order the
    calls finish in. This is how every recipe's ``run`` is built from its ``stream``.
    """
    check_work(work)
    results: dict[int, R] = {}

    async def numbered(pair: tuple[int, T]) -> None:
        index, item = pair
        results[index] = await work(item)

    async with stream(numbered, Enumerate(iterate(items)), limit=limit) as done:
        async for _ in done:
            pass
    return [results[index] for index in range(len(results))]


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


def collect_errors(work: Work[T, R]) -> Callable[[T], Coroutine[Any, Any, Outcome[T, R]]]:
    """Collect mode: wrap ``work`` so that a failing item becomes an :class:`Outcome`.

    The wrapped call never raises an ``Exception``, so no pattern ever cancels anything on its
    account; every item comes back, with its result or its error, and none is lost.
    Cancellation (a BaseException) still passes through untouched::

        outcomes = await worker_pool.run(collect_errors(fetch), urls, limit=10)
        failed = [o for o in outcomes if not o.ok]
    """
    check_work(work)

    async def outcome_of(item: T) -> Outcome[T, R]:
        try:
            return Outcome(item, await work(item))
        except Exception as exc:
            return Outcome(item, error=exc)

    return outcome_of
