"""How the command line speaks: its three ways to end, and its lines on stdout and stderr.

Misuse is :class:`UsageError` (one line, exit status 2), a failure after the work is
:class:`Failed` (one line, exit status 1), and a reader gone from the pipe is
:class:`StdoutClosed` (nothing more to say, exit status 1). The parser and the commands behind it
both speak through this module, so that every line of every command has the same shape.
"""

from __future__ import annotations

import json
import sys
from typing import TypeVar

from rich.console import Console

from patterns.contract import leaves

E = TypeVar("E", bound=BaseException)
# The installed `patterns` script names itself; `python -m patterns` shows as such.
PROG = "python -m patterns" if sys.argv[0].endswith("__main__.py") else "patterns"


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
    """``message`` as the command line's error line."""
    say(console, f"{PROG}: error: {message}")


def warn(console: Console | None, message: str) -> None:
    """``message`` as a warning line: the command goes on."""
    say(console, f"{PROG}: warning: {message}")


def reason(exc: BaseException) -> str:
    """An OSError as words: 'address already in use', not '[Errno 98] Address already ...'."""
    text = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
    text = text.splitlines()[0] if text.strip() else type(exc).__name__
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def only(exc: BaseException, kind: type[E]) -> E | None:
    """``exc`` if it is a ``kind``; or the first ``kind`` in a (nested) exception group made
    of nothing else; otherwise None."""
    found = leaves(exc)
    first = found[0]
    return first if isinstance(first, kind) and all(isinstance(e, kind) for e in found) else None


def write(console: Console, text: str) -> None:
    """Raw text on stdout (JSON, the listening line), flushed; a closed pipe ends quietly."""
    try:
        console.file.write(text)
        console.file.flush()
    except BrokenPipeError:
        raise StdoutClosed from None


def print_json(console: Console, data: object) -> None:
    """``data`` as indented JSON on stdout, and nothing else."""
    write(console, json.dumps(data, indent=2) + "\n")


def print_line(console: Console, line: str) -> None:
    """One line on stdout, as it is: no markup, no highlighting."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)
