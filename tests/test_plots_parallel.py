"""The parallelism figure: a panel per kind of work, a bar per place it ran, as high as the
speedup the table prints, under a dashed line at the most that kind could gain."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import anyio
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.patches import Rectangle

import patterns.lab.parallel
from patterns.lab.parallel import CASES, medians, run_cases
from patterns.lab.report import Report, speedups
from patterns.lab.workload import WorkKind, Workload
from patterns.show import plots


def fake(kind: WorkKind, run_in: str, makespan: float, cpu_s: float, limit: int = 8) -> Report:
    """A report as the harness would give for ``kind`` run ``run_in``, in ``makespan`` s."""
    workload = Workload(items=16, low=0.05, high=0.15, kind=kind)
    serial = sum(workload.latencies())
    return Report(
        pattern="worker_pool",
        backend="asyncio",
        items=workload.items,
        limit=limit,
        makespan_s=makespan,
        throughput_per_s=workload.items / makespan,
        peak_concurrency=limit,
        mean_concurrency=serial / makespan,
        ideal_makespan_s=serial / limit,
        efficiency=serial / limit / makespan,
        first_result_s=None,
        p50_s=None,
        p95_s=None,
        p99_s=None,
        serial_s=serial,
        speedup=serial / makespan,
        failed=0,
        transport="simulated",
        bounded=True,
        workload=workload,
        work=kind,
        run_in=run_in,
        cpu_s=cpu_s,
    )


# Times as a run on two cores gives them: blocking work on the loop one at a time, CPU work
# no faster in threads, twice as fast in processes (the loop's run takes longer than the sum of
# latencies, as a CPU slower than at calibration would).
FAKE = [
    fake("io", "loop", 0.28, 0.02),
    fake("blocking", "loop", 1.80, 0.01),
    fake("blocking", "threads", 0.28, 0.02),
    fake("blocking", "processes", 0.29, 0.03),
    fake("cpu", "loop", 2.00, 2.00),
    fake("cpu", "threads", 2.50, 2.50),
    fake("cpu", "processes", 1.05, 2.08),
]


def panels(reports: list[Report], cores: int = 2) -> tuple[list[Axes], list[Axes]]:
    """The figure's speedup panels and its cores-busy panels, left to right."""
    axes = plots.parallel_figure(reports, cores=cores).axes
    half = len(axes) // 2
    return axes[:half], axes[half:]


def bars(ax: Axes) -> list[Rectangle]:
    return sorted((p for p in ax.patches if isinstance(p, Rectangle)), key=lambda p: p.get_x())


def heights(axes: list[Axes]) -> list[float]:
    return [bar.get_height() for ax in axes for bar in bars(ax)]


def dashed(ax: Axes) -> list[float]:
    """The heights of the dashed horizontal lines on ``ax``."""
    lines = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    return [float(np.asarray(line.get_ydata())[0]) for line in lines]


# Three panels, io, blocking and cpu in that order, each titled by its kind of work.
def test_a_panel_per_kind_titled_by_kind() -> None:
    speed, busy = panels(FAKE)
    assert len(speed) == len(busy) == 3
    titles = [ax.get_title() for ax in speed]
    assert titles[0].startswith("I/O")
    assert titles[1].startswith("Blocking calls")
    assert titles[2] == "CPU-bound Python: the GIL holds threads to one core"
    assert speed[0].get_ylabel() == "× faster than one at a time"


# Each bar is as high as the speedup the table prints (harness.speedups); io has one bar.
def test_bar_heights_are_the_measured_speedups() -> None:
    speed, _ = panels(FAKE)
    assert [len(bars(ax)) for ax in speed] == [1, 3, 3]
    assert heights(speed) == pytest.approx(speedups(FAKE))


# Each bar carries its speedup as text, to one decimal, with a times sign.
def test_each_bar_is_labelled() -> None:
    speed, _ = panels(FAKE)
    for ax in speed:
        labels = {text.get_text() for text in ax.texts}
        for bar in bars(ax):
            assert f"{bar.get_height():.1f}×" in labels


# The dashed line is at the limit for io and blocking work, at min(limit, cores) for CPU work.
def test_the_ideal_line() -> None:
    speed, _ = panels(FAKE, cores=2)
    assert [dashed(ax) for ax in speed] == [[8], [8], [2]]
    speed, _ = panels(FAKE, cores=16)
    assert dashed(speed[2]) == [8]
    assert "at most 2× (2 cores)" in [t.get_text() for t in panels(FAKE)[0][2].texts]


# Bars no faster than one at a time are red (sync work on the loop, CPU in threads), others blue.
def test_no_faster_is_red() -> None:
    speed, _ = panels(FAKE)
    red, blue = to_rgba(plots.FAILED), to_rgba(plots.OK)
    colours = [bar.get_facecolor() for ax in speed for bar in bars(ax)]
    assert colours == [blue, red, blue, blue, red, red, blue]


# The second row shows the cores each run kept busy, under the same bars.
def test_cores_busy_row() -> None:
    _, busy = panels(FAKE)
    assert heights(busy) == pytest.approx([r.cores_busy for r in FAKE])


# No reports, no figure: said at once, not an IndexError from inside.
def test_no_reports() -> None:
    with pytest.raises(ValueError, match="at least one report"):
        plots.parallel_figure([])


# Real small runs, in one event loop: bars are harness.speedups, sync work on the loop is 1.0×.
@pytest.mark.timeout(60)
def test_real_runs() -> None:
    reports = anyio.run(partial(run_cases, "worker_pool", items=6, low=0.01, high=0.02, limit=2))
    assert [(r.work, r.run_in) for r in reports] == CASES
    speed, _ = panels(reports)
    assert heights(speed) == pytest.approx([s or 0.0 for s in speedups(reports)])
    assert heights(speed)[1] == heights(speed)[4] == pytest.approx(1.0)
    assert [dashed(ax) for ax in speed] == [[2], [2], [2]]


# The median of each case is its middle run (the lower middle of an even count), the cases in
# the order they first ran: what parallel --rounds shows.
def test_medians_keep_each_cases_middle_run() -> None:
    rounds = [[replace(r, makespan_s=r.makespan_s * f) for r in FAKE] for f in (3.0, 1.0, 2.0)]
    assert medians([r for one in rounds for r in one]) == rounds[2]
    assert medians(rounds[0] + rounds[1]) == rounds[1]


# run_cases takes every case in turn, round after round: on_case before each run, on_report
# after it, and each case's median run at the end.
def test_run_cases_in_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    makespans = iter([3.0] * len(CASES) + [1.0] * len(CASES) + [2.0] * len(CASES))

    async def ameasure(pattern: str, workload: Workload, *, limit: int, run_in: str) -> Report:
        (case,) = [r for r in FAKE if (r.work, r.run_in) == (workload.kind, run_in)]
        return replace(case, pattern=pattern, limit=limit, makespan_s=next(makespans))

    monkeypatch.setattr(patterns.lab.parallel, "ameasure", ameasure)
    started: list[tuple[int, str, str]] = []
    ended: list[Report] = []
    found = anyio.run(
        partial(
            run_cases,
            "semaphore",
            limit=3,
            rounds=3,
            on_case=lambda *case: started.append(case),
            on_report=ended.append,
        )
    )
    assert started == [(n, kind, where) for n in (1, 2, 3) for kind, where in CASES]
    assert len(ended) == 3 * len(CASES)
    assert [(r.work, r.run_in, r.makespan_s) for r in found] == [(*case, 2.0) for case in CASES]
    assert {(r.pattern, r.limit) for r in found} == {("semaphore", 3)}
