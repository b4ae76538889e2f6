"""What the commands check before any work: misuse is one line and exit status 2 at once, not a
failure at the end of a long run.

Each check raises :class:`~patterns.show.output.UsageError` naming the option to change. The
lab's own checks (a workload's, the harness's) are reused, their messages prefixed with the
option they came from.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable

from patterns.contract import Limit, check_choice
from patterns.lab.backends import BackendUnavailable, check_backend
from patterns.lab.calls import check_run_in
from patterns.lab.files import SPARE_FILES, hard_limit, raise_soft_limit
from patterns.lab.http import CLIENTS, HTTPUnavailable, clients_for, require
from patterns.lab.registry import PATTERNS
from patterns.lab.service import BEHAVIOURS, Service
from patterns.lab.workload import Workload
from patterns.show.output import UsageError, reason


def latency(args: argparse.Namespace) -> tuple[float, float]:
    """``--latency LO HI``, LO no more than HI."""
    low, high = args.latency
    if low > high:
        raise UsageError(f"argument --latency: LO must not exceed HI, got {low:g} {high:g}")
    return low, high


def workload(args: argparse.Namespace) -> Workload:
    """The workload of a run of the patterns, and where its calls may run."""
    low, high = latency(args)
    try:
        found = Workload(
            items=args.items,
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
        check_run_in(found, args.run_in, args.transport)
    except ValueError as exc:
        option = "--transport" if args.transport != "simulated" else "--run-in"
        raise UsageError(f"argument {option}: {exc}") from None
    return found


def service(args: argparse.Namespace, workload: Workload) -> Service | None:
    """The service the calls go to: by default one of capacity ``--limit`` that turns the rest
    away, for io work simulated or over http; none for tcp (its own toy server) or sync work."""
    clustered = getattr(args, "cluster", None) is not None
    served = workload.kind == "io" and args.transport != "tcp" and not clustered
    behaviour = args.service or ("reject" if served else "none")
    why = (
        "the cluster rows go"
        if clustered
        else "tcp calls its own toy server and goes"
        if args.transport == "tcp"
        else f"{workload.kind} work goes"
    )
    if behaviour == "none":
        if args.capacity is not None:
            said = (
                "there is no service (--service none)" if args.service else why + " to no service"
            )
            raise UsageError(f"argument --capacity: {said}")
        return None
    if not served:
        raise UsageError(f"argument --service: {why} to no service")
    capacity = args.limit if args.capacity is None else args.capacity
    return Service(capacity, behaviour=check_choice("--service", behaviour, BEHAVIOURS))


def limit(args: argparse.Namespace) -> int | Limit:
    """``--limit``; with ``--adaptive``, a limit that adapts, from 4 (or less) up to it."""
    if args.adaptive is None:
        return int(args.limit)
    from patterns.adaptive import AIMD, Gradient

    kind = AIMD if args.adaptive == "aimd" else Gradient
    return kind(min(4, args.limit), maximum=args.limit)


def client(args: argparse.Namespace) -> str:
    """The HTTP client of ``--transport http``; refused where it cannot run."""
    if args.transport != "http":
        if args.client is not None:
            raise UsageError("argument --client: only with --transport http")
        return CLIENTS[0]
    chosen = args.client or CLIENTS[0]
    if chosen not in clients_for(args.backend):
        raise UsageError(f"argument --client: {chosen} does not run on {args.backend}")
    try:
        require("uvicorn", chosen)
    except HTTPUnavailable as exc:
        raise UsageError(f"argument --transport: {exc}") from None
    return str(chosen)


def backend(name: str) -> None:
    """The event loop's package is installed."""
    try:
        check_backend(name)
    except BackendUnavailable as exc:
        raise UsageError(str(exc)) from None


def cluster(args: argparse.Namespace) -> None:
    """The cluster rows need Dask, asyncio, and the workload they were built for."""
    from patterns.cluster import MAX_LIMIT, ClusterUnavailable, quiet_client_logs
    from patterns.cluster import require as require_dask

    try:
        require_dask()
    except ClusterUnavailable as exc:
        raise UsageError(f"argument --cluster: {exc}") from None
    if args.backend == "trio":
        raise UsageError("argument --cluster: the cluster recipes need asyncio (or uvloop)")
    if args.work != "io" or args.transport != "simulated":
        raise UsageError("argument --cluster: the cluster rows run io work on simulated calls")
    if args.limit > MAX_LIMIT:  # each call in flight is a task in the scheduler, and a slot
        raise UsageError(f"argument --limit: must be at most {MAX_LIMIT} with --cluster")
    # Dask's client logs its reconnection attempts with tracebacks; a failure still ends in one
    # line of ours, with its reason.
    quiet_client_logs()


def plot(path: str | None) -> None:
    """matplotlib is installed, ``path`` can be written, and in a format matplotlib writes."""
    if path is None:
        return
    import importlib.util

    # Before the run, not after: a missing extra should not cost the user the whole run.
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib: pip install -e '.[plot]'")
    target(path, "--plot")
    from patterns.show import plots

    try:
        plots.check_format(path)
    except ValueError as exc:
        raise UsageError(f"argument --plot: {exc}") from None


def target(path: str, option: str) -> None:
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
        raise UsageError(f"argument {option}: cannot write {path}: {reason(exc)}") from None
    if not existed:
        with contextlib.suppress(OSError):
            os.remove(path)


def _open_files(needed: int, wanted: int, refuse: Callable[[int], str]) -> None:
    """Refuse a run that needs more open files than the hard limit allows (``refuse(hard)``
    says why, in one line); raise the soft limit towards ``wanted`` so that what was set holds.
    """
    hard = hard_limit()
    if hard is not None and needed > hard:
        raise UsageError(refuse(hard))
    raise_soft_limit(wanted)


def room_for_connections(connections: int) -> None:
    """serve: each connection held is an open file; as many again for busy answers."""

    def refuse(hard: int) -> str:
        return (
            f"argument --max-connections: at most {max(hard - SPARE_FILES, 1):,} here, got "
            f"{connections:,}: each connection holds an open file, and the open-files hard "
            f"limit is {hard:,}"
        )

    _open_files(connections + SPARE_FILES, 2 * connections + SPARE_FILES, refuse)


def room_for_sockets(command: str, items: int, limit: int, over: str) -> None:
    """--transport tcp (and http): every call in flight is a socket on both ends, in this one
    process (over http, the server's end is in its own, which inherits the limit raised).
    ``command`` is a pattern's name, or compare: every pattern, the unbounded ones included."""
    unbounded = [name for name, pattern in PATTERNS.items() if not pattern.BOUNDED]
    whole = command in unbounded or (command == "compare" and bool(unbounded))
    at_once = items if whole else min(items, limit)
    needed = 2 * at_once + SPARE_FILES

    def refuse(hard: int) -> str:
        names = command if command in unbounded else " and ".join(unbounded)
        option, why = ("--items", names) if whole else ("--limit", "the limit")
        most = max((hard - SPARE_FILES) // 2, 0)
        return (
            f"argument {option}: over {over}, {why} holds {at_once:,} connections at once, a "
            f"socket on both ends each; the open-files hard limit of {hard:,} holds {most:,}"
        )

    _open_files(needed, needed, refuse)
