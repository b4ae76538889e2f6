"""Footgun: a CPU-bound call in a coroutine hogs the event loop (article 004).

A coroutine that computes (parses, hashes, resizes, loops in Python) reaches no ``await`` until
it is done, so the event loop runs nothing else meanwhile: quick I/O calls whose replies were
due in 10 ms get them only when it lets go, a few hundred ms later. It is the blocking call's
footgun without a blocking call to spot: the code is ``async def``, and it only computes. The
fix: run the CPU-bound call in a worker process, on an interpreter and a core of its own (the
processes recipe, ``in_processes(fn)``), and await its result; the loop runs on. A thread would
keep the loop answering too, a few ms late at each switch of the GIL, but it computes no faster
than the loop would: the GIL lets one thread at a time run Python.
"""

from __future__ import annotations

import functools

import anyio
from anyio.abc import TaskStatus

from patterns.footguns.exhibit import Exhibit, Instrument, Verdict
from patterns.lab.core import Work
from patterns.lab.workload import Item, burn, spin_rate
from patterns.processes import in_processes

QUICK, QUICK_S, CPU_S = 8, 0.01, 0.3
# 15 times a quick call's time, half the CPU-bound call's: on time, with room for a busy machine.
FIRST_BY = 0.15
QUICK_LABEL, CPU_LABEL = "quick call", "CPU-bound call"


async def _quick(label: str) -> None:
    await anyio.sleep(QUICK_S)  # an I/O call: a request to a fast server


async def _scenario(cpu: Work[Item, str], where: str) -> Verdict:
    probe = Instrument()

    async def quick(label: str, *, task_status: TaskStatus[None]) -> None:
        async def call(label: str) -> None:
            task_status.started()
            await _quick(label)

        await probe.wrap(call)(label)

    async def cpu_call(label: str) -> str:
        return await cpu(Item(0, CPU_S))

    async with anyio.create_task_group() as tg:
        # start() returns once each quick call is under way, awaiting its reply: the CPU-bound
        # call begins while they all wait (on every backend, whatever order it runs tasks in).
        for i in range(QUICK):
            await tg.start(quick, f"{QUICK_LABEL} {i}")
        tg.start_soon(probe.wrap(cpu_call), f"{CPU_LABEL} ({where})")
    quick_calls = [c for c in probe.calls if c.item.startswith(QUICK_LABEL)]
    first = min(c.end for c in quick_calls) - min(c.start for c in quick_calls)
    took = next(c.end - c.start for c in probe.calls if c.item.startswith(CPU_LABEL))
    on_time = first < FIRST_BY
    observed = (
        f"the quick calls' first result came after {first * 1000:.0f} ms (they take "
        f"{QUICK_S * 1000:.0f} ms), "
        + (
            f"while the {took * 1000:.0f} ms CPU-bound call ran {where}"
            if on_time
            else f"once the {took * 1000:.0f} ms CPU-bound call let go of the loop"
        )
    )
    return Verdict(on_time, observed, probe.spans(str))


async def broken() -> Verdict:
    """The CPU-bound call in a coroutine: the loop computes, and nothing else runs."""
    rate = spin_rate()  # calibrated once per process, before the clock starts

    async def on_the_loop(item: Item) -> str:
        return burn(item, rate=rate)

    return await _scenario(on_the_loop, "the loop is blocked")


async def fixed() -> Verdict:
    """The same call in a worker process: the loop awaits its result, and runs on."""
    # A partial of a module-level function pickles: the worker imports burn by name.
    cpu = in_processes(functools.partial(burn, rate=spin_rate()))
    # Start the worker before the clock does (about 0.1-0.3 s, once per event loop): the point
    # is the quick calls, not what a process costs to start. It stays warm for the run, and
    # anyio kills it when the event loop ends. Shielded: a worker cancelled while it starts is
    # neither killed nor put in that pool by anyio (4.16), and on trio it was seen left running
    # until the program exited; so a cancellation here waits that fraction of a second.
    with anyio.CancelScope(shield=True):
        await cpu(Item(0, 0.0))
    return await _scenario(cpu, "in a process")


EXHIBIT = Exhibit(
    name="cpu-hog",
    title="A CPU-bound coroutine hogging the event loop",
    article="004: async I/O from scratch, threads vs an event loop",
    why=(
        "The event loop runs one coroutine at a time and switches only at an await; a coroutine "
        "that computes awaits nothing until it is done, so the quick calls' replies waited for "
        "it. Run CPU-bound work in a worker process (in_processes, anyio.to_process.run_sync) "
        "and await its result. A thread keeps the loop answering too, but computes no faster: "
        "the GIL lets one thread at a time run Python."
    ),
    broken=broken,
    fixed=fixed,
)
