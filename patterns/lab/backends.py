"""The backends: the event loops a run may use, and one way to run on one of them.

anyio runs the same code on asyncio, on asyncio with uvloop's loop, and on trio. Everything
that starts a loop of its own (the harness's sync forms, the command line, the cluster harness,
the benchmarks) starts it here, with :func:`run_on`, so that a backend that is not installed
is one clear error, the same everywhere.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar, get_args

import anyio

from patterns.contract import check_choice

T = TypeVar("T")

Backend = Literal["asyncio", "uvloop", "trio"]
#: Every backend, in the order tables list them.
BACKENDS: tuple[Backend, ...] = get_args(Backend)

# Which package each backend needs beyond anyio; the backends extra installs them.
_NEEDS = {"uvloop": "uvloop", "trio": "trio"}


class BackendUnavailable(RuntimeError):
    """The chosen backend's package is not installed."""


def check_backend(backend: str) -> tuple[str, dict[str, Any]]:
    """anyio.run's backend and options for ``backend``; a clear error if it cannot run here."""
    check_choice("backend", backend, BACKENDS)
    needed = _NEEDS.get(backend)
    if needed is not None and importlib.util.find_spec(needed) is None:
        raise BackendUnavailable(
            f"backend {backend!r} needs the {needed} package: pip install -e '.[backends]'"
        )
    if backend == "uvloop":
        return "asyncio", {"use_uvloop": True}
    return backend, {}


def available(backends: tuple[str, ...] = BACKENDS) -> list[str]:
    """Those of ``backends`` that can run here (asyncio always can)."""
    found = []
    for backend in backends:
        try:
            check_backend(backend)
        except BackendUnavailable:
            continue
        found.append(backend)
    return found


def run_on(backend: str, fn: Callable[[], Awaitable[T]]) -> T:
    """``fn()`` in a fresh event loop of ``backend``: the one way in for code that starts its
    own loop. Raises :class:`BackendUnavailable` where the backend's package is missing."""
    name, options = check_backend(backend)
    return anyio.run(fn, backend=name, backend_options=options)


def current_backend() -> Backend:
    """The backend of the running event loop: asyncio, uvloop or trio."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return "trio"
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
