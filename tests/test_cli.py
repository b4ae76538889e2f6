"""The command line, read as plain lines through an injected console."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from patterns import PATTERNS
from patterns.door.cli import main
from patterns.lab.harness import Report, measure
from patterns.lab.toy import toy_server
from patterns.lab.workload import Workload
from patterns.show.present import fast_calls_sentence
from patterns.show.progress import progress_bars
from patterns.throttle import Throttle

FAST = ["--items", "12", "--latency", "0.001", "0.003", "--limit", "3"]


# The deadlocking exhibits the commands run give up sooner here (conftest.py).
pytestmark = pytest.mark.usefixtures("sooner_give_up")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(
        list(argv),
        console=Console(file=out, width=200),
        err_console=Console(file=err, width=200),
    )
    return status, out.getvalue(), err.getvalue()


def run_module(*argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "patterns", *argv],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


# list names every registered pattern, one line each.
def test_list() -> None:
    status, out, _ = run("list")
    assert status == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == list(PATTERNS)


# --help lists every command, each with its own options behind `COMMAND --help`.
def test_help_lists_every_command() -> None:
    proc = run_module("--help")
    assert proc.returncode == 0
    for name in ("list", "compare", "bench", "footgun", "serve", "threads-vs-async"):
        assert f"    {name}" in proc.stdout
    for name in PATTERNS:
        assert name.replace("_", "-") in proc.stdout
    proc = run_module("serve", "--help")
    assert "--max-connections" in proc.stdout
    assert "--items" not in proc.stdout


# One pattern: a table of the report and one sentence that reads it; no escape codes.
@pytest.mark.parametrize("name", ["worker_pool", "worker-pool", "buffered-unordered"])
def test_one_pattern(name: str) -> None:
    status, out, _ = run(name, *FAST)
    assert status == 0
    assert "efficiency" in out
    assert "12 items of 0.001–0.003 s took" in out
    assert "3 at a time" in out
    assert "of the ideal." in out
    assert "\x1b[" not in out


# compare: a row per pattern plus the derived serial row, then the sentence.
def test_compare_table() -> None:
    status, out, _ = run("compare", *FAST, "--backend", "trio", "--service", "none")
    assert status == 0
    for name in PATTERNS:
        assert name in out
    assert "serial (derived)" in out
    assert "Bounded to 3 at a time, " in out
    assert "scatter_gather ran 12 at once" in out


# By default compare's calls go to a service whose capacity is the limit, and which turns the
# rest away: the unbounded row shows what that cost, every bounded row lost nothing.
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_compare_shows_what_the_service_felt(backend: str) -> None:
    status, out, _ = run("compare", *FAST, "--backend", backend, "--json")
    assert status == 0
    reports = {r["pattern"]: r for r in json.loads(out)}
    for name, r in reports.items():
        assert r["capacity"] == 3
        assert r["peak_in_service"] <= 3
        assert r["succeeded"] + r["turned_away"] == 12
        if PATTERNS[name].BOUNDED:
            assert r["turned_away"] == 0, name
    assert reports["scatter_gather"]["turned_away"] > 0
    status, out, _ = run("compare", *FAST, "--backend", backend)
    assert "Against a service that serves 3 at once and turns the rest away: " in out
    away = reports["scatter_gather"]["turned_away"]
    assert f"scatter_gather started all 12 at once and had {away} of 12 calls turned away" in out
    assert "and none turned away" in out


# --service queue: nothing is turned away, but the unbounded calls wait at the service, and the
# caller sees it in its latency; --service degrade: every call slower in service.
def test_compare_against_a_queue_and_a_degrading_service() -> None:
    status, out, _ = run("compare", *FAST, "--service", "queue", "--json")
    assert status == 0
    reports = {r["pattern"]: r for r in json.loads(out)}
    unbounded = reports.pop("scatter_gather")
    assert unbounded["turned_away"] == 0
    assert unbounded["peak_waiting"] == 9
    assert unbounded["call_p95_s"] > unbounded["service_p95_s"]
    assert all(r["peak_waiting"] == 0 for r in reports.values())
    status, out, _ = run("compare", *FAST, "--service", "degrade", "--latency", "0.01", "0.01")
    assert status == 0
    assert "scatter_gather ran 12 at once and slowed the service for every call" in out
    assert "0.00 s" not in out  # short calls in figures that do not read as zero


def _reports(latency: float, limit: int, efficiencies: dict[str, float]) -> list[Report]:
    """Real reports of a tiny run, given the efficiencies of the case to read aloud."""
    workload = Workload(items=limit * 2, low=latency, high=latency)
    report = measure("worker_pool", Workload(items=4, low=0.001, high=0.001), limit=2)
    return [
        replace(
            report,
            pattern=name,
            efficiency=eff,
            limit=limit,
            items=workload.items,
            serial_s=latency * workload.items,
            workload=workload,
        )
        for name, eff in efficiencies.items()
    ]


# Fast calls: a bounded pattern under 90% of the ideal is named, with the one that kept up.
def test_fast_calls_sentence_names_the_cheaper_pattern() -> None:
    reports = _reports(0.002, 100, {"semaphore": 0.35, "throttle": 0.33, "worker_pool": 0.92})
    sentence = fast_calls_sentence(reports)
    assert sentence == (
        "At 2 ms a call and 100 in flight, the event loop's own work per call is no longer "
        "noise: throttle 33% of the ideal, semaphore 35%; worker_pool costs less per call and "
        "reached 92%: use it for calls this fast."
    )


# When none keeps up, the sentence says the loop is the bottleneck instead of naming a winner.
def test_fast_calls_sentence_when_none_keeps_up() -> None:
    sentence = fast_calls_sentence(_reports(0.002, 100, {"semaphore": 0.4, "worker_pool": 0.6}))
    assert sentence is not None
    assert "semaphore 40% of the ideal; even worker_pool, the cheapest here, reached 60%" in (
        sentence
    )
    assert "the event loop itself is the bottleneck" in sentence


# Slow calls, or every pattern at 90% or more: the plumbing is noise, and nothing is said.
@pytest.mark.parametrize(
    ("latency", "limit", "efficiency"), [(1.0, 5, 0.5), (0.002, 100, 0.95), (0.02, 100, 0.5)]
)
def test_fast_calls_sentence_is_quiet_otherwise(
    latency: float, limit: int, efficiency: float
) -> None:
    reports = _reports(latency, limit, {"semaphore": efficiency, "worker_pool": efficiency})
    assert fast_calls_sentence(reports) is None


# compare on fast calls says it exactly when a bounded pattern fell below 90% of the ideal.
def test_compare_on_fast_calls() -> None:
    argv = ["compare", "--items", "2000", "--latency", "0.001", "0.003", "--limit", "100"]
    argv += ["--service", "none"]  # the table with the efficiency column in third place
    status, out, _ = run(*argv)
    assert status == 0
    # The table's rows: pattern, time, efficiency, ...; scatter_gather is unbounded.
    rows = [line.split("│") for line in out.splitlines() if line.startswith("│")]
    efficiency = {row[1].strip(): float(row[3].strip(" %")) / 100 for row in rows}
    assert set(efficiency) == {*PATTERNS, "serial (derived)"}
    bounded = [e for name, e in efficiency.items() if name in PATTERNS and PATTERNS[name].BOUNDED]
    said = "the event loop's own work per call is no longer noise" in out
    if all(abs(e - 0.9) > 0.001 for e in bounded):  # the table rounds to 0.1%
        assert said == any(e < 0.9 for e in bounded), out


# compare on an 80-column terminal: every pattern's name and every figure whole, no ellipsis;
# with a service or without.
@pytest.mark.parametrize("width", [80, 100, 200])
@pytest.mark.parametrize("service", ["none", "reject"])
def test_compare_table_fits_the_terminal(width: int, service: str) -> None:
    out = io.StringIO()
    status = main(
        ["compare", *FAST, "--failure-rate", "0.3", "--service", service],
        console=Console(file=out, width=width),
        err_console=Console(file=io.StringIO()),
    )
    assert status == 0
    table = [line for line in out.getvalue().splitlines() if line[:1] in "┏┃┡│└"]
    assert all(len(line) <= width for line in table)
    assert "…" not in out.getvalue()
    rows = [line.split("│")[1].strip() for line in table if line.startswith("│")]
    assert rows == [*PATTERNS, "serial (derived)"]
    header = next(line for line in table if line.startswith("┃"))
    if service == "none":
        for column in ("time s", "peak", "p95 s", "speedup", "failed"):
            assert column in header
        assert ("mean conc." in header) == (width >= 130)
    else:
        for column in ("time s", "goodput/s", "away", "call p95", "failed"):
            assert column in header
        assert ("svc p95 s" in header) == (width >= 130)


# --json prints only JSON: a list of report objects with the documented keys.
def test_json() -> None:
    status, out, _ = run(
        "compare", *FAST, "--json", "--failure-rate", "0.3", "--seed", "4", "--service", "none"
    )
    assert status == 0
    reports = json.loads(out)
    assert [r["pattern"] for r in reports] == list(PATTERNS)
    for report in reports:
        assert report["items"] == 12
        assert report["limit"] == 3
        assert report["failed"] > 0
        assert report["peak_concurrency"] == (12 if report["pattern"] == "scatter_gather" else 3)


# Misuse: exit 2, one line on stderr naming the problem, nothing on stdout.
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nosuch"], "unknown command 'nosuch' (choose from: list, compare, scatter-gather, "),
        (["worker-poo"], "unknown command 'worker-poo'; did you mean 'worker-pool'? (choose"),
        (["Worker-Pool"], "unknown command 'Worker-Pool'; did you mean 'worker-pool'? (choose"),
        (["worker-pool", "--limit", "0"], "--limit: must be >= 1, got 0"),
        (["compare", "--limit", "two"], "--limit: expected a whole number"),
        (["compare", "--latency", "2", "1"], "LO must not exceed HI"),
        (["compare", "--failure-rate", "2"], "--failure-rate: must be between 0 and 1"),
        (["compare", "--backend", "curio"], "--backend: invalid choice"),
        (["compare", "--items", "-1"], "--items: must be between 0 and 1000000, got -1"),
        (["compare", "--latency", "0", "inf"], "--latency: must be between 0 and 3600, got inf"),
        (["compare", "--seed", "x"], "--seed: invalid int value"),
        (["throttle", "--nested"], "argument --nested: throttle does not take it; it takes"),
        (["footgun", "nosuch"], "unknown footgun 'nosuch'; choose from: early-release"),
        (["compare", "extra"], "unrecognized argument: extra"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_misuse(argv: list[str], message: str) -> None:
    status, out, err = run(*argv)
    assert status == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err


# One check, one message: the CLI says of an option what the library says of its argument.
@pytest.mark.parametrize(
    ("argv", "build"),
    [
        (["worker-pool", "--limit", "0"], lambda: Throttle(0)),
        (["compare", "--failure-rate", "2"], lambda: Workload(failure_rate=2)),
        (["serve", "--drain", "-1"], lambda: toy_server(drain=-1)),
        (["serve", "--max-connections", "0"], lambda: toy_server(max_connections=0)),
        (["serve", "--idle-timeout", "-1"], lambda: toy_server(idle_timeout=-1)),
        (["serve", "--max-line", "7"], lambda: toy_server(max_line=7)),
    ],
)
def test_cli_and_library_say_the_same(argv: list[str], build: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=r"\w+ must be ") as raised:
        build()
    _, said = str(raised.value).split(" ", 1)  # "max_concurrency must be >= 1" -> "must be..."
    status, _, err = run(*argv)
    assert status == 2
    assert err.rstrip().endswith(f": {said}")


# The real entry point: exit status 2, one line, no traceback.
@pytest.mark.parametrize("argv", [["nosuch"], ["worker-pool", "--limit", "0"]])
def test_module_misuse(argv: list[str]) -> None:
    proc = run_module(*argv)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


# The source article's nested example is the nested-throttle exhibit: deadlocked, then fixed.
def test_nested_throttle_exhibit() -> None:
    status, out, _ = run("footgun", "nested-throttle")
    assert status == 0
    assert "broken: deadlocked: 0 of 15 calls finished" in out
    assert "fixed:" in out


# footgun lists the exhibits; footgun NAME runs one and says what went wrong and why.
def test_footgun_command() -> None:
    status, out, _ = run("footgun")
    assert status == 0
    assert len(out.strip().splitlines()) >= 5
    status, out, _ = run("footgun", "push_before_drive")
    assert status == 0
    assert "broken: deadlocked" in out
    assert "fixed:  all 10 calls done" in out
    assert "why:" in out


# footgun honours --backend, --json and --plot like every command.
def test_footgun_and_nested_options(tmp_path: Path) -> None:
    status, out, _ = run("footgun", "early-release", "--backend", "trio", "--json")
    assert status == 0
    result = json.loads(out)
    assert result["backend"] == "trio"
    assert result["broken"]["ok"] is False
    assert result["fixed"]["ok"] is True
    listing = json.loads(run("footgun", "--json")[1])
    assert [e["name"] for e in listing][:2] == ["early-release", "unclosed-channel"]
    target = tmp_path / "stuck.png"
    status, _, _ = run("footgun", "nested-throttle", "--plot", str(target))
    assert status == 0
    assert target.read_bytes().startswith(b"\x89PNG")
    status, out, _ = run("footgun", "nested-throttle", "--json", "--backend", "uvloop")
    assert status == 0
    nested = json.loads(out)
    assert (nested["broken"]["ok"], nested["fixed"]["ok"]) == (False, True)


# --plot writes a picture; compare draws every pattern's timeline.
@pytest.mark.parametrize("command", ["compare", "semaphore"])
def test_plot(command: str, tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    status, _, err = run(command, *FAST, "--plot", str(target))
    assert status == 0
    assert target.read_bytes().startswith(b"\x89PNG")
    assert "Plot written to" in err


# A footgun's timeline: one shape per span, what is stuck in red, every row of a long run kept.
def test_spans_are_drawn_by_colour() -> None:
    import numpy as np
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure

    from patterns.show import plots

    spans = [(f"call {i}", i * 0.001, i * 0.001 + 0.01) for i in range(5_000)]
    spans.append(("call 5000 (stuck)", 0.0, 1.0))
    ax = Figure().subplots()
    plots.spans(spans, ax)
    drawn = {
        tuple(np.asarray(c.get_facecolor())[0].round(3)): len(c.get_paths()) for c in ax.collections
    }
    ok, failed = (tuple(np.round(to_rgba(c), 3)) for c in (plots.OK, plots.FAILED))
    assert drawn == {ok: 5_000, failed: 1}
    assert ax.get_ylim() == (5_001, 0)


# A footgun's figure names the exhibit, and its legend explains the red when there is red.
def test_footgun_figure_has_a_title_and_a_legend() -> None:
    from patterns.show import plots

    stuck = [("outer 0 (stuck)", 0.0, 1.0)]
    fine = [("outer 0", 0.0, 0.1)]
    fig = plots.verdicts(stuck, fine, "Nested calls through one plain semaphore")
    assert fig.get_suptitle() == "Nested calls through one plain semaphore"
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "a call at work",
        "stuck, blocking, timed out or turned away",
    ]
    (legend,) = plots.verdicts(fine, fine, "fine").legends
    assert [t.get_text() for t in legend.get_texts()] == ["a call at work"]


# Forty rows or five thousand, the labelled rows are few enough not to overlap.
@pytest.mark.parametrize("rows", [3, 40, 5_000])
def test_span_labels_do_not_overlap(rows: int) -> None:
    from matplotlib.figure import Figure

    from patterns.show import plots

    ax = Figure(figsize=(10, 3)).subplots()
    plots.spans([(f"call {i}", 0.0, 1.0) for i in range(rows)], ax)
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert labels[0] == "call 0"
    assert len(labels) == min(rows, len(labels)) <= 16


# A footgun that samples what it holds gets a third row: items held and memory, both versions.
def test_footgun_figure_with_gauges() -> None:
    from patterns.show import plots

    fine = [("call 0", 0.0, 0.1)]
    gauges = ([(0.0, 0, 0.0), (0.1, 500, 3.0)], [(0.0, 0, 0.0), (0.1, 5, 0.0)])
    fig = plots.verdicts(fine, fine, "held", gauges=gauges)
    held, memory = fig.axes[2:]
    assert [line.get_label() for line in held.get_lines()] == ["broken", "fixed"]
    assert list(held.get_lines()[0].get_ydata()) == [0, 500]  # type: ignore[arg-type]
    assert memory.get_ylabel() == "MiB held"
    assert len(plots.verdicts(fine, fine, "no gauges").axes) == 2


# The latency histogram's bins fit the latencies: uniform 0.5-1.5 s over 20 items reads as
# several bars, not two, however long the run's time to result.
def test_latency_bins_fit_the_data() -> None:
    from matplotlib.patches import Rectangle

    from patterns.show import plots

    report = measure("worker_pool", Workload(items=20, low=0.05, high=0.15), limit=2)
    fig = plots.report_figure(report)
    latency = next(ax for ax in fig.axes if ax.get_xlabel().startswith("item latency"))
    bars = [p for p in latency.patches if isinstance(p, Rectangle) and p.get_height() > 0]
    assert len(bars) >= 4


# Without matplotlib, --plot fails at once, in one line naming the extra to install.
def test_plot_without_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n: None if n == "matplotlib" else real(n)
    )
    status, out, err = run("compare", *FAST, "--plot", "x.png")
    assert status == 2
    assert out == ""
    assert (
        err.strip()
        == "python -m patterns: error: --plot needs matplotlib: pip install -e '.[plot]'"
    )


# On a terminal, the progress bar counts results and calls in flight as the run goes.
def test_progress_bar_follows_the_run() -> None:
    bar = progress_bars(Console(file=io.StringIO(), force_terminal=True), total=20, enabled=True)
    with bar as on_start:
        update = on_start("worker_pool")
        assert update is not None
        update(7, 5)
        assert bar.tasks() == [("worker_pool", 7, 20, 5)]


# Off a terminal there is no bar at all.
def test_no_progress_bar_when_disabled() -> None:
    with progress_bars(Console(file=io.StringIO()), total=20, enabled=False) as on_start:
        assert on_start("worker_pool") is None


# NO_COLOR and a pipe give plain output.
def test_plain_output_when_piped() -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "patterns", "semaphore", *FAST],
        capture_output=True, text=True, timeout=60, env=env, check=True,
    )  # fmt: skip
    assert "\x1b[" not in proc.stdout
    assert "of the ideal." in proc.stdout


# parallel: every kind of work in every place it can run, one table, one sentence that reads it.
def test_parallel_prints_the_table_and_reads_it() -> None:
    status, out, _ = run("parallel", "--items", "4", "--latency", "0.01", "0.02", "--limit", "2")
    assert status == 0
    rows = [line for line in out.splitlines() if line.startswith("│")]
    places = [(row.split("│")[1].strip(), row.split("│")[2].strip()) for row in rows]
    assert places == [
        ("I/O (awaited)", "the event loop"),
        ("blocking calls", "the event loop"),
        ("blocking calls", "threads"),
        ("blocking calls", "processes"),
        ("CPU-bound Python", "the event loop"),
        ("CPU-bound Python", "threads"),
        ("CPU-bound Python", "processes"),
    ]
    assert "CPU-bound Python: threads " in out
    assert "(the GIL), processes " in out


# parallel --json: a report per case, with where it ran, its CPU and its measured speedup; the
# processes' CPU is counted (more than one core busy where there are two).
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to keep two busy")
def test_parallel_json_counts_the_workers_cpu() -> None:
    status, out, _ = run(
        "parallel", "--items", "8", "--latency", "0.05", "0.05", "--limit", "2", "--json"
    )
    assert status == 0
    reports = {(r["work"], r["run_in"]): r for r in json.loads(out)}
    assert len(reports) == 7
    # In CPU seconds against the same work on the loop, not in cores busy: another process on
    # the machine changes how many cores were free, not how much CPU the work took.
    on_the_loop = reports[("cpu", "loop")]["cpu_s"]
    assert on_the_loop > 0.1
    assert reports[("cpu", "processes")]["cpu_s"] > 0.6 * on_the_loop  # the workers', counted
    assert reports[("blocking", "threads")]["cpu_s"] < 0.5 * on_the_loop  # sleeping burns none
    assert reports[("cpu", "loop")]["speedup_measured"] == pytest.approx(1.0)
    assert reports[("blocking", "threads")]["speedup_measured"] > 1.5


# --work and --run-in reach the pattern commands; a mismatch is refused in one line.
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["worker-pool", "--run-in", "threads"], "argument --run-in: io work awaits"),
        (["compare", "--work", "cpu", "--transport", "tcp"], "argument --transport: transport tcp"),
        (["parallel", "--latency", "2", "1"], "argument --latency: LO must not exceed HI"),
        (["parallel", "--pattern", "scatter-gather"], "argument --pattern: invalid choice"),
        (["parallel", "--plot", "x.png"], "argument --plot: parallel does not take it"),
    ],
)
def test_work_options_misuse(argv: list[str], message: str) -> None:
    status, out, err = run(*argv)
    assert (status, out) == (2, "")
    assert message in err


# A pattern's own command runs blocking work in threads, and says so in its JSON.
def test_pattern_command_runs_blocking_work_in_threads() -> None:
    status, out, _ = run("semaphore", *FAST, "--work", "blocking", "--json")
    assert status == 0
    (report,) = json.loads(out)
    assert (report["work"], report["run_in"], report["peak_concurrency"]) == (
        "blocking",
        "threads",
        3,
    )


# --workload, --transport's old name, and sleep, simulated's: each still works, after one
# warning line naming the new spelling; the run and its exit status are as with the new one.
@pytest.mark.parametrize(
    ("old", "new", "warning"),
    [
        (["--workload", "tcp"], "tcp", "--workload is deprecated; use --transport"),
        (["--workload=simulated"], "simulated", "--workload is deprecated; use --transport"),
        (
            ["--transport", "sleep"],
            "simulated",
            "--transport sleep is deprecated; use --transport simulated",
        ),
        (
            ["--workload", "sleep"],
            "simulated",
            "--workload sleep is deprecated; use --transport simulated",
        ),
    ],
)
def test_deprecated_transport_spellings(old: list[str], new: str, warning: str) -> None:
    status, out, err = run("semaphore", *FAST, "--service", "none", *old, "--json")
    assert status == 0
    assert err.splitlines() == [f"python -m patterns: warning: {warning}"]
    (report,) = json.loads(out)
    assert report["transport"] == new
    assert report["succeeded"] == 12


# The new spelling says nothing more; sweep takes the old ones too; --help shows only the new.
def test_transport_new_spelling_and_help() -> None:
    status, _, err = run("semaphore", *FAST, "--transport", "simulated", "--json")
    assert (status, err) == (0, "")
    argv = ["sweep", "--items", "4", "--latency", "0.001", "0.001", "--limits", "2"]
    status, out, err = run(*argv, "--service", "reject", "--workload", "sleep", "--json")
    assert status == 0
    assert err == (
        "python -m patterns: warning: --workload sleep is deprecated; use --transport simulated\n"
    )
    assert json.loads(out)["reject"][0]["transport"] == "simulated"
    for command in ("compare", "sweep"):
        proc = run_module(command, "--help")
        assert "--transport {simulated," in proc.stdout
        assert "--workload" not in proc.stdout
        assert "{sleep" not in proc.stdout
        assert ",sleep" not in proc.stdout


# Misuse with an old spelling is still misuse: exit status 2, and the choices listed are the new.
def test_deprecated_transport_misuse() -> None:
    status, out, err = run("compare", "--workload", "udp")
    assert (status, out) == (2, "")
    assert err.splitlines() == [
        "python -m patterns: error: argument --workload: invalid choice: 'udp' (choose from "
        "'simulated', 'tcp', 'http')"
    ]
    status, _, err = run("compare", "--workload", "tcp", "--work", "cpu")
    assert status == 2
    assert err.splitlines()[-1] == (
        "python -m patterns: error: argument --transport: transport tcp runs io work, not cpu"
    )


# Both spellings at once are refused, whichever comes first: which one did the user mean?
@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--workload", "sleep", "--transport", "tcp"], "--transport: not allowed with --workload"),
        (["--transport", "tcp", "--workload=http"], "--workload: not allowed with --transport"),
    ],
)
def test_old_and_new_transport_spellings_together(argv: list[str], said: str) -> None:
    status, out, err = run("worker-pool", *argv)
    assert (status, out) == (2, "")
    assert (
        err.splitlines()[-1]
        == f"python -m patterns: error: argument {said}: give --transport alone"
    )


# adapt: misuse is one line and exit status 2, found before any run (none of these starts one:
# a run would take seconds, and print a table).
@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--rounds", "0"], "argument --rounds: must be between 1 and 9, got 0"),
        (["--scale", "0"], "argument --scale: must be between 0.1 and 10, got 0"),
        (["--rows", "fixed 7"], "argument --rows: invalid choice: 'fixed 7'"),
        (["--backend", "tokio"], "argument --backend: invalid choice: 'tokio'"),
        (["--transport", "simulated", "--client", "httpx"], "--client: only with --transport http"),
        (["--client", "aiohttp", "--backend", "trio"], "--client: aiohttp does not run on trio"),
        (["--plot", "picture.nope"], "matplotlib cannot write .nope files"),
        (["--limit", "5"], "argument --limit: adapt does not take it"),
    ],
)
def test_adapt_misuse(argv: list[str], said: str) -> None:
    status, out, err = run("adapt", *argv)
    assert status == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert said in err


# adapt, tiny: its JSON holds each row's median run and share, every run, and the verdict the
# sentence reads; the oracle is measured even when not asked for.
def test_adapt_json() -> None:
    argv = ["--backend", "trio", "--transport", "simulated", "--rows", "fixed 5"]
    status, out, _ = run("adapt", *argv, "--rounds", "1", "--scale", "0.1", "--json")
    assert status == 0
    data = json.loads(out)
    assert [r["row"] for r in data["rows"]] == ["oracle", "fixed 5"]
    assert len(data["runs"]) == 2
    assert data["rows"][0]["share"] == 1.0
    assert 0 < data["rows"][1]["share"] < 1
    assert data["verdict"]["held"] == ["fixed 5 (trio, simulated) falls short"]
    assert "fixed 5 left capacity idle" in data["sentence"]


# --adaptive: an ordinary run with a limit that adapts, up to --limit; its sentence says so.
def test_adaptive_run() -> None:
    argv = ["--items", "40", "--latency", "0.005", "0.005", "--limit", "12", "--capacity", "4"]
    status, out, _ = run("worker-pool", *argv, "--adaptive", "gradient")
    assert status == 0
    assert "up to 12 at a time, the limit adapting (Gradient: 4 at the start" in out
    status, _, err = run("worker-pool", "--adaptive", "vegas")
    assert status == 2
    assert "argument --adaptive: invalid choice: 'vegas'" in err
    # compare's sentence: the limit moved, so not "a limit of 12 is above the capacity".
    status, out, _ = run("compare", *argv, "--adaptive", "aimd")
    assert status == 0
    assert "a limit adapting (AIMD, up to 12) probed past the service's capacity of 4" in out
    assert "a limit of 12 is above" not in out
