"""Concurrency is not parallelism, measured: each kind of work in each place it can run.

io work awaits, so it runs on the event loop and nowhere else; blocking and CPU-bound work run
on the loop (one at a time: the footgun, kept as the yardstick), in threads and in processes.
:func:`run_cases` measures the seven cases through one pattern, in the one event loop it is
awaited in, for ``python -m patterns parallel``, its tests and the parallelism notebook alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from patterns.lab.calls import RUN_IN, RunIn
from patterns.lab.harness import ameasure
from patterns.lab.report import Report
from patterns.lab.workload import WORK_KINDS, WorkKind, Workload

#: (what the work does, where it runs), in the order the table and the figure show them.
CASES: list[tuple[WorkKind, RunIn]] = [
    (kind, where) for kind in WORK_KINDS for where in RUN_IN if kind != "io" or where == "loop"
]


async def run_cases(
    pattern: str = "worker_pool",
    *,
    items: int = 16,
    low: float = 0.05,
    high: float = 0.15,
    limit: int = 8,
    rounds: int = 1,
    on_case: Callable[[int, WorkKind, RunIn], None] | None = None,
    on_report: Callable[[Report], None] | None = None,
) -> list[Report]:
    """Every case, ``rounds`` times in turn, and each case's run of median makespan.

    One event loop for every run: worker processes belong to the loop that started them, and
    serve every case after it. Rounds taken in turn see the same weather: a shared machine's CPU
    comes and goes between runs. ``on_case(round, kind, where)`` is told before each run starts
    (rounds count from 1), ``on_report`` of each run as it ends, so that a caller cut short
    still has :func:`medians` of what finished.
    """
    finished: list[Report] = []
    for round_ in range(1, rounds + 1):
        for kind, where in CASES:
            if on_case is not None:
                on_case(round_, kind, where)
            workload = Workload(items=items, low=low, high=high, kind=kind)
            report = await ameasure(pattern, workload, limit=limit, run_in=where)
            finished.append(report)
            if on_report is not None:
                on_report(report)
    return medians(finished)


def medians(reports: Iterable[Report]) -> list[Report]:
    """Each case's run of median makespan (the lower of the two middle ones), in the order the
    cases first ran."""
    runs: dict[tuple[str, str], list[Report]] = {}
    for report in reports:
        runs.setdefault((report.work, report.run_in), []).append(report)
    ordered = [sorted(found, key=lambda r: r.makespan_s) for found in runs.values()]
    return [found[(len(found) - 1) // 2] for found in ordered]
