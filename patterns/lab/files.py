"""Open files: how many a process may hold, and room for more.

Every socket is an open file, so a run of many connections (a server's, a run over tcp or http,
threads-vs-async's clients) needs the open-files limit to hold them. The soft limit, which
binds, may be raised by the process itself up to the hard limit, which only an administrator
raises: so a run the hard limit cannot hold is refused before it starts, and any other raises
its own soft limit to fit.
"""

from __future__ import annotations

import contextlib

#: Open files a process needs besides its connections: stdio, listeners, the event loop, and a
#: margin.
SPARE_FILES = 64


def hard_limit() -> int | None:
    """The open-files hard limit, up to which a process may raise its own soft limit; None if
    there is none (or no way to know: not POSIX)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return None
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return None if hard == resource.RLIM_INFINITY else int(hard)


def raise_soft_limit(wanted: int) -> None:
    """Raise this process's soft open-files limit to ``wanted``, as far as the hard limit
    allows; a limit already as high, or one that cannot be raised, is left as it is."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    with contextlib.suppress(ValueError, OSError):
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
