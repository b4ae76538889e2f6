"""``python -m patterns``: list the patterns, run one, or compare them all on one workload.

Misuse exits 2 with one line on stderr and no traceback, found before any work runs: a value
out of range, an option the command does not take, a file that could not be written. A failure
after the work (a full disk, a child process that died) prints what was done first, then one
line, and exits 1. Ctrl+C exits 130. Output is plain when stdout is not a terminal or NO_COLOR is
set (rich decides both). ``--json`` prints only JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from rich.console import Console
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
from patterns.present import compare_sentence, comparison_table, fast_calls_sentence, report_table
from patterns.registry import PATTERNS, get_pattern, summary
from patterns.workload import DISTRIBUTIONS, Workload

if TYPE_CHECKING:
    from patterns.server import Counts
    from patterns.threads_vs_async import Result

# The installed `patterns` script names itself; `python -m patterns` shows as such.
PROG = "python -m patterns" if sys.argv[0].endswith("__main__.py") else "patterns"
COMMANDS = ("list", "compare", "bench", "footgun", "serve", "threads-vs-async")
#: The most items a run may have: every call is recorded for the report, and scatter_gather
#: starts them all at once (about 5 GB and a minute at this size).
MAX_ITEMS = 1_000_000
#: The longest simulated call, as for the server's --delay: a run of hours is still a run.
MAX_LATENCY_S = 3600.0
#: Open files a process needs besides its connections: stdio, listeners, the event loop.
SPARE_FILES = 64

# The options each command takes (by their dest); any other option given is refused.
_RUN: tuple[str, ...] = ("items", "limit", "seed", "latency", "distribution", "failure_rate")
_RUN += ("backend", "json", "plot", "workload", "nested")
_SERVE: tuple[str, ...] = ("host", "port", "mode", "max_connections", "policy", "delay")
_SERVE += ("max_delay", "drain", "idle_timeout", "max_line", "backend")
_TAKES = {
    "list": ("json",),
    "bench": ("scale", "output"),
    "footgun": ("backend", "json", "plot"),
    "footgun without NAME": ("json",),
    "serve": _SERVE,
    "threads-vs-async": ("items", "delay", "json"),
    "throttle --nested": ("nested", "backend", "json", "plot"),
}

E = TypeVar("E", bound=BaseException)


class UsageError(Exception):
    """Misuse of the command line: reported in one line, exit status 2."""


class Failed(Exception):
    """A failure after (or of) the work, not misuse: reported in one line, exit status 1."""


class _StdoutClosed(Exception):
    """Whoever read stdout went away (``| head``): nothing more to say, exit status 1."""


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
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if not low <= value <= high:
            if high == math.inf:
                raise argparse.ArgumentTypeError(f"must be >= {_number(low)}, got {text}")
            raise argparse.ArgumentTypeError(
                f"must be between {_number(low)} and {_number(high)}, got {text}"
            )
        return value

    return parse


def _number(value: float) -> str:
    """1000000 as such, not 1e+06; 0.5 as 0.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _host(text: str) -> str:
    """An argparse type: a host name or address, not an empty string."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a host name or an address, got {text!r}")
    return text


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
        help="list, compare, bench, footgun [NAME], serve, threads-vs-async, or a pattern name "
        "to run it alone",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="footgun only: which exhibit")
    parser.add_argument(
        "--items",
        type=_checked(int, 0, MAX_ITEMS, noun="a whole number"),
        default=None,
        metavar="N",
        help=f"how many items (default {defaults.items}, at most {MAX_ITEMS:,}: every call is "
        "recorded); threads-vs-async: how many clients (default 100, see below)",
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
        type=_checked(float, 0, MAX_LATENCY_S, noun="a number"),
        nargs=2,
        default=[defaults.low, defaults.high],
        metavar=("LO", "HI"),
        help=f"latency range in seconds, at most {MAX_LATENCY_S:g} (default 0.5 1.5)",
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
        help="also draw the run to FILE, in the format its extension names (png, svg, pdf, "
        "or any other matplotlib writes): timelines, calls in flight",
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
    serve = parser.add_argument_group("serve")
    serve.add_argument(
        "--host", type=_host, default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=_checked(int, 0, 65535, noun="a port"), default=8000, help="(default 8000)"
    )
    serve.add_argument("--mode", choices=("toy", "echo"), default="toy", help="(default toy)")
    serve.add_argument(
        "--max-connections",
        type=_checked(int, 1, noun="a whole number"),
        default=100,
        metavar="K",
        help="connections held at most; each holds an open file, so at most the open-files hard "
        f"limit less {SPARE_FILES} (default 100)",
    )
    serve.add_argument(
        "--policy", choices=("reject", "queue"), default="reject", help="when full (default reject)"
    )
    serve.add_argument(
        "--delay", type=_checked(float, 0, 3600, noun="seconds"), default=1.0, metavar="S",
        help="toy mode: seconds between start and end for a client that does not ask for its "
        "own (default 1); threads-vs-async: seconds before each answer (default 1)",
    )  # fmt: skip
    serve.add_argument(
        "--max-delay", type=_checked(float, 0, noun="seconds"), default=10.0, metavar="S",
        help="toy mode: the longest delay a client may ask for with a 'delay SECONDS' first "
        "line; a longer one, or a negative, NaN or infinite one, is answered with an error line "
        "(default 10)",
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
    bench = parser.add_argument_group("bench")
    bench.add_argument(
        "--scale",
        choices=("tiny", "full"),
        default="full",
        help="scenario sizes: full takes about 16 minutes on 2 cores (default full)",
    )
    bench.add_argument(
        "--output",
        default=None,
        metavar="FILE",
        help="also write pytest-benchmark's JSON to FILE, checked before the run",
    )
    from patterns import threads_vs_async as exhibit

    parser.add_argument_group(
        "threads-vs-async",
        f"--items N clients (default 100), at least 1 and at most {exhibit.MAX_CLIENTS:,}: "
        "each client is a thread on both ends, and past a few thousand threads the machine's "
        "thread limits and the time it takes to start them, not the serving, decide the result. "
        "Each client also holds a socket on both ends, in one process: at most (the open-files "
        f"hard limit - {exhibit.SPARE_FILES}) / 2 clients. --delay S: seconds before each "
        "answer (default 1).",
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    console: Console | None = None,
    err_console: Console | None = None,
) -> int:
    """Run the command line; return the exit status. Consoles are injectable for tests."""
    try:
        err_console = err_console or Console(stderr=True)
        if console is None:
            console = Console()
            # Piped output has no width; rich would assume 80 columns and squeeze the table.
            # COLUMNS=0 (or any non-number) counts as unset: with it rich prints nothing at all.
            columns = os.environ.get("COLUMNS", "").strip()
            if not (columns.isdigit() and int(columns) > 0):
                if not console.is_terminal:
                    console.width = 160
                elif console.width < 1:
                    console.width = 80
        return _main(build_parser(), argv, console, err_console)
    except UsageError as exc:
        # One line, no traceback: a usage error is the user's to fix, not a crash.
        _error(err_console, str(exc))
        return 2
    except Failed as exc:
        _error(err_console, str(exc))
        return 1
    except KeyboardInterrupt:
        _say(err_console, "interrupted")
        return 130
    except _StdoutClosed:
        _silence_stdout(console)
        return 1
    except BaseExceptionGroup as group:
        # The patterns raise a Ctrl+C bare; a task group elsewhere might still wrap one.
        if group.subgroup(KeyboardInterrupt) is not None:
            _say(err_console, "interrupted")
            return 130
        if group.subgroup(_StdoutClosed) is not None:
            _silence_stdout(console)
            return 1
        raise
    except Exception as exc:
        # A Ctrl+C that lands in a class body of a module being imported comes out of Python
        # 3.11 as "RuntimeError: Error calling __set_name__", caused by the KeyboardInterrupt.
        if not _caused_by_interrupt(exc):
            raise
        _say(err_console, "interrupted")
        return 130


def _caused_by_interrupt(exc: BaseException) -> bool:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, KeyboardInterrupt):
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return False


def _say(console: Console | None, line: str) -> None:
    if console is None:  # interrupted before there was one
        print(line, file=sys.stderr)
    else:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _error(console: Console | None, message: str) -> None:
    _say(console, f"{PROG}: error: {message}")


def _silence_stdout(console: Console | None) -> None:
    # As the Python docs advise for SIGPIPE: point stdout at /dev/null, so that the flush at
    # exit does not fail again and print "Exception ignored".
    if console is None or console.file is not sys.stdout:
        return
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


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
        raise _StdoutClosed from None


def _print_json(console: Console, data: object) -> None:
    _write(console, json.dumps(data, indent=2) + "\n")


def _print(console: Console, line: str) -> None:
    console.print(line, markup=False, highlight=False, soft_wrap=True)


class _Unset:
    def __repr__(self) -> str:
        return "<not given>"


_UNSET = _Unset()


def _parse(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> tuple[argparse.Namespace, list[str]]:
    """The arguments, and the options given on the command line (by dest, in parser order).

    argparse fills in a default only where the namespace it is given lacks the attribute: a
    second parse into a namespace of placeholders leaves them where nothing was given.
    """
    args = parser.parse_args(argv)
    blank = argparse.Namespace(**dict.fromkeys(vars(args), _UNSET))
    seen = vars(parser.parse_args(argv, blank))
    given = [dest for dest in vars(args) if dest not in ("command", "name")]
    return args, [dest for dest in given if seen[dest] is not _UNSET]


def _option(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _takes_only(command: str, given: Iterable[str], takes: Sequence[str]) -> None:
    """Refuse an option ``command`` would ignore: silently ignored, it would cost a run."""
    for dest in given:
        if dest not in takes:
            # "throttle --nested" takes --nested, of course: the listing leaves it out.
            listing = ", ".join(_option(t) for t in takes if _option(t) not in command)
            raise UsageError(
                f"argument {_option(dest)}: {command} does not take it; it takes {listing}"
            )


def _main(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    console: Console,
    err_console: Console,
) -> int:
    args, given = _parse(parser, argv)
    command = args.command.lower().replace("-", "_")
    if command == "footgun":
        return _footgun(args, given, console, err_console)
    if command not in ("list", "bench", "serve", "threads_vs_async", "compare"):
        try:
            get_pattern(command)
        except KeyError:
            choices = ", ".join((*COMMANDS, *PATTERNS))
            raise UsageError(f"unknown command {args.command!r}; choose from: {choices}") from None
    if args.name is not None:
        raise UsageError(f"unrecognized argument: {args.name}")
    if command == "list":
        _takes_only("list", given, _TAKES["list"])
        if args.json:
            listing = [{"name": n, "summary": summary(p)} for n, p in PATTERNS.items()]
            _print_json(console, listing)
            return 0
        for name, pattern in PATTERNS.items():
            _print(console, f"{name:<20} {summary(pattern)}")
        return 0
    if command in ("bench", "serve"):
        _takes_only(command, given, _TAKES[command])
        return (_bench if command == "bench" else _serve)(args, console, err_console)
    if command == "threads_vs_async":
        _takes_only("threads-vs-async", given, _TAKES["threads-vs-async"])
        return _threads_vs_async(args, console)
    if args.nested:
        if command != "throttle":
            raise UsageError("argument --nested: only with the throttle pattern")
        _takes_only("throttle --nested", given, _TAKES["throttle --nested"])
        return _nested(args, console, err_console)
    _takes_only(args.command, given, _RUN)
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
        )
    except (TypeError, ValueError) as exc:  # e.g. --latency 0 inf: caught by the workload
        raise UsageError(str(exc)) from None
    _check_plot(args.plot)
    _check_backend(args.backend)
    if args.workload == "tcp":
        _room_for_tcp(command, workload.items, args.limit)
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
    except KeyboardInterrupt:
        # Ctrl+C: the patterns that finished are measured; show them, then exit 130.
        if finished:
            _report_interrupted(console, finished, json_only=args.json)
        raise
    except BackendUnavailable as exc:
        raise UsageError(str(exc)) from None
    except (OSError, BaseExceptionGroup) as exc:
        # Real sockets (--workload tcp) can fail in ways no check foresees: ports run out,
        # a firewall. The patterns raise the first failure bare, with the rest in its notes.
        error = _only(exc, OSError)
        if error is None:
            raise
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
        from patterns import plots

        if command == "compare":
            return plots.compare_figure(reports)
        return plots.report_figure(reports[0])

    return _save_plot(draw, args.plot, err_console, quiet=args.json)


def _report_interrupted(console: Console, finished: list[Report], *, json_only: bool) -> None:
    if json_only:
        _print_json(console, [r.to_dict() for r in finished])
        return
    console.print(comparison_table(finished, width=console.width))
    _print(console, f"Interrupted: {len(finished)} of {len(PATTERNS)} patterns had finished.")


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
    from patterns import plots

    try:
        plots.check_format(path)
    except ValueError as exc:
        raise UsageError(f"argument --plot: {exc}") from None


def _check_backend(backend: str) -> None:
    try:
        check_backend(backend)
    except BackendUnavailable as exc:
        raise UsageError(str(exc)) from None


def _save_plot(draw: Callable[[], Any], path: str, err_console: Console, *, quiet: bool) -> int:
    """Draw and write the plot, after the report; a failed write is one line, exit status 1."""
    from patterns import plots

    figure = draw()
    try:
        plots.save(figure, path)
    except Exception as exc:  # a full disk, a directory gone, a TeX install gone: one line
        _error(err_console, f"cannot write the plot to {path}: {_reason(exc)}")
        return 1
    if not quiet:
        _say(err_console, f"Plot written to {path}.")
    return 0


def _bench(args: argparse.Namespace, console: Console, err_console: Console) -> int:
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


def serve_summary(counts: Counts) -> str:
    """The line ``serve`` prints at exit: how every accepted connection ended."""
    c = counts
    return (
        f"accepted {c.accepted} = completed {c.completed} + cancelled {c.cancelled} + "
        f"timed out {c.timed_out} + failed {c.failed}; rejected {c.rejected}; "
        f"at most {c.peak_open} open at once"
    )


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


def _room_for_tcp(command: str, items: int, limit: int) -> None:
    """--workload tcp: every call in flight is a socket on both ends, in this one process."""
    unbounded = command in ("compare", "scatter_gather")
    at_once = items if unbounded else min(items, limit)
    needed = 2 * at_once + SPARE_FILES

    def refuse(hard: int) -> str:
        option, why = ("--items", "scatter_gather") if unbounded else ("--limit", "the limit")
        most = max((hard - SPARE_FILES) // 2, 0)
        return (
            f"argument {option}: over tcp, {why} holds {at_once:,} connections at once, a "
            f"socket on both ends each; the open-files hard limit of {hard:,} holds {most:,}"
        )

    _open_files(needed, needed, refuse)


def _serve(args: argparse.Namespace, console: Console, err_console: Console) -> int:
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


def _threads_vs_async(args: argparse.Namespace, console: Console) -> int:
    from patterns import threads_vs_async as exhibit

    clients = 100 if args.items is None else args.items
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
    print_threads_vs_async(results, console)
    return 0


def print_threads_vs_async(results: Sequence[Result], console: Console) -> None:
    """The table of both sides, then the sentence that reads it."""
    first = results[0]
    table = Table(title=f"{first.clients:,} clients, each answered after {first.delay_s:g} s")
    headers = ("served by", "makespan s", "peak open sockets", "peak threads", "RSS growth MiB")
    for header in headers:
        table.add_column(header, justify="left" if header == "served by" else "right")
    for r in results:
        table.add_row(
            _served_by(r),
            f"{r.makespan_s:.2f}",
            f"{r.peak_open:,}",
            f"{r.peak_threads:,}",
            f"{r.rss_growth_mib:.1f}",
        )
    console.print(table)
    _print(console, threads_vs_async_sentence(results))


def _served_by(result: Result) -> str:
    return "a thread per connection" if result.kind == "threads" else "async tasks (anyio)"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def threads_vs_async_sentence(results: Sequence[Result]) -> str:
    """What each side measured, and nothing it did not: "at once" only for a side whose
    server held every client open at the same moment."""
    parts = []
    for r in results:
        if r.peak_open >= r.clients:
            held = (
                f"served all {r.clients:,} clients at once"
                if r.clients > 1
                else "served its one client"
            )
        else:
            held = f"had at most {r.peak_open:,} of the {r.clients:,} clients open at a time"
        parts.append(
            f"{_served_by(r)} {held} and took {r.makespan_s:.2f} s, with "
            f"{_plural(r.peak_threads, 'thread')} at the peak and {r.rss_growth_mib:.1f} MiB "
            "more memory"
        )
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]


def _run_on(backend: str, fn: Callable[[], Any]) -> Any:
    import anyio

    try:
        name, options = check_backend(backend)
    except BackendUnavailable as exc:
        raise UsageError(str(exc)) from None
    return anyio.run(fn, backend=name, backend_options=options)


def _verdicts_figure(broken: Any, fixed: Any) -> Any:
    from patterns import plots

    figure = plots.figure(figsize=(10, 6))
    top, bottom = figure.subplots(2, 1, sharex=True)
    plots.spans(broken.spans, top, title="broken")
    plots.spans(fixed.spans, bottom, title="fixed")
    return figure


def _footgun(
    args: argparse.Namespace, given: list[str], console: Console, err_console: Console
) -> int:
    # Imported here: the exhibits are only needed by this command.
    from patterns.footguns import exhibits

    found = exhibits()
    if args.name is None:
        if args.plot is not None:
            raise UsageError("argument --plot: name the footgun to draw")
        _takes_only("footgun without NAME", given, _TAKES["footgun without NAME"])
        if args.json:
            listing = [
                {"name": e.name, "title": e.title, "article": e.article, "why": e.why}
                for e in found.values()
            ]
            _print_json(console, listing)
            return 0
        for exhibit in found.values():
            _print(console, f"{exhibit.name:<20} {exhibit.title} (article {exhibit.article})")
        return 0
    key = args.name.lower().replace("_", "-")
    if key not in found:
        raise UsageError(f"unknown footgun {args.name!r}; choose from: {', '.join(found)}")
    _takes_only("footgun", given, _TAKES["footgun"])
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
            f"{exhibit.title} (source article {exhibit.article})",
            f"  broken: {broken.observed}.",
            f"  fixed:  {fixed.observed}.",
            f"  why:    {exhibit.why}",
        ]
        for line in lines:
            _print(console, line)
    if args.plot is not None:
        draw = partial(_verdicts_figure, broken, fixed)
        status = max(status, _save_plot(draw, args.plot, err_console, quiet=args.json))
    return status


def _nested(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    # Imported here: the exhibit is only needed by this option.
    from patterns.footguns import nested_throttle as exhibit

    _check_plot(args.plot)
    _check_backend(args.backend)
    fixed = _run_on(args.backend, exhibit.fixed)
    broken = _run_on(args.backend, exhibit.broken)
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
        _print_json(console, result)
    else:
        console.print(timeline(fixed, f"throttle, limit {exhibit.LIMIT}: nested calls"))
        _print(
            console,
            f"{exhibit.OUTER} outer calls, each making {exhibit.INNER} inner calls in turn, "
            f"through one Throttle({exhibit.LIMIT}): all {len(fixed.finished_spans())} calls "
            f"finished in {fixed.elapsed_s:.2f} s, with at most {fixed.peak_permits} permits in "
            f"use and {fixed.peak_working} calls doing their own work at once. "
            f"Through a plain Semaphore({exhibit.LIMIT}) the same calls "
            + (
                f"deadlocked: nothing had finished after {broken.elapsed_s:.1f} s."
                if not broken.finished
                else "finished too (not the expected deadlock)."
            ),
        )
    if args.plot is None:
        return 0
    draw = partial(_verdicts_figure, exhibit.verdict(broken), exhibit.verdict(fixed))
    return _save_plot(draw, args.plot, err_console, quiet=args.json)


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
