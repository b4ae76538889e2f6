"""``python -m patterns``: the door. Parses the command line and hands over to ``commands``.

Each command is a subcommand with its own options (``--help`` on any of them lists them);
misuse exits 2 with one line on stderr and no traceback, found before any work runs. A failure
after the work (a full disk, a child process that died) prints what was done first, then one
line, and exits 1. Ctrl+C exits 130. Output is plain when stdout is not a terminal or NO_COLOR
is set (rich decides both). ``--json`` prints only JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import math
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from rich.console import Console

from patterns.contract import check
from patterns.door import commands
from patterns.door.commands import PROG, SPARE_FILES, Failed, StdoutClosed, UsageError, error, say
from patterns.lab.harness import BACKENDS, RUN_IN
from patterns.lab.http import CLIENTS
from patterns.lab.registry import PATTERNS, summary
from patterns.lab.service import BEHAVIOURS
from patterns.lab.workload import DISTRIBUTIONS, WORK_KINDS, Workload

#: The most items a run may have: every call is recorded for the report, and scatter_gather
#: starts them all at once (about 5 GB and a minute at this size).
MAX_ITEMS = 1_000_000
#: The longest simulated call, as for the server's --delay: a run of hours is still a run.
MAX_LATENCY_S = 3600.0
Handler = Callable[[argparse.Namespace, Console, Console], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print the whole usage block and exit; we want one line, and the
        # decision to exit belongs to main(). A mistyped command gets a suggestion.
        typo = re.match(r"argument COMMAND: invalid choice: '([^']*)'", message)
        if typo:
            # The hyphenated names; the underscore spellings are aliases of the same commands.
            commands_ = [name for name in _subcommands(self) if "_" not in name]
            close = difflib.get_close_matches(typo.group(1), commands_, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(
                f"unknown command {typo.group(1)!r}{hint} (choose from: {', '.join(commands_)})"
            )
        raise UsageError(message)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands by name, aliases included (none for a subcommand's parser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: dict[str, argparse.ArgumentParser] = action.choices
            return found
    return {}


def _checked(
    convert: Callable[[str], float], low: float, high: float = math.inf, *, noun: str
) -> Callable[[str], Any]:
    """An argparse type: ``convert``, then the library's own range check, so that ``--limit 0``
    and ``limit=0`` get one message ("must be >= 1, got 0"), argparse naming the option."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        try:
            return check("it", value, low, high, whole=convert is int)
        except (TypeError, ValueError) as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix("it ")) from None

    return parse


def _cluster(text: str) -> str:
    """An argparse type: ``local``, or a Dask scheduler's address (``tcp://host:port``), read
    whole here: a malformed one is one line now, not a traceback from Dask later."""
    if text == "local":
        return text
    try:
        address = urllib.parse.urlsplit(text)
        port = address.port  # a port that is not a number from 0 to 65535 raises
    except ValueError:
        address, port = None, None
    if (
        address is None
        or not text.startswith("tcp://")  # urlsplit lowercases the scheme: Dask does not
        or not re.fullmatch(r"[\w.\-]+|\[[0-9A-Fa-f:.]+\]", address.netloc.rpartition(":")[0])
        or (address.path, address.query, address.fragment) != ("", "", "")
        or not address.hostname
        or address.username is not None
        or not port
    ):
        raise argparse.ArgumentTypeError(f"expected local or tcp://HOST:PORT, got {text!r}")
    return text


def _host(text: str) -> str:
    """An argparse type: a host name or address, not an empty string."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a host name or an address, got {text!r}")
    return text


def _run_options() -> argparse.ArgumentParser:
    """The options of a run on the simulated workload: compare and each pattern's command."""
    defaults = Workload()
    run = _Parser(add_help=False)
    run.add_argument(
        "--items",
        type=_checked(int, 0, MAX_ITEMS, noun="a whole number"),
        default=defaults.items,
        metavar="N",
        help=f"how many items (default {defaults.items}, at most {MAX_ITEMS:,}: every call is "
        "recorded)",
    )
    run.add_argument(
        "--limit", type=_checked(int, 1, noun="a whole number"), default=5, metavar="K",
        help="calls in flight at most (default 5)",
    )  # fmt: skip
    run.add_argument(
        "--seed", type=int, default=defaults.seed, metavar="S",
        help=f"seed for latencies and failures (default {defaults.seed})",
    )  # fmt: skip
    run.add_argument(
        "--latency", type=_checked(float, 0, MAX_LATENCY_S, noun="a number"), nargs=2,
        default=[defaults.low, defaults.high], metavar=("LO", "HI"),
        help=f"latency range in seconds, at most {MAX_LATENCY_S:g} (default 0.5 1.5)",
    )  # fmt: skip
    run.add_argument(
        "--distribution", choices=DISTRIBUTIONS, default=defaults.distribution,
        help="latency distribution; all have minimum LO and mean (LO+HI)/2 (default uniform)",
    )  # fmt: skip
    run.add_argument(
        "--failure-rate", type=_checked(float, 0, 1, noun="a number"), default=0.0,
        metavar="P", help="chance that an item fails; failures are collected (default 0)",
    )  # fmt: skip
    run.add_argument(
        "--workload", choices=("sleep", "tcp", "http"), default="sleep",
        help="sleep: simulated calls (default); tcp: real calls to a local toy server; http: "
        "real HTTP requests to the service, served by uvicorn in a process of its own",
    )  # fmt: skip
    run.add_argument(
        "--service", choices=(*BEHAVIOURS, "none"), default=None,
        help="what the service does past its capacity: reject (turns calls away, as HTTP 429; "
        "the default for io work), queue, degrade (serves everyone slower); none: no service "
        "(the default for tcp, blocking and cpu work)",
    )  # fmt: skip
    run.add_argument(
        "--capacity", type=_checked(int, 1, noun="a whole number"), default=None, metavar="C",
        help="calls the service serves at once (default: the limit, as the source article's "
        "limit is the service's capacity)",
    )  # fmt: skip
    run.add_argument(
        "--client", choices=CLIENTS, default=None,
        help="--workload http: the HTTP client (default httpx2; aiohttp on asyncio and uvloop)",
    )  # fmt: skip
    run.add_argument(
        "--work", choices=WORK_KINDS, default="io",
        help="what each latency is spent on: io awaits it (default), blocking sleeps in a sync "
        "call, cpu burns it in Python",
    )  # fmt: skip
    run.add_argument(
        "--run-in", choices=RUN_IN, default=None,
        help="where blocking or cpu work runs: loop (stalls everything), threads (default for "
        "blocking), processes (default for cpu)",
    )  # fmt: skip
    _add_backend(run)
    _add_json(run)
    _add_plot(run, "timelines, calls in flight, latencies")
    return run


def _add_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend", choices=BACKENDS, default="asyncio", help="event loop (default asyncio)"
    )


def _add_bounded_pattern(parser: argparse.ArgumentParser, what: str) -> None:
    """``--pattern``: one of the bounded patterns, worker-pool unless told."""
    parser.add_argument(
        "--pattern", choices=[n.replace("_", "-") for n, p in PATTERNS.items() if p.BOUNDED],
        default="worker-pool", help=f"{what} (default worker-pool)",
    )  # fmt: skip


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print only JSON on stdout")


def _add_plot(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--plot", metavar="FILE",
        help=f"also draw the run to FILE, in the format its extension names: {what}",
    )  # fmt: skip


def _seconds(parser: argparse.ArgumentParser, flag: str, default: float, help: str) -> None:
    parser.add_argument(
        flag, type=_checked(float, 0, noun="seconds"), default=default, metavar="S", help=help
    )


def _serve_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--host", type=_host, default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=_checked(int, 0, 65535, noun="a port"), default=8000, help="(default 8000)"
    )
    serve.add_argument("--mode", choices=("toy", "echo"), default="toy", help="(default toy)")
    serve.add_argument(
        "--max-connections", type=_checked(int, 1, noun="a whole number"), default=100,
        metavar="K", help="connections held at most; each holds an open file, so at most the "
        f"open-files hard limit less {SPARE_FILES} (default 100)",
    )  # fmt: skip
    serve.add_argument(
        "--policy", choices=("reject", "queue"), default="reject", help="when full (default reject)"
    )
    serve.add_argument(
        "--delay", type=_checked(float, 0, 3600, noun="seconds"), default=1.0, metavar="S",
        help="toy mode: seconds between start and end for a client that does not ask for its "
        "own (default 1)",
    )  # fmt: skip
    _seconds(serve, "--max-delay", 10.0, "toy mode: the longest delay a client may ask for "
             "with a 'delay SECONDS' first line; a longer, negative, NaN or infinite one is "
             "answered with an error line (default 10)")  # fmt: skip
    _seconds(serve, "--drain", 5.0, "on shutdown, seconds the requests in flight get to "
             "finish (default 5)")  # fmt: skip
    _seconds(serve, "--idle-timeout", 10.0, "seconds a client may stay silent when the server "
             "waits for it (default 10)")  # fmt: skip
    serve.add_argument(
        "--max-line", type=_checked(int, 8, noun="bytes"), default=1024, metavar="BYTES",
        help="longest line accepted (default 1024)",
    )  # fmt: skip
    _add_backend(serve)


def build_parser() -> argparse.ArgumentParser:
    from patterns.lab import threads_vs_async as exhibit

    parser = _Parser(
        prog=PROG, description="Run the cookbook's concurrency patterns on a simulated workload."
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )

    def command(name: str, handler: Handler, help: str, **kwargs: Any) -> argparse.ArgumentParser:
        made = sub.add_parser(name, help=help, description=help, **kwargs)
        made.set_defaults(handler=handler)
        return made

    _add_json(command("list", commands.list_patterns, "the patterns, one line each"))
    run = _run_options()
    compare = command("compare", commands.run, "every pattern on one workload, one table",
                      parents=[run])  # fmt: skip
    compare.set_defaults(pattern="compare")
    compare.add_argument(
        "--cluster", default=None, metavar="WHERE", type=_cluster,
        help="also run the cluster recipes, on a local Dask cluster (local) or on the scheduler "
        "at tcp://HOST:PORT; needs the cluster extra and asyncio",
    )  # fmt: skip
    for name, pattern in PATTERNS.items():
        one = command(name.replace("_", "-"), commands.run, summary(pattern),
                      parents=[run], aliases=[name] if "_" in name else [])  # fmt: skip
        one.set_defaults(pattern=name)
    bench = command("bench", commands.bench, "the benchmarks: pytest bench --benchmark-only "
                    "(from a clone)")  # fmt: skip
    bench.add_argument(
        "--scale", choices=("tiny", "full"), default="full",
        help="scenario sizes: full takes about 16 minutes on 2 cores (default full)",
    )  # fmt: skip
    bench.add_argument(
        "--output", default=None, metavar="FILE",
        help="also write pytest-benchmark's JSON to FILE, checked before the run",
    )  # fmt: skip
    footgun = command("footgun", commands.footgun, "the footgun exhibits; NAME runs one, broken "
                      "and fixed")  # fmt: skip
    footgun.add_argument("name", nargs="?", metavar="NAME", help="which exhibit")
    footgun.add_argument(
        "--backend", choices=BACKENDS, default=None, help="event loop (default asyncio)"
    )
    _add_json(footgun)
    _add_plot(footgun, "the broken and the fixed run's calls")
    _serve_options(command("serve", commands.serve, "the bounded TCP server, shut down "
                           "gracefully on Ctrl+C"))  # fmt: skip
    parallel = command(
        "parallel", commands.parallel, "io, blocking and cpu work on the loop, in threads and in "
        "processes: which one makes it faster",
    )  # fmt: skip
    parallel.add_argument(
        "--items", type=_checked(int, 1, 10_000, noun="a whole number"), default=16,
        metavar="N", help="items per run (default 16)",
    )  # fmt: skip
    parallel.add_argument(
        "--limit", type=_checked(int, 1, 64, noun="a whole number"), default=8, metavar="K",
        help="calls in flight at most: threads or processes busy at once (default 8)",
    )  # fmt: skip
    parallel.add_argument(
        "--latency", type=_checked(float, 0, 10, noun="a number"), nargs=2,
        default=[0.05, 0.15], metavar=("LO", "HI"),
        help="each item's seconds of waiting or of CPU (default 0.05 0.15)",
    )  # fmt: skip
    _add_bounded_pattern(parallel, "the pattern that runs every case")
    parallel.add_argument(
        "--rounds", type=_checked(int, 1, 20, noun="a whole number"), default=1, metavar="R",
        help="run every case R times, in turn, and show each one's median run (default 1)",
    )  # fmt: skip
    _add_backend(parallel)
    _add_json(parallel)
    sweep = command(
        "sweep", commands.sweep, "how much to bound: goodput and latency against the limit, "
        "for a service of known capacity",
    )  # fmt: skip
    _add_bounded_pattern(sweep, "the pattern swept")
    sweep.add_argument(
        "--capacity", type=_checked(int, 1, 1_000, noun="a whole number"), default=10,
        metavar="C", help="calls the service serves at once (default 10)",
    )  # fmt: skip
    sweep.add_argument(
        "--service", choices=BEHAVIOURS, nargs="+", action="extend", default=None,
        help="what the service does past its capacity, one sweep each (default: all three)",
    )  # fmt: skip
    sweep.add_argument(
        "--limits", type=_checked(int, 1, 10_000, noun="a whole number"), nargs="+",
        default=None, metavar="K", help="the limits swept (default: from C/5 to 2C, close "
        "around C)",
    )  # fmt: skip
    sweep.add_argument(
        "--items", type=_checked(int, 1, 100_000, noun="a whole number"), default=100,
        metavar="N", help="items per run (default 100)",
    )  # fmt: skip
    sweep.add_argument(
        "--latency", type=_checked(float, 0, 10, noun="a number"), nargs=2,
        default=[0.02, 0.04], metavar=("LO", "HI"),
        help="each call's time in service, in seconds (default 0.02 0.04)",
    )  # fmt: skip
    sweep.add_argument(
        "--workload", choices=("sleep", "http"), default="sleep",
        help="sleep: the simulated service (default); http: the same over real HTTP",
    )  # fmt: skip
    sweep.add_argument(
        "--client", choices=CLIENTS, default=None,
        help="--workload http: the HTTP client (default httpx2)",
    )  # fmt: skip
    _add_backend(sweep)
    _add_json(sweep)
    _add_plot(sweep, "goodput and p95 latency against the limit")
    versus = command(
        "threads-vs-async", commands.threads_vs_async,
        "the toy server served by a thread per connection and by tasks, measured",
    )  # fmt: skip
    versus.add_argument(
        "--items", type=_checked(int, 0, noun="a whole number"), default=100, metavar="N",
        help=f"clients (default 100), 1 to {exhibit.MAX_CLIENTS:,}: a thread per client on "
        "both ends, and a socket on both ends within the open-files hard limit",
    )  # fmt: skip
    versus.add_argument(
        "--delay", type=_checked(float, 0, 3600, noun="seconds"), default=1.0, metavar="S",
        help="seconds before each answer (default 1)",
    )  # fmt: skip
    _add_json(versus)
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
        args = _parse(argv)
        logging.getLogger("asyncio").addFilter(_quiet_killed_workers)
        return int(args.handler(args, console, err_console))
    except UsageError as exc:
        # One line, no traceback: a usage error is the user's to fix, not a crash.
        error(err_console, str(exc))
        return 2
    except Failed as exc:
        error(err_console, str(exc))
        return 1
    except KeyboardInterrupt:
        say(err_console, "interrupted")
        return 130
    except StdoutClosed:
        _silence_stdout(console)
        return 1
    except BaseExceptionGroup as group:
        # The patterns raise a Ctrl+C bare; a task group elsewhere might still wrap one.
        if group.subgroup(KeyboardInterrupt) is not None:
            say(err_console, "interrupted")
            return 130
        if group.subgroup(StdoutClosed) is not None:
            _silence_stdout(console)
            return 1
        raise
    except Exception as exc:
        # A Ctrl+C that lands in a class body of a module being imported comes out of Python
        # 3.11 as "RuntimeError: Error calling __set_name__", caused by the KeyboardInterrupt.
        if not _caused_by_interrupt(exc):
            raise
        say(err_console, "interrupted")
        return 130


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments; an option the command does not take is named, with those it does."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not extra[0].startswith("-"):
            raise UsageError(f"unrecognized argument: {extra[0]}")
        option = extra[0].split("=")[0]
        takes = [
            flag
            for action in _subcommands(parser)[args.command]._actions
            for flag in action.option_strings
            if flag.startswith("--") and flag != "--help"
        ]
        listing = ", ".join(takes) if takes else "no options"
        raise UsageError(f"argument {option}: {args.command} does not take it; it takes {listing}")
    return args


def _quiet_killed_workers(record: logging.LogRecord) -> bool:
    """Drop asyncio's "Unknown child process pid N, will report returncode 255": a worker
    process killed on purpose at the loop's end, reaped twice (CPython's known race,
    python/cpython#87744). Its return code is never read; the line would only alarm."""
    return not record.getMessage().startswith("Unknown child process pid")


def _caused_by_interrupt(exc: BaseException) -> bool:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, KeyboardInterrupt):
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return False


def _silence_stdout(console: Console | None) -> None:
    # As the Python docs advise for SIGPIPE: point stdout at /dev/null, so that the flush at
    # exit does not fail again and print "Exception ignored".
    if console is None or console.file is not sys.stdout:
        return
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
