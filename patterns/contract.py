"""The one helper every recipe shares: copy it beside the recipe, in the same package. It keeps
alike: bad arguments named, input read lazily, the first failure bare, ``run`` in input order.
Its ``check`` is the package's one argument check: the recipes, the server and the CLI say the
same thing of the same mistake."""

from __future__ import annotations

import functools
import inspect
import math
import pickle
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar, runtime_checkable

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

T = TypeVar("T")
R = TypeVar("R")
Work = Callable[[T], Awaitable[R]]  # what every recipe runs: an async callable, one item
Items = Iterable[T] | AsyncIterable[T]  # what every recipe takes: any iterable, sync or async
Stream = Callable[..., AbstractAsyncContextManager[AsyncIterator[Any]]]  # a recipe's stream()


@runtime_checkable
class Limit(Protocol):
    """A limit that moves while the calls run (``patterns.adaptive``): a recipe keeps
    ``maximum`` as its fixed bound (workers, buffer) and runs every call through ``gate``."""

    maximum: int

    def gate(self, work: Work[T, R]) -> Work[T, R]: ...


#: The place in an adaptive limit's gate that this task holds, as ``(task id, place)``: a retry
#: (``patterns.retry``) gives it back while it backs off. Children inherit the variable, not
#: the place: the task id tells them apart.
HELD: ContextVar[tuple[int, Any] | None] = ContextVar("patterns_held", default=None)


def bound(work: Work[T, R], limit: int | Limit) -> tuple[Work[T, R], int]:
    """A recipe's work and fixed bound: as they are for an int ``limit``; for a :class:`Limit`,
    the work through its gate, and its maximum."""
    if isinstance(limit, Limit) and not isinstance(limit, int):
        return limit.gate(work), check("limit.maximum", limit.maximum)
    return work, limit


def checked(work: object, items: Items[T], limit: object) -> AsyncIterator[T]:
    """Check a recipe's three arguments, naming the bad one; return the items, unread."""
    check_work(work)
    if not isinstance(limit, Limit):
        check("limit", limit)
    if isinstance(items, AsyncIterable):
        return aiter(items)
    if isinstance(items, Iterable):
        return SyncSource(iter(items))
    raise TypeError(f"items must be an iterable or an async iterable, got {type(items).__name__}")


def check(
    name: str, value: Any, least: float = 1, most: float = math.inf, *, whole: bool = True
) -> Any:
    """Return ``value`` if it is a number (an int if ``whole``) from ``least`` to ``most``; else
    raise TypeError (not a number) or ValueError (out of range), naming ``name``."""
    span = (
        f"between {_shown(least)} and {_shown(most)}" if most < math.inf
        else f">= {_shown(least)}" if least > -math.inf else ""
    )  # fmt: skip
    # bool is a subclass of int: without this test, limit=True would quietly mean 1.
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
        kind = f"{'an int' if whole else 'a number'} {span}".strip()
        raise TypeError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
    if not (whole or math.isfinite(value)) or not least <= value <= most:
        kind = "" if whole or most < math.inf else "a finite number "  # "between" says finite
        raise ValueError(f"{name} must be {kind}{span}, got {value if whole else _shown(value)}")
    return value


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> Any:
    """Return ``value`` if it is one of ``choices``; else a ValueError naming ``name``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _shown(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"  # 1000000, not 1e+06


def check_work(work: object) -> None:
    """Refuse what can never return an awaitable (a plain ``def`` can't be judged uncalled)."""
    fn = work
    while isinstance(fn, functools.partial):
        fn = fn.func
    kind = (
        "an async generator function" if inspect.isasyncgenfunction(fn)
        # A generator function decorated with types.coroutine is awaitable: its flag says so.
        else "a generator function" if inspect.isgeneratorfunction(fn)
        and not fn.__code__.co_flags & inspect.CO_ITERABLE_COROUTINE
        else "a built-in function" if inspect.isbuiltin(fn)
        else "a class" if isinstance(fn, type) and not hasattr(fn, "__await__")
        else None if callable(fn) else "not callable"
    )  # fmt: skip
    if kind:
        kind = f"{work!r} ({kind}): define it with async def"
        raise TypeError(f"work must be an async callable taking one item, got {kind}")


class SyncSource(AsyncIterator[T]):
    """A plain iterator as an async one, that tasks may share without a lock (it never waits)."""

    def __init__(self, it: Iterator[T]) -> None:
        self._it = it

    async def __anext__(self) -> T:
        try:
            return next(self._it)
        except StopIteration:
            raise StopAsyncIteration from None


@asynccontextmanager
async def fail_fast(source: object = None) -> AsyncIterator[TaskGroup]:
    """A task group whose first failure is raised bare once all has stopped (racing ones in its
    notes); leaving it cancels what runs and closes ``source`` (an async generator half-read)."""
    try:
        async with anyio.create_task_group() as group:
            yield group
            group.cancel_scope.cancel()  # the consumer is done: so is everything else
    except BaseExceptionGroup as failures:
        found = leaves(failures)
        # A Ctrl+C outranks the failures it interrupted, as it would without a task group.
        first = next((e for e in found if not isinstance(e, Exception)), found[0])
        for other in (e for e in found if e is not first):
            first.add_note(f"also failed before the rest were cancelled: {other!r}")
        # Raised as the work raised it: its own __cause__ and __context__, not the group.
        cause, context, hidden = first.__cause__, first.__context__, first.__suppress_context__
        try:
            raise first
        finally:
            first.__cause__, first.__context__ = cause, context
            first.__suppress_context__ = hidden
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:  # shielded: the block may be leaving under cancellation
            with anyio.CancelScope(shield=True):
                await aclose()


class RemoteError(Exception):
    """A failure that could not come back from another process as itself (its type does not
    unpickle): its type's name and its message, in words."""


def portable(error: BaseException, dumps: Callable[[Any], bytes] = pickle.dumps) -> BaseException:
    """``error`` if it survives pickling (``dumps``) as itself; else a RemoteError naming it."""
    try:
        pickle.loads(dumps(error))
    except Exception as why:  # pickle fails in several ways: each is "not as itself"
        kind = f"{type(error).__module__}.{type(error).__qualname__}"
        return RemoteError(f"{kind}: {error} (it cannot cross processes as itself: {why})")
    return error


def leaves(error: BaseException) -> list[BaseException]:
    """``error``, or the exceptions at the bottom of it if it is a (nested) exception group."""
    return [leaf for e in getattr(error, "exceptions", ()) for leaf in leaves(e)] or [error]


async def send(stream: MemoryObjectSendStream[T], item: T) -> None:
    """Send ``item``; only a full stream waits (anyio's send() always passes through the event
    loop first: send_nowait() saves that trip, which made the worker pool 6x faster)."""
    try:
        stream.send_nowait(item)
    except anyio.WouldBlock:
        await stream.send(item)


class drain(AsyncIterator[T]):
    """Iterate ``stream`` until every sender has closed it: what a ``stream`` block reads."""

    def __init__(self, stream: MemoryObjectReceiveStream[T]) -> None:
        self._stream = stream

    async def __anext__(self) -> T:
        try:
            try:
                return self._stream.receive_nowait()  # the same shortcut as send(): 5x faster
            except anyio.WouldBlock:
                return await self._stream.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


async def run_in_order(
    stream: Stream, work: Work[T, R], items: Items[T], *, limit: int | Limit
) -> list[R]:
    """Drive ``stream`` to the end; every result in input order (items numbered as pulled)."""
    check_work(work)
    results: dict[int, R] = {}

    async def numbered(pair: tuple[int, T]) -> None:
        results[pair[0]] = await work(pair[1])

    pairs = (
        aenumerate(aiter(items)) if isinstance(items, AsyncIterable)
        else enumerate(items) if isinstance(items, Iterable) else items  # checked() names it
    )  # fmt: skip
    async with stream(numbered, pairs, limit=limit) as done:
        async for _ in done:
            pass
    return [results[index] for index in range(len(results))]


async def aenumerate(source: AsyncIterator[T]) -> AsyncIterator[tuple[int, T]]:
    """``(index, item)`` pairs of an async iterator, as ``enumerate`` gives of a sync one."""
    index = 0
    try:
        async for item in source:
            yield index, item
            index += 1
    finally:  # closed half-read (a stream closes this one): close what it reads from too
        if hasattr(source, "aclose"):
            await source.aclose()
