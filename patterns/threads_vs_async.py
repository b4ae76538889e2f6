"""Threads vs async, as in source article 004: one toy server, served two ways, measured.

The server answers each connection with ``start N``, waits, then ``end N``. **threads**: blocking
sockets, one thread per connection on the server and one per client. **async**: the same on
anyio tasks, one event loop thread. Each runs in its own fresh process, so its peak memory is
its own, and reports the makespan, the most sockets the server held open at once, the most
threads alive, and the growth of its peak RSS.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import anyio

from patterns.probe import peak_rss_kib
from patterns.server import Server

KINDS = ("threads", "async")


@dataclass(frozen=True)
class Result:
    kind: str
    clients: int
    delay_s: float
    makespan_s: float
    peak_open: int
    peak_threads: int
    rss_growth_mib: float


def _threads(clients: int, delay: float) -> tuple[float, int, int]:
    listener = socket.create_server(("127.0.0.1", 0), backlog=clients)
    port = listener.getsockname()[1]
    lock = threading.Lock()
    open_now = peak_open = peak_threads = 0

    def respond(conn: socket.socket, n: int) -> None:
        nonlocal open_now, peak_open, peak_threads
        with lock:
            open_now += 1
            peak_open = max(peak_open, open_now)
            peak_threads = max(peak_threads, threading.active_count())
        with conn:
            conn.sendall(f"start {n}\n".encode())
            time.sleep(delay)  # a thread may block: that is what threads are for
            conn.sendall(f"end {n}\n".encode())
        with lock:
            open_now -= 1

    def serve() -> None:
        # Exactly `clients` connections, then stop: no blocked accept() to interrupt.
        handlers = []
        for n in range(1, clients + 1):
            conn, _ = listener.accept()
            handler = threading.Thread(target=respond, args=(conn, n))
            handler.start()
            handlers.append(handler)
        for handler in handlers:
            handler.join()

    def client() -> None:
        with socket.create_connection(("127.0.0.1", port)) as conn:
            while conn.recv(1024):
                pass

    start = time.perf_counter()
    server = threading.Thread(target=serve)
    server.start()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    server.join()
    listener.close()
    return time.perf_counter() - start, peak_open, peak_threads


def _async(clients: int, delay: float) -> tuple[float, int, int]:
    server = Server(port=0, max_connections=clients, delay=delay, drain=1.0)
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


def measure(kind: str, clients: int = 100, delay: float = 1.0, timeout: float = 120) -> Result:
    """Run one kind in a fresh process and return what it measured."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    command = [sys.executable, "-m", "patterns.threads_vs_async", kind, str(clients), str(delay)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    return Result(**json.loads(proc.stdout))


def _child(kind: str, clients: int, delay: float) -> None:
    run = _threads if kind == "threads" else _async
    # A warm-up with one client first: what is measured is the cost of the connections, not
    # of importing the event loop's backend or starting the first thread.
    run(1, 0.0)
    baseline = peak_rss_kib()
    makespan, peak_open, peak_threads = run(clients, delay)
    growth = (peak_rss_kib() - baseline) / 1024
    result = Result(kind, clients, delay, makespan, peak_open, peak_threads, growth)
    print(json.dumps(result.__dict__))


if __name__ == "__main__":
    _child(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
