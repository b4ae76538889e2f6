"""``python -m patterns``: list the patterns, run one, or compare them all on one workload.

Misuse exits 2 with one line on stderr and no traceback; Ctrl+C exits 130. Output is plain when
stdout is not a terminal or NO_COLOR is set (rich decides both). ``--json`` prints only JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from rich.console import Console, JustifyMethod
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from patterns.harness import (
    BACKENDS,
    BackendUnavailable,
    Report,
    check_backend,
    compare,
    measure,
    serial_report,
)
from patterns.registry import PATTERNS, get_pattern, summary
from patterns.workload import DISTRIBUTIONS, Workload

# The installed `patterns` script names itself; `python -m patterns` shows as such.
PROG = "python -m patterns" if sys.argv[0].endswith("__main__.py") else "patterns"
COMMANDS = ("list", "compare", "bench", "footgun", "serve", "threads-vs-async")


class UsageError(Exception):
    """Misuse of the command line: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print the whole usage block and exit; we want one line, and the
        # decision to exit belongs to main().
        raise UsageError(message)


def _checked(
    convert: Callable[[str], float], low: float, high: float = math.inf, *, noun: str
) -> Callable[[str], Any]:
    """An argparse type: ``convert``, then a range check, each with a one-line message."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if not low <= value <= high:
            if high == math.inf:
                raise argparse.ArgumentTypeError(f"must be >= {low:g}, got {text}")
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {text}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    defaults = Workload()
    parser = _Parser(
        prog=PROG,
        description="Run the cookbook's concurrency patterns on a simulated workload.",
        epilog=f"patterns: {', '.join(PATTERNS)} (also spelled with hyphens)",
    )
    parser.add_argument(
        "command",
        metavar="COMMAND",
        help="list, compare, bench, footgun [NAME], or a pattern name to run it alone",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="footgun only: which exhibit")
    parser.add_argument(
        "--items",
        type=_checked(int, 0, noun="a whole number"),
        default=defaults.items,
        metavar="N",
        help=f"how many items (default {defaults.items})",
    )
    parser.add_argument(
        "--limit",
        type=_checked(int, 1, noun="a whole number"),
        default=5,
        metavar="K",
        help="calls in flight at most (default 5)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        metavar="S",
        help=f"seed for latencies and failures (default {defaults.seed})",
    )
    parser.add_argument(
        "--latency",
        type=_checked(float, 0, noun="a number"),
        nargs=2,
        default=[defaults.low, defaults.high],
        metavar=("LO", "HI"),
        help="latency range in seconds (default 0.5 1.5)",
    )
    parser.add_argument(
        "--distribution",
        choices=DISTRIBUTIONS,
        default=defaults.distribution,
        help="latency distribution; all have minimum LO and mean (LO+HI)/2 (default uniform)",
    )
    parser.add_argument(
        "--failure-rate",
        type=_checked(float, 0, 1, noun="a number"),
        default=0.0,
        metavar="P",
        help="chance that an item fails; failures are collected, not raised (default 0)",
    )
    parser.add_argument(
        "--backend", choices=BACKENDS, default="asyncio", help="event loop (default asyncio)"
    )
    parser.add_argument("--json", action="store_true", help="print only JSON on stdout")
    parser.add_argument(
        "--plot",
        metavar="FILE",
        help="also draw the run to FILE (.png, .svg, .pdf): timelines, calls in flight",
    )
    parser.add_argument(
        "--nested",
        action="store_true",
        help="throttle only: run the source article's nested example instead of the workload",
    )
    parser.add_argument(
        "--workload",
        choices=("sleep", "tcp"),
        default="sleep",
        help="sleep: simulated calls (default); tcp: real calls to a local server",
    )
    serve = parser.add_argument_group("serve only")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=_checked(int, 0, 65535, noun="a port"), default=8000, help="(default 8000)"
    )
    serve.add_argument("--mode", choices=("toy", "echo"), default="toy", help="(default toy)")
    serve.add_argument(
        "--max-connections",
        type=_checked(int, 1, noun="a whole number"),
        default=100,
        metavar="K",
        help="connections held at most (default 100)",
    )
    serve.add_argument(
        "--policy", choices=("reject", "queue"), default="reject", help="when full (default reject)"
    )
    serve.add_argument(
        "--delay", type=_checked(float, 0, 3600, noun="seconds"), default=1.0, metavar="S",
        help="toy mode: seconds between start and end (default 1)",
    )  # fmt: skip
    serve.add_argument(
        "--drain", type=_checked(float, 0, noun="seconds"), default=5.0, metavar="S",
        help="on shutdown, seconds the requests in flight get to finish (default 5)",
    )  # fmt: skip
    serve.add_argument(
        "--idle-timeout", type=_checked(float, 0, noun="seconds"), default=10.0, metavar="S",
        help="seconds a client may stay silent when the server waits for it (default 10)",
    )  # fmt: skip
    serve.add_argument(
        "--max-line", type=_checked(int, 8, noun="bytes"), default=1024, metavar="BYTES",
        help="longest line accepted (default 1024)",
    )  # fmt: skip
    bench = parser.add_argument_group("bench only")
    bench.add_argument(
        "--scale",
        choices=("tiny", "full"),
        default="full",
        help="scenario sizes: full takes about 7 minutes on 2 cores (default full)",
    )
    bench.add_argument(
        "--output",
        default="bench-results.json",
        metavar="FILE",
        help="where to write the results as JSON (default bench-results.json)",
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    console: Console | None = None,
    err_console: Console | None = None,
) -> int:
    """Run the command line; return the exit status. Consoles are injectable for tests."""
    if console is None:
        console = Console()
        # Piped output has no width; rich would assume 80 columns and squeeze the table.
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console.width = 160
    err_console = err_console or Console(stderr=True)
    try:
        return _main(build_parser(), argv, console, err_console)
    except UsageError as exc:
        # One line, no traceback: a usage error is the user's to fix, not a crash.
        err_console.print(f"{PROG}: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False, highlight=False)
        return 130
    except BaseExceptionGroup as group:
        # The patterns raise a Ctrl+C bare; a task group elsewhere might still wrap one.
        if group.subgroup(KeyboardInterrupt) is None:
            raise
        err_console.print("interrupted", markup=False, highlight=False)
        return 130


def _main(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    console: Console,
    err_console: Console,
) -> int:
    args = parser.parse_args(argv)
    command = args.command.lower().replace("-", "_")
    if command == "list":
        for name, pattern in PATTERNS.items():
            console.print(
                f"{name:<20} {summary(pattern)}", markup=False, highlight=False, soft_wrap=True
            )
        return 0
    if command == "footgun":
        return _footgun(args, console, err_console)
    if command == "serve":
        return _serve(args, console, err_console)
    if command == "threads_vs_async":
        return _threads_vs_async(args, console)
    if args.name is not None:
        raise UsageError(f"unrecognized argument: {args.name}")
    if command == "bench":
        return _bench(args, console, err_console)
    if args.nested:
        if command != "throttle":
            raise UsageError("argument --nested: only with the throttle pattern")
        return _nested(args, console, err_console)
    if command != "compare":
        try:
            get_pattern(command)
        except KeyError:
            choices = ", ".join((*COMMANDS, *PATTERNS))
            raise UsageError(f"unknown command {args.command!r}; choose from: {choices}") from None
    low, high = args.latency
    if low > high:
        raise UsageError(f"argument --latency: LO must not exceed HI, got {low:g} {high:g}")
    try:
        workload = Workload(
            items=args.items,
            low=low,
            high=high,
            distribution=args.distribution,
            failure_rate=args.failure_rate,
            seed=args.seed,
        )
    except (TypeError, ValueError) as exc:  # e.g. --latency 0 inf: caught by the workload
        raise UsageError(str(exc)) from None
    if args.plot is not None:
        _check_plotting()
    show_progress = console.is_terminal and not args.json
    try:
        with _progress(err_console, workload.items, show_progress) as on_start:
            if command == "compare":
                reports = compare(
                    workload,
                    limit=args.limit,
                    backend=args.backend,
                    on_start=on_start,
                    transport=args.workload,
                )
            else:
                on_progress = on_start(command)
                reports = [
                    measure(
                        command,
                        workload,
                        limit=args.limit,
                        backend=args.backend,
                        on_progress=on_progress,
                        transport=args.workload,
                    )
                ]
    except BackendUnavailable as exc:
        raise UsageError(str(exc)) from None
    if args.plot is not None:
        from patterns import plots

        figure = (
            plots.compare_figure(reports)
            if command == "compare"
            else plots.report_figure(reports[0])
        )
        plots.save(figure, args.plot)
    if args.json:
        console.file.write(json.dumps([r.to_dict() for r in reports], indent=2) + "\n")
        return 0
    if args.plot is not None:
        err_console.print(f"Plot written to {args.plot}.", markup=False, highlight=False)
    if command == "compare":
        console.print(comparison_table(reports, serial_report(workload, args.backend)))
        console.print(compare_sentence(reports), markup=False, highlight=False, soft_wrap=True)
    else:
        console.print(report_table(reports[0]))
        console.print(reports[0].sentence(), markup=False, highlight=False, soft_wrap=True)
    return 0


def _check_plotting() -> None:
    # Before the run, not after: a missing extra should not cost the user the whole run.
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib: pip install -e '.[plot]'")


def _bench(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    # Imported here: the benchmark module is only needed by this command.
    from patterns.benchmarks import SCALES, gap_lines, run_all, summary_table, target_lines

    def step(what: str) -> None:
        if console.is_terminal:
            err_console.print(f"[dim]{what}…[/dim]", highlight=False)

    results = run_all(SCALES[args.scale], on_step=step)
    with open(args.output, "w") as out:
        json.dump(results.to_json(), out, indent=2)
    if args.json:
        console.file.write(json.dumps(results.to_json(), indent=2) + "\n")
        return 0
    console.print(summary_table(results))
    for line in [*target_lines(results), *gap_lines(results)]:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(f"Results written to {args.output}.", markup=False, highlight=False)
    return 0


def _serve(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    import signal

    import anyio

    from patterns.server import Server

    server = Server(
        host=args.host,
        port=args.port,
        mode=args.mode,
        max_connections=args.max_connections,
        policy=args.policy,
        delay=args.delay,
        drain=args.drain,
        idle_timeout=args.idle_timeout,
        max_line=args.max_line,
    )

    async def status() -> None:
        # A live status line, on a terminal only.
        from rich.live import Live

        with Live(console=err_console, refresh_per_second=4, transient=True) as live:
            while True:
                c = server.counts
                live.update(f"open {c.open}  served {c.completed}  rejected {c.rejected}")
                await anyio.sleep(0.25)

    async def main() -> None:
        async with anyio.create_task_group() as outer:
            if console.is_terminal:
                outer.start_soon(status)
            async with anyio.create_task_group() as serving:
                # Signals first, then the address: whoever reads it may signal at once.
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    host, port = await serving.start(server.serve)
                    console.file.write(f"listening on {host}:{port}\n")
                    console.file.flush()
                    async for _ in signals:
                        # Stop accepting now; the requests in flight get --drain seconds.
                        server.shutdown()
                        break
            # serve() has returned: the drain is over. Stop the status line.
            outer.cancel_scope.cancel()

    try:
        _run_on(args.backend, main)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    c = server.counts
    console.print(
        f"accepted {c.accepted} = completed {c.completed} + cancelled {c.cancelled} + "
        f"timed out {c.timed_out}; rejected {c.rejected}; at most {c.peak_open} open at once",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return 0


def _threads_vs_async(args: argparse.Namespace, console: Console) -> int:
    from patterns import threads_vs_async as exhibit

    clients = args.items if args.items != Workload().items else 100
    results = [exhibit.measure(kind, clients, args.delay) for kind in exhibit.KINDS]
    if args.json:
        console.file.write(json.dumps([r.__dict__ for r in results], indent=2) + "\n")
        return 0
    table = Table(title=f"{clients} clients, each answered after {args.delay:g} s")
    for header in ("served by", "makespan s", "peak open sockets", "peak threads", "RSS MiB"):
        table.add_column(header, justify="left" if header == "served by" else "right")
    for r in results:
        table.add_row(
            "a thread per connection" if r.kind == "threads" else "async tasks (anyio)",
            f"{r.makespan_s:.2f}",
            str(r.peak_open),
            str(r.peak_threads),
            f"{r.rss_growth_mib:.1f}",
        )
    console.print(table)
    threads, tasks = results
    console.print(
        f"Both served {clients} clients at once, in {threads.makespan_s:.2f} s and "
        f"{tasks.makespan_s:.2f} s; the threads needed {threads.peak_threads} threads and "
        f"{threads.rss_growth_mib:.1f} MiB, the event loop {tasks.peak_threads} thread(s) and "
        f"{tasks.rss_growth_mib:.1f} MiB.",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return 0


def _run_on(backend: str, fn: Callable[[], Any]) -> Any:
    import anyio

    try:
        name, options = check_backend(backend)
    except BackendUnavailable as exc:
        raise UsageError(str(exc)) from None
    return anyio.run(fn, backend=name, backend_options=options)


def _plot_verdicts(path: str, broken: Any, fixed: Any) -> None:
    from patterns import plots

    figure = plots.figure(figsize=(10, 6))
    top, bottom = figure.subplots(2, 1, sharex=True)
    plots.spans(broken.spans, top, title="broken")
    plots.spans(fixed.spans, bottom, title="fixed")
    plots.save(figure, path)


def _footgun(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    # Imported here: the exhibits are only needed by this command.
    from patterns.footguns import exhibits

    found = exhibits()
    if args.name is None:
        if args.plot is not None:
            raise UsageError("argument --plot: name the footgun to draw")
        if args.json:
            listing = [
                {"name": e.name, "title": e.title, "article": e.article, "why": e.why}
                for e in found.values()
            ]
            console.file.write(json.dumps(listing, indent=2) + "\n")
            return 0
        for exhibit in found.values():
            console.print(
                f"{exhibit.name:<20} {exhibit.title} (article {exhibit.article})",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        return 0
    key = args.name.lower().replace("_", "-")
    if key not in found:
        raise UsageError(f"unknown footgun {args.name!r}; choose from: {', '.join(found)}")
    if args.plot is not None:
        _check_plotting()
    exhibit = found[key]
    broken = _run_on(args.backend, exhibit.broken)
    fixed = _run_on(args.backend, exhibit.fixed)
    as_predicted = fixed.ok and not broken.ok
    if args.plot is not None:
        _plot_verdicts(args.plot, broken, fixed)
    if args.json:
        result = {
            "name": exhibit.name,
            "backend": args.backend,
            "broken": {"ok": broken.ok, "observed": broken.observed},
            "fixed": {"ok": fixed.ok, "observed": fixed.observed},
            "why": exhibit.why,
        }
        console.file.write(json.dumps(result, indent=2) + "\n")
        return 0 if as_predicted else 1
    lines = [
        f"{exhibit.title} (source article {exhibit.article})",
        f"  broken: {broken.observed}.",
        f"  fixed:  {fixed.observed}.",
        f"  why:    {exhibit.why}",
    ]
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    if args.plot is not None:
        err_console.print(f"Plot written to {args.plot}.", markup=False, highlight=False)
    return 0 if as_predicted else 1


def _nested(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    # Imported here: the exhibit is only needed by this option.
    from patterns.footguns import nested_throttle as exhibit

    if args.plot is not None:
        _check_plotting()
    fixed = _run_on(args.backend, exhibit.fixed)
    broken = _run_on(args.backend, exhibit.broken)
    if args.plot is not None:
        _plot_verdicts(args.plot, exhibit.verdict(broken), exhibit.verdict(fixed))
    if args.json:
        result = {
            "backend": args.backend,
            "limit": exhibit.LIMIT,
            "throttle": {
                "finished": fixed.finished,
                "elapsed_s": fixed.elapsed_s,
                "peak_permits": fixed.peak_permits,
                "peak_working": fixed.peak_working,
                "calls": [span.__dict__ for span in fixed.spans],
            },
            "plain_semaphore": {"finished": broken.finished, "elapsed_s": broken.elapsed_s},
        }
        console.file.write(json.dumps(result, indent=2) + "\n")
        return 0
    console.print(timeline(fixed, f"throttle, limit {exhibit.LIMIT}: nested calls"))
    console.print(
        f"{exhibit.OUTER} outer calls, each making {exhibit.INNER} inner calls in turn, through "
        f"one Throttle({exhibit.LIMIT}): all {len(fixed.finished_spans())} calls finished in "
        f"{fixed.elapsed_s:.2f} s, with at most {fixed.peak_permits} permits in use and "
        f"{fixed.peak_working} calls doing their own work at once. "
        f"Through a plain Semaphore({exhibit.LIMIT}) the same calls "
        + (
            f"deadlocked: nothing had finished after {broken.elapsed_s:.1f} s."
            if not broken.finished
            else "finished too (not the expected deadlock)."
        ),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if args.plot is not None:
        err_console.print(f"Plot written to {args.plot}.", markup=False, highlight=False)
    return 0


def timeline(run: Any, title: str, width: int = 48) -> Table:
    """A row per call, with a bar from its start to its end on one shared time axis."""
    table = Table(title=title)
    table.add_column("call")
    table.add_column("start s", justify="right")
    table.add_column("end s", justify="right")
    table.add_column(f"0 … {run.elapsed_s:.2f} s")
    scale = width / max(run.elapsed_s, 1e-9)
    for span in run.spans:
        first = min(int(span.start * scale), width - 1)
        last = max(first + 1, min(int(span.end * scale), width))
        bar = " " * first + ("─" if span.depth == 0 else "━") * (last - first)
        table.add_row("  " * span.depth + span.label, f"{span.start:.2f}", f"{span.end:.2f}", bar)
    return table


class _progress:
    """A rich progress bar per pattern run, on stderr, shown only on a terminal."""

    def __init__(self, console: Console, total: int, enabled: bool) -> None:
        self._total = total
        self._bar: Progress | None = None
        if enabled:
            self._bar = Progress(
                TextColumn("{task.description:<20}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("in flight: {task.fields[in_flight]:>4}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )

    def __enter__(self) -> Callable[[str], Callable[[int, int], None] | None]:
        if self._bar is None:
            return lambda name: None
        self._bar.start()
        return self._start_task

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def tasks(self) -> list[tuple[str, float, float | None, int]]:
        """(name, completed, total, in flight) of each run so far, for tests."""
        if self._bar is None:
            return []
        return [
            (t.description, t.completed, t.total, t.fields["in_flight"]) for t in self._bar.tasks
        ]

    def _start_task(self, name: str) -> Callable[[int, int], None]:
        assert self._bar is not None
        bar = self._bar
        task = bar.add_task(name, total=self._total, in_flight=0)

        def update(done: int, in_flight: int) -> None:
            bar.update(task, completed=done, in_flight=in_flight)

        return update


def _maybe(value: float | None, spec: str, suffix: str = "") -> str:
    return "–" if value is None else format(value, spec) + suffix


def _seconds(value: float | None) -> str:
    return _maybe(value, ".3f")


# (header, justify, the report's figure as text); the comparison table leaves out the ones
# marked False to fit 120 columns, the single report shows them all.
_COLUMNS: tuple[tuple[str, JustifyMethod, Callable[[Report], str], bool], ...] = (
    ("pattern", "left", lambda r: r.pattern, True),
    ("time s", "right", lambda r: f"{r.makespan_s:.3f}", True),
    ("ideal s", "right", lambda r: f"{r.ideal_makespan_s:.3f}", False),
    ("efficiency", "right", lambda r: _maybe(r.efficiency, ".1%"), True),
    ("items/s", "right", lambda r: _maybe(r.throughput_per_s, ",.1f"), True),
    ("peak", "right", lambda r: str(r.peak_concurrency), True),
    ("mean conc.", "right", lambda r: f"{r.mean_concurrency:.2f}", True),
    ("first s", "right", lambda r: _seconds(r.first_result_s), True),
    ("p50 s", "right", lambda r: _seconds(r.p50_s), True),
    ("p95 s", "right", lambda r: _seconds(r.p95_s), True),
    ("p99 s", "right", lambda r: _seconds(r.p99_s), False),
    ("speedup", "right", lambda r: _maybe(r.speedup, ".1f", "×"), True),
    ("failed", "right", lambda r: str(r.failed), True),
)


def _title(report: Report) -> str:
    workload = report.workload
    over = ", over tcp" if report.transport == "tcp" else ""
    return (
        f"{workload.describe()}, limit {report.limit}, seed {workload.seed}, {report.backend}{over}"
    )


def comparison_table(reports: Sequence[Report], serial: Report | None = None) -> Table:
    """A row per report, and the derived serial baseline last."""
    columns = [c for c in _COLUMNS if c[3]]
    table = Table(title=_title(reports[0]) if reports else None)
    for name, justify, _, _ in columns:
        table.add_column(name, justify=justify)
    for report in [*reports, *([serial] if serial else [])]:
        table.add_row(*(text(report) for _, _, text, _ in columns))
    return table


def report_table(report: Report) -> Table:
    """One report as a two-column table, metric by metric."""
    table = Table(title=_title(report), show_header=False, min_width=len(_title(report)) + 4)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, _, text, _ in _COLUMNS:
        table.add_row(name, text(report))
    return table


def compare_sentence(reports: Sequence[Report]) -> str:
    """The comparison read aloud: how the bounded patterns did, and what unbounded cost."""
    bounded = sorted((r for r in reports if r.bounded and r.items), key=lambda r: r.makespan_s)
    parts = []
    if not any(r.items for r in reports):
        return "No items: nothing ran."
    if bounded:
        best, worst = bounded[0], bounded[-1]
        figures = best.figures()
        if len(bounded) > 1 and worst.makespan_s <= best.makespan_s * 1.02:
            # Differences of a percent or two are noise on a shared machine: say so, not a winner.
            parts.append(
                f"Bounded to {best.limit} at a time, all {len(bounded)} bounded patterns finished "
                f"within 2% of each other, in {best.makespan_s:.2f} s: {figures}"
            )
        else:
            parts.append(
                f"Bounded to {best.limit} at a time, {best.pattern} finished first, in "
                f"{best.makespan_s:.2f} s: {figures}"
            )
    parts += [
        f"{r.pattern} ran {r.peak_concurrency:,} at once and took {r.makespan_s:.2f} s"
        for r in reports
        if not r.bounded
    ]
    return "; ".join(parts) + "."


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
