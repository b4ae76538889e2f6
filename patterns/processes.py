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
    a lambda, a closure or a function defined in a notebook cell cannot go (refused when the
    adapter is made, naming ``fn``: move it into a module). The worker also imports the
    program's main script: one without an ``if __name__ == "__main__":`` guard starts itself
    again in every worker, as with ``multiprocessing``. A failing call's exception comes back
    bare, but without the worker's traceback.

    Cancelling the stream kills the workers running its calls (``cancellable=True``, the
    default here; anyio's own default is to wait for them): nothing runs on that nobody waits
    for, and the next call starts a fresh worker. The workers left idle are killed when the
    event loop ends, so none outlives ``anyio.run``. One gap, in anyio 4.16: a call cancelled
    while its worker is still starting (the first ~0.3 s) leaves that worker idle outside the
    pool until its pipe is garbage-collected; it runs none of your work.

Cost (measured)
    0.23–0.75 ms per call to pickle a small call to a warm worker and its result back, one at
    a time (0.8–1.7 ms with 100 KB each way), and 0.33 s to start each worker, a fresh
    interpreter importing anyio and your module (two runs of ``pytest bench/test_handoff.py
    --benchmark-only`` on a 2-core VM, asyncio and trio). At limit 2 on 2 cores, processes
    caught up with the event loop at 1 ms of CPU per item (1.06–1.14×), reached 1.6–1.9× at
    10 ms, and 1.8–2.1× on 50–150 ms items (``python -m patterns parallel --rounds 3``): worth
    it from a few ms of CPU per item.

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

import inspect
import pickle
import sys
from collections.abc import Callable

import anyio
import anyio.to_process
from anyio.lowlevel import RunVar

from .contract import R, T, Work, check


def in_processes(
    fn: Callable[[T], R], *, limit: int | None = None, cancellable: bool = True
) -> Work[T, R]:
    """``fn`` as async work: each call runs ``fn(item)`` in a worker process.

    ``fn``, each item and each result must pickle. ``limit`` caps the processes this adapter
    keeps busy at once, across every stream that uses it (by default no cap beyond the
    pattern's limit). ``cancellable=False`` makes a cancelled call wait for its process to
    finish instead of killing it.
    """
    if inspect.iscoroutinefunction(fn) or not callable(fn):
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
    tokens = float("inf") if limit is None else check("limit", limit)
    # One limiter per event loop, as anyio's worker processes are; not anyio's default one,
    # which caps the program at one process per core whatever the pattern's limit says.
    limiters: RunVar[anyio.CapacityLimiter] = RunVar("in_processes")

    async def in_a_process(item: T) -> R:
        try:
            limiter = limiters.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(tokens)
            limiters.set(limiter)
        return await anyio.to_process.run_sync(fn, item, limiter=limiter, cancellable=cancellable)

    return in_a_process
