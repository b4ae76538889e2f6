"""What each command of ``python -m patterns`` does, once its arguments are parsed.

Every function takes the parsed arguments and two consoles (stdout and stderr, injectable for
tests) and returns the exit status. Misuse found before the work raises :class:`UsageError`
(exit 2, one line); a failure after it, :class:`Failed` (exit 1, one line).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from patterns.contract import check_choice
from patterns.lab.harness import (
    BACKENDS,
    RUN_IN,
    BackendUnavailable,
    Report,
    ameasure,
    check_backend,
    check_run_in,
    compare,
    measure,
    serial_report,
    speedups,
)
from patterns.lab.harness import sweep as harness_sweep
from patterns.lab.http import CLIENTS, HTTPUnavailable, ServerFailed, clients_for, require
from patterns.lab.registry import CLUSTER_PATTERNS, PATTERNS, summary
from patterns.lab.service import BEHAVIOURS, Service
from patterns.lab.workload import WORK_KINDS, Workload
from patterns.show.present import (
    compare_sentence,
    comparison_table,
    fast_calls_sentence,
    parallel_sentence,
    parallel_table,
    report_table,
    serve_summary,
    sweep_sentence,
    sweep_table,
    threads_vs_async_sentence,
    threads_vs_async_table,
)

E = TypeVar("E", bound=BaseException)
# The installed `patterns` script names itself; `python -m patterns` shows as such.
PROG = "python -m patterns" if sys.argv[0].endswith("__main__.py") else "patterns"
#: Open files a process needs besides its connections: stdio, listeners, the event loop.
SPARE_FILES = 64


class UsageError(Exception):
    """Misuse of the command line: reported in one line, exit status 2."""


class Failed(Exception):
    """A failure after (or of) the work, not misuse: reported in one line, exit status 1."""


class StdoutClosed(Exception):
    """Whoever read stdout went away (``| head``): nothing more to say, exit status 1."""


def say(console: Console | None, line: str) -> None:
    """One line on ``console`` (stderr), as it is: no markup, no highlighting."""
    if console is None:  # interrupted before there was one
        print(line, file=sys.stderr)
    else:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def error(console: Console | None, message: str) -> None:
    say(console, f"{PROG}: error: {message}")


def _reason(exc: BaseException) -> str:
    """An OSError as words: 'address already in use', not '[Errno 98] Address already ...'."""
    text = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
    text = text.splitlines()[0] if text.strip() else type(exc).__name__
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def _only(exc: BaseException, kind: type[E]) -> E | None:
    """``exc`` if it is a ``kind``; or the first ``kind`` in a (nested) exception group made
    of nothing else; otherwise None."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        matched, rest = exc.split(kind)
        if matched is None or rest is not None:
            return None
        leaf: BaseException = matched
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        return leaf if isinstance(leaf, kind) else None
    return None


def _write(console: Console, text: str) -> None:
    """Raw text on stdout (JSON, the listening line), flushed; a closed pipe ends quietly."""
    try:
        console.file.write(text)
        console.file.flush()
    except BrokenPipeError:
        raise StdoutClosed from None


def _print_json(console: Console, data: object) -> None:
    _write(console, json.dumps(data, indent=2) + "\n")


def _print(console: Console, line: str) -> None:
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def list_patterns(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """The registered patterns, one line each (or JSON)."""
    if args.json:
        listing = [{"name": n, "summary": summary(p)} for n, p in PATTERNS.items()]
        _print_json(console, listing)
        return 0
    for name, pattern in PATTERNS.items():
        _print(console, f"{name:<20} {summary(pattern)}")
    return 0


def run(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """One pattern (``args.pattern``), or every one (``compare``), on the simulated workload."""
    command = args.pattern
    low, high = args.latency
    if low > high:
        raise UsageError(f"argument --latency: LO must not exceed HI, got {low:g} {high:g}")
    try:
        workload = Workload(
            items=Workload().items if args.items is None else args.items,
            low=low,
            high=high,
            distribution=args.distribution,
            failure_rate=args.failure_rate,
            seed=args.seed,
            kind=args.work,
        )
    except (TypeError, ValueError) as exc:  # e.g. --latency 0 inf: caught by the workload
        raise UsageError(str(exc)) from None
    try:
        check_run_in(workload, args.run_in, args.workload)
    except ValueError as exc:
        option = "--workload" if args.workload != "sleep" else "--run-in"
        raise UsageError(f"argument {option}: {exc}") from None
    service = _service(args, workload)
    client = _client(args)
    _check_plot(args.plot)
    _check_backend(args.backend)
    cluster = getattr(args, "cluster", None)
    if cluster is not None:
        _check_cluster(args)
    if args.workload in ("tcp", "http"):
        _room_for_tcp(command, workload.items, args.limit, args.workload)
    show_progress = console.is_terminal and not args.json
    finished: list[Report] = []
    try:
        with _progress(err_console, workload.items, show_progress) as on_start:
            if command == "compare":
                reports = compare(
                    workload,
                    limit=args.limit,
                    backend=args.backend,
                    on_start=on_start,
                    on_report=finished.append,
                    transport=args.workload,
                    run_in=args.run_in,
                    service=service,
                    client=client,
                )
                if cluster is not None:
                    from patterns.lab.on_cluster import compare_on_cluster

                    try:
                        reports += compare_on_cluster(
                            workload,
                            limit=args.limit,
                            where=cluster,
                            backend=args.backend,
                            on_report=finished.append,  # no bar: the calls run elsewhere
                        )
                    except (OSError, RuntimeError, concurrent.futures.CancelledError) as exc:
                        # A scheduler unreachable (OSError) or lost mid-run (Dask cancels
                        # every future: "scheduler-connection-lost"): one line, exit 1.
                        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc
                        # What finished is measured: the table first, then the one line.
                        _report_finished(console, finished, json_only=args.json)
                        raise Failed(f"the cluster run failed: {reason}") from None
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
                        run_in=args.run_in,
                        service=service,
                        client=client,
                    )
                ]
    except KeyboardInterrupt:
        # Ctrl+C: the patterns that finished are measured; show them, then exit 130.
        if finished:
            total = len(PATTERNS) + (len(CLUSTER_PATTERNS) if cluster is not None else 0)
            _report_finished(
                console,
                finished,
                json_only=args.json,
                sentence=f"Interrupted: {len(finished)} of {total} patterns had finished.",
            )
        raise
    except BackendUnavailable as exc:
        raise UsageError(str(exc)) from None
    except (OSError, ServerFailed, BaseExceptionGroup) as exc:
        # Real sockets (--workload tcp, http) can fail in ways no check foresees: ports run
        # out, a server process killed. The patterns raise the first failure bare, with the
        # rest in its notes. What finished is measured: its rows first, then the one line.
        error = _only(exc, OSError) or _only(exc, ServerFailed)
        if error is None:
            raise
        if finished:
            _report_finished(console, finished, json_only=args.json)
        raise Failed(f"the run failed: {_reason(error)}") from None
    # The report first: a plot that cannot be written at the end must not cost it.
    if args.json:
        _print_json(console, [r.to_dict() for r in reports])
    elif command == "compare":
        serial = serial_report(workload, args.backend)
        console.print(comparison_table(reports, serial, width=console.width))
        _print(console, compare_sentence(reports))
        fast = fast_calls_sentence(reports)
        if fast is not None:
            _print(console, fast)
    else:
        console.print(report_table(reports[0]))
        _print(console, reports[0].sentence())
    if args.plot is None:
        return 0

    def draw() -> Any:
        from patterns.show import plots

        if command == "compare":
            return plots.compare_figure(reports)
        return plots.report_figure(reports[0])

    return _save_plot(draw, args.plot, err_console, quiet=args.json)


def _service(args: argparse.Namespace, workload: Workload) -> Service | None:
    """The service the calls go to: by default one of capacity ``--limit`` that turns the rest
    away, for io work over sleep or http; none for tcp (its own toy server) or sync work."""
    cluster = getattr(args, "cluster", None) is not None
    served = workload.kind == "io" and args.workload != "tcp" and not cluster
    behaviour = args.service or ("reject" if served else "none")
    why = (
        "the cluster rows go"
        if cluster
        else "tcp calls its own toy server and goes"
        if args.workload == "tcp"
        else f"{workload.kind} work goes"
    )
    if behaviour == "none":
        if args.capacity is not None:
            reason = (
                "there is no service (--service none)" if args.service else why + " to no service"
            )
            raise UsageError(f"argument --capacity: {reason}")
        return None
    if not served:
        raise UsageError(f"argument --service: {why} to no service")
    capacity = args.limit if args.capacity is None else args.capacity
    return Service(capacity, behaviour=check_choice("--service", behaviour, BEHAVIOURS))


def _client(args: argparse.Namespace) -> str:
    """The HTTP client of ``--workload http``; refused where it cannot run."""
    if args.workload != "http":
        if args.client is not None:
            raise UsageError("argument --client: only with --workload http")
        return CLIENTS[0]
    client = args.client or CLIENTS[0]
    if client not in clients_for(args.backend):
        raise UsageError(f"argument --client: {client} does not run on {args.backend}")
    try:
        require("uvicorn", client)
    except HTTPUnavailable as exc:
        raise UsageError(f"argument --workload: {exc}") from None
    return str(client)


def _report_finished(
    console: Console, finished: list[Report], *, json_only: bool, sentence: str | None = None
) -> None:
    """The rows of a run cut short (Ctrl+C, a cluster lost), before the line that says why."""
    if json_only:
        _print_json(console, [r.to_dict() for r in finished])
        return
    console.print(comparison_table(finished, width=console.width))
    if sentence is not None:
        _print(console, sentence)


def _check_plotting() -> None:
    # Before the run, not after: a missing extra should not cost the user the whole run.
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib: pip install -e '.[plot]'")


def _check_target(path: str, option: str) -> None:
    """Refuse, before any work, a file that could not be written at the end of it."""
    if not path.strip():
        raise UsageError(f"argument {option}: expected a file name, got {path!r}")
    if os.path.isdir(path):
        raise UsageError(f"argument {option}: {path} is a directory")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(folder):
        raise UsageError(f"argument {option}: no such directory: {folder}")
    if not os.path.isdir(folder):
        raise UsageError(f"argument {option}: {folder} is not a directory")
    existed = os.path.lexists(path)
    if existed and not os.path.isfile(path):
        # A device or a pipe (/dev/null, a fifo): opening it to try could block; ask instead.
        if not os.access(path, os.W_OK):
            raise UsageError(f"argument {option}: cannot write {path}: permission denied")
        return
    try:
        # Append mode: an existing file is left as it is; a new one is removed again.
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise UsageError(f"argument {option}: cannot write {path}: {_reason(exc)}") from None
    if not existed:
        with contextlib.suppress(OSError):
            os.remove(path)


def _check_plot(path: str | None) -> None:
    """matplotlib is installed, ``path`` can be written, and in a format matplotlib writes."""
    if path is None:
        return
    _check_plotting()
    _check_target(path, "--plot")
    from patterns.show import plots

    try:
        plots.check_format(path)
    except ValueError as exc:
        raise UsageError(f"argument --plot: {exc}") from None


def _check_cluster(args: argparse.Namespace) -> None:
    """The cluster rows need Dask, asyncio, and the workload they were built for."""
    from patterns.cluster import MAX_LIMIT, ClusterUnavailable, quiet_client_logs, require

    try:
        require()
    except ClusterUnavailable as exc:
        raise UsageError(f"argument --cluster: {exc}") from None
    if args.backend == "trio":
        raise UsageError("argument --cluster: the cluster recipes need asyncio (or uvloop)")
    if args.work != "io" or args.workload != "sleep":
        raise UsageError("argument --cluster: the cluster rows run io work on simulated calls")
    if args.limit > MAX_LIMIT:  # each call in flight is a task in the scheduler, and a slot
        raise UsageError(f"argument --limit: must be at most {MAX_LIMIT} with --cluster")
    # Dask's client logs its reconnection attempts with tracebacks; a failure still ends in one
    # line of ours, with its reason.
    quiet_client_logs()


def _check_backend(backend: str) -> None:
    try:
        check_backend(backend)
    except BackendUnavailable as exc:
        raise UsageError(str(exc)) from None


def _save_plot(draw: Callable[[], Any], path: str, err_console: Console, *, quiet: bool) -> int:
    """Draw and write the plot, after the report; a failed write is one line, exit status 1."""
    from patterns.show import plots

    figure = draw()
    try:
        plots.save(figure, path)
    except Exception as exc:  # a full disk, a directory gone, a TeX install gone: one line
        error(err_console, f"cannot write the plot to {path}: {_reason(exc)}")
        return 1
    if not quiet:
        say(err_console, f"Plot written to {path}.")
    return 0


def bench(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """The benchmarks are pytest-benchmark's suite in a clone's bench/: run that, nothing else."""
    import importlib.util

    suite = Path(__file__).resolve().parent.parent / "bench"
    if not (suite / "conftest.py").is_file():
        raise UsageError(
            "bench: the benchmarks live in bench/ of a clone of the repository "
            "(this install has none); run them there: python -m pytest bench --benchmark-only"
        )
    if importlib.util.find_spec("pytest_benchmark") is None:
        raise UsageError("bench needs pytest-benchmark: pip install -e '.[test]'")
    if args.output is not None:
        _check_target(args.output, "--output")
    for backend in BACKENDS:  # the efficiency scenario runs on each: a missing one is misuse
        _check_backend(backend)
    command = [sys.executable, "-m", "pytest", str(suite), "-p", "no:cacheprovider"]
    command += ["--benchmark-only", f"--bench-scale={args.scale}"]
    if args.output is not None:
        command += [f"--benchmark-json={os.path.abspath(args.output)}"]
    return 0 if run_suite(command, cwd=suite.parent) == 0 else 1


def run_suite(command: list[str], cwd: Path) -> int:
    """Run the benchmark suite in a child process, its output straight to the terminal."""
    return subprocess.run(command, cwd=cwd, check=False).returncode


def _open_files(needed: int, wanted: int, refuse: Callable[[int], str]) -> None:
    """Refuse a run that needs more open files than the hard limit allows (``refuse(hard)``
    says why, in one line); raise the soft limit towards ``wanted`` so that what was set holds.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinite = resource.RLIM_INFINITY
    if hard != infinite and needed > hard:
        raise UsageError(refuse(hard))
    if soft != infinite and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            target = wanted if hard == infinite else min(wanted, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _room_for_connections(connections: int) -> None:
    """serve: each connection held is an open file; as many again for busy answers."""

    def refuse(hard: int) -> str:
        return (
            f"argument --max-connections: at most {max(hard - SPARE_FILES, 1):,} here, got "
            f"{connections:,}: each connection holds an open file, and the open-files hard "
            f"limit is {hard:,}"
        )

    _open_files(connections + SPARE_FILES, 2 * connections + SPARE_FILES, refuse)


def _room_for_tcp(command: str, items: int, limit: int, over: str = "tcp") -> None:
    """--workload tcp (and http): every call in flight is a socket on both ends, in this one
    process (over http, the server's end is in its own, which inherits the limit raised)."""
    unbounded = command in ("compare", "scatter_gather")
    at_once = items if unbounded else min(items, limit)
    needed = 2 * at_once + SPARE_FILES

    def refuse(hard: int) -> str:
        option, why = ("--items", "scatter_gather") if unbounded else ("--limit", "the limit")
        most = max((hard - SPARE_FILES) // 2, 0)
        return (
            f"argument {option}: over {over}, {why} holds {at_once:,} connections at once, a "
            f"socket on both ends each; the open-files hard limit of {hard:,} holds {most:,}"
        )

    _open_files(needed, needed, refuse)


def serve(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    import signal

    import anyio

    from patterns import server as serving_module

    _check_backend(args.backend)
    _room_for_connections(args.max_connections)
    try:
        server = serving_module.Server(
            host=args.host,
            port=args.port,
            mode=args.mode,
            max_connections=args.max_connections,
            policy=args.policy,
            delay=args.delay,
            max_delay=args.max_delay,
            drain=args.drain,
            idle_timeout=args.idle_timeout,
            max_line=args.max_line,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    listening = False

    async def status() -> None:
        # A live status line, on a terminal only.
        from rich.live import Live

        with Live(console=err_console, refresh_per_second=4, transient=True) as live:
            while True:
                c = server.counts
                live.update(f"open {c.open}  served {c.completed}  rejected {c.rejected}")
                await anyio.sleep(0.25)

    async def main() -> None:
        nonlocal listening
        async with anyio.create_task_group() as outer:
            if console.is_terminal:
                outer.start_soon(status)
            async with anyio.create_task_group() as serving:
                # Signals first, then the address: whoever reads it may signal at once.
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    host, port = await serving.start(server.serve)
                    listening = True
                    _write(console, f"listening on {host}:{port}\n")
                    async for _ in signals:
                        # Stop accepting now; the requests in flight get --drain seconds.
                        server.shutdown()
                        break
            # serve() has returned: the drain is over. Stop the status line.
            outer.cancel_scope.cancel()

    try:
        _run_on(args.backend, main)
    except BaseException as exc:
        # anyio's task groups wrap what fails in them: an address that cannot be bound (in
        # use, not ours, a name that does not resolve: socket.gaierror is an OSError too)
        # comes out inside one or two ExceptionGroups, on asyncio and trio alike.
        error = _only(exc, OSError)
        if error is None:
            raise
        if not listening:
            address = f"[{args.host}]" if ":" in args.host else args.host
            raise UsageError(f"cannot listen on {address}:{args.port}: {_reason(error)}") from None
        _print(console, serve_summary(server.counts))
        raise Failed(f"the server stopped: {_reason(error)}") from None
    _print(console, serve_summary(server.counts))
    return 0


def sweep(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """One pattern at a range of limits against a service of known capacity, for each chosen
    behaviour past it: the table, the sentence, and ``--plot``'s picture."""
    low, high = args.latency
    if low > high:
        raise UsageError(f"argument --latency: LO must not exceed HI, got {low:g} {high:g}")
    workload = Workload(items=args.items, low=low, high=high)
    limits = sorted(set(args.limits or default_limits(args.capacity)))
    behaviours = list(dict.fromkeys(args.service or BEHAVIOURS))  # each once, as given
    client = _client(args)
    _check_plot(args.plot)
    _check_backend(args.backend)
    pattern = args.pattern.replace("-", "_")
    runs: dict[str, list[Report]] = {}
    show = console.is_terminal and not args.json
    with _progress(err_console, len(limits) * len(behaviours), show) as on_start:
        tick = on_start("sweep")

        def record(behaviour: str, report: Report) -> None:
            runs.setdefault(behaviour, []).append(report)
            if tick is not None:
                tick(sum(map(len, runs.values())), 0)

        for behaviour in behaviours:
            harness_sweep(
                pattern,
                workload,
                limits=limits,
                service=Service(args.capacity, behaviour=behaviour),
                backend=args.backend,
                on_report=partial(record, behaviour),
                transport=args.workload,
                client=client,
            )
    if args.json:
        _print_json(console, {b: [r.to_dict() for r in rs] for b, rs in runs.items()})
    else:
        console.print(sweep_table(runs))
        _print(console, sweep_sentence(runs))
    if args.plot is None:
        return 0

    def draw() -> Any:
        from patterns.show import plots

        return plots.limit_sweep(runs)

    return _save_plot(draw, args.plot, err_console, quiet=args.json)


def default_limits(capacity: int) -> list[int]:
    """The limits a sweep tries unless told: a few well below the capacity, every one next to
    it, a few above, up to twice it."""
    c = capacity
    return sorted({max(1, x) for x in (c // 5, c // 2, 4 * c // 5, c - 1, c, c + 1, 6 * c // 5,
                                       3 * c // 2, 2 * c)})  # fmt: skip


def threads_vs_async(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    from patterns.lab import threads_vs_async as exhibit

    clients = args.items
    if clients < 1:
        raise UsageError(
            f"argument --items: threads-vs-async needs at least 1 client, got {clients}"
        )
    most = exhibit.max_clients()
    if clients > most:
        if most >= exhibit.MAX_CLIENTS:
            raise UsageError(
                f"argument --items: threads-vs-async runs at most {most:,} clients, got "
                f"{clients:,} (a thread per client on both ends: {2 * most:,} threads)"
            )
        raise UsageError(
            f"argument --items: threads-vs-async runs at most {most:,} clients here, got "
            f"{clients:,}: each holds a socket on both ends, within the open-files hard limit "
            f"of {exhibit.open_files_hard_limit():,}"
        )
    try:
        results = [exhibit.measure(kind, clients, args.delay) for kind in exhibit.KINDS]
    except exhibit.ChildFailed as exc:
        raise Failed(f"threads-vs-async: {exc}") from None
    if args.json:
        from dataclasses import asdict

        _print_json(console, [asdict(r) for r in results])
        return 0
    console.print(threads_vs_async_table(results))
    _print(console, threads_vs_async_sentence(results))
    return 0


def parallel(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """Each kind of work, on the loop, in threads and in processes: one table, one sentence."""
    low, high = args.latency
    if low > high:
        raise UsageError(f"argument --latency: LO must not exceed HI, got {low:g} {high:g}")
    _check_backend(args.backend)
    cores = os.cpu_count() or 1
    limit = args.limit
    pattern = args.pattern.replace("-", "_")
    cases = [(k, w) for k in WORK_KINDS for w in RUN_IN if k != "io" or w == "loop"]
    runs: dict[tuple[str, str], list[Report]] = {case: [] for case in cases}

    def medians() -> list[Report]:
        # Each case's run of median makespan: a shared machine's CPU comes and goes between
        # runs, and rounds taken in turn see the same weather.
        found = [sorted(r, key=lambda r: r.makespan_s) for r in runs.values() if r]
        return [r[(len(r) - 1) // 2] for r in found]

    async def run_all() -> None:
        # One event loop for every case: its worker processes serve them all, and are
        # stopped once, at the end.
        for round_ in range(args.rounds):
            for kind, where in cases:
                if console.is_terminal and not args.json:
                    say(err_console, f"round {round_ + 1}: {kind} work in {where}…")
                workload = Workload(items=args.items, low=low, high=high, kind=kind)
                report = await ameasure(pattern, workload, limit=limit, run_in=where)
                runs[kind, where].append(report)

    try:
        _run_on(args.backend, run_all)
    except KeyboardInterrupt:
        if medians() and not args.json:  # what finished is measured: show it, then exit 130
            console.print(parallel_table(medians(), cores=cores))
        raise
    reports = medians()
    if args.json:
        found = speedups(reports)
        _print_json(
            console,
            [r.to_dict() | {"speedup_measured": s} for r, s in zip(reports, found, strict=True)],
        )
        return 0
    console.print(parallel_table(reports, cores=cores))
    _print(console, parallel_sentence(reports, cores=cores))
    return 0


def _run_on(backend: str, fn: Callable[[], Any]) -> Any:
    import anyio

    try:
        name, options = check_backend(backend)
    except BackendUnavailable as exc:
        raise UsageError(str(exc)) from None
    return anyio.run(fn, backend=name, backend_options=options)


def footgun(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """The exhibits, listed; or one of them, broken and fixed."""
    # Imported here: the exhibits are only needed by this command.
    from patterns.footguns import exhibits

    found = exhibits()
    if args.name is None:
        if args.plot is not None:
            raise UsageError("argument --plot: name the footgun to draw")
        if args.backend is not None:
            raise UsageError("argument --backend: footgun without NAME does not take it")
        if args.json:
            listing = [
                {"name": e.name, "title": e.title, "article": e.article, "why": e.why}
                for e in found.values()
            ]
            _print_json(console, listing)
            return 0
        width = max(len(name) for name in found)
        for exhibit in found.values():
            line = f"{exhibit.name:<{width}}  {exhibit.title} ({_source(exhibit.article)})"
            _print(console, line)
        return 0
    key = args.name.lower().replace("_", "-")
    if key not in found:
        raise UsageError(f"unknown footgun {args.name!r}; choose from: {', '.join(found)}")
    args.backend = args.backend or "asyncio"
    _check_plot(args.plot)
    _check_backend(args.backend)
    exhibit = found[key]
    broken = _run_on(args.backend, exhibit.broken)
    fixed = _run_on(args.backend, exhibit.fixed)
    status = 0 if fixed.ok and not broken.ok else 1
    if args.json:
        result = {
            "name": exhibit.name,
            "backend": args.backend,
            "broken": {"ok": broken.ok, "observed": broken.observed},
            "fixed": {"ok": fixed.ok, "observed": fixed.observed},
            "why": exhibit.why,
        }
        _print_json(console, result)
    else:
        lines = [
            f"{exhibit.title} (source: {_source(exhibit.article)})",
            f"  broken: {broken.observed}.",
            f"  fixed:  {fixed.observed}.",
            f"  why:    {exhibit.why}",
        ]
        for line in lines:
            _print(console, line)
    if args.plot is not None:
        from patterns.show import plots

        gauges = (broken.gauges, fixed.gauges)
        draw = partial(plots.verdicts, broken.spans, fixed.spans, exhibit.title, gauges=gauges)
        status = max(status, _save_plot(draw, args.plot, err_console, quiet=args.json))
    return status


def _source(article: str) -> str:
    """Where an exhibit's lesson comes from: ``article 002: ...``, or an issue as it is."""
    return f"article {article}" if article[:1].isdigit() else article


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
