"""The sync work that tests/test_adapters.py sends to worker processes.

A worker process imports a function's module to find it by name: a module of its own, which
imports only the standard library, starts each worker sooner than the test module would
(that one imports pytest and the package: a quarter of a second a worker).
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def double(n: int) -> int:
    return 2 * n


def timed_nap(seconds: float) -> tuple[float, float]:
    """Sleep, and say when: CLOCK_MONOTONIC is one clock for every process on the machine."""
    start = time.monotonic()
    time.sleep(seconds)
    return start, time.monotonic()


def fails_on_three(n: int) -> int:
    if n == 3:
        raise ValueError("three")
    time.sleep(0.005)
    return n


def pid_then_nap(path: str) -> None:
    Path(path).write_text(str(os.getpid()))
    time.sleep(30)


class OddInit(Exception):
    """Rebuilt from pickle as ``OddInit(message)``: a TypeError, its __init__ wants two."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")


def raises_odd(a: int, b: int) -> int:
    raise OddInit(a, b)


def raises_with_note(n: int) -> int:
    error = ValueError(f"bad {n}")
    error.add_note("while testing")
    raise error
