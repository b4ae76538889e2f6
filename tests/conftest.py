"""Every async test runs on the three backends the cookbook promises, set explicitly here."""

from __future__ import annotations

from typing import Any

import pytest

from patterns import PATTERNS, Pattern

BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    pytest.param(("trio", {}), id="trio"),
]


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
