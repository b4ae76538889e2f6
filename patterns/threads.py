"""Blocking work in threads: a sync function turned into work that any pattern can run.

Items flow your pattern's tasks → ``in_threads(fn)`` → one of anyio's worker threads per call
in flight → ``fn(item)`` → its result, back on the event loop.

```python
import random
import time

import anyio

from patterns import worker_pool  # copied: from yourapp import worker_pool
from patterns.threads import in_threads  # copied: from yourapp.threads import in_threads

urls = [f"https://example.com/{n}" for n in range(20)]


def fetch(url: str) -> str:  # blocking, as requests.get or a sync SDK would be
    time.sleep(random.uniform(0.01, 0.05))
    return f"<html of {url}>"


async def main() -> None:
    async with worker_pool.stream(in_threads(fetch), urls, limit=8) as pages:
        async for page in pages:  # in the order the calls finish
            print(page)


anyio.run(main)
```

What it is
    ``in_threads(fn)`` is an async function that runs ``fn(item)`` in a worker thread and
    awaits its result, so that a blocking call (a sync SDK, ``requests``, a database driver
    without async support, a file read) leaves the event loop free for the other calls. Any
    pattern runs it, and the pattern's ``limit`` bounds the threads busy at once.

When to use it
    The work blocks and has no async version. A thread waiting on I/O or sleeping releases the
    GIL, so ``limit`` blocking calls really do wait side by side. Not for CPU-bound Python:
    only one thread at a time runs Python code, so threads run it no faster than one loop does
    (``python -m patterns parallel`` measures it; use in_processes).

Failure mode
    anyio's default limiter. ``anyio.to_thread.run_sync`` without a ``limiter`` draws from one
    limiter of 40 threads shared by the whole program: at ``limit=100``, 40 calls run and 60
    wait in silence (``python -m patterns footgun default-thread-limit``). Here each adapter
    has its own limiter, unbounded unless you pass ``limit=``, so the pattern's limit is the
    one that holds; ``limit=`` caps every stream that shares this adapter.

    And a thread cannot be interrupted. Cancelling the stream (an error elsewhere, a timeout,
    Ctrl+C) waits for the calls already running in threads to return: a ten-minute call holds
    up the cancellation ten minutes. ``abandon_on_cancel=True`` returns at once and leaves the
    thread running in the background, its result thrown away: work that nobody waits for, so
    only for calls that are safe to leave behind.

    Async work has no place here: an ``async def`` function, or an object whose ``__call__``
    is one, is refused when the adapter is made, naming ``fn`` (in a thread it would only
    make a coroutine that nobody awaits): pass it to the pattern as it is.

Cost (measured)
    0.24–0.41 ms per call to hand it to a waiting thread and take its result back, one call
    at a time: 0.24–0.32 ms on asyncio, 0.37–0.41 ms on trio, the same with 100 KB arguments
    (two runs of ``pytest bench/test_handoff.py --benchmark-only`` on a 2-core VM whose system
    calls are slow); a new thread starts in 1–2 ms. Small beside a blocking call of 10 ms;
    below a millisecond the hand-off is most of the cost, and an async client wins. Blocking
    calls of 50–150 ms, 8 at a time, ran at 97–99% of the ideal (``python -m patterns
    parallel``).

Beside the textbook version
    The textbook hands the call to asyncio's default executor: asyncio only, and a cap of its
    own, ``min(32, cores + 4)`` threads, that silently holds a higher ``limit`` down. anyio's
    threads run on trio too, and the limiter here is explicit.

```python
import asyncio


async def textbook_in_threads(fn, item):
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, fn, item)  # at most min(32, cores + 4) at once


print(asyncio.run(textbook_in_threads(fetch, urls[0])))
```
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from .contract import R, T, Work, check


def in_threads(
    fn: Callable[[T], R], *, limit: int | None = None, abandon_on_cancel: bool = False
) -> Work[T, R]:
    """``fn`` as async work: each call runs ``fn(item)`` in a worker thread.

    ``limit`` caps the threads this adapter keeps busy at once, across every stream that uses
    it (by default no cap: the pattern's limit holds). ``abandon_on_cancel`` lets a cancelled
    call return at once while its thread runs on; by default cancellation waits for it.
    ``fn`` must be sync: an ``async def``, or an object whose ``__call__`` is one, is refused
    (in a thread it would only make a coroutine, that nobody awaits).
    """
    if _awaits(fn) or not callable(fn):
        # An async function needs no thread, and would return a coroutine nobody awaits.
        raise TypeError(f"fn must be a plain (sync) function, got {fn!r}: await async work")
    tokens = math.inf if limit is None else check("limit", limit)
    # One limiter per event loop (a limiter belongs to the loop that made it), shared by every
    # call of this adapter in it; not anyio's default one, which caps the program at 40.
    limiters: RunVar[anyio.CapacityLimiter] = RunVar("in_threads")

    async def in_a_thread(item: T) -> R:
        try:
            limiter = limiters.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(tokens)
            limiters.set(limiter)
        return await anyio.to_thread.run_sync(
            fn, item, limiter=limiter, abandon_on_cancel=abandon_on_cancel
        )

    return in_a_thread


def _awaits(fn: object) -> bool:
    """``fn`` is an ``async def`` function (or an async generator's), bare, in a partial, or
    an object's ``__call__``: called in a thread, it would return something to await."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    call = type(fn).__call__  # what calling an object runs: its type's (a class: type's)
    return any(inspect.iscoroutinefunction(f) or inspect.isasyncgenfunction(f) for f in (fn, call))
