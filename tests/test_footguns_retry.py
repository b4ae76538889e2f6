"""The retry footguns (issue 22), measured where the work lands, at the service: the retry that
sleeps holding its permit, retries without jitter, retries without a budget. Each broken version
fails as predicted and each fixed one passes, on every backend; each version runs once per
backend, and the tests below read that run: its verdict and what it measured. Cancelled
mid-run, a broken one leaves nothing behind (the suite runs with warnings as errors)."""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from patterns.footguns import Verdict, exhibits, retry_holding, retry_storm, retry_waves
from patterns.footguns.retry_waves import busiest, retries
from tests.cut_short import broken_cleans_up_when_cancelled

pytestmark = pytest.mark.anyio

MODULES: dict[str, ModuleType] = {
    "retry-holding": retry_holding,
    "retry-waves": retry_waves,
    "retry-storm": retry_storm,
}
# What each broken version's measurement must say: the predicted failure, not just "not ok".
PREDICTED = {
    "retry-holding": "places held on average by calls asleep in a back-off, of the pool's 10",
    "retry-waves": "(for a capacity of 10): in waves",
    "retry-storm": "goodput fell, and stayed down",
}
# What each fixed version's measurement says.
PASSED = {
    "retry-holding": "places held on average by calls asleep in a back-off (out of the gate)",
    "retry-waves": "(for a capacity of 10): spread out",
    "retry-storm": "goodput came back",
}

# Each version runs once per backend: its verdict, and the run the verdict was made of.
_RUNS: dict[tuple[str, str, str], tuple[Verdict, Any]] = {}


async def _run(anyio_backend: object, name: str, version: str) -> tuple[Verdict, Any]:
    key = (repr(anyio_backend), name, version)
    if key not in _RUNS:
        module, seen = MODULES[name], []
        judge = module.verdict

        def keep(run: Any) -> Verdict:  # the exhibit's own verdict, and what it was made of
            seen.append(run)
            return judge(run)  # type: ignore[no-any-return]

        exhibit = exhibits()[name]
        with pytest.MonkeyPatch.context() as patch, anyio.fail_after(10):
            patch.setattr(module, "verdict", keep)
            verdict = await (exhibit.broken if version == "broken" else exhibit.fixed)()
        _RUNS[key] = (verdict, seen[0])
    return _RUNS[key]


# The three are listed, after the others, in the order of the issue.
def test_retry_exhibits_are_listed() -> None:
    assert list(exhibits())[-3:] == list(MODULES)


# The broken version fails as predicted.
@pytest.mark.parametrize("name", MODULES)
async def test_broken_fails_as_predicted(name: str, anyio_backend: object) -> None:
    verdict, _ = await _run(anyio_backend, name, "broken")
    assert not verdict.ok
    assert PREDICTED[name] in verdict.observed


# The fixed version passes.
@pytest.mark.parametrize("name", MODULES)
async def test_fixed_passes(name: str, anyio_backend: object) -> None:
    verdict, _ = await _run(anyio_backend, name, "fixed")
    assert verdict.ok, verdict.observed
    assert PASSED[name] in verdict.observed


# Each attempt is counted at the service: as many served and turned away as it felt.
@pytest.mark.parametrize("name", ["retry-holding", "retry-waves"])
@pytest.mark.parametrize("version", ["broken", "fixed"])
async def test_attempts_are_counted_at_the_service(
    name: str, version: str, anyio_backend: object
) -> None:
    _, run = await _run(anyio_backend, name, version)
    outcomes = [a.outcome for a in run.attempts]
    assert outcomes.count("served") == run.felt.served
    assert outcomes.count("turned away") == run.felt.turned_away > 0


# Sleeping in the pool's workers, the 8 calls turned away in the dip hold 8 of its 10 places
# for the 100 ms the service asked (about 5 places on average over the run), and once the
# capacity is back the service gets about a third of what it could serve. Out of the gate,
# a back-off holds no place, and the service gets twice that, or more.
async def test_a_retry_holding_its_place_starves_the_service(anyio_backend: object) -> None:
    (broken, held), (fixed, free) = [
        await _run(anyio_backend, "retry-holding", version) for version in ("broken", "fixed")
    ]
    assert held.held_asleep > 3
    assert free.held_asleep < retry_holding.HOLDING
    back = sum(seconds for _, seconds in retry_holding.SCHEDULE[:2])
    assert free.goodput(back) > 1.25 * held.goodput(back)
    assert free.goodput() > held.goodput()
    # Drawn: the broken pool's places asleep (red), the fixed one's back-offs out of the gate.
    assert any("(blocked)" in label for label, _, _ in broken.spans)
    assert not any("(blocked)" in label for label, _, _ in fixed.spans)
    assert any(label == "backing off, out of the gate" for label, _, _ in fixed.spans)


# Without jitter the 50 calls turned away by the burst come back in one instant (a wave: more
# than half the burst in 5 ms, the exhibit's own line, where the service has room for 10; 40
# or more on a quiet machine, 32 once on a loaded one), and the service serves 10 a wave;
# jittered, the same retries spread out, and more calls are served.
async def test_retries_without_jitter_come_back_in_waves(anyio_backend: object) -> None:
    (_, waves), (_, spread) = [
        await _run(anyio_backend, "retry-waves", version) for version in ("broken", "fixed")
    ]
    assert busiest(retries(waves.attempts)) > retry_waves.WAVE
    assert busiest(retries(spread.attempts)) <= retry_waves.WAVE
    served = [sum(a.outcome == "served" for a in run.attempts) for run in (waves, spread)]
    assert served[0] < served[1]
    for run in (waves, spread):  # no call tried more than its 3 times
        tries: dict[int, int] = {}
        for attempt in run.attempts:
            tries[attempt.call] = tries.get(attempt.call, 0) + 1
        assert max(tries.values()) <= retry_waves.ATTEMPTS


# Without a budget, after the dip the calls sent a second climb past the capacity while
# goodput falls to almost nothing, and the service's work goes to callers who have gone. With
# a budget, retries stay within 20% of calls (past its reserve of 10), the calls sent stay
# near the arrivals, and goodput comes back.
async def test_retries_without_a_budget_storm(anyio_backend: object) -> None:
    (_, storm), (_, calm) = [
        await _run(anyio_backend, "retry-storm", version) for version in ("broken", "fixed")
    ]
    capacity = retry_storm.CAPACITY / retry_storm.CALL_S
    arriving = retry_storm.ARRIVING / retry_storm.EVERY_S
    assert storm.sent_rate > capacity
    assert storm.goodput < 0.2 * arriving
    assert storm.wasted > 0.8
    assert calm.sent_rate < 0.8 * capacity
    assert calm.goodput > 0.5 * arriving
    assert calm.wasted < storm.wasted
    for run, most in ((calm, 0.2 * calm.arrived + 10), (storm, None)):
        retried = len(run.sent) - len({a.call for a in run.sent})
        if most is not None:
            assert retried <= most
        else:
            assert retried > 0.2 * run.arrived + 10
        # Every call sent reached the service: it served or still held each one at the end.
        assert len(run.finished) == run.felt.served <= len(run.sent)


# Cancelled mid-run, a broken version leaves no task, no unawaited coroutine, no call in service.
@pytest.mark.parametrize("name", MODULES)
async def test_broken_cleans_up_when_cancelled(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    await broken_cleans_up_when_cancelled(MODULES[name], monkeypatch)


# A run the machine starved (the event loop stood still for a tenth of it) is run again, not
# read: the watch sees a stall, and a steady run is measured once.
async def test_a_stalled_run_is_run_again() -> None:
    watch = retry_holding.LoopWatch()
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch.run)
        await anyio.sleep(0.01)
        time.sleep(0.05)  # noqa: ASYNC251 - the stall, on purpose
        await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert watch.longest >= 0.04
    for stalls, runs in (([1.0, 0.0], 2), ([0.0], 1), ([1.0, 1.0, 1.0], 2)):
        assert await retry_holding.unstalled(_Stalling(stalls).measure) == runs


class _Stalling:
    """A measurement whose n-th run stalls the loop for ``stalls[n]`` seconds; it returns n."""

    def __init__(self, stalls: list[float]) -> None:
        self.stalls, self.runs = stalls, 0

    async def measure(self, watch: retry_holding.LoopWatch) -> int:
        watch.longest = self.stalls[self.runs]
        self.runs += 1
        return self.runs
