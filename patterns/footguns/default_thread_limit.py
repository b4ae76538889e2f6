"""Footgun: anyio's default thread limiter silently caps a higher limit (article 004).

``anyio.to_thread.run_sync(fn)`` without a ``limiter`` takes a token from anyio's default
limiter: one CapacityLimiter for the whole program, of 40 tokens unless someone changed it (on
trio, trio's own default, of 40 too). Run blocking calls through a pattern at ``limit=60`` and
the pattern starts 60 calls, but only 40 get a thread; the other 20 wait for a token, out of
sight: no error, no warning, just the limit in the code not being the one that holds, and a
run that takes twice as long. The fix: a limiter of the calls' own, as the threads recipe gives
them (``in_threads(fn)``: one limiter per event loop, unbounded unless asked, so the pattern's
limit holds), or ``run_sync(..., limiter=)`` with a limiter sized for the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import anyio.to_thread

from patterns import worker_pool
from patterns.footguns.exhibit import Exhibit, Instrument, Verdict
from patterns.lab.core import Work
from patterns.threads import in_threads

CALLS = LIMIT = 60
# Long beside the time 60 new threads take to start (15-20 ms here, several times that on a
# busy machine), so that every thread that can run at once does overlap the others.
SLEEP_S = 0.2


def _nap(item: int) -> None:
    time.sleep(SLEEP_S)  # a blocking call: a sync SDK, requests.get, a driver without async


async def _scenario(
    to_threads: Callable[[Callable[[int], None]], Work[int, None]], limiter: str
) -> Verdict:
    # The instrument wraps the sync function inside its worker thread, so that it counts the
    # calls a thread is running: what the limiter caps. Wrapped around the async call, it would
    # count 60 in flight in both versions, for a call waiting for a token is in flight too.
    threads = Instrument()
    await worker_pool.run(to_threads(threads.wrap_sync(_nap)), range(CALLS), limit=LIMIT)
    # A token comes free only when a call ends: a call whose thread started after the first
    # call had ended waited for a token. (Not "started late": new threads start one after
    # another, each waiting its turn at the GIL, so the 60th may start tens of ms after the
    # first without having waited for anything but the machine.)
    first_end = min(call.end for call in threads.calls)
    waited = sum(call.start >= first_end for call in threads.calls)
    observed = f"{threads.peak} threads at most, for a limit of {LIMIT}: " + (
        f"{waited} calls waited for {limiter}" if waited else "no call waited for a thread"
    )
    return Verdict(threads.peak >= LIMIT, observed, threads.spans())


def _default_limiter(fn: Callable[[int], None]) -> Work[int, None]:
    async def in_a_thread(item: int) -> None:
        # No limiter=: the default one, shared by every such call in the program.
        await anyio.to_thread.run_sync(fn, item)

    return in_a_thread


async def broken() -> Verdict:
    """Bare ``anyio.to_thread.run_sync``: anyio's default limiter caps the pattern's limit."""
    tokens = anyio.to_thread.current_default_thread_limiter().total_tokens
    return await _scenario(_default_limiter, f"anyio's default limiter, of {tokens:g} threads")


async def fixed() -> Verdict:
    """The threads recipe: a limiter of its own, unbounded, so the pattern's limit holds."""
    return await _scenario(in_threads, "a thread")


EXHIBIT = Exhibit(
    name="default-thread-limit",
    title="anyio's default thread limiter silently capping a higher limit",
    article="004: async I/O from scratch, threads vs an event loop",
    why=(
        "anyio.to_thread.run_sync() without a limiter draws from anyio's default limiter, one "
        "for the whole program, with a fixed number of tokens "
        "(anyio.to_thread.current_default_thread_limiter()). The pattern started every call, "
        "but those beyond the tokens waited for a thread, silently. Give the calls a limiter "
        "of their own: in_threads(fn), or run_sync(..., limiter=CapacityLimiter(n))."
    ),
    broken=broken,
    fixed=fixed,
)
