"""A test's child process, watched from /proc: when it has started up and waits on its calls.

A test that interrupts a command mid-run must wait until the command is past its start-up; a
fixed sleep long enough for a loaded machine wastes most of itself on a quiet one, where the
start-up takes a quarter of a second.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

#: Asleep this long without using any CPU: waiting (the start-up, importing, is all CPU).
QUIET_S = 0.2


def wait_until_waiting(pid: int, within: float = 20) -> None:
    """Return once process ``pid`` has started up and waits on its calls: asleep in its event
    loop's epoll_wait, as its wchan says, or (a wait the kernel does not name, or one on
    threads) asleep without using any CPU for :data:`QUIET_S`. If the process has ended,
    return: the caller's own checks say how it ended.
    """
    deadline = time.monotonic() + within
    ticks_since: tuple[int, float] | None = None  # CPU ticks used, and since when that many
    while time.monotonic() < deadline:
        try:
            wchan = Path(f"/proc/{pid}/wchan").read_text()
            state, *fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return
        if state in "ZX":  # ended, not yet reaped
            return
        ticks, now = int(fields[10]) + int(fields[11]), time.monotonic()  # utime + stime
        if ticks_since is None or state != "S" or ticks != ticks_since[0]:
            ticks_since = (ticks, now)
        if state == "S" and ("epoll" in wchan or now - ticks_since[1] >= QUIET_S):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} was not waiting on its calls within {within} s")


def first_child(pid: int, within: float = 20) -> int:
    """The first child process ``pid`` starts, once it has started one."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):  # a thread gone meanwhile
                if children := (task / "children").read_text().split():
                    return int(children[0])
        time.sleep(0.01)
    raise AssertionError(f"process {pid} started no child within {within} s")
