"""Why bound at all, measured: the harness reports what the service felt (goodput, calls turned
away, the caller's latency beside the service's own), every bounded pattern at the capacity
loses nothing, and a limit sweep's knee sits at the capacity."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest
from rich.console import Console

from patterns import PATTERNS, Pattern
from patterns.door.cli import main
from patterns.lab.harness import Report, acompare, ameasure, knee, littles_law, measure, sweep
from patterns.lab.service import BEHAVIOURS, Behaviour, Service
from patterns.lab.workload import Item, Workload

pytestmark = pytest.mark.anyio

W = Workload(12, 0.005, 0.015)


# Every bounded pattern at limit = capacity loses nothing, whatever the service does past its
# capacity: none turned away, none waited at the service, never more in service than it serves.
@pytest.mark.parametrize("behaviour", BEHAVIOURS)
async def test_bounded_at_the_capacity_loses_nothing(
    bounded: Pattern, behaviour: Behaviour
) -> None:
    r = await ameasure(bounded, W, limit=3, service=Service(3, behaviour=behaviour))
    assert (r.turned_away, r.succeeded, r.failed) == (0, 12, 0)
    assert r.peak_in_service == 3
    assert r.peak_waiting == 0
    assert r.goodput_per_s == pytest.approx(12 / r.makespan_s)


# Unbounded against a service that turns calls away: all but its capacity are turned away at
# once; goodput counts only the calls served, and a run that finished early by losing its
# calls has no efficiency or speedup to show.
async def test_unbounded_against_reject_loses_calls() -> None:
    r = await ameasure("scatter_gather", W, limit=3, service=Service(3))
    assert (r.turned_away, r.succeeded) == (9, 3)
    assert r.peak_in_service == 3
    assert r.goodput_per_s == pytest.approx(3 / r.makespan_s)
    assert r.efficiency is None
    assert r.speedup is None
    assert "the service turned 9 of 12 away, so only 3 were done." in r.sentence()


# Unbounded against a queue: nothing is turned away, but calls wait, and the caller sees the
# wait: its p95 is above the service's own time per call.
async def test_unbounded_against_a_queue_waits() -> None:
    r = await ameasure("scatter_gather", W, limit=3, service=Service(3, behaviour="queue"))
    assert (r.turned_away, r.succeeded) == (0, 12)
    assert r.peak_waiting == 9
    assert r.call_p95_s is not None
    assert r.service_p95_s is not None
    assert r.call_p95_s > 1.5 * r.service_p95_s


# Unbounded against a degrading service: every call is served, each slower in the crowd.
async def test_unbounded_against_degrade_slows_every_call() -> None:
    bounded = await ameasure("worker_pool", W, limit=3, service=Service(3, behaviour="degrade"))
    crowd = await ameasure("scatter_gather", W, limit=3, service=Service(3, behaviour="degrade"))
    assert crowd.turned_away == 0
    assert crowd.peak_in_service == 12
    assert crowd.service_p95_s is not None
    assert bounded.service_p95_s is not None
    assert crowd.service_p95_s > 3 * bounded.service_p95_s
    assert (crowd.goodput_per_s or 0) < (bounded.goodput_per_s or 0)


# A failure the workload drew is a failure, a call turned away is not one: both are counted,
# apart, and with the calls that succeeded they add up to the items.
async def test_failures_and_calls_turned_away_are_told_apart() -> None:
    workload = Workload(12, 0.005, 0.005, failure_rate=1.0)
    r = await ameasure("scatter_gather", workload, limit=3, service=Service(3))
    assert (r.turned_away, r.failed, r.succeeded) == (9, 3, 0)
    r = await ameasure("worker_pool", workload, limit=3, service=Service(3))
    assert (r.turned_away, r.failed, r.succeeded) == (0, 12, 0)


# Each run is served by a fresh copy of the service: what one run felt never counts in the
# next, and the service passed in is left as it was.
async def test_each_run_has_a_service_of_its_own() -> None:
    service = Service(3)
    first = await ameasure("scatter_gather", W, limit=3, service=service)
    second = await ameasure("scatter_gather", W, limit=3, service=service)
    assert first.turned_away == second.turned_away == 9
    assert service.felt.served == service.felt.turned_away == 0


# A run without a service reports none; with one, the JSON form carries its figures.
def test_the_json_form_carries_the_service() -> None:
    plain = measure("worker_pool", W, limit=3).to_dict()
    assert (plain["service"], plain["capacity"], plain["peak_in_service"]) == (None, None, None)
    assert plain["turned_away"] == 0
    assert plain["goodput_per_s"] == plain["throughput_per_s"]
    served = measure("scatter_gather", W, limit=3, service=Service(3)).to_dict()
    assert served["service"] == "a service that serves 3 at once and turns the rest away"
    assert (served["behaviour"], plain["behaviour"]) == ("reject", None)
    assert (served["capacity"], served["turned_away"], served["succeeded"]) == (3, 9, 3)
    assert served["call_p95_s"] is not None
    assert served["service_p95_s"] is not None


# A service serves io work on the loop: sync work and the tcp toy server are refused, named.
def test_a_service_only_serves_io_work() -> None:
    with pytest.raises(ValueError, match="a service serves io work, not cpu"):
        measure("worker_pool", Workload(2, 0.0, 0.0, kind="cpu"), service=Service(2))
    with pytest.raises(ValueError, match="transport tcp has its own toy server"):
        measure("worker_pool", W, transport="tcp", service=Service(2))


# The knee of a limit sweep sits at the capacity, for each behaviour past it, on asyncio and
# trio: goodput grows below it; past it reject turns calls away, queue makes them wait, and
# degrade loses goodput (its best sits at the knee).
@pytest.mark.parametrize("behaviour", BEHAVIOURS)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_knee_sits_at_the_capacity(backend: Any, behaviour: Behaviour) -> None:
    service = Service(4, behaviour=behaviour)
    # Uniform latencies: past the capacity, reject's few calls served (the rest turned away
    # at once) finish with the slowest of one round, well below the knee's goodput.
    workload = Workload(24, 0.01, 0.03)
    reports = sweep(
        "worker_pool", workload, limits=(3, 4, 5, 6, 8), service=service, backend=backend
    )
    by_limit = {r.limit: r for r in reports}
    at = knee(reports)
    assert abs(at.limit - 4) <= 0.4, [(r.limit, r.goodput_per_s) for r in reports]
    assert (by_limit[3].goodput_per_s or 0) < 0.9 * (at.goodput_per_s or 0)
    past = by_limit[8]
    if behaviour == "reject":
        assert past.turned_away > 0
    elif behaviour == "queue":
        assert past.turned_away == 0
        assert (past.call_p95_s or 0) > 1.5 * (at.call_p95_s or 0)
    else:
        assert max(reports, key=lambda r: r.goodput_per_s or 0) is at
        assert (past.goodput_per_s or 0) < 0.75 * (at.goodput_per_s or 0)


def _at(report: Report, limit: int, goodput: float) -> Report:
    """``report`` as if run at ``limit`` with ``goodput``: every call succeeded."""
    return replace(report, limit=limit, makespan_s=report.items / goodput)


# The knee is the smallest limit whose goodput is within 5% of the best; a sweep where
# nothing succeeded has none.
def test_the_knee_rule() -> None:
    base = measure("worker_pool", Workload(4, 0.0, 0.0), limit=1)
    reports = [_at(base, 1, 50), _at(base, 2, 96), _at(base, 3, 100), _at(base, 4, 97)]
    assert knee(reports).limit == 2
    assert knee([reports[0], _at(base, 2, 94.5), _at(base, 3, 99.1)]).limit == 2
    assert knee([reports[0], _at(base, 2, 94.9), _at(base, 3, 100)]).limit == 3
    with pytest.raises(ValueError, match="reports is empty"):
        knee([])
    with pytest.raises(ValueError, match="nothing succeeded"):
        knee([replace(base, makespan_s=0.0)])
    with pytest.raises(ValueError, match="limits is empty"):
        sweep("worker_pool", Workload(2, 0.0, 0.0), limits=[], service=Service(1))


# Little's law: what a run can give at most is min(limit, capacity) calls in flight over the
# mean latency.
def test_littles_law() -> None:
    uniform = Workload(10, 0.02, 0.04)
    report = measure("worker_pool", uniform, limit=2, service=Service(4))
    assert littles_law(report) == pytest.approx(2 / 0.03)
    assert littles_law(replace(report, limit=8)) == pytest.approx(4 / 0.03)
    assert littles_law(replace(report, limit=8, capacity=None)) == pytest.approx(8 / 0.03)
    assert littles_law(replace(report, workload=Workload(10, 0.0, 0.0))) is None


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), console=Console(file=out, width=200), err_console=Console(file=err))
    return status, out.getvalue(), err.getvalue()


# python -m patterns sweep: a row per limit, the knee starred at the capacity, and the sentence
# that reads it; --json gives each behaviour's reports.
def test_the_sweep_command() -> None:
    argv = ["sweep", "--capacity", "4", "--items", "24", "--latency", "0.02", "0.02"]
    status, out, _ = _run(*argv, "--limits", "2", "4", "6", "--service", "degrade", "queue")
    assert status == 0, out
    rows = [line.split("│") for line in out.splitlines() if line.startswith("│")]
    assert [row[1].strip() for row in rows] == ["2", "4", "6"]
    assert [row[3].strip().endswith("*") for row in rows] == [False, True, False]
    assert "Against a capacity of 4: degrade: the knee at 4 (" in out
    assert "queue: the knee at 4 (" in out
    assert "at the capacity" in out
    status, out, _ = _run(*argv, "--limits", "4", "5", "--service", "reject", "--json")
    assert status == 0
    found = json.loads(out)
    assert list(found) == ["reject"]
    assert [r["limit"] for r in found["reject"]] == [4, 5]
    assert found["reject"][0]["turned_away"] == 0 < found["reject"][1]["turned_away"]


# Misuse of the service options: exit 2, one line naming the option, before any work.
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--transport", "tcp", "--service", "queue"], "--service: tcp calls its own"),
        (["compare", "--work", "cpu", "--capacity", "3"], "--capacity: cpu work goes to no"),
        (["compare", "--service", "none", "--capacity", "3"], "--capacity: there is no service"),
        (["compare", "--capacity", "0"], "--capacity: must be >= 1, got 0"),
        (["compare", "--service", "drop"], "--service: invalid choice: 'drop'"),
        (["compare", "--client", "httpx2"], "--client: only with --transport http"),
        (
            ["compare", "--transport", "http", "--client", "aiohttp", "--backend", "trio"],
            "--client: aiohttp does not run on trio",
        ),
        (["sweep", "--limits", "0"], "--limits: must be between 1 and 10000, got 0"),
        (["compare", "--transport", "http", "--work", "cpu"], "--transport: transport http runs"),
        (["sweep", "--latency", "0.2", "0.1"], "LO must not exceed HI"),
        (["sweep", "--capacity", "1001"], "--capacity: must be between 1 and 1000"),
    ],
)
def test_service_misuse(argv: list[str], message: str) -> None:
    status, out, err = _run(*argv)
    assert status == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1


def _children() -> set[int]:
    """This process's child processes, from /proc (every thread's)."""
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            found |= {int(pid) for pid in (task / "children").read_text().split()}
    return found


# compare over real HTTP on every backend: one server process for the run; every bounded
# pattern at the capacity has none turned away, the unbounded one has some; the service's
# counters are each run's own; and no process is left when it is done.
async def test_compare_over_http() -> None:
    pytest.importorskip("uvicorn", reason="the http extra is not installed")
    before = _children()
    workload = Workload(12, 0.005, 0.015)
    reports = await acompare(workload, limit=3, transport="http", service=Service(3))
    by_name = {r.pattern: r for r in reports}
    assert set(by_name) == set(PATTERNS)
    for name, r in by_name.items():
        assert (r.transport, r.client, r.capacity) == ("http", "httpx2", 3)
        assert r.peak_in_service is not None
        assert r.peak_in_service <= 3
        assert r.succeeded + r.turned_away == 12
        if PATTERNS[name].BOUNDED:
            assert r.turned_away == 0, name
    assert by_name["scatter_gather"].turned_away > 0
    assert _children() == before


# The command line over HTTP, with aiohttp on asyncio: the title names the transport and the
# client, and the table the calls turned away.
def test_compare_over_http_with_aiohttp() -> None:
    pytest.importorskip("aiohttp", reason="the http extra is not installed")
    argv = ["compare", "--transport", "http", "--client", "aiohttp", "--items", "8", "--limit", "2"]
    status, out, _ = _run(*argv, "--latency", "0.005", "0.01")
    assert status == 0, out
    assert "over http (aiohttp), against a service that serves 2 at once" in out
    assert "scatter_gather started all 8 at once and had" in out


# A limit above the service's capacity: the bounded patterns went past it too, and the sentence
# says so instead of ranking them by how fast they lost calls.
def test_a_limit_above_the_capacity_is_said() -> None:
    argv = ["compare", "--items", "12", "--latency", "0.005", "0.01", "--limit", "4"]
    status, out, _ = _run(*argv, "--capacity", "2")
    assert status == 0
    assert "a limit of 4 is above the service's capacity of 2: worker_pool had " in out
    assert "finished first" not in out
    status, out, _ = _run(*argv, "--capacity", "2", "--service", "queue")
    assert "worker_pool had up to 2 waiting at the service" in out


# sweep: --service may be given more than once (each counts), and the table fits 80 columns
# whole, with no figure cut.
def test_sweep_options_add_up_and_fit() -> None:
    out = io.StringIO()
    argv = ["sweep", "--capacity", "2", "--items", "6", "--latency", "0.005", "0.005"]
    argv += ["--limits", "1", "2", "3", "--service", "queue", "--service", "reject", "degrade"]
    status = main(
        argv, console=Console(file=out, width=80), err_console=Console(file=io.StringIO())
    )
    assert status == 0
    text = out.getvalue()
    assert "…" not in text
    assert all(len(line) <= 80 for line in text.splitlines() if line[:1] in "┏┃┡│└")
    header = next(line for line in text.splitlines() if line.startswith("┃"))
    assert [h.strip() for h in header.split("┃")[1:-1]] == [
        "limit", "Little/s", "queue/s", "p95 s", "reject/s", "away", "degrade/s", "p95 s"
    ]  # fmt: skip


# Over HTTP, a call the client gives up on (cancelled) is cancelled in the server too: nothing
# is left in service or in its queue, and the next run's counters can start afresh.
async def test_a_call_given_up_is_cancelled_in_the_server() -> None:
    pytest.importorskip("uvicorn", reason="the http extra is not installed")
    from patterns.lab.http import calling, serving

    async with serving(1, behaviour="queue") as served:
        async with calling(served.url, connections=4) as call:
            with anyio.move_on_after(0.3):
                async with anyio.create_task_group() as group:
                    for index in range(3):  # one in service, two in the queue, each of 5 s
                        group.start_soon(call, Item(index, 5.0))
        for _ in range(250):  # 5 s at most: the server hears each hang-up at once
            felt = await served.felt()
            if not (felt.in_service or felt.waiting):
                break
            await anyio.sleep(0.02)
        await served.reset()  # refused (409) while anything is in service or waiting


# The server process killed in the middle of a run: the command line says so in one line,
# exit 1, no traceback, after the rows that had finished.
def test_a_server_killed_mid_run_is_one_line() -> None:
    pytest.importorskip("uvicorn", reason="the http extra is not installed")
    command = [sys.executable, "-m", "patterns", "compare", "--transport", "http"]
    proc = subprocess.Popen(
        [*command, "--latency", "0.3", "0.3", "--items", "4", "--limit", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (servers := _children_of(proc.pid)):
            time.sleep(0.05)
        assert servers, "no server started"
        time.sleep(1.0)  # scatter_gather done (0.3 s), into the bounded patterns
        for pid in servers:
            os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert err.startswith("python -m patterns: error: the run failed: ")
    assert len(err.strip().splitlines()) == 1
    assert "scatter_gather" in out  # the rows that had finished


def _children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found |= {int(child) for child in (task / "children").read_text().split()}
    return found
