"""``python -m patterns adapt``: the changing-capacity scenario, its options and its command.

The work is the lab's (:mod:`patterns.lab.changing_run`), the table, the sentence and the
picture are show's; this only reads the options, checks them before any run, and prints.
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

from rich.console import Console

from patterns.door import checks
from patterns.door.options import add_json, add_plot, checked
from patterns.lab.backends import BACKENDS, available, run_on
from patterns.lab.changing import (
    ROWS,
    SCENARIO,
    UNBOUNDED,
    Row,
    Run,
    Scenario,
    table,
    verdict,
)
from patterns.lab.changing_run import measure
from patterns.lab.files import SPARE_FILES, hard_limit, raise_soft_limit
from patterns.lab.http import CLIENTS, HTTPUnavailable, clients_for, require
from patterns.show.output import UsageError, print_json, print_line, say
from patterns.show.present.changing import changing_sentence, changing_table

TRANSPORTS = ("simulated", "http")


def options(adapt: argparse.ArgumentParser) -> None:
    adapt.add_argument(
        "--backend", choices=BACKENDS, nargs="+", action="extend", default=None,
        help="event loops, each a section of the table (default: every one installed)",
    )  # fmt: skip
    adapt.add_argument(
        "--transport", choices=TRANSPORTS, nargs="+", action="extend", default=None,
        help="simulated: the service in the caller's loop; http: the same service over real "
        "HTTP, on the first backend only (default: both)",
    )  # fmt: skip
    adapt.add_argument(
        "--rows", choices=ROWS, nargs="+", action="extend", default=None, metavar="ROW",
        help=f"the callers, each a row (default: all: {', '.join(ROWS)}); the oracle is always "
        "measured",
    )  # fmt: skip
    adapt.add_argument(
        "--rounds", type=checked(int, 1, 9, noun="a whole number"), default=3, metavar="R",
        help="runs of every row, each row's median shown (default 3)",
    )  # fmt: skip
    adapt.add_argument(
        "--scale", type=checked(float, 0.1, 10, noun="a number"), default=1.0, metavar="F",
        help=f"every phase F times as long (default 1: {SCENARIO.seconds:g} s a run)",
    )  # fmt: skip
    adapt.add_argument(
        "--client", choices=CLIENTS, default=None,
        help="the HTTP client over http (default aiohttp on asyncio and uvloop, httpx2 on trio)",
    )  # fmt: skip
    add_json(adapt)
    add_plot(adapt, "each adaptive limit over time against the capacity")


def adapt(args: argparse.Namespace, console: Console, err_console: Console) -> int:
    """Every row of the scenario on each backend (and over HTTP), round by round: one table,
    the sentence that reads it, and ``--plot``'s picture of the limits over time."""
    backends = list(dict.fromkeys(args.backend or available()))
    transports = list(dict.fromkeys(args.transport or TRANSPORTS))
    rows = list(dict.fromkeys(args.rows or ROWS))
    client = _client(args, backends[0], transports)
    for backend in backends:
        checks.backend(backend)
    checks.plot(args.plot)
    scenario = SCENARIO.scaled(args.scale)
    places = [(b, "simulated") for b in backends if "simulated" in transports]
    places += [(backends[0], "http")] if "http" in transports else []
    show = console.is_terminal and not args.json
    runs: list[Run] = []

    def on_run(run: Run) -> None:
        runs.append(run)
        if show:
            say(err_console, f"{run.backend}, {run.transport}: {run.row} done")

    for backend, transport in places:
        go = partial(measure, scenario, rows=rows, rounds=args.rounds, transport=transport,
                     client=client, on_run=on_run)  # fmt: skip
        run_on(backend, go)
    found = table(runs)
    if args.json:
        print_json(console, _as_json(runs, found, scenario))
    else:
        console.print(changing_table(found, scenario))
        print_line(console, changing_sentence(found))
    if args.plot is None:
        return 0
    from patterns.door.commands import _save_plot
    from patterns.show.plots.changing import changing_figure

    draw = partial(changing_figure, found, scenario)
    return _save_plot(draw, args.plot, err_console, quiet=args.json)


def _client(args: argparse.Namespace, backend: str, transports: list[str]) -> str:
    """The HTTP client, checked with the http extra when HTTP is asked for; refused otherwise."""
    if "http" not in transports:
        if args.client is not None:
            raise UsageError("argument --client: only with --transport http")
        return CLIENTS[0]
    # aiohttp where it runs: the cheapest client per call, so the run measures the service.
    chosen = str(args.client or ("aiohttp" if "aiohttp" in clients_for(backend) else CLIENTS[0]))
    if chosen not in clients_for(backend):
        raise UsageError(f"argument --client: {chosen} does not run on {backend}")
    try:
        require("uvicorn", chosen)
    except HTTPUnavailable as exc:
        raise UsageError(f"argument --transport: {exc}") from None
    # The unbounded row holds a connection per worker, a socket at each end, in this process
    # and the server's (which inherits the limit raised here).
    needed, hard = 2 * UNBOUNDED + SPARE_FILES, hard_limit()
    if hard is not None and needed > hard:
        raise UsageError(
            f"argument --transport: over http, the unbounded row holds {UNBOUNDED:,} connections "
            f"at once, a socket at each end; the open-files hard limit of {hard:,} holds fewer"
        )
    raise_soft_limit(needed)
    return chosen


def _as_json(runs: list[Run], rows: list[Row], scenario: Scenario) -> dict[str, Any]:
    """The scenario, each row's median run and share, every run, and the verdict."""
    found = verdict(rows)
    medians = [
        {**vars(r.run), "share": r.share, "runs": r.runs, "goodput_per_s": r.run.goodput,
         "away_share": r.run.away_share}
        for r in rows
    ]  # fmt: skip
    return {
        "scenario": vars(scenario),
        "rows": medians,
        "runs": [vars(run) for run in runs],
        "verdict": {"holds": found.ok, "held": found.held, "failed": found.failed},
        "sentence": changing_sentence(rows),
    }
