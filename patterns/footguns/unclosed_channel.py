"""Footgun: a worker pool whose original channel ends are never closed (article 002).

A channel's reader sees the end only when every clone of the sending end is closed. Each worker
gets a clone and closes it when done; the original, kept open here, never is, so the consumer
waits forever after the last result. The fix is the worker pool recipe: the original ends close
as soon as the workers have their clones (there, when the input runs out).
"""

from __future__ import annotations

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from patterns import worker_pool
from patterns.footguns.exhibit import Exhibit, Instrument, Verdict

ITEMS, WORKERS, GIVE_UP_S = 20, 4, 0.5


async def _work(item: int) -> int:
    await anyio.sleep(0.005)
    return item


async def broken() -> Verdict:
    """The workers close their clones; nobody closes the originals."""
    received, probe, last = 0, Instrument(), 0.0
    work = probe.wrap(_work)
    send_items, receive_items = anyio.create_memory_object_stream[int](ITEMS)
    send_results, receive_results = anyio.create_memory_object_stream[int](ITEMS)

    async def worker(
        items: MemoryObjectReceiveStream[int], results: MemoryObjectSendStream[int]
    ) -> None:
        async with items, results:
            async for item in items:
                await results.send(await work(item))

    # The outer `async with` closes everything when the exhibit ends, so nothing leaks; inside
    # it, the originals stay open all the time the consumer is reading: that is the bug.
    async with send_items, receive_items, send_results, receive_results:
        with anyio.move_on_after(GIVE_UP_S) as gave_up:
            async with anyio.create_task_group() as tg:
                for _ in range(WORKERS):
                    tg.start_soon(worker, receive_items.clone(), send_results.clone())
                for item in range(ITEMS):
                    await send_items.send(item)
                send_items.close()  # the input is done: the workers' loops end...
                async for _ in receive_results:  # ...but this one never does
                    received += 1
                    last = probe.clock()
    probe.mark("consumer waiting for the end (stuck)", last)
    return _verdict(not gave_up.cancelled_caught, received, probe)


async def fixed() -> Verdict:
    """The worker pool recipe closes the originals: the consumer's loop ends."""
    received, probe = 0, Instrument()
    with anyio.move_on_after(GIVE_UP_S * 10) as gave_up:
        async with worker_pool.stream(probe.wrap(_work), range(ITEMS), limit=WORKERS) as results:
            async for _ in results:
                received += 1
    return _verdict(not gave_up.cancelled_caught, received, probe)


def _verdict(finished: bool, received: int, probe: Instrument) -> Verdict:
    if finished:
        return Verdict(
            True, f"all {received} results in, and the consumer's loop ended", probe.spans()
        )
    return Verdict(
        False,
        f"hung: all {received} results were in, but the consumer was still waiting for the "
        f"channel to end when we gave up after {GIVE_UP_S} s",
        probe.spans(),
    )


EXHIBIT = Exhibit(
    name="unclosed-channel",
    title="A worker pool whose original channel ends are never closed",
    article="002: scatter/gather, worker pool, semaphore, buffered stream",
    why=(
        "A receiving loop ends only when every clone of the sending end is closed. The workers "
        "closed theirs, but the original result sender stayed open, so the consumer waited for "
        "more results that could never come. Close the originals once the clones are handed out."
    ),
    broken=broken,
    fixed=fixed,
)
