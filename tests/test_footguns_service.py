"""The footguns felt by the service at the other end: a timeout around the wait for a permit,
and unbounded calls against a capacity. The broken version fails as predicted, the fixed one
passes, on every backend; cancelled mid-run, a broken one leaves nothing behind (the suite runs
with warnings as errors)."""

from __future__ import annotations

import re
from types import ModuleType

import anyio
import anyio.lowlevel
import pytest

from patterns.footguns import timeout_around_wait, unbounded_capacity
from tests.cut_short import broken_cleans_up_when_cancelled

pytestmark = pytest.mark.anyio

MODULES: dict[str, ModuleType] = {
    "timeout-around-wait": timeout_around_wait,
    "unbounded-against-capacity": unbounded_capacity,
}
# What each broken version's measurement must say: the predicted failure, not just "not ok".
PREDICTED = {
    "timeout-around-wait": "of them never reached the service: their 50 ms went on waiting for "
    "a permit",
    "unbounded-against-capacity": "the service turned 35 of 40 calls away; at most 5 in service, "
    "40 in flight at the caller",
}
# What each fixed version's measurement says: nothing timed out, nothing turned away.
PASSED = {
    "timeout-around-wait": "0 of 30 calls timed out; every call got its whole 50 ms in service",
    "unbounded-against-capacity": "the service turned 0 of 40 calls away; at most 5 in service, "
    "5 in flight at the caller",
}


# The broken version fails as predicted, well within a timeout.
@pytest.mark.parametrize("name", MODULES)
async def test_broken_fails_as_predicted(name: str) -> None:
    with anyio.fail_after(5):
        verdict = await MODULES[name].broken()
    assert not verdict.ok
    assert PREDICTED[name] in verdict.observed


# The fixed version passes.
@pytest.mark.parametrize("name", MODULES)
async def test_fixed_passes(name: str) -> None:
    with anyio.fail_after(5):
        verdict = await MODULES[name].fixed()
    assert verdict.ok, verdict.observed
    assert PASSED[name] in verdict.observed


# Timed out around the wait, at least the 15 calls with no permit before 60 ms never ran.
async def test_timeout_around_wait_fails_calls_that_never_ran() -> None:
    verdict = await timeout_around_wait.broken()
    found = re.search(
        r"(\d+) of 30 calls timed out, (\d+) of them never reached the service", verdict.observed
    )
    assert found, verdict.observed
    timed_out, never = map(int, found.groups())
    # On time, 20 time out (the third round is cut off in service); a loop 10 ms late fails more.
    assert 15 <= never <= timed_out
    labels = [label for label, _, _ in verdict.spans]
    assert sum(label.endswith("waiting for a permit (timed out)") for label in labels) == never
    assert sum(label.endswith("(timed out)") for label in labels) == timed_out


# Timed out inside the permit, every call is served and nothing is drawn as timed out.
async def test_timeout_inside_the_permit_serves_every_call() -> None:
    verdict = await timeout_around_wait.fixed()
    labels = [label for label, _, _ in verdict.spans]
    assert not [label for label in labels if "(timed out)" in label]
    assert len([label for label in labels if "waiting" not in label]) == 30


# Unbounded, the 35 calls the service turned away are drawn so; bounded, none is.
async def test_turned_away_calls_are_drawn() -> None:
    for verdict, away in (
        (await unbounded_capacity.broken(), 35),
        (await unbounded_capacity.fixed(), 0),
    ):
        labels = [label for label, _, _ in verdict.spans]
        assert len(labels) == 40
        assert sum(label.endswith("(turned away)") for label in labels) == away


# Cancelled mid-run, a broken version leaves no task, no unawaited coroutine, no call in service.
@pytest.mark.parametrize("name", MODULES)
async def test_broken_cleans_up_when_cancelled(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    await broken_cleans_up_when_cancelled(MODULES[name], monkeypatch)
