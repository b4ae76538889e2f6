"""The probe: in-flight counts, lanes and timings, on an injected clock."""

from __future__ import annotations

import subprocess
import sys
import time

import anyio
import pytest

from patterns.lab.probe import Probe, cpu_times, cpu_used

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# Calls in flight are counted on entry and exit; lanes are reused lowest-first.
async def test_counts_and_lanes() -> None:
    clock = FakeClock()
    probe: Probe[int] = Probe(clock)
    gates = {i: anyio.Event() for i in range(3)}

    async def work(i: int) -> int:
        await gates[i].wait()
        return i

    wrapped = probe.wrap(work)
    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(wrapped, i)
        await anyio.wait_all_tasks_blocked()
        assert probe.in_flight == 3
        clock.now = 2.0
        gates[1].set()
        await anyio.wait_all_tasks_blocked()
        assert probe.in_flight == 2
        tg.start_soon(wrapped, 1)  # takes the lane item 1 freed
        await anyio.wait_all_tasks_blocked()
        clock.now = 5.0
        gates[0].set()
        gates[2].set()
    assert probe.peak == 3
    assert probe.in_flight == 0
    assert probe.started == probe.finished == 4
    lanes: dict[int, set[int]] = {c.item: set() for c in probe.calls}
    for call in probe.calls:
        lanes[call.item].add(call.lane)
    # Three lanes for three calls at once (the backend decides which gets which); the fourth
    # call reused the lane its predecessor freed.
    assert set().union(*lanes.values()) == {0, 1, 2}
    assert len(lanes[1]) == 1
    # item 1 ran 0-2 s, then again at 2 s through its open gate (0 s); items 0 and 2 ran 0-5 s.
    assert probe.busy == pytest.approx(2.0 + 0.0 + 5.0 + 5.0)


# A failing call is counted out too, and recorded as not ok.
async def test_failure_is_recorded() -> None:
    probe: Probe[int] = Probe()

    async def work(i: int) -> int:
        raise ValueError(i)

    with pytest.raises(ValueError, match="7"):
        await probe.wrap(work)(7)
    assert probe.in_flight == 0
    assert [c.ok for c in probe.calls] == [False]


# CPU time counts a child process while it lives (from /proc) and once it is reaped (from
# os.times), never twice.
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="live children: /proc")
def test_cpu_used_counts_children_once() -> None:
    burn = (
        "import sys, time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    )
    before = cpu_times()
    # The child burns 0.3 s of CPU, then waits for its stdin to close before it exits.
    child = subprocess.Popen(
        [sys.executable, "-c", burn + "sys.stdin.read()"], stdin=subprocess.PIPE
    )
    assert child.stdin is not None
    while cpu_used(before, cpu_times()) < 0.3:  # seen while it lives
        time.sleep(0.01)
    alive = cpu_used(before, cpu_times())
    child.stdin.close()
    child.wait()
    reaped = cpu_used(before, cpu_times())
    assert 0.3 <= alive < 1.5
    assert alive <= reaped < alive + 0.3  # counted once: not alive plus reaped
