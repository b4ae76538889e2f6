"""The benchmark scenarios: every registered pattern beside the floors and the peers.

*Floors* are the same job written directly, as a careful engineer would without this cookbook:
a raw asyncio queue pool, a raw asyncio TaskGroup + Semaphore, ``asyncio.gather``, a bare anyio
task group, the textbook anyio Semaphore spawner, anyio's CapacityLimiter-per-task idiom, and a
plain trio memory-channel pool. *Peers* are what users would pick instead: anyio's own
``anyio.amap`` (unbounded, anyio 4.16 on), aiometer and aiostream (the ``bench`` extra; without
it they are skipped, and said to be).

The scenarios' building blocks, driven by pytest-benchmark alone (the ``test_*.py`` files
beside this one); ``python -m patterns bench`` runs that same suite:

1. overhead (:func:`time_once`): the work is one ``sleep(0)``; what each implementation costs
   per item, and its fixed cost (a run of one item).
2. efficiency (:func:`time_efficiency_once`): seeded latencies; makespan against the ideal.
3. memory (:func:`memory`): a long generator consumed in a fresh process; peak RSS growth.

The targets (:func:`targets`) are the project's own acceptance figures, judged in the summary
of a full-size run for its developers.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.lowlevel
from rich.table import Table

from patterns.lab.backends import BACKENDS, run_on
from patterns.lab.probe import Probe, peak_rss_kib
from patterns.lab.registry import PATTERNS
from patterns.lab.workload import Item, do_work

Work = Callable[[Any], Coroutine[Any, Any, Any]]
Runner = Callable[[Work, Sequence[Any], int], Awaitable[None]]
Kind = Literal["pattern", "floor", "peer", "probe"]
ALL_BACKENDS = frozenset(BACKENDS)
#: asyncio's own loop and uvloop's: what asyncio's primitives run on.
ASYNCIO_ONLY = ALL_BACKENDS - {"trio"}


@dataclass(frozen=True)
class Impl:
    """One way to run the job: a pattern, a floor or a peer, and where it can run."""

    name: str
    kind: Kind
    run: Runner
    backends: frozenset[str] = ALL_BACKENDS
    bounded: bool = True
    #: False for those that start a task per item up front, bound or not: their memory grows
    #: with the input, so the memory scenario runs them at a smaller size.
    lazy: bool = True
    #: The third-party package a peer needs (the ``bench`` extra), if any.
    package: str | None = None

    @property
    def available(self) -> bool:
        return self.package is None or importlib.util.find_spec(self.package) is not None


# --- the patterns, run the way a user runs them: through stream, results read and dropped ---


def _pattern(name: str) -> Runner:
    pattern = PATTERNS[name]

    async def run(work: Work, items: Sequence[Any], limit: int) -> None:
        async with pattern.stream(work, items, limit=limit) as results:
            async for _ in results:
                pass

    return run


def _probed(name: str) -> Runner:
    # The harness's probe around the work: the same pattern with and without it prices it.
    run_plain = _pattern(name)

    async def run(work: Work, items: Sequence[Any], limit: int) -> None:
        await run_plain(Probe().wrap(work), items, limit)

    return run


# --- floors ---------------------------------------------------------------------------------


async def asyncio_queue_pool(work: Work, items: Sequence[Any], limit: int) -> None:
    """asyncio.Queue(limit) + `limit` worker tasks: the fastest bounded pool the stdlib has."""
    queue: asyncio.Queue[Any] = asyncio.Queue(limit)
    done = object()

    async def worker() -> None:
        while (item := await queue.get()) is not done:
            await work(item)

    async with asyncio.TaskGroup() as tg:
        for _ in range(limit):
            tg.create_task(worker())
        for item in items:
            await queue.put(item)
        for _ in range(limit):
            await queue.put(done)


async def asyncio_semaphore_spawner(work: Work, items: Sequence[Any], limit: int) -> None:
    """asyncio.TaskGroup + asyncio.Semaphore, the permit taken before each task starts."""
    semaphore = asyncio.Semaphore(limit)

    async def call(item: Any) -> None:
        try:
            await work(item)
        finally:
            semaphore.release()

    async with asyncio.TaskGroup() as tg:
        for item in items:
            await semaphore.acquire()
            tg.create_task(call(item))


async def asyncio_gather(work: Work, items: Sequence[Any], limit: int) -> None:
    """asyncio.gather over every item at once: the stdlib's unbounded scatter/gather."""
    await asyncio.gather(*(work(item) for item in items))


async def anyio_task_group(work: Work, items: Sequence[Any], limit: int) -> None:
    """One anyio task per item, no bound: the floor for any anyio spawner."""
    async with anyio.create_task_group() as tg:
        for item in items:
            tg.start_soon(work, item)


async def anyio_semaphore_spawner(work: Work, items: Sequence[Any], limit: int) -> None:
    """The textbook anyio spawner: acquire, start_soon, release in the task."""
    semaphore = anyio.Semaphore(limit)

    async def call(item: Any) -> None:
        try:
            await work(item)
        finally:
            semaphore.release()

    async with anyio.create_task_group() as tg:
        for item in items:
            await semaphore.acquire()
            tg.start_soon(call, item)


async def anyio_capacity_limiter(work: Work, items: Sequence[Any], limit: int) -> None:
    """anyio's documented idiom: start every task, each waits on a shared CapacityLimiter."""
    limiter = anyio.CapacityLimiter(limit)

    async def call(item: Any) -> None:
        async with limiter:
            await work(item)

    async with anyio.create_task_group() as tg:
        for item in items:
            tg.start_soon(call, item)


async def trio_channel_pool(work: Work, items: Sequence[Any], limit: int) -> None:
    """A plain trio pool: a memory channel of `limit` and `limit` workers in a nursery."""
    import trio

    send, receive = trio.open_memory_channel[Any](limit)

    async def worker(receive: trio.MemoryReceiveChannel[Any]) -> None:
        async with receive:
            async for item in receive:
                await work(item)

    async with trio.open_nursery() as nursery:
        async with receive:
            for _ in range(limit):
                nursery.start_soon(worker, receive.clone())
        async with send:
            for item in items:
                await send.send(item)


# --- peers ----------------------------------------------------------------------------------


async def anyio_amap(work: Work, items: Sequence[Any], limit: int) -> None:
    """anyio.amap (anyio 4.16): a task per item, all at once, results in input order."""
    await anyio.amap(work, items)


async def aiometer_amap(work: Work, items: Sequence[Any], limit: int) -> None:
    """aiometer.amap with max_at_once (it needs a sequence: it takes len() of its input)."""
    import aiometer

    async with aiometer.amap(work, items, max_at_once=limit) as results:
        async for _ in results:
            pass


async def aiostream_map(work: Work, items: Sequence[Any], limit: int) -> None:
    """aiostream's stream.map with task_limit, unordered like the patterns' streams."""
    from aiostream import stream

    mapped = stream.map(stream.iterate(items), work, task_limit=limit, ordered=False)
    async with mapped.stream() as results:
        async for _ in results:
            pass


def implementations() -> list[Impl]:
    """Every registered pattern, then the floors, then the peers."""
    return [
        *(
            Impl(name, "pattern", _pattern(name), bounded=p.BOUNDED, lazy=p.BOUNDED)
            for name, p in PATTERNS.items()
        ),
        Impl("raw asyncio queue pool", "floor", asyncio_queue_pool, ASYNCIO_ONLY),
        Impl("raw asyncio TaskGroup+Semaphore", "floor", asyncio_semaphore_spawner, ASYNCIO_ONLY),
        Impl("asyncio.gather", "floor", asyncio_gather, ASYNCIO_ONLY, bounded=False, lazy=False),
        Impl("bare anyio task group", "floor", anyio_task_group, bounded=False, lazy=False),
        Impl("textbook anyio Semaphore spawner", "floor", anyio_semaphore_spawner),
        Impl("anyio CapacityLimiter per task", "floor", anyio_capacity_limiter, lazy=False),
        Impl("raw trio channel pool", "floor", trio_channel_pool, frozenset({"trio"})),
        # anyio's own unbounded map, from anyio 4.16 on (older versions have no row).
        *(
            [Impl("anyio.amap", "peer", anyio_amap, bounded=False, lazy=False)]
            if hasattr(anyio, "amap")
            else []
        ),
        Impl("aiometer.amap", "peer", aiometer_amap, package="aiometer"),
        Impl("aiostream map", "peer", aiostream_map, ASYNCIO_ONLY, package="aiostream"),
        Impl(PROBED, "probe", _probed("worker_pool"), ASYNCIO_ONLY),
    ]


#: The harness's probe is priced by running one pattern with it and without it.
PROBED = "worker_pool + probe"


def get_impl(name: str) -> Impl:
    for impl in implementations():
        if impl.name == name:
            return impl
    raise KeyError(f"no implementation called {name!r}")


#: The raw pool each backend is judged against in the efficiency scenario.
RAW_POOL = {
    backend: "raw trio channel pool" if backend == "trio" else "raw asyncio queue pool"
    for backend in BACKENDS
}


# --- scenario 1: overhead -------------------------------------------------------------------


async def zero_work(item: Any) -> Any:
    """The work of the overhead scenario: one pass through the event loop, nothing else."""
    await anyio.lowlevel.checkpoint()
    return item


def time_once(impl: Impl, n: int, limit: int, backend: str = "asyncio") -> float:
    """Seconds for one run of ``impl`` over ``range(n)`` with zero work, loop start included."""
    start = time.perf_counter()
    run_on(backend, partial(impl.run, zero_work, range(n), limit))
    return time.perf_counter() - start


def time_efficiency_once(impl: Impl, items: Sequence[Item], limit: int, backend: str) -> float:
    """The makespan of one run of ``impl`` over seeded items, on ``backend``."""

    async def once() -> float:
        start = anyio.current_time()
        await impl.run(do_work, items, limit)
        return anyio.current_time() - start

    result: float = run_on(backend, once)
    return result


# --- scenario 2: efficiency -----------------------------------------------------------------


# --- scenario 3: memory ---------------------------------------------------------------------


@dataclass(frozen=True)
class Memory:
    name: str
    kind: Kind
    items: int
    baseline_kib: int
    peak_kib: int

    @property
    def growth_mib(self) -> float:
        return (self.peak_kib - self.baseline_kib) / 1024


#: The directory above bench/, from which ``python -m bench.scenarios`` finds this module.
ROOT = Path(__file__).resolve().parent.parent


def memory(impl: Impl, n: int, limit: int, timeout: float = 600) -> Memory:
    """Run ``impl`` over ``n`` items with zero work in a fresh process; its peak RSS growth."""
    command = [sys.executable, "-m", "bench.scenarios", "memory-child", impl.name, str(n)]
    proc = subprocess.run(
        [*command, str(limit)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
        cwd=ROOT,
    )
    data = json.loads(proc.stdout)
    return Memory(impl.name, impl.kind, n, data["baseline_kib"], data["peak_kib"])


def _memory_child(name: str, n: int, limit: int) -> None:
    impl = get_impl(name)
    # Patterns get a generator, never materialised; aiometer needs a sequence, and gets a
    # range, which is one too without being materialised.
    items: Any = range(n) if impl.package == "aiometer" else (i for i in range(n))
    baseline = peak_rss_kib()
    run_on("asyncio", partial(impl.run, zero_work, items, limit))
    print(json.dumps({"baseline_kib": baseline, "peak_kib": peak_rss_kib()}))


def selected(
    names: Iterable[str] | None = None, backend: str | None = None, *, overhead_only: bool = True
) -> list[Impl]:
    """The implementations named (all if None) that run on ``backend`` (any if None) and
    whose packages are installed; ``overhead_only=False`` leaves out the probe's row, which
    only the overhead scenario measures."""
    impls = [
        i
        for i in implementations()
        if (backend is None or backend in i.backends) and (overhead_only or i.kind != "probe")
    ]
    if names is not None:
        wanted = set(names)
        impls = [impl for impl in impls if impl.name in wanted]
    return [impl for impl in impls if impl.available]


# --- sizes, results, targets ------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """How big each scenario runs."""

    overhead_items: int
    efficiency_items: int
    memory_items: int
    #: Implementations that start a task per item up front hold them all: a million would
    #: take gigabytes and minutes, so they run at this size, and their growth shows.
    eager_memory_items: int
    limit: int
    latency: tuple[float, float]
    rounds: int


SCALES = {
    # The sizes: about 10 minutes on 2 cores with the peers installed.
    "full": Scale(50_000, 10_000, 1_000_000, 100_000, 100, (0.010, 0.030), 3),
    # Seconds: keeps every scenario running in the test suite, so none can rot unnoticed.
    "tiny": Scale(300, 60, 3_000, 1_000, 10, (0.001, 0.003), 1),
}


@dataclass
class Results:
    """Everything one benchmark run measured, by implementation name."""

    scale: Scale
    #: median seconds for a run of ``overhead_items`` items, and for a run of one item
    overhead_s: dict[str, float] = field(default_factory=dict)
    fixed_s: dict[str, float] = field(default_factory=dict)
    #: (name, backend) -> (median makespan, ideal makespan)
    makespan: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    memory: dict[str, Memory] = field(default_factory=dict)
    kinds: dict[str, Kind] = field(default_factory=dict)

    def per_item_us(self, name: str) -> float | None:
        if name not in self.overhead_s:
            return None
        fixed = self.fixed_s.get(name, 0.0)
        return (self.overhead_s[name] - fixed) / max(self.scale.overhead_items - 1, 1) * 1e6

    def efficiency(self, name: str, backend: str) -> float | None:
        if (name, backend) not in self.makespan:
            return None
        makespan, ideal = self.makespan[name, backend]
        return ideal / makespan

    def to_json(self) -> dict[str, Any]:
        names = list(self.kinds)
        return {
            "scale": asdict(self.scale),
            "implementations": [
                {
                    "name": name,
                    "kind": self.kinds[name],
                    "per_item_us": self.per_item_us(name),
                    "fixed_us": self.fixed_s[name] * 1e6 if name in self.fixed_s else None,
                    "efficiency": {
                        backend: self.efficiency(name, backend)
                        for backend in BACKENDS
                        if (name, backend) in self.makespan
                    },
                    "memory": asdict(self.memory[name]) if name in self.memory else None,
                }
                for name in names
            ],
            "targets": [asdict(t) for t in targets(self)],
        }


@dataclass(frozen=True)
class Target:
    """One of the project's speed or memory targets, as measured in this run."""

    what: str
    measured: float
    bound: float
    #: "max": measured must not exceed bound; "min": must reach it.
    sense: Literal["max", "min"]

    @property
    def met(self) -> bool:
        return self.measured <= self.bound if self.sense == "max" else self.measured >= self.bound


def targets(results: Results) -> list[Target]:
    """The targets this run can judge (those whose figures were all measured)."""
    out: list[Target] = []

    def ratio(a: str, b: str, bound: float) -> None:
        x, y = results.per_item_us(a), results.per_item_us(b)
        if x is not None and y is not None and y > 0:
            out.append(Target(f"overhead: {a} / {b}", x / y, bound, "max"))

    ratio("worker_pool", "raw asyncio queue pool", 1.5)
    ratio("buffered_unordered", "raw asyncio queue pool", 2.0)
    ratio("semaphore", "textbook anyio Semaphore spawner", 0.8)
    ratio("scatter_gather", "bare anyio task group", 1.25)
    bounded = [name for name, p in PATTERNS.items() if p.BOUNDED]
    for name in bounded:
        ratio(name, "aiometer.amap", 0.6)
    for backend, raw in RAW_POOL.items():
        base = results.efficiency(raw, backend)
        for name in bounded:
            mine = results.efficiency(name, backend)
            if base and mine is not None:
                out.append(
                    Target(f"efficiency on {backend}: {name} / {raw}", mine / base, 0.99, "min")
                )
    for name in bounded:
        if name in results.memory and results.memory[name].items >= 1_000_000:
            growth = results.memory[name].growth_mib
            out.append(Target(f"memory at 1M items: {name}, MiB over baseline", growth, 5.0, "max"))
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def summary_table(results: Results) -> Table:
    """One row per implementation: cost per item and its ratios, efficiency, memory."""
    raw = results.per_item_us("raw asyncio queue pool")
    peer = results.per_item_us("aiometer.amap")
    scale = results.scale
    table = Table(
        title=(
            f"overhead: {scale.overhead_items:,} items, limit {scale.limit}, asyncio · "
            f"efficiency: {scale.efficiency_items:,} items of {scale.latency[0]:g}–"
            f"{scale.latency[1]:g} s · memory: {scale.memory_items:,} items"
        )
    )
    for header in ("implementation", "kind", "µs/item", "× raw pool", "× aiometer", "fixed µs"):
        table.add_column(
            header, justify="left" if header in ("implementation", "kind") else "right"
        )
    for backend in BACKENDS:
        table.add_column(f"eff. {backend}", justify="right")
    table.add_column("memory MiB", justify="right")
    for name, kind in results.kinds.items():
        per_item = results.per_item_us(name)
        memory = results.memory.get(name)
        mem_text = "–"
        if memory is not None:
            mem_text = f"{memory.growth_mib:,.1f}"
            if memory.items != scale.memory_items:
                mem_text += f" at {memory.items:,}"
        table.add_row(
            name,
            kind,
            _fmt(per_item, ".2f"),
            _fmt(per_item / raw if per_item is not None and raw else None, ".2f"),
            _fmt(per_item / peer if per_item is not None and peer else None, ".2f"),
            _fmt(results.fixed_s[name] * 1e6 if name in results.fixed_s else None, ",.0f"),
            *(_fmt(results.efficiency(name, b), ".1%") for b in BACKENDS),
            mem_text,
        )
    return table


def gap_lines(results: Results) -> list[str]:
    """Figures reported beside the targets: the spawners' gap to raw asyncio, the probe."""
    lines = []
    for mine, theirs in (
        ("semaphore", "raw asyncio TaskGroup+Semaphore"),
        ("scatter_gather", "asyncio.gather"),
    ):
        a, b = results.per_item_us(mine), results.per_item_us(theirs)
        if a is not None and b:
            lines.append(
                f"  gap   {mine} costs {a:.1f} µs/item, {a / b:.1f}× {theirs} ({b:.1f} µs): "
                "the price of starting an anyio task per item"
            )
    probed, plain = results.per_item_us(PROBED), results.per_item_us("worker_pool")
    if probed is not None and plain is not None:
        lines.append(
            f" probe   the harness's probe adds {probed - plain:.2f} µs/item "
            f"(worker_pool {plain:.2f} → {probed:.2f} µs/item)"
        )
    return lines


def target_lines(results: Results) -> list[str]:
    """One line per development target: met or not yet, with the figure (full scale only)."""
    if results.scale != SCALES["full"]:
        return ["the project's targets are judged on a full-size run only"]
    lines = ["the project's own targets (acceptance figures for its developers):"]
    for t in targets(results):
        sign = "≤" if t.sense == "max" else "≥"
        verdict = "met" if t.met else "not yet"
        lines.append(f"{verdict:>8}  {t.what}: {t.measured:.2f} (target {sign} {t.bound:g})")
    return lines


if __name__ == "__main__" and sys.argv[1:2] == ["memory-child"]:
    _memory_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
