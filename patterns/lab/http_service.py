"""The server's side of the HTTP service: one :class:`~patterns.lab.service.Service` behind
uvicorn, in a process of its own, and :func:`serving`, which starts and stops that process.

- :class:`ServiceApp` is a plain ASGI app: ``GET /work?index=N&latency=S`` goes through one
  ``Service`` made from the server's parameters, ``200`` with ``item_N_processed`` when it is
  served and ``429`` with ``Retry-After`` when it is turned away (the exact seconds in
  ``X-Retry-After`` too: HTTP's header takes whole seconds). ``GET /felt`` gives the
  service's counters, ``POST /reset`` starts them afresh (``409`` while a call is in service
  or waiting), ``POST /resize?capacity=N`` changes its capacity now (``Service.resize``: it
  scaled, or another client came), ``GET /health`` says it is up, and its parameters.
- :func:`main` is the process: ``python -m patterns.lab.http`` serves the app with uvicorn,
  on ``--port`` for you to try, or on the listening socket ``--fd`` handed down.
- :func:`serving` binds a port on 127.0.0.1, starts that process on it, waits until
  ``/health`` answers, and yields a :class:`~patterns.lab.http_client.Served`. Leaving the
  block in any way, a cancellation or Ctrl+C included, stops the child (SIGTERM, then
  SIGKILL) and reaps it, so the port is free again. The child ignores Ctrl+C: the terminal
  sends it to the whole process group, and the parent stops the child in its own time.

uvicorn is imported only in the child process: without the ``http`` extra this module imports.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager
from typing import IO, Any
from urllib.parse import parse_qsl

import anyio
from anyio.abc import Process

from patterns.contract import check
from patterns.lab.backends import current_backend
from patterns.lab.http_client import HTTPUnavailable, Served, ServerFailed, control_client, require
from patterns.lab.service import Behaviour, Felt, Overloaded, Service
from patterns.lab.workload import Item

#: The child process's command, ``python -m`` this: the public face, whose ``__main__`` is
#: :func:`main` below (process listings and tests look for it by this name).
MODULE = "patterns.lab.http"
#: Seconds the child gets to die of SIGTERM before it is killed.
GRACE_S = 2.0
#: The longest latency a call may ask the server for.
MAX_LATENCY_S = 86_400

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


# --- the app: ASGI in front of one Service -----------------------------------------------------


class ServiceApp:
    """A plain ASGI app that serves ``service`` (see the module's docstring for its routes)."""

    def __init__(self, service: Service, about: dict[str, Any] | None = None) -> None:
        self.service = service
        self.about = about or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # nothing to start or stop: say so, as ASGI asks
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return  # no websockets here
        route = (scope["method"], scope["path"])
        if route == ("GET", "/work"):
            await self._work(scope["query_string"], receive, send)
        elif route == ("GET", "/felt"):
            await _answer(send, 200, _json(dataclasses.asdict(self.service.felt)), _JSON)
        elif route == ("POST", "/reset"):
            felt = self.service.felt
            if felt.in_service or felt.waiting:
                busy = f"cannot reset: {felt.in_service} in service, {felt.waiting} waiting"
                await _answer(send, 409, busy.encode())
            else:
                self.service.felt = Felt()
                await _answer(send, 204, b"")
        elif route == ("POST", "/resize"):
            await self._resize(scope["query_string"], send)
        elif route == ("GET", "/health"):
            await _answer(send, 200, _json(self._health()), _JSON)
        elif scope["path"] in ("/work", "/felt", "/reset", "/resize", "/health"):
            allow = b"POST" if scope["path"] in ("/reset", "/resize") else b"GET"
            await _answer(send, 405, b"method not allowed", headers=[(b"allow", allow)])
        else:
            await _answer(send, 404, b"not found")

    async def _work(self, query: bytes, receive: Receive, send: Send) -> None:
        try:
            item = parse_item(query.decode("latin-1"))
        except ValueError as error:
            await _answer(send, 400, str(error).encode())
            return
        answer: bytes | Overloaded | None = None
        async with anyio.create_task_group() as group:
            # A client that hangs up (it gave up, or was cancelled) cancels its call here too:
            # no call left in service, or in the queue, for nobody.
            group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
            try:
                answer = (await self.service.call(item)).encode()
            except Overloaded as turned:
                answer = turned
            group.cancel_scope.cancel()
        if isinstance(answer, Overloaded):
            # HTTP's Retry-After is whole seconds (rounded up: never sooner than the hint).
            headers = [
                (b"retry-after", str(math.ceil(answer.retry_after)).encode()),
                (b"x-retry-after", repr(answer.retry_after).encode()),
            ]
            await _answer(send, 429, str(answer).encode(), headers=headers)
        elif answer is not None:
            await _answer(send, 200, answer)

    async def _resize(self, query: bytes, send: Send) -> None:
        """``200`` with ``{"capacity": N, "was": M}``; ``400`` for a capacity that is not an int
        >= 1, ``409`` for a service without one to change."""
        try:
            capacity, was = parse_capacity(query.decode("latin-1")), self.service.capacity
        except ValueError as error:
            return await _answer(send, 400, str(error).encode())
        if was is None:
            return await _answer(send, 409, b"cannot resize: this service has no capacity")
        self.service.resize(capacity)
        await _answer(send, 200, _json({"capacity": capacity, "was": was}), _JSON)

    def _health(self) -> dict[str, Any]:
        now = ("capacity", "behaviour", "queue_limit", "retry_after", "rate")  # resized, too
        return {
            "ok": True,
            "pid": os.getpid(),
            **{name: getattr(self.service, name) for name in now},
            "loop": current_backend(),  # uvloop or asyncio
            **self.about,
        }


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` once the client has hung up (ASGI's ``http.disconnect``)."""
    while (await receive())["type"] != "http.disconnect":
        pass  # the request's body (none, for a GET)
    scope.cancel()


def parse_item(query: str) -> Item:
    """The item a ``/work`` query asks for: ``index`` an int >= 0, ``latency`` a finite number
    of seconds from 0 to a day, each exactly once; else a ValueError saying what is wrong (the
    server answers it with a 400). The item never fails here: that is the client's to decide."""
    fields = _fields(query)
    if {"index", "latency"} - fields.keys():
        raise ValueError("/work needs index=N&latency=SECONDS")
    index, latency = fields["index"], fields["latency"]
    if not (index.isascii() and index.isdecimal()):
        raise ValueError(f"index must be an int >= 0, got {index!r}")
    try:
        seconds = float(latency)
    except ValueError:
        raise ValueError(f"latency must be a number of seconds, got {latency!r}") from None
    # A day at most: past it, a sleep is no simulation (and uvloop's timer overflows).
    return Item(int(index), check("latency", seconds, 0, MAX_LATENCY_S, whole=False))


def parse_capacity(query: str) -> int:
    """The capacity a ``/resize`` query asks for: ``capacity`` an int >= 1, exactly once; else
    a ValueError saying what is wrong (the server answers it with a 400)."""
    if (fields := _fields(query)).keys() != {"capacity"}:
        raise ValueError("/resize needs capacity=N (an int >= 1), and nothing else")
    if not ((text := fields["capacity"]).isascii() and text.isdecimal()) or len(text) > 18:
        raise ValueError(f"capacity must be an int >= 1, got {text[:40]!r}")
    return int(check("capacity", int(text)))  # 0: "capacity must be >= 1, got 0"


def _fields(query: str) -> dict[str, str]:
    """A query's fields, each given once; else a ValueError saying what is wrong."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True, max_num_fields=10)
    except ValueError:
        raise ValueError(f"a malformed query: {query!r}") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise ValueError(f"{name} given twice")
        fields[name] = value
    return fields


_JSON = b"application/json"


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = b"text/plain; charset=utf-8",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    fields = [] if status == 204 else [(b"content-type", content_type)]
    fields += [(b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": body})


# --- the process: uvicorn serving the app ------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """``python -m patterns.lab.http``: serve the model with uvicorn, on ``--port`` for you to
    try (Ctrl+C stops it), or on the listening socket ``--fd`` that :func:`serving` hands down."""
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=main.__doc__)
    parser.add_argument("--capacity", type=int, default=None, help="(default: no limit)")
    parser.add_argument("--behaviour", default="reject", help="reject, queue or degrade")
    parser.add_argument("--queue-limit", type=int, default=1_000_000)
    parser.add_argument("--retry-after", type=float, default=0.1)
    parser.add_argument("--rate", type=float, default=None, help="calls admitted a second")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--port", type=int, default=8000, help="on 127.0.0.1 (default 8000)")
    where.add_argument("--fd", type=int, help="serve this inherited listening socket")
    args = parser.parse_args(argv)
    try:
        service = Service(
            args.capacity,
            behaviour=args.behaviour,
            queue_limit=args.queue_limit,
            retry_after=args.retry_after,
            rate=args.rate,
        )
        require("uvicorn")
    except (TypeError, ValueError, HTTPUnavailable) as error:
        parser.error(str(error))
    import uvicorn

    if args.fd is not None:
        # Started by serving(): Ctrl+C is the parent's to handle, and it stops this process
        # with SIGTERM, which kills at once (uvicorn's own handlers are kept out below); if the
        # parent dies without a word, its end of our stdin closes and we go too.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        threading.Thread(target=_die_with_parent, daemon=True).start()
    app = ServiceApp(service)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        proxy_headers=False,  # no proxy in front: nothing to trust
        timeout_keep_alive=60,  # a pool idle between runs keeps its connections
    )
    config.load()
    http = config.http_protocol_class.__module__.rsplit(".", 1)[-1].removesuffix("_impl")
    app.about = {"server": f"uvicorn {uvicorn.__version__}", "http": http}
    if args.fd is None:
        # uvicorn stops at Ctrl+C, then raises it again once stopped: as its own run() does,
        # the stop is the answer, and no traceback.
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(config).run()
        return

    class Deaf(uvicorn.Server):
        """uvicorn without its own SIGINT and SIGTERM handlers (a graceful shutdown, then the
        signal raised again): SIGINT stays ignored, SIGTERM kills at once."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    # A socket made from the fd finds its own family and protocol: uvicorn's fd= would call it
    # AF_UNIX, and asyncio would then leave TCP_NODELAY off (Nagle: 40 ms stalls).
    Deaf(config).run(sockets=[socket.socket(fileno=args.fd)])


def _die_with_parent() -> None:
    sys.stdin.buffer.read()  # returns at EOF: the parent has closed its end, or is gone
    os.kill(os.getpid(), signal.SIGTERM)


# --- serving(): the process started and stopped from the caller --------------------------------


@asynccontextmanager
async def serving(
    capacity: int | None = None,
    *,
    behaviour: Behaviour = "reject",
    queue_limit: int = 1_000_000,
    retry_after: float = 0.1,
    rate: float | None = None,
    start_timeout: float = 30.0,
) -> AsyncIterator[Served]:
    """Serve a ``Service(capacity, behaviour=..., queue_limit=..., retry_after=..., rate=...)``
    over HTTP from a child process, for the block; yield it once ``/health`` answers (within
    ``start_timeout`` seconds). On any exit the child is stopped and reaped: the port is free."""
    Service(
        capacity, behaviour=behaviour, queue_limit=queue_limit, retry_after=retry_after, rate=rate
    )
    check("start_timeout", start_timeout, 0, whole=False)
    require("uvicorn", "httpx2")
    command = [sys.executable, "-m", MODULE, "--behaviour", behaviour]
    command += ["--queue-limit", str(queue_limit), "--retry-after", repr(float(retry_after))]
    if capacity is not None:
        command += ["--capacity", str(capacity)]
    if rate is not None:
        command += ["--rate", repr(float(rate))]
    process: Process | None = None
    errors: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    try:
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(2048)
            port = listener.getsockname()[1]
            fd = listener.fileno()
            # Shielded: a start cut short by a cancellation would leave the child to the event
            # loop (uvloop kills it and reaps it later); finished, it is stopped below. Our copy
            # of the socket closes once the child has its own: from then on the port is the
            # child's alone, and its death frees it.
            with anyio.CancelScope(shield=True):
                process = await anyio.open_process(
                    [*command, "--fd", str(fd)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                    pass_fds=[fd],
                )
        assert process is not None  # the shield above cannot swallow an error: it has none
        served = Served(f"http://127.0.0.1:{port}", port, process.pid)
        await _started(process, served, errors, start_timeout)
        yield served
        if process.returncode is not None:
            raise ServerFailed(_died(process.returncode, errors, "during the block"))
    finally:
        with anyio.CancelScope(shield=True):
            if process is not None:
                await _stop(process)
        errors.close()


async def _started(process: Process, served: Served, errors: IO[bytes], within: float) -> None:
    """Wait until the server answers ``/health``; raise ServerFailed if it dies first or does
    not answer ``within`` seconds."""
    import httpx2

    with anyio.move_on_after(within) as waited:
        async with control_client(served.url, timeout=1.0) as client:
            while process.returncode is None:
                try:
                    if (await client.get("/health")).status_code == 200:
                        return
                except httpx2.TransportError:  # not listening yet, or gone: look again
                    pass
                await anyio.sleep(0.02)
    if waited.cancelled_caught:
        raise ServerFailed(_died(None, errors, f"within {within:g} s"))
    raise ServerFailed(_died(await process.wait(), errors, "before it answered"))


def _died(code: int | None, errors: IO[bytes], when: str) -> str:
    errors.seek(0)
    said = errors.read().decode(errors="replace").strip()[-2000:] or "(nothing on stderr)"
    what = "did not answer" if code is None else f"exited with {code}"
    return f"the HTTP server (python -m {MODULE}) {what} {when}:\n{said}"


async def _stop(process: Process) -> None:
    """SIGTERM, SIGKILL after GRACE_S, reap: no process and no zombie left. Shielded by the
    caller: the block may be leaving under cancellation."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        with anyio.move_on_after(GRACE_S):
            await process.wait()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    await process.aclose()  # closes our end of its stdin, and waits for it: reaped


if __name__ == "__main__":  # the same as python -m patterns.lab.http
    main()
