"""Ctrl+C and SystemExit pass through every pattern bare.

On trio a KeyboardInterrupt can surface in any task, so that is where a pattern's task groups
could wrap one: those tests run on trio. asyncio never raises it inside a task (a real Ctrl+C
cancels the main task instead, and one raised by hand in a task escapes the loop before any
task group sees it), so there the command-line test below is the one that counts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import anyio
import pytest

import patterns
from patterns import PATTERNS, Pattern
from patterns.lab.harness import check_backend

from .children import wait_until_waiting

BACKENDS = ["asyncio", "uvloop", "trio"]


# A KeyboardInterrupt from a call comes out as itself, never inside an ExceptionGroup.
@pytest.mark.parametrize("backend", ["trio"])
@pytest.mark.parametrize("name", list(PATTERNS))
@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_interrupt_from_a_call_propagates_bare(
    name: str, backend: str, exc_type: type[BaseException]
) -> None:
    pattern: Pattern = PATTERNS[name]

    async def work(item: int) -> int:
        await anyio.sleep(0.001 if item == 1 else 5)
        if item == 1:
            raise exc_type
        return item

    anyio_backend, options = check_backend(backend)
    with pytest.raises(exc_type) as caught:
        anyio.run(
            partial(pattern.run, work, range(6), limit=3),
            backend=anyio_backend,
            backend_options=options,
        )
    assert type(caught.value) is exc_type


# A real Ctrl+C to the command line: exit status 130 and no traceback, on every backend.
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_exits_130(backend: str) -> None:
    command = [sys.executable, "-m", "patterns", "compare", "--latency", "5", "5"]
    proc = subprocess.Popen(
        [*command, "--backend", backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_waiting(proc.pid)  # past start-up, into the calls
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err


# Ctrl+C during compare: the patterns that had finished are printed, then exit status 130.
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("json_only", [False, True], ids=["table", "json"])
def test_ctrl_c_during_compare_keeps_the_finished_rows(json_only: bool) -> None:
    # scatter_gather takes one latency (0.1 s), then worker_pool 40 of them, one at a time.
    command = [sys.executable, "-m", "patterns", "compare", "--items", "40", "--limit", "1"]
    command += ["--latency", "0.1", "0.1", *(["--json"] if json_only else [])]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_waiting(proc.pid)  # past start-up, scatter_gather under way
        time.sleep(1)  # scatter_gather done, worker_pool under way (with 3 s to go)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    if json_only:
        assert [r["pattern"] for r in json.loads(out)] == ["scatter_gather"]
    else:
        assert "scatter_gather" in out
        assert "worker_pool" not in out
        assert f"Interrupted: 1 of {len(PATTERNS)} patterns had finished." in out


# A Ctrl+C during start-up, while the package is still importing, leaves no traceback of ours.
# (The interpreter's own start-up, before any of our code runs, is out of our hands.)
PACKAGE_DIR = str(Path(patterns.__file__).parent) + os.sep


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_start_up() -> None:
    ours = []
    for delay_ms in range(10, 80, 5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "patterns", "list"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(delay_ms / 1000)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
        finally:
            proc.kill()
        frames = [line for line in err.splitlines() if line.lstrip().startswith("File ")]
        if any(PACKAGE_DIR in frame for frame in frames):
            ours.append((delay_ms, frames[-1]))
    assert ours == [], "(ms after start, last frame) of tracebacks through our code"


def _server_pids(session: int) -> set[int]:
    """Every running ``python -m patterns.lab.http`` process of ``session``: the servers a
    command started (and not another test's, run beside this one by pytest -n 2)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
                # /proc/PID/stat: "pid (comm) state ppid pgrp session ...": comm may hold spaces.
                sid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3])
            except (OSError, ValueError, IndexError):
                continue
            if b"patterns.lab.http" in command and sid == session:
                found.add(int(entry.name))
    return found


# Ctrl+C to the command line over real HTTP, on every backend: exit 130, no traceback, and the
# server process it started is stopped and reaped (the terminal's Ctrl+C reaches the whole
# process group; the server ignores it and is stopped by the command).
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_over_http_leaves_no_server(backend: str) -> None:
    pytest.importorskip("uvicorn", reason="the http extra is not installed")
    command = [sys.executable, "-m", "patterns", "compare", "--transport", "http"]
    proc = subprocess.Popen(
        [*command, "--latency", "5", "5", "--backend", backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # A background job inherits SIGINT ignored; the command must get it as a terminal does.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not _server_pids(proc.pid):
            time.sleep(0.05)
        assert _server_pids(proc.pid), "no server started"
        time.sleep(0.5)  # into the calls
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole group
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert _server_pids(proc.pid) == set()
