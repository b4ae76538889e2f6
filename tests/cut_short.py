"""A check both service-backed footgun suites share: a broken version cut off mid-run."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from patterns.footguns import Verdict
from patterns.lab.service import Service


async def broken_cleans_up_when_cancelled(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancel ``module.broken`` once calls are in service and one was served or turned away:
    no task, no unawaited coroutine, no call in service or waiting is left behind."""
    services: list[Service] = []

    def recorded(*args: Any, **kwargs: Any) -> Service:
        services.append(Service(*args, **kwargs))
        return services[-1]

    def midway() -> bool:  # calls in service, and a call already served or turned away
        felt = services[0].felt if services else None
        return bool(felt and felt.in_service and (felt.served or felt.turned_away))

    monkeypatch.setattr(module, "Service", recorded)
    tasks, ended = len(anyio.get_running_tasks()), list[Verdict]()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_run_to_end, module.broken, ended)
            while not midway():  # cut as Ctrl+C would, wherever the run is then
                await anyio.lowlevel.checkpoint()
            tg.cancel_scope.cancel()
    gc.collect()  # a coroutine left unawaited warns here, and warnings are errors
    assert not ended  # cut off mid-run, not after it
    assert len(anyio.get_running_tasks()) == tasks
    [service] = services
    assert (service.felt.in_service, service.felt.waiting) == (0, 0)


async def _run_to_end(version: Callable[[], Awaitable[Verdict]], ended: list[Verdict]) -> None:
    ended.append(await version())
