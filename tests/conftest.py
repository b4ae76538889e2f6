"""Every async test runs on the three backends the cookbook promises, set explicitly here."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest

from patterns import PATTERNS, Pattern

BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    pytest.param(("trio", {}), id="trio"),
]


@pytest.fixture(autouse=True, scope="session")
def _prog() -> Iterator[None]:
    """The CLI names itself as it was started (``patterns.show.output.PROG``): ``python -m
    patterns`` when pytest runs as ``python -m pytest``, ``patterns`` in xdist's workers. The
    tests call it in-process as the README starts it, however pytest itself was started."""
    from patterns.door import cli
    from patterns.show import output

    patch = pytest.MonkeyPatch()
    for module in (output, cli):
        patch.setattr(module, "PROG", "python -m patterns")
    yield
    patch.undo()


@pytest.fixture(params=BACKENDS, scope="module")
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    backend: tuple[str, dict[str, Any]] = request.param
    return backend


@pytest.fixture(params=list(PATTERNS), scope="module")
def pattern(request: pytest.FixtureRequest) -> Pattern:
    return PATTERNS[request.param]


@pytest.fixture(params=[n for n, p in PATTERNS.items() if p.BOUNDED], scope="module")
def bounded(request: pytest.FixtureRequest) -> Pattern:
    return PATTERNS[request.param]


# The hanging exhibits wait 0.5-1 s for a reader before giving up; their hang shows from the
# first moments (0 calls done, or every result in and the loop still waiting), so a quarter
# of a second tells the same to a test.
@pytest.fixture
def sooner_give_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from patterns.footguns import nested_throttle, push_before_drive, unclosed_channel

    for exhibit in (push_before_drive, unclosed_channel):
        monkeypatch.setattr(exhibit, "GIVE_UP_S", 0.25)
    broken = functools.partial(nested_throttle.broken, give_up_after=0.25)
    monkeypatch.setattr(nested_throttle, "broken", broken)
