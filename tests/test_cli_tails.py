"""The command line's edges: every misuse refused before any work runs, every late failure in
one line after the report, and sentences that claim only what was measured."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.abc import TaskStatus

from patterns.lab import threads_vs_async
from patterns.lab.threads_vs_async import Result
from patterns.server import Counts

from .children import first_child, wait_until_waiting
from .test_cli import run

FAST = ["--items", "6", "--latency", "0.001", "0.002", "--limit", "2"]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def assert_refused(argv: list[str], message: str) -> None:
    """Misuse: exit status 2, nothing on stdout, one line on stderr saying ``message``."""
    status, out, err = run(*argv)
    assert status == 2
    assert out == ""
    assert message in one_line(err)


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any run of a pattern, footgun, benchmark or exhibit fails the test: checks come first."""
    import patterns.door.commands
    import patterns.door.serving

    def ran(*args: object, **kwargs: object) -> Any:
        raise AssertionError("the work ran before the arguments were checked")

    for name in ("compare", "measure", "run_on", "run_suite"):
        monkeypatch.setattr(patterns.door.commands, name, ran)
    monkeypatch.setattr(patterns.door.serving, "run_on", ran)
    monkeypatch.setattr(threads_vs_async, "measure", ran)


# --plot: a missing directory, a directory, an unknown or missing extension, an empty name:
# refused in one line naming --plot, before any command that draws runs anything.
@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    "command",
    [["compare"], ["semaphore"], ["footgun", "early-release"]],
    ids=["compare", "pattern", "footgun"],
)
@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/nonexistent/dir/x.png", "no such directory: /nonexistent/dir"),
        ("x.jpgx", "matplotlib cannot write .jpgx files; choose from: "),
        ("noextension", "needs an extension naming the format"),
        ("", "expected a file name"),
        ("DIR", "is a directory"),
    ],
)
def test_plot_target_checked_first(
    command: list[str], target: str, message: str, tmp_path: Path
) -> None:
    if target == "DIR":
        target = str(tmp_path)
    status, out, err = run(*command, "--plot", target)
    assert status == 2
    assert out == ""
    line = one_line(err)
    assert line.startswith("python -m patterns: error: argument --plot: ")
    assert message in line


# The formats offered are matplotlib's own, not a list of ours.
def test_plot_formats_come_from_matplotlib() -> None:
    from matplotlib.backend_bases import FigureCanvasBase

    _, _, err = run("compare", "--plot", "x.jpgx")
    for extension in FigureCanvasBase.get_supported_filetypes():
        assert extension in err


# A format matplotlib lists but cannot write here (pgf without a TeX install) is found out
# before the run, by drawing a tiny figure in it.
@pytest.mark.usefixtures("no_work")
@pytest.mark.skipif(shutil.which("xelatex") is not None, reason="pgf works here")
def test_plot_format_that_cannot_be_written_here() -> None:
    status, _, err = run("compare", "--plot", "x.pgf")
    assert status == 2
    assert "argument --plot: matplotlib cannot write .pgf files here: " in one_line(err)


# Upper-case extensions are what matplotlib accepts too.
def test_plot_upper_case_extension(tmp_path: Path) -> None:
    target = tmp_path / "OUT.PNG"
    status, _, _ = run("semaphore", *FAST, "--plot", str(target))
    assert status == 0
    assert target.read_bytes().startswith(b"\x89PNG")


# A write that fails at the end anyway (here: a full disk) costs nothing already shown: the
# report first, then one line, exit status 1; with --json the JSON is whole.
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("json_output", [False, True])
def test_plot_write_fails_after_the_report(tmp_path: Path, json_output: bool) -> None:
    target = tmp_path / "full.png"
    target.symlink_to("/dev/full")
    extra = ["--json"] if json_output else []
    status, out, err = run("semaphore", *FAST, "--plot", str(target), *extra)
    assert status == 1
    if json_output:
        assert json.loads(out)[0]["pattern"] == "semaphore"
    else:
        assert "of the ideal." in out
    line = one_line(err)
    assert line.startswith(f"python -m patterns: error: cannot write the plot to {target}: ")
    assert line.endswith(": no space left on device")


# bench --output: the same checks, before the benchmarks run.
@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/nonexistent/x.json", "no such directory: /nonexistent"),
        ("DIR", "is a directory"),
        ("", "expected a file name"),
    ],
)
def test_bench_output_checked_first(target: str, message: str, tmp_path: Path) -> None:
    if target == "DIR":
        target = str(tmp_path)
    status, out, err = run("bench", "--scale", "tiny", "--output", target)
    assert status == 2
    assert out == ""
    line = one_line(err)
    assert line.startswith("python -m patterns: error: argument --output: ")
    assert message in line


# bench runs on every backend: one that is not installed is refused before the run, not
# after the minutes of the first scenario.
@pytest.mark.usefixtures("no_work")
def test_bench_needs_every_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n: None if n == "trio" else real(n))
    status, out, err = run("bench", "--scale", "tiny", "--output", os.devnull)
    assert status == 2
    assert out == ""
    assert one_line(err).endswith(
        "backend 'trio' needs the trio package: pip install -e '.[backends]'"
    )


# An output file that exists and cannot be written is refused too (as root, everything can).
@pytest.mark.usefixtures("no_work")
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_bench_output_read_only(tmp_path: Path) -> None:
    target = tmp_path / "ro.json"
    target.write_text("{}")
    target.chmod(0o444)
    status, _, err = run("bench", "--output", str(target))
    assert status == 2
    assert "argument --output: cannot write " in one_line(err)


# The check leaves nothing behind: a file that did not exist still does not.
@pytest.mark.usefixtures("no_work")
def test_output_check_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "new.json"
    with pytest.raises(AssertionError, match="the work ran"):  # the check passed, then the run
        run("bench", "--output", str(target))
    assert not target.exists()


# bench runs pytest-benchmark's suite in bench/, the same one developers run, with its options.
@pytest.mark.parametrize("output", [None, "out.json"])
def test_bench_runs_the_pytest_suite(
    output: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import patterns.door.commands

    seen: list[tuple[list[str], Path]] = []

    def run_suite(argv: list[str], cwd: Path) -> int:
        seen.append((argv, cwd))
        return 0

    monkeypatch.setattr(patterns.door.commands, "run_suite", run_suite)
    argv = ["bench", "--scale", "tiny"]
    if output is not None:
        argv += ["--output", str(tmp_path / output)]
    status, out, err = run(*argv)
    assert (status, out, err) == (0, "", "")
    [(command, cwd)] = seen
    assert command[1:3] == ["-m", "pytest"]
    assert Path(command[3]) == cwd / "bench"
    assert {"--benchmark-only", "--bench-scale=tiny"} <= set(command)
    wanted = [] if output is None else [f"--benchmark-json={tmp_path / output}"]
    assert [arg for arg in command if arg.startswith("--benchmark-json")] == wanted


# A failing benchmark run is exit status 1, its own output having said why.
def test_bench_failure_is_status_1(monkeypatch: pytest.MonkeyPatch) -> None:
    import patterns.door.commands

    monkeypatch.setattr(patterns.door.commands, "run_suite", lambda argv, cwd: 3)
    assert run("bench", "--scale", "tiny")[0] == 1


# Without bench/ (an install from a wheel), bench says where the benchmarks are, in one line.
def test_bench_without_the_suite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import patterns.door.commands

    monkeypatch.setattr(patterns.door.commands, "__file__", str(tmp_path / "patterns" / "cli.py"))
    assert_refused(["bench"], "the benchmarks live in bench/ of a clone")


# threads-vs-async --items: at least 1, at most the documented cap, and what the open-files
# hard limit allows; refused before any child process starts.
@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("items", "message"),
    [
        ("0", "argument --items: threads-vs-async needs at least 1 client, got 0"),
        ("2001", "argument --items: threads-vs-async runs at most 2,000 clients, got 2,001"),
        ("12000", "at most 2,000 clients"),
    ],
)
def test_threads_vs_async_items_range(items: str, message: str) -> None:
    status, out, err = run("threads-vs-async", "--items", items)
    assert status == 2
    assert out == ""
    assert message in one_line(err)


@pytest.mark.usefixtures("no_work")
def test_threads_vs_async_items_within_open_files(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda which: (256, 256))
    status, _, err = run("threads-vs-async", "--items", "100")
    assert status == 2
    line = one_line(err)
    assert "argument --items: threads-vs-async runs at most 96 clients here" in line
    assert "open-files hard limit of 256" in line


@pytest.fixture
def fake_measure(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, float]]:
    """threads_vs_async.measure, recording its calls and answering every client at once."""
    calls: list[tuple[str, int, float]] = []

    def measure(kind: str, clients: int = 100, delay: float = 1.0, **_: object) -> Result:
        calls.append((kind, clients, delay))
        threads = 2 * clients + 2 if kind == "threads" else 1
        return Result(kind, clients, delay, delay + 0.1, clients, threads, 3.0)

    monkeypatch.setattr(threads_vs_async, "measure", measure)
    return calls


# --items 20 means 20 clients, even though 20 is also the patterns' default item count.
def test_threads_vs_async_items_given(fake_measure: list[tuple[str, int, float]]) -> None:
    status, _, _ = run("threads-vs-async", "--items", "20", "--delay", "0.5")
    assert status == 0
    assert fake_measure == [("threads", 20, 0.5), ("async", 20, 0.5)]
    fake_measure.clear()
    assert run("threads-vs-async", "--delay", "0.5")[0] == 0
    assert fake_measure == [("threads", 100, 0.5), ("async", 100, 0.5)]


# A child that fails or hangs anyway: one line saying what happened, exit status 1.
def test_threads_vs_async_child_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from patterns.lab.threads_vs_async import ChildFailed

    def measure(*args: object, **kwargs: object) -> Result:
        raise ChildFailed("the threads side failed: OSError: [Errno 24] Too many open files")

    monkeypatch.setattr(threads_vs_async, "measure", measure)
    status, out, err = run("threads-vs-async", "--items", "5")
    assert status == 1
    assert out == ""
    assert one_line(err) == (
        "python -m patterns: error: threads-vs-async: the threads side failed: "
        "OSError: [Errno 24] Too many open files"
    )


# measure() turns a failed or hung child into ChildFailed naming its last stderr line.
def test_measure_reports_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    from patterns.lab.threads_vs_async import ChildFailed

    def failed(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        stderr = "Traceback (most recent call last):\n  ...\nOSError: too many open files\n\n"
        return subprocess.CompletedProcess(command, 1, "", stderr)

    monkeypatch.setattr(subprocess, "run", failed)
    with pytest.raises(ChildFailed, match=r"^the threads side failed: OSError: too many open"):
        threads_vs_async.measure("threads", 10, 0.1)

    def hung(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    monkeypatch.setattr(subprocess, "run", hung)
    with pytest.raises(ChildFailed, match=r"^the async side did not finish within 5 s"):
        threads_vs_async.measure("async", 10, 0.1, timeout=5)

    def killed(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, -signal.SIGKILL, "", "")

    monkeypatch.setattr(subprocess, "run", killed)
    with pytest.raises(ChildFailed, match=r"^the async side was killed by SIGKILL"):
        threads_vs_async.measure("async", 10, 0.1)


# measure() itself refuses what cannot run, before starting a child.
@pytest.mark.parametrize(
    ("args", "message"),
    [(("threads", 0, 1.0), "clients"), (("threads", 10**6, 1.0), "clients"),
     (("async", 10, -1.0), "delay"), (("async", 10, float("nan")), "delay"),
     (("fibers", 10, 1.0), "kind")],
)  # fmt: skip
def test_measure_refuses_bad_arguments(args: tuple[str, int, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        threads_vs_async.measure(*args)


def _sentence_output(threads: Result, tasks: Result) -> str:
    from patterns.show.present import threads_vs_async_sentence

    return threads_vs_async_sentence([threads, tasks])


# The sentence says "at once" only for a side that held every client open at the same time.
def test_threads_vs_async_sentence_when_threads_fall_behind() -> None:
    threads = Result("threads", 1000, 1.0, 1.52, 577, 1160, 16.04)
    tasks = Result("async", 1000, 1.0, 1.08, 1000, 2, 10.23)
    assert _sentence_output(threads, tasks) == (
        "A thread per connection had at most 577 of the 1,000 clients open at a time and "
        "took 1.52 s, with 1,160 threads at the peak and 16.0 MiB more memory; "
        "async tasks (anyio) served all 1,000 clients at once and took 1.08 s, "
        "with 2 threads at the peak and 10.2 MiB more memory."
    )


def test_threads_vs_async_sentence_when_both_keep_up() -> None:
    threads = Result("threads", 500, 0.5, 0.69, 500, 1002, 16.0)
    tasks = Result("async", 500, 0.5, 0.72, 487, 1, 10.2)
    sentence = _sentence_output(threads, tasks)
    assert sentence == (
        "A thread per connection served all 500 clients at once and took 0.69 s, with 1,002 "
        "threads at the peak and 16.0 MiB more memory; async tasks (anyio) had at most 487 of "
        "the 500 clients open at a time and took 0.72 s, with 1 thread at the peak and 10.2 MiB "
        "more memory."
    )
    assert "Both" not in sentence


# The real thing, small: two child processes, a table and the sentence.
def test_threads_vs_async_runs() -> None:
    status, out, _ = run("threads-vs-async", "--items", "3", "--delay", "0.05")
    assert status == 0
    assert "3 clients, each answered after 0.05 s" in out
    assert "served all 3 clients at once" in out


# serve: --max-delay is checked, then passed to the server.
@pytest.mark.parametrize(
    ("value", "message"),
    [("-1", "must be a finite number >= 0"), ("nan", "must be a finite number"), ("inf", "finite"),
     ("soon", "expected seconds")],
)  # fmt: skip
def test_serve_max_delay_checked(value: str, message: str) -> None:
    status, out, err = run("serve", "--max-delay", value)
    assert status == 2
    assert out == ""
    line = one_line(err)
    assert "argument --max-delay: " in line
    assert message in line


def test_serve_passes_max_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    import patterns.lab.toy

    seen: dict[str, object] = {}
    made = patterns.lab.toy.toy_server

    def recording(**kwargs: Any) -> Any:
        seen.update(kwargs)
        return made(**kwargs)

    monkeypatch.setattr(patterns.lab.toy, "toy_server", recording)
    # An address that cannot be bound: the server is made, then fails at once.
    status, _, _ = run("serve", "--host", "192.0.2.1", "--max-delay", "2.5")
    assert status == 2
    assert seen["max_delay"] == 2.5


# The summary at exit counts every way a connection ended.
def test_serve_summary() -> None:
    from patterns.show.present import serve_summary

    counts = Counts(accepted=9, completed=4, cancelled=2, timed_out=1, failed=2, rejected=3)
    counts.peak_open = 5
    assert serve_summary(counts) == (
        "accepted 9 = completed 4 + cancelled 2 + timed out 1 + failed 2; rejected 3; "
        "at most 5 open at once"
    )


# A failure after the server listened (not the address's fault): the counts, then one line,
# exit status 1.
def test_serve_fails_after_listening(monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import anyio

    import patterns.server

    async def failing(
        self: patterns.server.Server,
        *,
        task_status: TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED,
    ) -> Counts:
        task_status.started(("127.0.0.1", 1))
        raise OSError(errno.ENOBUFS, "No buffer space available")

    monkeypatch.setattr(patterns.server.Server, "serve", failing)
    status, out, err = run("serve", "--port", "0")
    assert status == 1
    assert out.splitlines()[0] == "listening on 127.0.0.1:1"
    assert out.splitlines()[1].startswith("accepted 0 = completed 0 + ")
    assert (
        one_line(err) == "python -m patterns: error: the server stopped: no buffer space available"
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as held:
        yield held.getsockname()[1]


# An address the server cannot listen on: one line naming it and why, exit status 2.
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("problem", ["in use", "no such host", "not ours"])
def test_serve_cannot_listen(backend: str, problem: str, busy_port: int) -> None:
    host, port, reason = {
        "in use": ("127.0.0.1", busy_port, "address already in use"),
        "no such host": ("nosuch.invalid", 8000, ""),
        "not ours": ("192.0.2.1", 8000, "cannot assign requested address"),
    }[problem]
    status, out, err = run("serve", "--host", host, "--port", str(port), "--backend", backend)
    assert status == 2
    assert out == ""
    line = one_line(err)
    assert line.startswith(f"python -m patterns: error: cannot listen on {host}:{port}: ")
    assert reason in line


# The real process: exit status 2 and one line, no ExceptionGroup traceback.
def test_serve_cannot_listen_process(busy_port: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "patterns", "serve", "--port", str(busy_port)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert one_line(proc.stderr) == (
        f"python -m patterns: error: cannot listen on 127.0.0.1:{busy_port}: address already in use"
    )


# Options a command does not use are refused, not silently ignored after a long run.
@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["threads-vs-async", "--plot", "x.png"],
            "argument --plot: threads-vs-async does not take it; it takes --items, --delay, --json",
        ),
        (["threads-vs-async", "--backend", "trio"], "argument --backend: threads-vs-async"),
        (["list", "--limit", "3"], "argument --limit: list does not take it; it takes --json"),
        (["serve", "--json"], "argument --json: serve does not take it"),
        (["serve", "--items", "3"], "argument --items: serve does not take it"),
        (["bench", "--backend", "trio"], "argument --backend: bench does not take it"),
        (["bench", "--json"], "argument --json: bench does not take it"),
        (["compare", "--port", "80"], "argument --port: compare does not take it"),
        (["semaphore", "--output", "x.json"], "argument --output: semaphore does not take it"),
        (["throttle", "--nested"], "argument --nested: throttle does not take it"),
        (["footgun", "--backend", "trio"], "argument --backend: footgun without NAME does not"),
        (["footgun", "early-release", "--limit", "2"], "argument --limit: footgun does not"),
        (["serve", "extra"], "unrecognized argument: extra"),
        (["threads-vs-async", "extra"], "unrecognized argument: extra"),
        (["list", "extra"], "unrecognized argument: extra"),
    ],
)
def test_options_a_command_does_not_take(argv: list[str], message: str) -> None:
    assert_refused(argv, message)


# Values no run could use are refused at once.
@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--latency", "0", "1e308"], "argument --latency: must be between 0 and 3600"),
        (["compare", "--items", "1000001"], "argument --items: must be between 0 and 1000000"),
        (["serve", "--host", ""], "argument --host: expected a host name or an address, got ''"),
        (["serve", "--host", " "], "argument --host: expected a host name or an address"),
        (["serve", "--max-connections", "100000000"], "argument --max-connections: at most"),
    ],
)
def test_values_out_of_range(argv: list[str], message: str) -> None:
    assert_refused(argv, message)


# --transport tcp: every call in flight is a socket on both ends, in this one process; a run
# the open-files hard limit cannot hold is refused before it starts, naming what to lower.
@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["scatter-gather", "--items", "200"], "argument --items: over tcp, scatter_gather holds "
         "200 connections at once, a socket on both ends each; the open-files hard limit of 256 "
         "holds 96"),
        (["compare", "--items", "200"], "argument --items: over tcp, scatter_gather holds 200"),
        (["worker-pool", "--items", "500", "--limit", "200"], "argument --limit: over tcp, the "
         "limit holds 200 connections at once"),
    ],
)  # fmt: skip
def test_tcp_transport_within_open_files(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda which: (256, 256))
    status, out, err = run(*argv, "--transport", "tcp")
    assert status == 2
    assert out == ""
    assert message in one_line(err)


# A run that fails on real sockets anyway: one line, exit status 1, no traceback.
def test_run_fails_on_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    import patterns.door.commands

    def refused(*args: object, **kwargs: object) -> Any:
        error = OSError("All connection attempts failed")
        error.add_note("also failed before the rest were cancelled: OSError(...)")
        raise error

    monkeypatch.setattr(patterns.door.commands, "measure", refused)
    status, out, err = run("semaphore", *FAST, "--transport", "tcp")
    assert status == 1
    assert out == ""
    assert one_line(err) == (
        "python -m patterns: error: the run failed: all connection attempts failed"
    )


# list --json: the patterns as JSON, like every other listing.
def test_list_json() -> None:
    status, out, _ = run("list", "--json")
    assert status == 0
    listing = json.loads(out)
    assert listing[0]["name"] == "scatter_gather"
    assert listing[0]["summary"]


# A reader that goes away (`| head`) ends the command quietly, --json included.
@pytest.mark.parametrize("argv", [["footgun", "--json"], ["list", "--json"]])
def test_closed_pipe(argv: list[str]) -> None:
    read, write = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "patterns", *argv], stdout=write, stderr=subprocess.PIPE, text=True
    )
    os.close(write)
    os.close(read)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err == ""


# Ctrl+C while the command is starting up: 130 and no traceback.
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_threads_vs_async() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "patterns", "threads-vs-async", "--items", "50", "--delay", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until_waiting(first_child(proc.pid))  # past the imports, into the first child
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole process group
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err


# A Ctrl+C inside an import can come out of Python wrapped in another exception (3.11 wraps
# one raised in __set_name__ in a RuntimeError): still an interruption, 130, no traceback.
def test_interrupt_wrapped_by_python(monkeypatch: pytest.MonkeyPatch) -> None:
    import patterns.door.commands

    def wrapped(*args: object, **kwargs: object) -> Any:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance") from exc

    monkeypatch.setattr(patterns.door.commands, "footgun", wrapped)
    status, _, err = run("footgun", "nested-throttle")
    assert status == 130
    assert one_line(err) == "interrupted"


# COLUMNS=0 in the environment: rich would print nothing at all; it counts as unset.
def test_columns_zero() -> None:
    env = {**os.environ, "COLUMNS": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "patterns", "list"],
        capture_output=True, text=True, timeout=30, env=env, check=True,
    )  # fmt: skip
    assert proc.stdout.splitlines()[0].startswith("scatter_gather ")
