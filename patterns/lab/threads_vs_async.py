"""Threads vs async, as in source article 004: one toy server, served two ways, measured.

The server answers each connection with ``start N``, waits, then ``end N``. **threads**: blocking
sockets, one thread per connection on the server and one per client. **async**: the same on
anyio tasks, one event loop thread. Each runs in its own fresh process, so its peak memory is
its own, and reports the makespan, the most sockets the server held open at once, the most
threads alive, and the growth of its peak RSS.

What it can run: each client costs a socket on both ends, in the same process, so at most
:func:`max_clients` clients, which the open-files hard limit decides (the child raises its own
soft limit up to it); and never more than :data:`MAX_CLIENTS`, a thread per client on both
ends: past a few thousand threads the machine's thread limits (``ulimit -u``, cgroup
``pids.max``), not the serving, decide what happens, and starting the threads takes longer
than a typical delay, so they are no longer all open at once anyway. :func:`check_clients`
says which of the two caps a number of clients is over.
"""

from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass

import anyio

from patterns.contract import check, check_choice, leaves
from patterns.lab.files import SPARE_FILES, hard_limit, raise_soft_limit
from patterns.lab.probe import peak_rss_kib
from patterns.lab.toy import toy_server

KINDS = ("threads", "async")
#: The most clients either side is asked to serve: 4,000 threads on the threads side.
MAX_CLIENTS = 2_000
#: Open files each client costs, in the one process that holds both ends.
FILES_PER_CLIENT = 2


class ChildFailed(RuntimeError):
    """The child process measuring one side failed or did not finish; the message says how."""


@dataclass(frozen=True)
class Result:
    kind: str
    clients: int
    delay_s: float
    makespan_s: float
    peak_open: int
    peak_threads: int
    rss_growth_mib: float


def max_clients() -> int:
    """The most clients a run can have here: :data:`MAX_CLIENTS`, or fewer if the open-files
    hard limit cannot hold two sockets per client."""
    hard = hard_limit()
    if hard is None:
        return MAX_CLIENTS
    return max(0, min(MAX_CLIENTS, (hard - SPARE_FILES) // FILES_PER_CLIENT))


def check_clients(clients: int, name: str = "clients") -> int:
    """``clients`` if a run can have that many here; else a ValueError that names ``name``
    and says which cap it is over: the threads (:data:`MAX_CLIENTS`), or the open files."""
    check(name, clients, -math.inf)  # a whole number, of any size: the caps come next
    if clients < 1:
        raise ValueError(f"{name}: threads-vs-async needs at least 1 client, got {clients}")
    most = max_clients()
    if clients <= most:
        return clients
    if most >= MAX_CLIENTS:
        raise ValueError(
            f"{name}: threads-vs-async runs at most {most:,} clients, got {clients:,} (a thread "
            f"per client on both ends: {2 * most:,} threads)"
        )
    raise ValueError(
        f"{name}: threads-vs-async runs at most {most:,} clients here, got {clients:,}: each "
        f"holds a socket on both ends, within the open-files hard limit of {hard_limit():,}"
    )


def _threads(clients: int, delay: float) -> tuple[float, int, int]:
    listener = socket.create_server(("127.0.0.1", 0), backlog=clients)
    port = listener.getsockname()[1]
    lock = threading.Lock()
    open_now = peak_open = peak_threads = 0
    # The first failure of any thread; the main thread raises it instead of waiting for ever
    # (a client that never connected leaves the server waiting in accept()).
    errors: list[BaseException] = []

    def respond(conn: socket.socket, n: int) -> None:
        nonlocal open_now, peak_open, peak_threads
        with lock:
            open_now += 1
            peak_open = max(peak_open, open_now)
            peak_threads = max(peak_threads, threading.active_count())
        try:
            with conn:
                conn.sendall(f"start {n}\n".encode())
                time.sleep(delay)  # a thread may block: that is what threads are for
                conn.sendall(f"end {n}\n".encode())
        except BaseException as exc:
            errors.append(exc)
        finally:
            with lock:
                open_now -= 1

    def serve() -> None:
        # Exactly `clients` connections, then stop: no blocked accept() to interrupt.
        try:
            handlers = []
            for n in range(1, clients + 1):
                conn, _ = listener.accept()
                handler = threading.Thread(target=respond, args=(conn, n), daemon=True)
                handler.start()
                handlers.append(handler)
            for handler in handlers:
                handler.join()
        except BaseException as exc:
            errors.append(exc)

    def client() -> None:
        try:
            with socket.create_connection(("127.0.0.1", port)) as conn:
                while conn.recv(1024):
                    pass
        except BaseException as exc:
            errors.append(exc)

    def join(thread: threading.Thread) -> None:
        while thread.is_alive():
            thread.join(0.05)
            if errors:
                raise errors[0]

    # Daemon threads: if this one fails, the process can exit without them.
    start = time.perf_counter()
    server = threading.Thread(target=serve, daemon=True)
    server.start()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        join(thread)
    join(server)
    listener.close()
    return time.perf_counter() - start, peak_open, peak_threads


def _async(clients: int, delay: float) -> tuple[float, int, int]:
    server = toy_server(port=0, max_connections=clients, delay=delay, max_delay=delay, drain=1.0)
    peak_threads = 0

    async def client(port: int) -> None:
        nonlocal peak_threads
        peak_threads = max(peak_threads, threading.active_count())
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            try:
                while await stream.receive():
                    pass
            except anyio.EndOfStream:
                pass

    async def main() -> float:
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(server.serve)
            start = time.perf_counter()
            async with anyio.create_task_group() as clients_group:
                for _ in range(clients):
                    clients_group.start_soon(client, port)
            elapsed = time.perf_counter() - start
            server.shutdown()
        return elapsed

    makespan = anyio.run(main)
    return makespan, server.counts.peak_open, peak_threads


def measure(
    kind: str, clients: int = 100, delay: float = 1.0, timeout: float | None = None
) -> Result:
    """Run one kind in a fresh process and return what it measured.

    ``clients`` must be between 1 and :func:`max_clients` (:func:`check_clients`). The child
    gets ``timeout`` seconds (by default a minute plus twice the delay); if it fails or runs
    out of time, :class:`ChildFailed` says how, with the last line the child wrote on stderr.
    """
    check_choice("kind", kind, KINDS)
    check_clients(clients)
    check("delay", delay, 0, whole=False)
    if timeout is None:
        timeout = 60 + 2 * delay
    command = [
        sys.executable,
        "-m",
        "patterns.lab.threads_vs_async",
        kind,
        str(clients),
        str(delay),
    ]
    command.append(str(timeout))
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ChildFailed(f"the {kind} side did not finish within {timeout:g} s") from None
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        raise ChildFailed(f"the {kind} side was killed by {name}")
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        said = lines[-1].strip() if lines else f"exit status {proc.returncode}"
        raise ChildFailed(f"the {kind} side failed: {said}")
    try:
        return Result(**json.loads(proc.stdout))
    except (TypeError, ValueError):
        raise ChildFailed(f"the {kind} side printed no result: {proc.stdout[:80]!r}") from None


def _child(kind: str, clients: int, delay: float, timeout: float) -> None:
    if hasattr(signal, "alarm"):
        # The parent kills this process at the deadline; if the parent is gone by then (killed
        # itself), SIGALRM ends it anyway: thousands of threads must not outlive the run.
        signal.alarm(math.ceil(timeout) + 1)
    raise_soft_limit(FILES_PER_CLIENT * clients + SPARE_FILES)
    run = _threads if kind == "threads" else _async
    # A warm-up with one client first: what is measured is the cost of the connections, not
    # of importing the event loop's backend or starting the first thread.
    run(1, 0.0)
    baseline = peak_rss_kib()
    makespan, peak_open, peak_threads = run(clients, delay)
    growth = (peak_rss_kib() - baseline) / 1024
    result = Result(kind, clients, delay, makespan, peak_open, peak_threads, growth)
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    try:
        _child(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
    except Exception as exc:
        # One line, the last on stderr: measure() reports it as what went wrong.
        error = leaves(exc)[0]  # the first at the bottom of an exception group
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
