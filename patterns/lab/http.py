"""The simulated service over real HTTP: one :class:`~patterns.lab.service.Service` behind uvicorn,
in a process of its own, and the clients that call it.

``service.py`` simulates the other side of the calls inside the caller's own event loop. Here
the same model is served for real: a plain ASGI app (:class:`ServiceApp`) answers
``GET /work?index=N&latency=S`` through one ``Service`` made from the server's parameters,
``200`` with ``item_N_processed`` when it is served and ``429`` with ``Retry-After`` when it is
turned away (the exact seconds in ``X-Retry-After`` too: HTTP's header takes whole seconds).
``GET /felt`` gives the service's counters, ``POST /reset`` starts them afresh (``409`` while a
call is in service or waiting), ``GET /health`` says it is up.

- :func:`serving` binds a port on 127.0.0.1, starts ``python -m patterns.lab.http`` with uvicorn
  on that socket in a child process, waits until ``/health`` answers, and yields a
  :class:`Served` (its url, port and pid; its ``felt()`` and ``reset()``). Leaving the block
  in any way, a cancellation or Ctrl+C included, stops the child (SIGTERM, then SIGKILL) and
  reaps it, so the port is free again. The child ignores Ctrl+C: the terminal sends it to the
  whole process group, and the parent stops the child in its own time.
- :func:`calling` opens one client for the block, a pool of ``connections`` connections
  (httpx2, httpx, or aiohttp on asyncio and uvloop only), and yields the work function:
  ``call(item)`` returns ``item_N_processed``, raises the service's own :class:`Overloaded`
  on a 429, and :class:`WorkFailed` for an item drawn to fail (decided here, as ``over_tcp``
  does: the server always serves).

Nothing here imports uvicorn or a client until it is needed: without the ``http`` extra
(``pip install -e '.[http]'``) this module imports, and :func:`require` says what is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import importlib.util
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    MutableMapping,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import parse_qsl, quote

import anyio
from anyio.abc import Process

from patterns.contract import check, check_choice
from patterns.lab.service import Behaviour, Felt, Overloaded, Service
from patterns.lab.workload import Item, WorkFailed

EXTRA = "pip install -e '.[http]'"
#: The clients :func:`calling` can open, and the backends each runs on.
CLIENTS = ("httpx2", "httpx", "aiohttp")
BACKENDS = ("asyncio", "uvloop", "trio")
_ASYNCIO_ONLY = {"aiohttp"}
#: What the server and every client need: the ``http`` extra.
PACKAGES = ("uvicorn", *CLIENTS)
#: Seconds the child gets to die of SIGTERM before it is killed.
GRACE_S = 2.0
#: The longest latency a call may ask the server for.
MAX_LATENCY_S = 86_400

#: The work function calling() yields: a coroutine function, so a task group can start it.
Call = Callable[[Item], Coroutine[Any, Any, str]]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class HTTPUnavailable(RuntimeError):
    """A package of the ``http`` extra is not installed."""


class ServerFailed(RuntimeError):
    """The server process did not start, or died on its own; its stderr is in the message."""


class UnexpectedAnswer(RuntimeError):
    """The server answered with a status the model has no meaning for (``what`` was asked)."""

    def __init__(self, what: str, status: int, body: bytes) -> None:
        text = body[:200].decode(errors="replace").strip()
        super().__init__(f"{what}: the server answered {status}: {text}")
        self.what, self.status, self.body = what, status, body

    def __reduce__(self) -> tuple[type[UnexpectedAnswer], tuple[str, int, bytes]]:
        return UnexpectedAnswer, (self.what, self.status, self.body)


def require(*packages: str) -> None:
    """Raise :class:`HTTPUnavailable` naming the extra if any of ``packages`` (default: the
    whole ``http`` extra) is not installed."""
    missing = [p for p in packages or PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        raise HTTPUnavailable(f"the HTTP service needs {', '.join(missing)}: {EXTRA}")


def clients_for(backend: str) -> tuple[str, ...]:
    """The clients that run on ``backend`` (aiohttp is asyncio's alone: not on trio)."""
    check_choice("backend", backend, BACKENDS)
    return tuple(c for c in CLIENTS if backend != "trio" or c not in _ASYNCIO_ONLY)


# --- the server: an ASGI app in front of one Service -------------------------------------------


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
        elif route == ("GET", "/health"):
            await _answer(send, 200, _json(self._health()), _JSON)
        elif scope["path"] in ("/work", "/felt", "/reset", "/health"):
            allow = b"POST" if scope["path"] == "/reset" else b"GET"
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

    def _health(self) -> dict[str, Any]:
        service = self.service
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]  # uvloop or asyncio
        return {
            "ok": True,
            "pid": os.getpid(),
            "capacity": service.capacity,
            "behaviour": service.behaviour,
            "queue_limit": service.queue_limit,
            "retry_after": service.retry_after,
            "rate": service.rate,
            "loop": loop,
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
    server answers it with a 400). The item never
    fails here: whether it fails is the client's to decide."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True, max_num_fields=10)
    except ValueError:
        raise ValueError(f"a malformed query: {query!r}") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise ValueError(f"{name} given twice")
        fields[name] = value
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


def main(argv: list[str] | None = None) -> None:
    """``python -m patterns.lab.http``: serve the model with uvicorn, on ``--port`` for you to try
    (Ctrl+C stops it), or on the listening socket ``--fd`` that :func:`serving` hands down."""
    parser = argparse.ArgumentParser(prog="python -m patterns.lab.http", description=main.__doc__)
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


# --- serving(): the server in a child process --------------------------------------------------


@dataclass(frozen=True)
class Served:
    """A running server: where it listens, its process id, and what its service felt."""

    url: str
    port: int
    pid: int

    async def felt(self) -> Felt:
        """The service's counters now."""
        return Felt(**json.loads(await self._ask("GET", "/felt", 200)))

    async def reset(self) -> None:
        """Start the counters afresh (refused, as an UnexpectedAnswer 409, while a call is in
        service or waiting)."""
        await self._ask("POST", "/reset", 204)

    async def health(self) -> dict[str, Any]:
        """What the server says of itself: its service's parameters, its loop, its server."""
        about: dict[str, Any] = json.loads(await self._ask("GET", "/health", 200))
        return about

    async def _ask(self, method: str, path: str, expected: int) -> bytes:
        import httpx2

        try:
            async with _control_client(self.url) as client:
                response = await client.request(method, path)
        except httpx2.TransportError as error:
            raise ServerFailed(
                f"the HTTP server (pid {self.pid}) did not answer {method} {path}: {_said(error)}"
            ) from error
        if response.status_code != expected:
            raise UnexpectedAnswer(f"{method} {path}", response.status_code, response.content)
        content: bytes = response.content
        return content


def _control_client(url: str, timeout: float = 10.0) -> Any:
    import httpx2

    # verify=False: plain HTTP has no TLS to verify, and building the context costs 47 ms.
    return httpx2.AsyncClient(base_url=url, timeout=timeout, trust_env=False, verify=False)


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
    command = [sys.executable, "-m", "patterns.lab.http", "--behaviour", behaviour]
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
        async with _control_client(served.url, timeout=1.0) as client:
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
    return f"the HTTP server (python -m patterns.lab.http) {what} {when}:\n{said}"


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


# --- calling(): one client for a block, and the work function ----------------------------------


@asynccontextmanager
async def calling(
    url: str,
    *,
    client: str = "httpx2",
    connections: int | None = None,
    timeout: float = 60.0,  # noqa: ASYNC109 - the client's on each request, not a deadline
) -> AsyncIterator[Call]:
    """One ``client`` (a pool of ``connections`` connections; None: no limit) for the block,
    and the work function that calls the server at ``url`` with it: ``call(item)`` is
    ``item_N_processed`` on a 200, :class:`Overloaded` on a 429, :class:`WorkFailed` after a
    200 for an item drawn to fail, :class:`UnexpectedAnswer` for any other status.

    ``timeout`` is each client's own, in seconds, and counts the wait for a pooled connection
    too (httpx's pool timeout, aiohttp's total): more calls than ``connections`` waiting longer
    than that fail with the client's timeout error, though they never reached the server."""
    check_choice("client", client, CLIENTS)
    if connections is not None:
        check("connections", connections)
    check("timeout", timeout, 0.001, whole=False)
    if client in _ASYNCIO_ONLY and _on_trio():
        raise ValueError(f"{client} runs on asyncio only (asyncio, uvloop): on trio use httpx2")
    require(client)
    base = url.rstrip("/")
    opened = (
        _aiohttp(base, connections, timeout)
        if client == "aiohttp"
        else _httpx(client, base, connections, timeout)
    )
    async with opened as call:
        yield call


def path_of(item: Item) -> str:
    """The request for ``item``: ``/work?index=N&latency=S``, S exact (its repr, quoted)."""
    return f"/work?index={item.index}&latency={quote(repr(item.latency))}"


def outcome(item: Item, status: int, body: bytes, header: Callable[[str], str | None]) -> str:
    """What a call of ``item`` returns or raises, given the server's answer."""
    if status == 200:
        done = f"{item}_processed"
        if body != done.encode():
            raise UnexpectedAnswer(str(item), status, body)
        if item.fails:
            raise WorkFailed(item)
        return done
    if status == 429:
        hint = header("x-retry-after") or header("retry-after") or "0"
        raise Overloaded(item, float(hint))
    raise UnexpectedAnswer(str(item), status, body)


@asynccontextmanager
async def _httpx(
    client: str, base: str, connections: int | None, seconds: float
) -> AsyncIterator[Call]:
    lib: Any = importlib.import_module(client)  # httpx2 and httpx: one API
    limits = lib.Limits(max_connections=connections, max_keepalive_connections=connections)
    http = lib.AsyncClient(
        base_url=base,
        limits=limits,
        timeout=lib.Timeout(seconds),
        trust_env=False,  # loopback: no proxy from the environment
        verify=not base.startswith("http://"),  # no TLS context for plain HTTP (47 ms)
    )

    async def call(item: Item) -> str:
        try:
            response = await http.get(path_of(item))
        except lib.TransportError as error:  # refused, reset, timed out: no answer at all
            raise ConnectionError(f"{item}: no answer from {base}: {_said(error)}") from error
        return outcome(item, response.status_code, response.content, response.headers.get)

    try:
        yield call
    finally:  # shielded: a close cut short by the cancellation would leave sockets open
        with anyio.CancelScope(shield=True):
            await http.aclose()


@asynccontextmanager
async def _aiohttp(base: str, connections: int | None, seconds: float) -> AsyncIterator[Call]:
    import aiohttp

    session = aiohttp.ClientSession(
        base_url=base,
        connector=aiohttp.TCPConnector(limit=connections or 0),  # 0: no limit
        timeout=aiohttp.ClientTimeout(total=seconds),
        trust_env=False,
    )

    async def call(item: Item) -> str:
        try:
            async with session.get(path_of(item)) as response:
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:  # no answer at all
            raise ConnectionError(f"{item}: no answer from {base}: {_said(error)}") from error
        return outcome(item, response.status, body, response.headers.get)

    try:
        yield call
    finally:  # shielded, as above
        with anyio.CancelScope(shield=True):
            await session.close()


def _said(error: BaseException) -> str:
    """An exception as words: its message, or its type's name where it has none."""
    return str(error).strip() or type(error).__name__


def _on_trio() -> bool:
    """Whether the running event loop is trio's (asked without importing trio)."""
    trio: Any = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


if __name__ == "__main__":
    main()
