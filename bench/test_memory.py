"""Scenario 3, memory: a long generator consumed in a fresh process, results dropped.

Each implementation runs in its own process, which reports the growth of its own peak RSS
(VmHWM) over its baseline after imports. Bounded implementations get a million items at full
size; those that start a task per item up front, a tenth of that, and their growth shows.
"""

from __future__ import annotations

from typing import Any

import pytest

from .scenarios import Results, Scale, implementations, memory
from .test_overhead import _skip_if_missing

ASYNCIO = [
    pytest.param(i, id=i.name)
    for i in implementations()
    if "asyncio" in i.backends and i.kind != "probe"
]


# Peak RSS growth of a run over a long generator.
@pytest.mark.parametrize("impl", ASYNCIO)
def test_memory(benchmark: Any, impl: Any, scale: Scale, results: Results) -> None:
    _skip_if_missing(impl)
    n = scale.memory_items if impl.lazy else scale.eager_memory_items
    benchmark.group = f"memory: peak RSS growth in a fresh process, limit {scale.limit}"
    measured = benchmark.pedantic(lambda: memory(impl, n, scale.limit), rounds=1, iterations=1)
    results.memory[impl.name] = measured
    benchmark.extra_info["growth_mib"] = measured.growth_mib
    benchmark.extra_info["items"] = n
    assert measured.peak_kib >= measured.baseline_kib
