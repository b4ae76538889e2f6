"""Footguns, each a broken and a fixed version side by side, runnable and tested.

One module per exhibit, after trio's ``channels-mpmc-broken.py`` / ``-fixed.py``: ``broken()``
and ``fixed()`` run the same scenario and return a :class:`Verdict`, what was measured. The
broken one is bounded by a timeout, so it reports what went wrong instead of hanging, and it
cleans up after itself. ``python -m patterns footgun NAME`` runs one. What an exhibit is made
of (:class:`Exhibit`, :class:`Instrument`, :class:`Verdict`) is :mod:`patterns.footguns.exhibit`'s,
named here too.
"""

from __future__ import annotations

from patterns.footguns.exhibit import Exhibit, Gauges, Instrument, Spans, Verdict

__all__ = ["Exhibit", "Gauges", "Instrument", "Spans", "Verdict", "exhibits"]


def exhibits() -> dict[str, Exhibit]:
    """Every exhibit by name, in the order of the source articles."""
    from patterns.footguns import (
        blocking_call,
        busy_poll,
        client_bottleneck,
        cpu_hog,
        default_thread_limit,
        early_release,
        limiter_per_task,
        nested_throttle,
        one_at_a_time,
        push_before_drive,
        retry_holding,
        retry_storm,
        retry_waves,
        timeout_around_wait,
        two_limits,
        unbounded_capacity,
        unbounded_gather,
        unclosed_channel,
    )

    modules = (
        early_release,
        unclosed_channel,
        push_before_drive,
        nested_throttle,
        blocking_call,
        cpu_hog,
        default_thread_limit,
        one_at_a_time,
        busy_poll,
        unbounded_gather,
        limiter_per_task,
        unbounded_capacity,
        timeout_around_wait,
        two_limits,
        client_bottleneck,
        retry_holding,
        retry_waves,
        retry_storm,
    )
    return {module.EXHIBIT.name: module.EXHIBIT for module in modules}
