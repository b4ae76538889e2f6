"""The simulated service over real HTTP: one :class:`~patterns.lab.service.Service` behind
uvicorn, in a process of its own, and the clients that call it.

``service.py`` simulates the other side of the calls inside the caller's own event loop. Here
the same model is served for real, in two halves, one a side of the socket:

- :mod:`patterns.lab.http_service`, the server's side: :class:`ServiceApp`, a plain ASGI app
  (``GET /work?index=N&latency=S``: ``200`` when served, ``429`` with ``Retry-After`` when
  turned away; ``/felt``, ``/reset``, ``/resize?capacity=N``, ``/health``); its process,
  uvicorn serving it, which ``python -m patterns.lab.http`` runs (see :func:`main`); and
  :func:`serving`, which runs that process for a block and yields a :class:`Served`, stopping
  and reaping the child however the block ends.
- :mod:`patterns.lab.http_client`, the caller's side: :func:`calling`, one client (httpx2,
  httpx, or aiohttp on asyncio and uvloop) for a block and the work function it yields, which
  returns ``item_N_processed`` or raises the model's own errors; :class:`Served`, a running
  server's url, pid and routes (``await served.resize(5)`` changes its capacity mid-run);
  and :func:`require`, which names the ``http`` extra if a package of it is missing.

This module is their one public face: ``from patterns.lab.http import serving, calling``.
Nothing here imports uvicorn or a client until it is needed.
"""

from __future__ import annotations

from patterns.lab.http_client import (
    CLIENTS,
    EXTRA,
    PACKAGES,
    Call,
    HTTPUnavailable,
    Served,
    ServerFailed,
    UnexpectedAnswer,
    calling,
    clients_for,
    outcome,
    path_of,
    require,
)
from patterns.lab.http_service import (
    GRACE_S,
    MAX_LATENCY_S,
    ServiceApp,
    main,
    parse_capacity,
    parse_item,
    serving,
)

__all__ = [
    "CLIENTS",
    "EXTRA",
    "GRACE_S",
    "MAX_LATENCY_S",
    "PACKAGES",
    "Call",
    "HTTPUnavailable",
    "Served",
    "ServerFailed",
    "ServiceApp",
    "UnexpectedAnswer",
    "calling",
    "clients_for",
    "main",
    "outcome",
    "parse_capacity",
    "parse_item",
    "path_of",
    "require",
    "serving",
]

if __name__ == "__main__":  # the server's process: python -m patterns.lab.http --help
    main()
