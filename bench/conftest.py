"""The benchmark suite's shared fixtures, scale and closing summary.

``pytest bench --benchmark-only`` runs every scenario at full size (about 16 minutes on 2 cores)
and ends with one summary table and the targets, met or missed. Anywhere else, as in CI's
``pytest bench --benchmark-disable``, the scenarios run once at a tiny size so none can rot
unnoticed. ``--bench-scale`` chooses explicitly.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
from rich.console import Console

from patterns.lab.backends import BACKENDS, available

from .scenarios import (
    SCALES,
    Results,
    Scale,
    gap_lines,
    selected,
    summary_table,
    target_lines,
)

_RESULTS: list[Results] = []

#: Scenarios that keep their own figures add (title, lines) here, for the closing summary.
EXTRA_SUMMARIES: list[tuple[str, Callable[[], list[str]]]] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-scale",
        choices=sorted(SCALES),
        default=None,
        help="size of the benchmark scenarios (default: full with --benchmark-only, else tiny)",
    )


@pytest.fixture(scope="session")
def scale(pytestconfig: pytest.Config) -> Scale:
    chosen = pytestconfig.getoption("--bench-scale")
    if chosen is None:
        chosen = "full" if pytestconfig.getoption("benchmark_only") else "tiny"
    return SCALES[chosen]


@pytest.fixture(scope="session")
def results(scale: Scale) -> Results:
    results = Results(scale)
    for impl in selected():
        results.kinds[impl.name] = impl.kind
    _RESULTS.append(results)
    return results


def median_seconds(benchmark: Any, fn: Callable[[], object], rounds: int) -> float:
    """Run ``fn`` through pytest-benchmark and return the median of its own timings.

    Timed here as well as by pytest-benchmark, so the figure exists when benchmarks are
    disabled (then ``fn`` runs once).
    """
    times: list[float] = []

    def timed() -> None:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)

    benchmark.pedantic(timed, rounds=rounds, iterations=1, warmup_rounds=0)
    return statistics.median(times)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A full-size scenario runs for up to a minute or two (a million items through the
    # slowest peer); the suite-wide 60 s guard against hangs is too short for it.
    for item in items:
        if "bench" in item.path.parts:
            item.add_marker(pytest.mark.timeout(900))


def pytest_report_header() -> list[str]:
    lines = []
    missing = [name for name in ("aiometer", "aiostream") if not _installed(name)]
    if missing:
        lines.append(
            f"bench: peers not installed, skipped: {', '.join(missing)} (pip install -e '.[bench]')"
        )
    absent = [backend for backend in BACKENDS if backend not in available()]
    if absent:
        lines.append(
            f"bench: backends not installed, left out: {', '.join(absent)} "
            "(pip install -e '.[backends]')"
        )
    return lines


def _installed(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for results in _RESULTS:
        out = io.StringIO()
        console = Console(file=out, width=200, no_color=True)
        console.print(summary_table(results))
        for line in [*target_lines(results), *gap_lines(results)]:
            console.print(line, markup=False, highlight=False)
        terminalreporter.write_sep("=", "concurrency patterns: summary")
        for line in out.getvalue().splitlines():
            terminalreporter.write_line(line)
    for title, summary_lines in EXTRA_SUMMARIES:
        lines = summary_lines()
        if lines:
            terminalreporter.write_sep("=", f"{title}: summary")
            for line in lines:
                terminalreporter.write_line(line)
