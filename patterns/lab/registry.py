"""The registry: every recipe that honours the ``stream``/``run`` contract, by name.

Everything that says "every pattern" (the conformance suite, the copy test, the page tests, the
harness and ``compare``, the command line, the benchmarks, the cost counter) means every entry
here. A new recipe registers by adding one line; docs/developing.md ("Adding a recipe") lists
the three other files it may touch, and tests/test_adding_a_recipe.py keeps that list true.
"""

from __future__ import annotations

from types import ModuleType

from patterns import (
    buffered_ordered,
    buffered_unordered,
    cluster_limit,
    cluster_window,
    processes,
    scatter_gather,
    semaphore,
    threads,
    throttle,
    worker_pool,
)
from patterns.lab.core import Pattern

PATTERNS: dict[str, Pattern] = {
    "scatter_gather": scatter_gather,
    "worker_pool": worker_pool,
    "semaphore": semaphore,
    "buffered_unordered": buffered_unordered,
    "buffered_ordered": buffered_ordered,
    "throttle": throttle,
}

#: The recipes that run on a Dask cluster: the same contract, plus ``address=`` (asyncio only).
CLUSTER_PATTERNS: dict[str, ModuleType] = {
    "cluster_window": cluster_window,
    "cluster_limit": cluster_limit,
}

#: The adapters: recipes that make a sync function into work any pattern runs.
ADAPTERS: dict[str, ModuleType] = {"threads": threads, "processes": processes}


def get_pattern(name: str) -> Pattern:
    """The pattern called ``name``; ``worker-pool`` and ``worker_pool`` are the same name."""
    key = name.strip().lower().replace("-", "_")
    try:
        return PATTERNS[key]
    except KeyError:
        raise KeyError(f"unknown pattern {name!r}; choose from: {', '.join(PATTERNS)}") from None


def summary(pattern: Pattern) -> str:
    """The first line of a recipe's docstring: what it is, in one line."""
    return (pattern.__doc__ or "").strip().splitlines()[0].replace("``", "")
