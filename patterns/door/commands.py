"""What each command of ``python -m patterns`` does, once its arguments are parsed: check,
call the lab, print what comes back.

Every command takes the parsed arguments and two consoles (stdout and stderr, injectable for
tests) and returns the exit status. Misuse found before the work raises
:class:`~patterns.show.output.UsageError` (exit 2, one line; the checks are in
:mod:`patterns.door.checks`); a failure after it, :class:`~patterns.show.output.Failed` (exit 1,
one line, after what was done).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from patterns.door import checks
from patterns.lab.backends import BACKENDS, BackendUnavailable, run_on
from patterns.lab.harness import compare, measure
from patterns.lab.harness import sweep as harness_sweep
from patterns.lab.http import ServerFailed
from patterns.lab.parallel import medians, run_cases
from patterns.lab.registry import CLUSTER_PATTERNS, PATTERNS, summary
from patterns.lab.report import Report, serial_report, speedups
from patterns.lab.service import BEHAVIOURS, Service
from patterns.lab.workload import Workload
from patterns.show.output import (
    Failed,
    UsageError,
    error,
    only,
    print_json,
    print_line,
    reason,
    say,
)
from patterns.show.present import (
    compare_sentence,
    comparison_table,
    fast_calls_sentence,
    parallel_sentence,
    parallel_table,
    report_table,
    sweep_sentence,
    sweep_table,
)
from patterns.show.progress import progress_bars

if TYPE_CHECKING:
    from patterns.footguns.exhibit import Exhibit


def list_patterns(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """The registered patterns, one line each (or JSON)."""
    if args.json:
        print_json(console, [{"name": n, "summary": summary(p)} for n, p in PATTERNS.items()])
        return 0
    for name, pattern in PATTERNS.items():
        print_line(console, f"{name:<20} {summary(pattern)}")
    return 0


def run(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """One pattern (``args.pattern``), or every one (``compare``), on the chosen workload."""
    workload = checks.workload(args)
    options = {
        "limit": checks.limit(args),
        "backend": args.backend,
        "transport": args.transport,
        "run_in": args.run_in,
        "service": checks.service(args, workload),
        "client": checks.client(args),
    }
    checks.plot(args.plot)
    checks.backend(args.backend)
    on_cluster = getattr(args, "cluster", None) is not None
    if on_cluster:
        checks.cluster(args)
    if args.transport != "simulated":
        checks.room_for_sockets(args.pattern, workload.items, args.limit, args.transport)
    finished: list[Report] = []
    try:
        reports = _measure(args, workload, options, finished, console, err_console)
    except KeyboardInterrupt:
        # Ctrl+C: the patterns that finished are measured; show them, then exit 130.
        if finished:
            total = len(PATTERNS) + (len(CLUSTER_PATTERNS) if on_cluster else 0)
            said = f"Interrupted: {len(finished)} of {total} patterns had finished."
            _report_finished(console, finished, json_only=args.json, sentence=said)
        raise
    except BackendUnavailable as exc:
        raise UsageError(str(exc)) from None
    except (OSError, ServerFailed, BaseExceptionGroup) as exc:
        # Real sockets (--transport tcp, http) can fail in ways no check foresees: ports run
        # out, a server process killed. The patterns raise the first failure bare, with the
        # rest in its notes. What finished is measured: its rows first, then the one line.
        failure = only(exc, OSError) or only(exc, ServerFailed)
        if failure is None:
            raise
        if finished:
            _report_finished(console, finished, json_only=args.json)
        raise Failed(f"the run failed: {reason(failure)}") from None
    # The report first: a plot that cannot be written at the end must not cost it.
    _show_run(args, workload, reports, console)
    if args.plot is None:
        return 0
    draw = partial(_draw_run, args.pattern, reports)
    return _save_plot(draw, args.plot, err_console, quiet=args.json)


def _measure(
    args: argparse.Namespace,
    workload: Workload,
    options: dict[str, Any],
    finished: list[Report],
    console: Console,
    err_console: Console,
) -> list[Report]:
    """The run, under a progress bar on a terminal: the one pattern's; or every pattern's, and
    the cluster recipes' if asked, each report in ``finished`` as it comes."""
    bars = progress_bars(err_console, workload.items, console.is_terminal and not args.json)
    with bars as on_start:
        if args.pattern != "compare":
            on_progress = on_start(args.pattern)
            return [measure(args.pattern, workload, on_progress=on_progress, **options)]
        reports = compare(workload, on_start=on_start, on_report=finished.append, **options)
        if getattr(args, "cluster", None) is not None:
            reports += _compare_on_cluster(args, workload, finished, console)
    return reports


def _compare_on_cluster(
    args: argparse.Namespace, workload: Workload, finished: list[Report], console: Console
) -> list[Report]:
    """The cluster recipes' rows (no bar: the calls run elsewhere)."""
    from patterns.lab.on_cluster import compare_on_cluster

    try:
        return compare_on_cluster(
            workload,
            limit=args.limit,
            where=args.cluster,
            backend=args.backend,
            on_report=finished.append,
        )
    except (OSError, RuntimeError, concurrent.futures.CancelledError) as exc:
        # A scheduler unreachable (OSError) or lost mid-run (Dask cancels every future:
        # "scheduler-connection-lost"): one line, exit 1.
        said = str(exc).strip().splitlines()[0] if str(exc).strip() else exc
        # What finished is measured: the table first, then the one line.
        _report_finished(console, finished, json_only=args.json)
        raise Failed(f"the cluster run failed: {said}") from None


def _show_run(
    args: argparse.Namespace, workload: Workload, reports: list[Report], console: Console
) -> None:
    """The reports as JSON; or compare's table and sentences; or one pattern's."""
    if args.json:
        print_json(console, [r.to_dict() for r in reports])
    elif args.pattern == "compare":
        serial = serial_report(workload, args.backend)
        console.print(comparison_table(reports, serial, width=console.width))
        print_line(console, compare_sentence(reports))
        fast = fast_calls_sentence(reports)
        if fast is not None:
            print_line(console, fast)
    else:
        console.print(report_table(reports[0]))
        print_line(console, reports[0].sentence())


def _draw_run(command: str, reports: list[Report]) -> Any:
    from patterns.show import plots

    if command == "compare":
        return plots.compare_figure(reports)
    return plots.report_figure(reports[0])


def _report_finished(
    console: Console, finished: list[Report], *, json_only: bool, sentence: str | None = None
) -> None:
    """The rows of a run cut short (Ctrl+C, a cluster lost), before the line that says why."""
    if json_only:
        print_json(console, [r.to_dict() for r in finished])
        return
    console.print(comparison_table(finished, width=console.width))
    if sentence is not None:
        print_line(console, sentence)


def _save_plot(draw: Callable[[], Any], path: str, err_console: Console, *, quiet: bool) -> int:
    """Draw and write the plot, after the report; a failed write is one line, exit status 1."""
    from patterns.show import plots

    figure = draw()
    try:
        plots.save(figure, path)
    except Exception as exc:  # a full disk, a directory gone, a TeX install gone: one line
        error(err_console, f"cannot write the plot to {path}: {reason(exc)}")
        return 1
    if not quiet:
        say(err_console, f"Plot written to {path}.")
    return 0


def bench(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """The benchmarks are pytest-benchmark's suite in a clone's bench/: run that, nothing else."""
    import importlib.util

    suite = Path(__file__).resolve().parents[2] / "bench"  # patterns/door/ -> the clone
    if not (suite / "conftest.py").is_file():
        raise UsageError(
            "bench: the benchmarks live in bench/ of a clone of the repository "
            "(this install has none); run them there: python -m pytest bench --benchmark-only"
        )
    if importlib.util.find_spec("pytest_benchmark") is None:
        raise UsageError("bench needs pytest-benchmark: pip install -e '.[test]'")
    if args.output is not None:
        checks.target(args.output, "--output")
    for backend in BACKENDS:  # the efficiency scenario runs on each: a missing one is misuse
        checks.backend(backend)
    command = [sys.executable, "-m", "pytest", str(suite), "-p", "no:cacheprovider"]
    command += ["--benchmark-only", f"--bench-scale={args.scale}"]
    if args.output is not None:
        command += [f"--benchmark-json={os.path.abspath(args.output)}"]
    return 0 if run_suite(command, cwd=suite.parent) == 0 else 1


def run_suite(command: list[str], cwd: Path) -> int:
    """Run the benchmark suite in a child process, its output straight to the terminal."""
    return subprocess.run(command, cwd=cwd, check=False).returncode


def sweep(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """One pattern at a range of limits against a service of known capacity, for each chosen
    behaviour past it: the table, the sentence, and ``--plot``'s picture."""
    low, high = checks.latency(args)
    workload = Workload(items=args.items, low=low, high=high)
    limits = sorted(set(args.limits or default_limits(args.capacity)))
    behaviours = list(dict.fromkeys(args.service or BEHAVIOURS))  # each once, as given
    client = checks.client(args)
    checks.plot(args.plot)
    checks.backend(args.backend)
    runs: dict[str, list[Report]] = {}
    show = console.is_terminal and not args.json
    with progress_bars(err_console, len(limits) * len(behaviours), show) as on_start:
        tick = on_start("sweep")

        def record(behaviour: str, report: Report) -> None:
            runs.setdefault(behaviour, []).append(report)
            if tick is not None:
                tick(sum(map(len, runs.values())), 0)

        for behaviour in behaviours:
            harness_sweep(
                args.pattern.replace("-", "_"),
                workload,
                limits=limits,
                service=Service(args.capacity, behaviour=behaviour),
                backend=args.backend,
                on_report=partial(record, behaviour),
                transport=args.transport,
                client=client,
            )
    if args.json:
        print_json(console, {b: [r.to_dict() for r in rs] for b, rs in runs.items()})
    else:
        console.print(sweep_table(runs))
        print_line(console, sweep_sentence(runs))
    if args.plot is None:
        return 0
    return _save_plot(partial(_draw_sweep, runs), args.plot, err_console, quiet=args.json)


def _draw_sweep(runs: dict[str, list[Report]]) -> Any:
    from patterns.show import plots

    return plots.limit_sweep(runs)


def default_limits(capacity: int) -> list[int]:
    """The limits a sweep tries unless told: a few well below the capacity, every one next to
    it, a few above, up to twice it."""
    c = capacity
    return sorted({max(1, x) for x in (c // 5, c // 2, 4 * c // 5, c - 1, c, c + 1, 6 * c // 5,
                                       3 * c // 2, 2 * c)})  # fmt: skip


def parallel(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """Each kind of work, on the loop, in threads and in processes: one table, one sentence."""
    low, high = checks.latency(args)
    checks.backend(args.backend)
    cores = os.cpu_count() or 1
    finished: list[Report] = []

    def on_case(round_: int, kind: str, where: str) -> None:
        if console.is_terminal and not args.json:
            say(err_console, f"round {round_}: {kind} work in {where}…")

    cases = partial(
        run_cases, args.pattern.replace("-", "_"), items=args.items, low=low, high=high,
        limit=args.limit, rounds=args.rounds, on_case=on_case, on_report=finished.append,
    )  # fmt: skip
    try:
        reports = run_on(args.backend, cases)
    except KeyboardInterrupt:
        if finished and not args.json:  # what finished is measured: show it, then exit 130
            console.print(parallel_table(medians(finished), cores=cores))
        raise
    if args.json:
        found = speedups(reports)
        print_json(
            console,
            [r.to_dict() | {"speedup_measured": s} for r, s in zip(reports, found, strict=True)],
        )
        return 0
    console.print(parallel_table(reports, cores=cores))
    print_line(console, parallel_sentence(reports, cores=cores))
    return 0


def footgun(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """The exhibits, listed; or one of them, broken and fixed."""
    # Imported here: the exhibits are only needed by this command.
    from patterns.footguns import exhibits

    found = exhibits()
    if args.name is None:
        return _list_footguns(args, found.values(), console)
    key = args.name.lower().replace("_", "-")
    if key not in found:
        raise UsageError(f"unknown footgun {args.name!r}; choose from: {', '.join(found)}")
    args.backend = args.backend or "asyncio"
    checks.plot(args.plot)
    checks.backend(args.backend)
    exhibit = found[key]
    broken = run_on(args.backend, exhibit.broken)
    fixed = run_on(args.backend, exhibit.fixed)
    status = 0 if fixed.ok and not broken.ok else 1
    if args.json:
        print_json(console, {
            "name": exhibit.name,
            "backend": args.backend,
            "broken": {"ok": broken.ok, "observed": broken.observed},
            "fixed": {"ok": fixed.ok, "observed": fixed.observed},
            "why": exhibit.why,
        })  # fmt: skip
    else:
        print_line(console, f"{exhibit.title} (source: {_source(exhibit.article)})")
        print_line(console, f"  broken: {broken.observed}.")
        print_line(console, f"  fixed:  {fixed.observed}.")
        print_line(console, f"  why:    {exhibit.why}")
    if args.plot is not None:
        from patterns.show import plots

        gauges = (broken.gauges, fixed.gauges)
        draw = partial(plots.verdicts, broken.spans, fixed.spans, exhibit.title, gauges=gauges)
        status = max(status, _save_plot(draw, args.plot, err_console, quiet=args.json))
    return status


def _list_footguns(args: argparse.Namespace, found: Iterable[Exhibit], console: Console) -> int:
    """Every exhibit, one line each (or JSON); the options that need NAME are refused."""
    if args.plot is not None:
        raise UsageError("argument --plot: name the footgun to draw")
    if args.backend is not None:
        raise UsageError("argument --backend: footgun without NAME does not take it")
    listing = list(found)
    if args.json:
        keys = ("name", "title", "article", "why")
        print_json(console, [{key: getattr(e, key) for key in keys} for e in listing])
        return 0
    width = max(len(e.name) for e in listing)
    for exhibit in listing:
        print_line(
            console, f"{exhibit.name:<{width}}  {exhibit.title} ({_source(exhibit.article)})"
        )
    return 0


def _source(article: str) -> str:
    """Where an exhibit's lesson comes from: ``article 002: ...``, or an issue as it is."""
    return f"article {article}" if article[:1].isdigit() else article
