"""The scenarios' own logic: targets, the summary, peers missing. (Speed itself is measured by
the other files here, never asserted.)"""

from __future__ import annotations

import importlib.util
import io
import json

import pytest
from rich.console import Console

from .scenarios import (
    PROBED,
    SCALES,
    Memory,
    Results,
    gap_lines,
    get_impl,
    memory,
    selected,
    summary_table,
    target_lines,
    targets,
)


def _results() -> Results:
    results = Results(SCALES["full"])
    n = results.scale.overhead_items
    per_item = {
        "raw asyncio queue pool": 2.0,
        "worker_pool": 2.8,  # 1.4x: within 1.5x
        "buffered_unordered": 4.2,  # 2.1x: over 2.0x
        "aiometer.amap": 30.0,
        PROBED: 3.3,
    }
    for name, us in per_item.items():
        results.kinds[name] = "pattern"
        results.fixed_s[name] = 0.001
        results.overhead_s[name] = 0.001 + us * 1e-6 * (n - 1)
    results.makespan["worker_pool", "trio"] = (2.0, 1.9)
    results.makespan["raw trio channel pool", "trio"] = (1.95, 1.9)
    results.memory["worker_pool"] = Memory("worker_pool", "pattern", 1_000_000, 20_000, 22_048)
    return results


# Per-item cost takes the fixed cost out, and each target is judged by its own bound.
def test_targets_are_judged() -> None:
    results = _results()
    assert results.per_item_us("worker_pool") == pytest.approx(2.8)
    judged = {t.what: t for t in targets(results)}
    assert judged["overhead: worker_pool / raw asyncio queue pool"].met
    assert not judged["overhead: buffered_unordered / raw asyncio queue pool"].met
    assert judged["overhead: worker_pool / aiometer.amap"].measured == pytest.approx(2.8 / 30)
    trio = judged["efficiency on trio: worker_pool / raw trio channel pool"]
    assert trio.measured == pytest.approx((1.9 / 2.0) / (1.9 / 1.95))
    assert not trio.met
    assert judged["memory at 1M items: worker_pool, MiB over baseline"].measured == 2.0
    # Targets whose figures were not measured are not judged at all.
    assert not any("semaphore" in what for what in judged)


# The summary has a row per implementation, and the lines say met or not yet.
def test_summary_and_lines() -> None:
    results = _results()
    out = io.StringIO()
    Console(file=out, width=250).print(summary_table(results))
    text = out.getvalue()
    for name in results.kinds:
        assert name in text
    lines = target_lines(results)
    assert any(line.strip().startswith("met") for line in lines)
    assert any(line.strip().startswith("not yet") for line in lines)
    assert not any("MISSED" in line for line in lines)
    assert any("probe adds 0.50 µs/item" in line for line in gap_lines(results))
    assert json.loads(json.dumps(results.to_json()))["targets"]


# Without the bench extra, the peers drop out of the selection instead of failing.
def test_missing_peers_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n: None if n in ("aiometer", "aiostream") else real(n)
    )
    names = {impl.name for impl in selected()}
    assert "aiometer.amap" not in names
    assert "worker_pool" in names
    assert not get_impl("aiostream map").available


# A memory run happens in a fresh process that reports its own peak RSS.
def test_memory_child() -> None:
    measured = memory(get_impl("buffered_unordered"), 2_000, 10)
    assert measured.items == 2_000
    assert 0 < measured.baseline_kib <= measured.peak_kib
