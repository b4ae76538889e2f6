"""The caller's side of the HTTP service: the clients that call it, and a handle on a server.

- :func:`calling` opens one client for the block, a pool of ``connections`` connections
  (httpx2, httpx, or aiohttp on asyncio and uvloop only), and yields the work function:
  ``call(item)`` returns ``item_N_processed``, raises the service's own :class:`Overloaded`
  on a 429, and :class:`WorkFailed` for an item drawn to fail (decided here, as ``over_tcp``
  does: the server always serves).
- :class:`Served` is a running server as its caller holds it: its url, port and process id,
  and its own routes (``felt()``, ``reset()``, ``resize(capacity)``, ``health()``), asked
  with httpx2.

No client is imported until it is needed: without the ``http`` extra (``pip install -e
'.[http]'``) this module imports, and :func:`require` says what is missing. The server itself
is in :mod:`patterns.lab.http_service`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import anyio

from patterns.contract import check, check_choice
from patterns.lab.backends import BACKENDS, current_backend
from patterns.lab.service import Felt, Overloaded
from patterns.lab.workload import Item, WorkFailed

EXTRA = "pip install -e '.[http]'"
#: The clients :func:`calling` can open.
CLIENTS = ("httpx2", "httpx", "aiohttp")
_ASYNCIO_ONLY = {"aiohttp"}
#: What the server and every client need: the ``http`` extra.
PACKAGES = ("uvicorn", *CLIENTS)

#: The work function calling() yields: a coroutine function, so a task group can start it.
Call = Callable[[Item], Coroutine[Any, Any, str]]


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
    if client in _ASYNCIO_ONLY and current_backend() == "trio":
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


# --- Served: a running server, and its own routes ----------------------------------------------


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

    async def resize(self, capacity: int) -> int:
        """Change the service's capacity now, mid-run (``POST /resize?capacity=N``), and return
        the capacity it had. Calls in service over a smaller capacity finish, and none starts
        until they are under it; a larger one lets waiting calls in at once. A capacity that is
        not an int >= 1 is a TypeError or ValueError here, before anything is sent; a server
        with no capacity to change (started without one) answers 409, an UnexpectedAnswer."""
        check("capacity", capacity)
        answer = json.loads(await self._ask("POST", f"/resize?capacity={capacity}", 200))
        was: int = answer["was"]
        return was

    async def health(self) -> dict[str, Any]:
        """What the server says of itself: its service's parameters, its loop, its server."""
        about: dict[str, Any] = json.loads(await self._ask("GET", "/health", 200))
        return about

    async def _ask(self, method: str, path: str, expected: int) -> bytes:
        import httpx2

        try:
            async with control_client(self.url) as client:
                response = await client.request(method, path)
        except httpx2.TransportError as error:
            raise ServerFailed(
                f"the HTTP server (pid {self.pid}) did not answer {method} {path}: {_said(error)}"
            ) from error
        if response.status_code != expected:
            raise UnexpectedAnswer(f"{method} {path}", response.status_code, response.content)
        content: bytes = response.content
        return content


def control_client(url: str, timeout: float = 10.0) -> Any:
    """An httpx2 client for the server's own routes (``/felt``, ``/reset``, ``/resize``,
    ``/health``)."""
    import httpx2

    # verify=False: plain HTTP has no TLS to verify, and building the context costs 47 ms.
    return httpx2.AsyncClient(base_url=url, timeout=timeout, trust_env=False, verify=False)
