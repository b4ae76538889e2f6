"""The cluster recipes' one helper: a Dask client for the run, on a cluster of your own or on
a local one that the recipe starts and stops. Copy it beside ``cluster_window.py`` or
``cluster_limit.py`` (with ``contract.py``).

Dask distributed is an engine that already schedules, retries and moves data across machines:
the recipes only bound what they hand it, as the in-process recipes bound what they start.
Its client runs on asyncio, so the cluster recipes do too (uvloop included; not trio).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import math
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

EXTRA = "pip install -e '.[cluster]'"
#: How long to try reaching a scheduler before saying it is not there.
CONNECT_TIMEOUT = "10s"
#: The most calls a stream may keep on a cluster at once: each is a task in the scheduler and
#: a slot on a worker (a local cluster gives its two workers ``limit`` slots between them).
MAX_LIMIT = 10_000


class ClusterUnavailable(RuntimeError):
    """Dask distributed is not installed, or the event loop is not asyncio."""


def require() -> None:
    """A one-line error naming the extra to install, before anything starts."""
    if importlib.util.find_spec("distributed") is None:
        raise ClusterUnavailable(f"the cluster recipes need Dask distributed: {EXTRA}")


def quiet_client_logs() -> None:
    """Silence Dask's own logs in this process (a command line that reports failures itself):
    imported first, since Dask sets its loggers' levels when it is imported."""
    import distributed  # noqa: F401

    for name in [n for n in logging.root.manager.loggerDict if n.startswith("distributed")]:
        logging.getLogger(name).setLevel(logging.CRITICAL)


@asynccontextmanager
async def connect(address: str | None, *, slots: int) -> AsyncIterator[Any]:
    """A Dask client on the running asyncio loop: to the scheduler at ``address``
    (``tcp://host:port``), or, with None, to a local cluster of two worker processes with
    room for ``slots`` calls at once, started here and closed on the way out."""
    require()
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio's loop is not asyncio's
        raise ClusterUnavailable(
            "the cluster recipes need asyncio: Dask's client runs on it"
        ) from None
    from distributed import Client, LocalCluster

    cluster: Any = None
    client: Any = None
    try:
        if address is not None:
            # A cluster that is gone must fail here, in seconds, not hang the run.
            client = await Client(
                address, asynchronous=True, timeout=CONNECT_TIMEOUT, set_as_default=False
            )
        else:
            # Two worker processes, each with room for half the calls: an async call holds a
            # slot while it awaits, so the slots, not the cores, bound how many wait at once.
            # A start cut short (a timeout, Ctrl+C) finishes first, then is closed below with
            # its worker processes: Dask cannot close a cluster halfway through its start.
            with anyio.CancelScope(shield=True):
                cluster = LocalCluster(
                    n_workers=2,
                    threads_per_worker=max(1, math.ceil(slots / 2)),
                    processes=True,
                    asynchronous=True,
                    dashboard_address=":0",  # a free port: never a clash with a running one
                )
                await cluster
            await anyio.lowlevel.checkpoint_if_cancelled()
            # Not Dask's default client: that one would outlive this block.
            client = await Client(cluster, asynchronous=True, set_as_default=False)
            await client.run(_deaf_to_ctrl_c)
        yield client
    finally:
        # Shielded: the block may be left by a cancellation, and what it started must still be
        # closed (an unclosed client fails later, in its __del__, once its loop is gone).
        with anyio.CancelScope(shield=True):
            if client is not None:
                await client.close()
            if cluster is not None:
                await cluster.close()


def _deaf_to_ctrl_c() -> None:
    """Run in each worker of a local cluster: a terminal's Ctrl+C reaches every process of the
    job, and the worker would die of it with a traceback of its own. The process that started
    the cluster takes it, and closes the cluster in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
