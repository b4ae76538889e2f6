"""Every footgun exhibit: the broken version fails in the predicted way, within its timeout,
and the fixed one passes, on every backend, leaking no warnings (the suite runs with warnings
as errors)."""

from __future__ import annotations

import gc
import sys
import time

import anyio
import pytest

from patterns import worker_pool
from patterns.footguns import Instrument, Verdict, cpu_hog, exhibits
from patterns.lab.probe import cpu_times
from patterns.threads import in_threads

# The deadlocking exhibits give up sooner here (conftest.py).
pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("sooner_give_up")]

# The exhibits over real HTTP start a server process each and measure a client: they have
# their own tests (tests/test_footguns_http.py), with the same properties, sized for it.
OVER_HTTP = {"two-limits", "client-bottleneck"}
# The retry exhibits measure a service over a schedule in time (a capacity that dips, calls that
# arrive at a rate): they have their own tests (tests/test_footguns_retry.py), with the same
# properties, each version run once per backend.
RETRY = {"retry-holding", "retry-waves", "retry-storm"}
EXHIBITS = [name for name in exhibits() if name not in OVER_HTTP | RETRY]
# What each broken version's measurement must say: the predicted failure, not just "not ok".
PREDICTED = {
    "early-release": "40 calls in flight at once, with a limit of 5",
    "unclosed-channel": "hung: all 20 results were in",
    "push-before-drive": "deadlocked: 3 calls pushed, 0 done",
    "nested-throttle": "deadlocked: 0 of 15 calls finished",
    "blocking-call": "the other tasks stalled",
    "cpu-hog": "CPU-bound call let go of the loop",
    "default-thread-limit": "40 threads at most, for a limit of 60: 20 calls waited for anyio's "
    "default limiter",
    "unbounded-gather": "1,200 tasks alive and 1,200 items pulled at once",
    "limiter-per-task": "10 calls in flight at most (limit 10), but 1,200 items pulled",
    "unbounded-against-capacity": "the service turned 35 of 40 calls away; at most 5 in "
    "service, 40 in flight at the caller",
    "timeout-around-wait": "of them never reached the service: their 50 ms went on waiting "
    "for a permit",
    "one-at-a-time": "served one at a time: each waited",
    "busy-poll": "it never slept",
}


# The holding exhibits run 5,000 items for a reader; 1,200 fail the same way here, in a quarter
# of the time (every item held at once, over a thousand, megabytes of memory:
# test_broken_fails_as_predicted), where the fixed versions hold about their limit.
@pytest.fixture(autouse=True)
def _fewer_items(monkeypatch: pytest.MonkeyPatch) -> None:
    from patterns.footguns import limiter_per_task, unbounded_gather

    for exhibit in (limiter_per_task, unbounded_gather):
        monkeypatch.setattr(exhibit, "ITEMS", 1_200)


# Article 004's server and poll exhibits wait 1 s and 0.25 s for a reader; 0.3 s and 0.15 s show
# the same here (tests/test_footguns_article4.py measures them).
@pytest.fixture(autouse=True)
def _shorter_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    from patterns.footguns import busy_poll, one_at_a_time

    monkeypatch.setattr(one_at_a_time, "DELAY", 0.03)
    monkeypatch.setattr(busy_poll, "WAIT_S", 0.15)


# The exhibits where what a version holds is the point: they sample it (Verdict.gauges).
HOLDING = {"unbounded-gather", "limiter-per-task"}


# There are at least five exhibits, and each predicts its failure.
def test_exhibits_are_listed() -> None:
    assert len(EXHIBITS) >= 5
    assert set(EXHIBITS) == set(PREDICTED)
    assert set(exhibits()) == set(PREDICTED) | OVER_HTTP | RETRY


# Each version runs once per backend: the tests below read the same verdict.
_VERDICTS: dict[tuple[str, str, str], Verdict] = {}


async def _verdict(anyio_backend: object, name: str, version: str) -> Verdict:
    key = (repr(anyio_backend), name, version)
    if key not in _VERDICTS:
        exhibit = exhibits()[name]
        with anyio.fail_after(20):
            run = exhibit.broken if version == "broken" else exhibit.fixed
            _VERDICTS[key] = await run()
    return _VERDICTS[key]


# Each exhibit is listed under its own name, says what, where from and why, and both its
# versions come from its module.
@pytest.mark.parametrize("name", list(exhibits()))
def test_exhibit_is_described(name: str) -> None:
    exhibit = exhibits()[name]
    module = sys.modules[exhibit.broken.__module__]
    assert module.EXHIBIT is exhibit
    assert exhibit.name == name
    assert all((exhibit.title, exhibit.article, exhibit.why))
    assert sys.modules[exhibit.fixed.__module__] is module


# The broken version fails as predicted, within its timeout.
@pytest.mark.parametrize("name", EXHIBITS)
async def test_broken_fails_as_predicted(name: str, anyio_backend: object) -> None:
    verdict = await _verdict(anyio_backend, name, "broken")
    assert not verdict.ok
    assert PREDICTED[name] in verdict.observed
    if name in HOLDING:  # sampled while it ran: over a thousand items held, megabytes of memory
        assert max(held for _, held, _ in verdict.gauges) >= 1_000
        assert max(mib for _, _, mib in verdict.gauges) > 1


# The fixed version passes.
@pytest.mark.parametrize("name", EXHIBITS)
async def test_fixed_passes(name: str, anyio_backend: object) -> None:
    verdict = await _verdict(anyio_backend, name, "fixed")
    assert verdict.ok, verdict.observed
    if name in HOLDING:  # sampled to the end of the run: about its limit held, never more
        assert max(held for _, held, _ in verdict.gauges) <= 11
        assert verdict.gauges[-1][0] >= verdict.spans[-1][1]


# A broken exhibit draws what got stuck; a fixed one has nothing stuck to draw.
@pytest.mark.parametrize("name", ["unclosed-channel", "push-before-drive", "nested-throttle"])
async def test_stuck_calls_are_drawn(name: str, anyio_backend: object) -> None:
    broken = await _verdict(anyio_backend, name, "broken")
    fixed = await _verdict(anyio_backend, name, "fixed")
    assert any(label.endswith("(stuck)") for label, _, _ in broken.spans)
    assert not any("(stuck)" in label for label, _, _ in fixed.spans)


# The blocking call shows on the timeline: no task ticks while it runs, and all tick after it.
# (The same verdicts as test_broken_fails_as_predicted's and test_fixed_passes', run once.)
async def test_blocking_call_timeline(anyio_backend: object) -> None:
    verdict = await _verdict(anyio_backend, "blocking-call", "broken")
    _, block_start, block_end = next(s for s in verdict.spans if s[0].startswith("blocking"))
    ticks = [end for label, _, end in verdict.spans if label.startswith("task")]
    assert not [t for t in ticks if block_start + 0.01 < t < block_end - 0.01]
    assert [t for t in ticks if t >= block_end]
    fixed = await _verdict(anyio_backend, "blocking-call", "fixed")
    _, block_start, block_end = next(s for s in fixed.spans if s[0].startswith("blocking"))
    ticks = [end for label, _, end in fixed.spans if label.startswith("task")]
    assert [t for t in ticks if block_start < t < block_end]  # in a thread, they tick on


# A CPU-bound call on the loop holds every quick call until it ends; in a process, every quick
# call ends while it runs. (The verdicts run once, as above.)
async def test_cpu_hog_timeline(anyio_backend: object) -> None:
    broken = await _verdict(anyio_backend, "cpu-hog", "broken")
    fixed = await _verdict(anyio_backend, "cpu-hog", "fixed")
    for verdict, ended_during in ((broken, 0), (fixed, 8)):
        _, _, cpu_end = next(s for s in verdict.spans if s[0].startswith("CPU-bound"))
        quick_ends = [end for label, _, end in verdict.spans if label.startswith("quick")]
        assert len(quick_ends) == 8
        assert sum(end < cpu_end for end in quick_ends) == ended_during


# The fixed cpu-hog's worker process ends with the event loop that started it, whether the
# exhibit ran to the end or was cancelled while its worker was starting.
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("cancel_after", [None, 0.05])
def test_cpu_hog_leaves_no_process(backend: str, cancel_after: float | None) -> None:
    async def main() -> None:
        with anyio.move_on_after(cancel_after):
            await cpu_hog.fixed()

    before = set(cpu_times().children)  # another test's event loop may still hold its own
    anyio.run(main, backend=backend)
    assert set(cpu_times().children) <= before


# Cancelled in the middle, as by Ctrl+C, an exhibit leaves no coroutine that was never awaited.
@pytest.mark.parametrize("name", EXHIBITS)
async def test_broken_exhibit_cleans_up_when_cancelled(name: str) -> None:
    # What lived before the exhibit ran is none of its garbage: frozen, the collection below
    # looks only at what the exhibit made (a tenth of a second less, late in the suite).
    gc.freeze()
    try:
        with anyio.move_on_after(0.05):
            await exhibits()[name].broken()
        gc.collect()  # a coroutine left unawaited warns here, and warnings are errors
    finally:
        gc.unfreeze()


# The one instrument: calls counted as the harness's probe counts them, the input's pulls
# counted against the calls finished, a call cut short drawn as stuck.
async def test_instrument_counts_pulls_and_stuck_calls() -> None:
    probe = Instrument()

    async def call(item: int) -> int:
        await anyio.sleep(0 if item < 3 else 10)
        return item

    with anyio.move_on_after(0.05):
        async with anyio.create_task_group() as tg:
            for item in probe.source(range(5)):
                tg.start_soon(probe.wrap(call), item)
    assert (probe.pulled, probe.peak, probe.finished) == (5, 5, 5)
    assert probe.most_ahead == 5  # all five pulled before any finished
    labels = [label for label, _, _ in probe.spans()]
    assert sorted(labels) == ["call 0", "call 1", "call 2", "call 3 (stuck)", "call 4 (stuck)"]


# Sync work wrapped inside its threads is counted there, one thread at a time: the peak is the
# threads running at once, and no call is lost to a race.
async def test_instrument_counts_inside_threads() -> None:
    probe = Instrument()

    def nap(item: int) -> int:
        time.sleep(0.03)
        return item

    results = await worker_pool.run(in_threads(probe.wrap_sync(nap)), range(50), limit=10)
    assert results == list(range(50))
    assert (probe.peak, probe.in_flight, probe.finished, len(probe.calls)) == (10, 0, 50, 50)
