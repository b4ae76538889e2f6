"""The commands of the TCP server: ``serve`` runs it until a signal, ``threads-vs-async``
measures its toy protocol served by threads and by tasks.

Like :mod:`patterns.door.commands`: each takes the parsed arguments and two consoles and
returns the exit status; the serve loop and its signals are the server recipe's
(:func:`patterns.server.serve_until_signalled`), the measuring is the lab's.
"""

from __future__ import annotations

import argparse

from rich.console import Console

from patterns.door import checks
from patterns.lab.backends import run_on
from patterns.show.output import Failed, UsageError, only, print_json, print_line, reason, write
from patterns.show.present import serve_summary, threads_vs_async_sentence, threads_vs_async_table
from patterns.show.progress import status_line


def serve(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """The bounded TCP server, until Ctrl+C or SIGTERM, then drained: the counts at exit."""
    import anyio

    from patterns.lab import toy
    from patterns.server import serve_until_signalled

    checks.backend(args.backend)
    checks.room_for_connections(args.max_connections)
    try:
        server = toy.toy_server(
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

    def on_listening(host: str, port: int) -> None:
        nonlocal listening
        listening = True
        write(console, f"listening on {host}:{port}\n")

    async def main() -> None:
        async with anyio.create_task_group() as outer:
            if console.is_terminal:  # a live status line, on a terminal only
                outer.start_soon(status_line, err_console, lambda: server.counts)
            await serve_until_signalled(server, on_listening=on_listening)
            outer.cancel_scope.cancel()  # served and drained: stop the status line

    try:
        run_on(args.backend, main)
    except BaseException as exc:
        # anyio's task groups wrap what fails in them: an address that cannot be bound (in
        # use, not ours, a name that does not resolve: socket.gaierror is an OSError too)
        # comes out inside one or two ExceptionGroups, on asyncio and trio alike.
        failure = only(exc, OSError)
        if failure is None:
            raise
        if not listening:
            address = f"[{args.host}]" if ":" in args.host else args.host
            raise UsageError(f"cannot listen on {address}:{args.port}: {reason(failure)}") from None
        print_line(console, serve_summary(server.counts))
        raise Failed(f"the server stopped: {reason(failure)}") from None
    print_line(console, serve_summary(server.counts))
    return 0


def threads_vs_async(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """The toy server served by a thread per connection and by tasks, each side measured in a
    process of its own: a table and a sentence."""
    from dataclasses import asdict

    from patterns.lab import threads_vs_async as exhibit

    try:
        clients = exhibit.check_clients(args.items, name="argument --items")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        results = [exhibit.measure(kind, clients, args.delay) for kind in exhibit.KINDS]
    except exhibit.ChildFailed as exc:
        raise Failed(f"threads-vs-async: {exc}") from None
    if args.json:
        print_json(console, [asdict(r) for r in results])
        return 0
    console.print(threads_vs_async_table(results))
    print_line(console, threads_vs_async_sentence(results))
    return 0
