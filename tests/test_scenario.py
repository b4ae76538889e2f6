"""The changing-capacity scenario (``python -m patterns adapt``): the schedule and the oracle's
sums, the limit following the capacity down and up, the verdict and its sentence on figures
made by hand, and an adaptive limit drawn on an ordinary run's picture.

The runs here are on trio's mock clock, which jumps to the next timer whenever every task
waits: the scenario's seconds pass in a fraction of the time, the same way on every run (the
retries' jitter is seeded), and no figure depends on how busy the machine is.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import pytest

from patterns.adaptive import AIMD
from patterns.lab.changing import (
    ORACLE,
    SCENARIO,
    TOLD,
    Known,
    Row,
    Run,
    Scenario,
    median_run,
    oracle,
    run_row,
    simulated,
    table,
    verdict,
)
from patterns.lab.changing_run import measure, peer_fits
from patterns.lab.harness import ameasure
from patterns.lab.service import Service
from patterns.lab.workload import Workload
from patterns.show.present.changing import changing_sentence, changing_table

trio_testing = pytest.importorskip("trio.testing")

T = TypeVar("T")


def on_mock_clock(fn: Callable[[], Awaitable[T]]) -> T:
    """``fn()`` on trio, its time a mock clock that jumps whenever every task waits."""
    clock = trio_testing.MockClock(autojump_threshold=0)
    return anyio.run(fn, backend="trio", backend_options={"clock": clock})


# The schedule: the capacity at each moment, when it changes, and what keeping exactly it in
# service gets done (the oracle: capacity times seconds, over a call's time in service).
def test_schedule_and_the_oracles_sum() -> None:
    s = Scenario(phases=((20, 1.0), (5, 2.0), (20, 1.0)), call_s=0.02)
    assert [s.capacity_at(t) for t in (0, 0.99, 1.0, 2.5, 3.0, 3.99, 9)] == [
        20,
        20,
        5,
        5,
        20,
        20,
        20,
    ]
    assert s.changes() == [(1.0, 5), (3.0, 20)]
    assert s.seconds == 4.0
    assert s.most == 20
    assert s.ideal_calls(0.02) == pytest.approx(2500)  # (20 + 10 + 20) / 0.02
    run = oracle(s, [0.02, 0.03, 0.025], backend="trio", transport="simulated")
    assert run.call_s == pytest.approx(0.025)
    assert run.succeeded == 2000
    assert run.goodput == pytest.approx(500)
    assert s.scaled(0.5).phases == ((20, 0.5), (5, 1.0), (20, 0.5))
    with pytest.raises(ValueError, match="calm service"):
        oracle(s, [], backend="trio", transport="simulated")


def limit_at(run: Run, t: float) -> int:
    """The run's limit ``t`` seconds from its start."""
    return [n for at, n in run.limits if at <= t][-1]


# An adaptive limit follows the capacity down (into the small one and the queue past it) and
# back up; the caller told the capacity moves exactly with it and is never turned away.
@pytest.mark.parametrize("row", ["AIMD", "Gradient"])
def test_the_limit_follows_the_capacity_down_and_up(row: str) -> None:
    s = SCENARIO.scaled(0.5)
    (high, first), (low, middle), _ = s.phases

    async def go() -> Run:
        return await run_row(row, s, simulated(s), backend="trio", transport="simulated")

    run = on_mock_clock(go)
    late_low = [limit_at(run, first + middle * k / 10) for k in range(5, 10)]
    assert max(late_low) <= low + s.queue_limit + 1, late_low
    assert limit_at(run, s.seconds - 0.01) >= 0.8 * high
    assert limit_at(run, first - 0.01) >= 0.8 * high
    assert run.succeeded > 0
    assert run.failed == 0


def test_the_told_caller_moves_with_the_capacity() -> None:
    s = SCENARIO.scaled(0.25)

    async def go() -> Run:
        return await run_row(TOLD, s, simulated(s), backend="trio", transport="simulated")

    run = on_mock_clock(go)
    assert [n for _, n in run.limits] == [c for c, _ in s.phases]
    assert [round(at, 6) for at, _ in run.limits[1:]] == [at for at, _ in s.changes()]
    assert run.turned_away == 0
    assert run.failed == 0
    known = Known(3, 10)
    known.set(7)
    assert known.limit == 7


# The claim, on a full-length scenario with a few rows (on the mock clock): the
# adaptive limit holds where fixed limits too low and too high fall short, each its own way.
def test_the_scenario_fails_fixed_limits_and_not_the_adaptive_one() -> None:
    async def go() -> list[Run]:
        return await measure(SCENARIO.scaled(2 / 3), rows=["AIMD", "fixed 5", "fixed 20"], rounds=1)

    runs = on_mock_clock(go)
    rows = {r.name: r for r in table(runs)}
    assert rows[ORACLE].share == 1.0
    found = verdict(list(rows.values()))
    assert found.ok, found.failed
    assert (rows["fixed 5"].share or 0) < 0.75
    assert rows["fixed 5"].run.away_share == 0
    assert rows["fixed 20"].run.away_share > 0.2
    assert changing_sentence(list(rows.values())).startswith("Conclude: ")


def row(name: str, share: float | None, away: float, *, backend: str = "asyncio",
        transport: str = "simulated") -> Row:  # fmt: skip
    """A row made by hand: ``away`` of 1,000 calls received turned away."""
    run = Run(name, backend, transport, 4.0, succeeded=1000, turned_away=round(away * 1000),
              received=1000)  # fmt: skip
    return Row(run, share, 3)


# The verdict and its sentence on figures made by hand: each claim's edge, and the sentence
# naming the figures it rests on (not words written beforehand).
def test_the_verdict_on_made_figures() -> None:
    good = [row("AIMD", 0.93, 0.026), row("fixed 5", 0.40, 0.0), row("fixed 40", 0.95, 0.72)]
    assert verdict(good).ok
    said = changing_sentence(good)
    assert said.startswith("Conclude: ")
    assert "AIMD 93% of the oracle's goodput with 2.6% turned away" in said
    assert "fixed 5 left capacity idle (40%)" in said
    assert "fixed 40 had 72%" in said
    for bad in (row("AIMD", 0.89, 0.01), row("AIMD", 0.95, 0.051), row("AIMD", None, 0.0)):
        assert not verdict([bad, *good[1:]]).ok
    fine_fixed = row("fixed 20", 0.80, 0.19)
    found = verdict([*good, fine_fixed])
    assert found.failed == ["fixed 20 (asyncio, simulated) falls short"]
    said = changing_sentence([*good, fine_fixed])
    assert said.startswith("The claims did not all hold")
    assert "fixed 20 80% and 19.0%" in said
    assert verdict([*good, row("fixed 10", 0.749, 0.0), row("fixed 20", 0.99, 0.201)]).ok
    over = [*good, row("AIMD", 0.85, 0.03, transport="http")]
    assert "AIMD over http (asyncio) is within 10 points of simulated" in verdict(over).held
    far = [*good, row("AIMD", 0.82, 0.03, transport="http")]
    assert not verdict(far).ok
    assert "-11 points" in changing_sentence(far)
    assert not verdict([]).ok


# Each row's figures are its median run; shares are of the same backend and transport's oracle.
def test_medians_and_shares() -> None:
    runs = [Run("AIMD", "trio", "simulated", 1.0, succeeded=n) for n in (30, 10, 20)]
    assert median_run(runs).succeeded == 20
    runs += [Run(ORACLE, "trio", "simulated", 1.0, succeeded=n) for n in (40, 50)]
    rows = {r.name: r for r in table(runs)}
    assert rows["AIMD"].share == pytest.approx(0.5)
    assert rows["AIMD"].runs == 3
    skipped = Run("adaptive-concurrency", "trio", "simulated", 1.0, skipped="asyncio only")
    (peer,) = [r for r in table([*runs, skipped]) if r.run.skipped]
    assert peer.share is None
    assert peer_fits("trio") is not None
    shown = changing_table([*table(runs), peer], SCENARIO)
    assert str(shown.caption).endswith("skipped: adaptive-concurrency on trio: asyncio only")


# An ordinary run with an adaptive limit: the report holds the limit over time (from 4, cut when
# the service turns calls away), its maximum as the limit, and its picture draws it.
def test_an_adaptive_limit_on_an_ordinary_run() -> None:
    pytest.importorskip("matplotlib")
    from patterns.show.plots import report_figure

    async def go() -> Any:
        workload = Workload(items=120, low=0.01, high=0.01)
        return await ameasure("worker_pool", workload, limit=AIMD(maximum=20),
                              service=Service(6), clock=anyio.current_time)  # fmt: skip

    report = on_mock_clock(go)
    values = [n for _, n in report.limits]
    assert report.adaptive == "AIMD"
    assert report.limit == 20
    assert values[0] == 4
    assert max(values) > 6
    assert any(b < a for a, b in itertools.pairwise(values))
    assert report.turned_away > 0
    assert "the limit adapting (AIMD: 4 at the start" in report.sentence()
    labels = [line.get_label() for ax in report_figure(report).axes for line in ax.get_lines()]
    assert "limit (AIMD, up to 20)" in labels
