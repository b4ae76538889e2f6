"""Footguns, each a broken and a fixed version side by side, runnable and tested.

One module per exhibit, after trio's ``channels-mpmc-broken.py`` / ``-fixed.py``: ``broken()``
and ``fixed()`` run the same scenario and return a :class:`Verdict`, what was measured. The
broken one is bounded by a timeout, so it reports what went wrong instead of hanging, and it
cleans up after itself. ``python -m patterns footgun NAME`` runs one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verdict:
    """What one version did: whether it behaved, the measured sign, and its timeline."""

    ok: bool
    observed: str
    #: (label, start, end) in seconds from the start, for a picture of the run.
    spans: tuple[tuple[str, float, float], ...] = field(default=(), repr=False)


class Timeline:
    """Collects (label, start, end) spans, in seconds from its creation, for a Verdict."""

    def __init__(self) -> None:
        self._origin = time.perf_counter()
        self.spans: list[tuple[str, float, float]] = []

    def now(self) -> float:
        return time.perf_counter() - self._origin

    def add(self, label: str, start: float, end: float | None = None) -> None:
        self.spans.append((label, start, self.now() if end is None else end))

    def frozen(self) -> tuple[tuple[str, float, float], ...]:
        return tuple(sorted(self.spans, key=lambda span: span[1]))


@dataclass(frozen=True)
class Exhibit:
    """A footgun: what goes wrong, why, and where the lesson comes from."""

    name: str
    title: str
    article: str
    why: str
    broken: Callable[[], Awaitable[Verdict]]
    fixed: Callable[[], Awaitable[Verdict]]


def exhibits() -> dict[str, Exhibit]:
    """Every exhibit by name, in the order of the source articles."""
    from patterns.footguns import (
        blocking_call,
        early_release,
        limiter_per_task,
        nested_throttle,
        push_before_drive,
        unbounded_gather,
        unclosed_channel,
    )

    modules = (
        early_release,
        unclosed_channel,
        push_before_drive,
        nested_throttle,
        blocking_call,
        unbounded_gather,
        limiter_per_task,
    )
    return {module.EXHIBIT.name: module.EXHIBIT for module in modules}
