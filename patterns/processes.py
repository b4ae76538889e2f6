"""CPU-bound work in processes: a sync function run on every core, as work for any pattern.

Items flow your pattern's tasks → ``in_processes(fn)`` → pickled to one of anyio's worker
processes per call in flight → ``fn(item)`` on its own core → its result, pickled back.

```python
import anyio

from patterns import buffered_unordered  # copied: from yourapp import buffered_unordered
from patterns.processes import in_processes  # copied: from yourapp.processes import in_processes

# CPU-bound work in plain Python holds the GIL: sum() over a range stands in for parsing,
# hashing or resizing. The worker imports fn by name: define yours at a module's top level.
sizes = [range(n) for n in range(2_000_000, 2_000_020)]


async def main() -> None:
    async with buffered_unordered.stream(in_processes(sum), sizes, limit=2) as totals:
        async for total in totals:  # in the order the calls finish
            print(total)


if __name__ == "__main__":  # a worker process imports this file: it must not run main again
    anyio.run(main)
```

What it is
    ``in_processes(fn)`` is an async function that sends ``fn`` and the item, pickled, to one
    of anyio's worker processes, and awaits the result, pickled back. Each process has its own
    interpreter and its own GIL, so CPU-bound Python runs on every core at once. Any pattern
    runs it; the pattern's ``limit`` bounds the processes busy at once.

When to use it
    The work burns CPU in Python (parsing, hashing, image resizing) and each call costs well
    more than the hand-off below; set ``limit`` to the number of cores, since more processes
    cannot run CPU work faster and each one holds an interpreter in memory. For blocking I/O,
    threads cost less (in_threads).

Failure mode
    What crosses to the worker must pickle, and the worker imports your function by name:
    a lambda, a closure or a function defined in a notebook cell cannot go, nor can async
    work, an ``async def`` or an object whose ``__call__`` is one (each refused when the
    adapter is made, naming ``fn``). The worker also imports the program's main script: one
    without an ``if __name__ == "__main__":`` guard starts itself again in every worker, as
    with ``multiprocessing``, and one that raises on import fails the call with anyio's
    ``BrokenWorkerProcess``, what it raised in its message (``Error during worker process
    initialization: RuntimeError: ...``). A failing call's exception comes back bare, but
    without the worker's traceback; one whose type cannot be rebuilt from its pickle (an
    ``__init__`` that takes other arguments than a message) comes back as the contract's
    ``RemoteError``, naming its type and message, instead of a TypeError about ``__init__``.

    Cancelling the stream kills the workers running its calls (``cancellable=True``, the
    default here; anyio's own default is to wait for them): nothing runs on that nobody waits
    for, and the next call starts a fresh worker. The workers left idle are killed when the
    event loop ends, so none outlives ``anyio.run``. A worker still starting is not killed:
    anyio 4.16 would lose it (a call cancelled in its worker's first ~0.3 s leaves that
    worker running outside the pool), so a new worker starts shielded from cancellation, and
    a call cancelled meanwhile waits for the start to end (see Cost); the worker then waits
    idle for the next call. A start that fails is killed and waited for (anyio kills it but
    does not wait: on trio, a zombie for as long as the error lives).

Cost (measured)
    0.23–0.75 ms per call to pickle a small call to a warm worker and its result back, one at
    a time (0.8–1.7 ms with 100 KB each way), and 0.33 s to start each worker, a fresh
    interpreter importing anyio and your module (two runs of ``pytest bench/test_handoff.py
    --benchmark-only`` on a 2-core VM, asyncio and trio). At limit 2 on 2 cores, processes
    caught up with the event loop at 1 ms of CPU per item (1.06–1.14×), reached 1.6–1.9× at
    10 ms, and 1.8–2.1× on 50–150 ms items (``python -m patterns parallel --rounds 3``): worth
    it from a few ms of CPU per item. A call that starts a worker makes one more round trip,
    and a cancellation that comes during a start waits for it: ~0.3 s, more where the main
    script is slow to import, so a timeout on a call to a cold pool can run that much over.

Beside the textbook version
    The textbook is ``loop.run_in_executor`` with a ``ProcessPoolExecutor``: asyncio only, and
    a cancelled call keeps running in its process, with nobody left to read the result.
    anyio's worker processes run on trio too and can be killed on cancel, which is why this
    recipe uses them; the executor is still the choice for sharing one pool across event
    loops or for ``initializer=`` per process.

```python
import asyncio
from concurrent.futures import ProcessPoolExecutor


async def textbook_in_processes(fn, items):
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=2) as pool:  # a cancelled call runs on regardless
        return await asyncio.gather(*(loop.run_in_executor(pool, fn, i) for i in items))


if __name__ == "__main__":
    print(asyncio.run(textbook_in_processes(sum, sizes[:4])))
```
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import os
import pickle
import sys
from collections.abc import Callable

import anyio
import anyio.abc
import anyio.to_process
from anyio.lowlevel import RunVar

from .contract import R, T, Work, check, portable


def in_processes(
    fn: Callable[[T], R], *, limit: int | None = None, cancellable: bool = True
) -> Work[T, R]:
    """``fn`` as async work: each call runs ``fn(item)`` in a worker process.

    ``fn``, each item and each result must pickle. ``limit`` caps the processes this adapter
    keeps busy at once, across every stream that uses it (by default no cap beyond the
    pattern's limit). ``cancellable=False`` makes a cancelled call wait for its process to
    finish instead of killing it. A failure comes back as itself, or as a ``RemoteError``
    naming it where its type cannot be rebuilt from its pickle.
    """
    if _awaits(fn) or not callable(fn):
        raise TypeError(f"fn must be a plain (sync) function, got {fn!r}: await async work")
    try:
        pickle.dumps(fn)
    except Exception as error:  # pickle raises several kinds: say which, and what to do
        raise TypeError(
            f"fn must pickle to reach a worker process (a function defined at a module's top "
            f"level, not a lambda or a closure), got {fn!r}: {error}"
        ) from None
    # A function of a notebook or a REPL pickles by name, as __main__.fn, but a worker has
    # no file to load that __main__ from: refuse it now, not at the first call.
    main = sys.modules.get("__main__")
    home = getattr(inspect.unwrap(getattr(fn, "func", fn)), "__module__", None)
    if home == "__main__" and getattr(main, "__file__", None) is None:
        raise TypeError(
            f"fn must be importable by a worker process, got {fn!r}, defined in a notebook or "
            "an interactive session: move it into a module and import it from there"
        )
    # The worker imports _portably by name too: where this file is itself a __main__ that
    # has no file to load (pasted into a notebook cell or a REPL), it cannot, and fn goes
    # alone (its failures as anyio sends them).
    pasted = __name__ == "__main__" and not os.path.isfile(getattr(main, "__file__", None) or "")
    call: Callable[[T], R] = fn if pasted else functools.partial(_portably, fn)
    tokens = None if limit is None else check("limit", limit)
    # One limiter per event loop, as anyio's worker processes are; not anyio's default one,
    # which caps the program at one process per core whatever the pattern's limit says.
    limiters: RunVar[anyio.CapacityLimiter] = RunVar("in_processes")

    async def in_a_process(item: T) -> R:
        if tokens is None:  # no cap of its own: the pattern's limit is the one that holds
            return await _run(call, item, cancellable)
        try:
            limiter = limiters.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(tokens)
            limiters.set(limiter)
        async with limiter:  # waited for here, cancellably, and not in a shielded start
            return await _run(call, item, cancellable)

    return in_a_process


async def _run(call: Callable[[T], R], item: T, cancellable: bool) -> R:
    """``call(item)`` in one of anyio's worker processes, none of them lost on the way."""
    pool = _pool()
    try:
        if pool.idle:
            pool.idle -= 1  # this call takes one: anyio hands out an idle worker first
        else:
            # None known idle: anyio would start one for this call, and a cancellation during
            # that start (~0.3 s) loses it (see _reap). Start it shielded, with a call of
            # nothing: it waits idle in anyio's pool for the call that follows, or, cancelled
            # meanwhile, for the next call (anyio kills it when the loop ends). A cancellation
            # during a start waits for it: that is the price.
            with anyio.CancelScope(shield=True):
                await anyio.to_process.run_sync(os.getpid, limiter=pool.unlimited)
        result = await anyio.to_process.run_sync(
            call, item, limiter=pool.unlimited, cancellable=cancellable
        )
    except (anyio.BrokenWorkerProcess, anyio.get_cancelled_exc_class()) as error:
        # Its worker is gone (killed mid-call, or broken); or anyio let go of it while
        # starting it, unshielded where the count was wrong: end that one now.
        await _reap(error)
        if isinstance(error, anyio.BrokenWorkerProcess) and error.__cause__ is not None:
            raise _explained(error, error.__cause__) from error.__cause__
        raise
    except BaseException:
        pool.idle += 1  # fn failed, or its item or result would not pickle: back idle
        raise
    pool.idle += 1
    return result


class _Pool:
    """What this module knows of anyio's worker processes in one event loop: how many are
    idle, a call taking one and putting it back unless it was killed. Counting low (a call
    cancelled before it took its worker) costs a shielded start that finds an idle worker: a
    round trip, not a new process. Counting high (a worker idle past anyio's 300 s limit, or
    taken by another user of anyio's pool, or by a call racing this one) lets anyio start a
    worker unshielded: cancelled meanwhile, it is ended by _reap."""

    def __init__(self) -> None:
        self.idle = 0
        # The limiter anyio's calls are given: an adapter's own limit is held already, and
        # anyio's default one would cap the program at one process per core.
        self.unlimited = anyio.CapacityLimiter(math.inf)


_pools: RunVar[_Pool] = RunVar("in_processes_pool")  # one per event loop, as anyio's pool


def _pool() -> _Pool:
    try:
        return _pools.get()
    except LookupError:
        _pools.set(pool := _Pool())
        return pool


def _awaits(fn: object) -> bool:
    """``fn`` is an ``async def`` function (or an async generator's), bare, in a partial, or
    an object's ``__call__``: called in a worker, it would return something to await there."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    call = type(fn).__call__  # what calling an object runs: its type's (a class: type's)
    return any(inspect.iscoroutinefunction(f) or inspect.isasyncgenfunction(f) for f in (fn, call))


def _portably(fn: Callable[[T], R], item: T) -> R:
    """``fn(item)``, run in the worker; its failure raised as one the caller can unpickle.

    A worker sends an exception back pickled, and the caller rebuilds it by calling its type
    with its ``args``: an ``__init__`` that takes other arguments than its message breaks
    that (a TypeError about ``__init__``, in place of the failure). Such an error comes back
    as a :class:`RemoteError` naming its type and message; any other, as itself.
    """
    try:
        return fn(item)
    except BaseException as error:
        raise portable(error) from None


async def _reap(error: BaseException) -> None:
    """Kill, and wait for, a worker process that anyio 4.16 let go of while starting it.

    Cancelled while it waits for its new worker to say it is ready (the first ~0.3 s),
    ``anyio.to_process.run_sync`` re-raises without killing that worker or putting it in the
    pool that anyio empties when the loop ends: it runs on, idle, until its pipe is garbage
    collected. A start that fails kills the worker but never waits for it (on trio it stays a
    zombie while the error lives), or, if the worker answered nonsense, leaves it running.
    Each time, anyio's own frames in ``error``'s traceback still hold the worker, the one
    among them not yet ended (a worker that fails mid-call, anyio kills and waits for
    itself): end it here, at once. anyio's fix (github.com/agronholm/anyio/pull/1337), once
    released, leaves this nothing to find.

    Why a shielded start as well, and not this alone: a start cancelled in its very first
    moments, while the process forks, never reaches anyio's frames (uvloop kills it, and
    reaps it only while the loop runs: a zombie, when the loop ends right after), and a
    worker killed mid-start is a start wasted: a timeout shorter than a start, retried,
    would never get a call through. And why not the shielded start alone: the count of idle
    workers it relies on cannot follow anyio's pool exactly (_Pool), so this is its backstop.
    """
    trace = error.__traceback__
    while trace is not None:
        frame, trace = trace.tb_frame, trace.tb_next
        if frame.f_globals.get("__name__") != anyio.to_process.__name__:
            continue
        for worker in [v for v in frame.f_locals.values() if isinstance(v, anyio.abc.Process)]:
            if worker.returncode is None:
                with anyio.CancelScope(shield=True):  # the call may be leaving on cancellation
                    with contextlib.suppress(ProcessLookupError):  # it has exited meanwhile
                        worker.kill()
                    await worker.aclose()  # its pipes closed, its exit waited for: no zombie


def _explained(error: anyio.BrokenWorkerProcess, cause: BaseException) -> Exception:
    """anyio's BrokenWorkerProcess, its cause in its message: what failed, not only where."""
    if not str(error):  # its cause is only the pipe that closed: say what that means
        return anyio.BrokenWorkerProcess("The worker process ended without answering")
    why = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
    return anyio.BrokenWorkerProcess(f"{error}: {why}")
