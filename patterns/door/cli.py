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
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from rich.console import Console

from patterns.door import adapt, commands, options, serving
from patterns.lab.registry import PATTERNS, summary
from patterns.show.output import PROG, Failed, StdoutClosed, UsageError, error, say, warn

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


def build_parser() -> argparse.ArgumentParser:
    """Every command, with its handler in ``commands`` and its options from ``options``."""
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

    options.add_json(command("list", commands.list_patterns, "the patterns, one line each"))
    run = options.run_options()
    compare = command("compare", commands.run, "every pattern on one workload, one table",
                      parents=[run])  # fmt: skip
    compare.set_defaults(pattern="compare")
    options.add_cluster(compare)
    for name, pattern in PATTERNS.items():
        one = command(name.replace("_", "-"), commands.run, summary(pattern),
                      parents=[run], aliases=[name] if "_" in name else [])  # fmt: skip
        one.set_defaults(pattern=name)
    for name, handler, about, add_options in [
        ("bench", commands.bench, "the benchmarks: pytest bench --benchmark-only (from a clone)",
         options.bench),
        ("footgun", commands.footgun, "the footgun exhibits; NAME runs one, broken and fixed",
         options.footgun),
        ("serve", serving.serve, "the bounded TCP server, shut down gracefully on Ctrl+C",
         options.serve),
        ("parallel", commands.parallel, "io, blocking and cpu work on the loop, in threads and "
         "in processes: which one makes it faster", options.parallel),
        ("sweep", commands.sweep, "how much to bound: goodput and latency against the limit, "
         "for a service of known capacity", options.sweep),
        ("threads-vs-async", serving.threads_vs_async, "the toy server served by a thread per "
         "connection and by tasks, measured", options.threads_vs_async),
        ("adapt", adapt.adapt, "a service whose capacity changes mid-run: adaptive limits "
         "against fixed ones and the oracle, one table", adapt.options),
    ]:  # fmt: skip
        add_options(command(name, handler, about))
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
        console = _stdout_console() if console is None else console
        args = _parse(argv)
        if getattr(args, "deprecated", None):  # an old spelling: it works, said once
            warn(err_console, args.deprecated)
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


def _stdout_console() -> Console:
    console = Console()
    # Piped output has no width; rich would assume 80 columns and squeeze the table.
    # COLUMNS=0 (or any non-number) counts as unset: with it rich prints nothing at all.
    columns = os.environ.get("COLUMNS", "").strip()
    if not (columns.isdigit() and int(columns) > 0):
        if not console.is_terminal:
            console.width = 160
        elif console.width < 1:
            console.width = 80
    return console


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
            if flag.startswith("--") and flag != "--help" and action.help != argparse.SUPPRESS
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
