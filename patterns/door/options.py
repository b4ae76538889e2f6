"""The options of ``python -m patterns``: each command's, and the types that read them.

Each value is checked as it is read, with the library's own check, so that ``--limit 0`` and
``limit=0`` get one message ("must be >= 1, got 0") and argparse names the option. An option
renamed keeps its old spelling as a deprecated alias, hidden from ``--help``: it works, with
one warning line.
"""

from __future__ import annotations

import argparse
import math
import re
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from patterns.contract import check
from patterns.lab.backends import BACKENDS
from patterns.lab.calls import RUN_IN, TRANSPORTS
from patterns.lab.files import SPARE_FILES
from patterns.lab.http import CLIENTS
from patterns.lab.registry import PATTERNS
from patterns.lab.service import BEHAVIOURS
from patterns.lab.workload import DISTRIBUTIONS, WORK_KINDS, Workload

#: The most items a run may have: every call is recorded for the report, and scatter_gather
#: starts them all at once (about 5 GB and a minute at this size).
MAX_ITEMS = 1_000_000
#: The longest simulated call, as for the server's --delay: a run of hours is still a run.
MAX_LATENCY_S = 3600.0
#: Deprecated values, and what they are now called.
RENAMED_VALUES = {"sleep": "simulated"}


def checked(
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


def cluster_address(text: str) -> str:
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


def host(text: str) -> str:
    """An argparse type: a host name or address, not an empty string."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a host name or an address, got {text!r}")
    return text


class _Choices(tuple[str, ...]):
    """Choices as argparse lists them (in ``--help``, in "invalid choice"), which also take
    the deprecated spellings of :data:`RENAMED_VALUES`."""

    def __contains__(self, value: object) -> bool:
        return value in RENAMED_VALUES or super().__contains__(value)


class _Transport(argparse.Action):
    """Stores how the calls travel, as it is now called. An old spelling (``--workload``, the
    option's old name; ``sleep``, simulated's) leaves its warning in ``deprecated``, which
    ``main`` prints before the work."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        given = str(values)
        other = getattr(namespace, "transport_flag", option_string)
        if other != option_string:  # both spellings at once: which did the user mean?
            raise argparse.ArgumentError(self, f"not allowed with {other}: give --transport alone")
        namespace.transport_flag = option_string
        value = RENAMED_VALUES.get(given, given)
        setattr(namespace, self.dest, value)
        if option_string == "--transport" and value == given:
            return
        said = option_string if value == given else f"{option_string} {given}"
        use = "--transport" if value == given else f"--transport {value}"
        namespace.deprecated = f"{said} is deprecated; use {use}"


def add_transport(parser: argparse.ArgumentParser, choices: tuple[str, ...], help: str) -> None:
    """``--transport``: how the calls travel; ``--workload`` (and ``sleep``) as it once was."""
    for flag in ("--transport", "--workload"):
        parser.add_argument(
            flag, dest="transport", action=_Transport, choices=_Choices(choices),
            default="simulated" if flag == "--transport" else argparse.SUPPRESS,
            help=help if flag == "--transport" else argparse.SUPPRESS,
        )  # fmt: skip


def run_options() -> argparse.ArgumentParser:
    """The options of a run of the patterns: compare's and each pattern's command's."""
    defaults = Workload()
    run = argparse.ArgumentParser(add_help=False)
    run.add_argument(
        "--items", type=checked(int, 0, MAX_ITEMS, noun="a whole number"),
        default=defaults.items, metavar="N",
        help=f"how many items (default {defaults.items}, at most {MAX_ITEMS:,}: every call is "
        "recorded)",
    )  # fmt: skip
    run.add_argument(
        "--limit", type=checked(int, 1, noun="a whole number"), default=5, metavar="K",
        help="calls in flight at most (default 5)",
    )  # fmt: skip
    run.add_argument(
        "--adaptive", choices=("aimd", "gradient"), default=None,
        help="the limit adapts (patterns.adaptive) from 4 up to --limit; --plot draws it",
    )  # fmt: skip
    run.add_argument(
        "--seed", type=int, default=defaults.seed, metavar="S",
        help=f"seed for latencies and failures (default {defaults.seed})",
    )  # fmt: skip
    run.add_argument(
        "--latency", type=checked(float, 0, MAX_LATENCY_S, noun="a number"), nargs=2,
        default=[defaults.low, defaults.high], metavar=("LO", "HI"),
        help=f"latency range in seconds, at most {MAX_LATENCY_S:g} (default 0.5 1.5)",
    )  # fmt: skip
    run.add_argument(
        "--distribution", choices=DISTRIBUTIONS, default=defaults.distribution,
        help="latency distribution; all have minimum LO and mean (LO+HI)/2 (default uniform)",
    )  # fmt: skip
    run.add_argument(
        "--failure-rate", type=checked(float, 0, 1, noun="a number"), default=0.0,
        metavar="P", help="chance that an item fails; failures are collected (default 0)",
    )  # fmt: skip
    add_transport(
        run, TRANSPORTS, "simulated: each call sleeps its latency (default); tcp: real calls "
        "to a local toy server; http: real HTTP requests to the service, served by uvicorn in "
        "a process of its own",
    )  # fmt: skip
    _service_options(run)
    _work_options(run)
    add_backend(run)
    add_json(run)
    add_plot(run, "timelines, calls in flight, latencies")
    return run


def _service_options(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--service", choices=(*BEHAVIOURS, "none"), default=None,
        help="what the service does past its capacity: reject (turns calls away, as HTTP 429; "
        "the default for io work), queue, degrade (serves everyone slower); none: no service "
        "(the default for tcp, blocking and cpu work)",
    )  # fmt: skip
    run.add_argument(
        "--capacity", type=checked(int, 1, noun="a whole number"), default=None, metavar="C",
        help="calls the service serves at once (default: the limit, as the source article's "
        "limit is the service's capacity)",
    )  # fmt: skip
    run.add_argument(
        "--client", choices=CLIENTS, default=None,
        help="--transport http: the HTTP client (default httpx2; aiohttp on asyncio and uvloop)",
    )  # fmt: skip


def _work_options(run: argparse.ArgumentParser) -> None:
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


def add_cluster(compare: argparse.ArgumentParser) -> None:
    compare.add_argument(
        "--cluster", default=None, metavar="WHERE", type=cluster_address,
        help="also run the cluster recipes, on a local Dask cluster (local) or on the scheduler "
        "at tcp://HOST:PORT; needs the cluster extra and asyncio",
    )  # fmt: skip


def add_backend(parser: argparse.ArgumentParser, default: str | None = "asyncio") -> None:
    parser.add_argument(
        "--backend", choices=BACKENDS, default=default, help="event loop (default asyncio)"
    )


def add_bounded_pattern(parser: argparse.ArgumentParser, what: str) -> None:
    """``--pattern``: one of the bounded patterns, worker-pool unless told."""
    parser.add_argument(
        "--pattern", choices=[n.replace("_", "-") for n, p in PATTERNS.items() if p.BOUNDED],
        default="worker-pool", help=f"{what} (default worker-pool)",
    )  # fmt: skip


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print only JSON on stdout")


def add_plot(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--plot", metavar="FILE",
        help=f"also draw the run to FILE, in the format its extension names: {what}",
    )  # fmt: skip


def _seconds(parser: argparse.ArgumentParser, flag: str, default: float, help: str) -> None:
    parser.add_argument(
        flag, type=checked(float, 0, noun="seconds"), default=default, metavar="S", help=help
    )


def serve(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--host", type=host, default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=checked(int, 0, 65535, noun="a port"), default=8000, help="(default 8000)"
    )
    serve.add_argument("--mode", choices=("toy", "echo"), default="toy", help="(default toy)")
    serve.add_argument(
        "--max-connections", type=checked(int, 1, noun="a whole number"), default=100,
        metavar="K", help="connections held at most; each holds an open file, so at most the "
        f"open-files hard limit less {SPARE_FILES} (default 100)",
    )  # fmt: skip
    serve.add_argument(
        "--policy", choices=("reject", "queue"), default="reject", help="when full (default reject)"
    )
    serve.add_argument(
        "--delay", type=checked(float, 0, 3600, noun="seconds"), default=1.0, metavar="S",
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
        "--max-line", type=checked(int, 8, noun="bytes"), default=1024, metavar="BYTES",
        help="longest line accepted (default 1024)",
    )  # fmt: skip
    add_backend(serve)


def bench(bench: argparse.ArgumentParser) -> None:
    bench.add_argument(
        "--scale", choices=("tiny", "full"), default="full",
        help="scenario sizes: full takes about 16 minutes on 2 cores (default full)",
    )  # fmt: skip
    bench.add_argument(
        "--output", default=None, metavar="FILE",
        help="also write pytest-benchmark's JSON to FILE, checked before the run",
    )  # fmt: skip


def footgun(footgun: argparse.ArgumentParser) -> None:
    footgun.add_argument("name", nargs="?", metavar="NAME", help="which exhibit")
    add_backend(footgun, default=None)
    add_json(footgun)
    add_plot(footgun, "the broken and the fixed run's calls")


def parallel(parallel: argparse.ArgumentParser) -> None:
    parallel.add_argument(
        "--items", type=checked(int, 1, 10_000, noun="a whole number"), default=16,
        metavar="N", help="items per run (default 16)",
    )  # fmt: skip
    parallel.add_argument(
        "--limit", type=checked(int, 1, 64, noun="a whole number"), default=8, metavar="K",
        help="calls in flight at most: threads or processes busy at once (default 8)",
    )  # fmt: skip
    parallel.add_argument(
        "--latency", type=checked(float, 0, 10, noun="a number"), nargs=2,
        default=[0.05, 0.15], metavar=("LO", "HI"),
        help="each item's seconds of waiting or of CPU (default 0.05 0.15)",
    )  # fmt: skip
    add_bounded_pattern(parallel, "the pattern that runs every case")
    parallel.add_argument(
        "--rounds", type=checked(int, 1, 20, noun="a whole number"), default=1, metavar="R",
        help="run every case R times, in turn, and show each one's median run (default 1)",
    )  # fmt: skip
    add_backend(parallel)
    add_json(parallel)


def sweep(sweep: argparse.ArgumentParser) -> None:
    add_bounded_pattern(sweep, "the pattern swept")
    sweep.add_argument(
        "--capacity", type=checked(int, 1, 1_000, noun="a whole number"), default=10,
        metavar="C", help="calls the service serves at once (default 10)",
    )  # fmt: skip
    sweep.add_argument(
        "--service", choices=BEHAVIOURS, nargs="+", action="extend", default=None,
        help="what the service does past its capacity, one sweep each (default: all three)",
    )  # fmt: skip
    sweep.add_argument(
        "--limits", type=checked(int, 1, 10_000, noun="a whole number"), nargs="+",
        default=None, metavar="K", help="the limits swept (default: from C/5 to 2C, close "
        "around C)",
    )  # fmt: skip
    sweep.add_argument(
        "--items", type=checked(int, 1, 100_000, noun="a whole number"), default=100,
        metavar="N", help="items per run (default 100)",
    )  # fmt: skip
    sweep.add_argument(
        "--latency", type=checked(float, 0, 10, noun="a number"), nargs=2,
        default=[0.02, 0.04], metavar=("LO", "HI"),
        help="each call's time in service, in seconds (default 0.02 0.04)",
    )  # fmt: skip
    add_transport(
        sweep, tuple(t for t in TRANSPORTS if t != "tcp"),
        "simulated: the simulated service (default); http: the same over real HTTP",
    )  # fmt: skip
    sweep.add_argument(
        "--client", choices=CLIENTS, default=None,
        help="--transport http: the HTTP client (default httpx2)",
    )  # fmt: skip
    add_backend(sweep)
    add_json(sweep)
    add_plot(sweep, "goodput and p95 latency against the limit")


def threads_vs_async(versus: argparse.ArgumentParser) -> None:
    from patterns.lab import threads_vs_async as exhibit

    versus.add_argument(
        "--items", type=checked(int, 0, noun="a whole number"), default=100, metavar="N",
        help=f"clients (default 100), 1 to {exhibit.MAX_CLIENTS:,}: a thread per client on "
        "both ends, and a socket on both ends within the open-files hard limit",
    )  # fmt: skip
    versus.add_argument(
        "--delay", type=checked(float, 0, 3600, noun="seconds"), default=1.0, metavar="S",
        help="seconds before each answer (default 1)",
    )  # fmt: skip
    add_json(versus)
