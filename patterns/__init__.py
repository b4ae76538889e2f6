"""A cookbook of bounded concurrency: four interchangeable ways to run many slow calls at once.

Every recipe module offers the same two entry points, so any one can be swapped for another::

    from patterns import worker_pool

    async with worker_pool.stream(fetch, urls, limit=10) as results:
        async for page in results:  # in completion order
            ...

    pages = await worker_pool.run(fetch, urls, limit=10)  # all of them, in input order
"""

from __future__ import annotations

# Not even `typing` is imported here: see __getattr__ below. Type checkers read this as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from patterns.core import Outcome, Pattern, collect_errors
    from patterns.registry import PATTERNS, get_pattern

    # The distribution's version, from its installed metadata (pyproject.toml is the one place
    # it is written). Outside an install, reading it raises importlib.metadata's
    # PackageNotFoundError rather than reporting a made-up version.
    __version__: str

__all__ = ["PATTERNS", "Outcome", "Pattern", "collect_errors", "get_pattern"]


def __getattr__(name: str) -> Any:
    # Loaded on first use, not on import: `python -m patterns` imports this package before
    # its __main__ can catch a Ctrl+C, so the less it does here, the shorter that window.
    if name in ("Outcome", "Pattern", "collect_errors"):
        from patterns import core

        return getattr(core, name)
    if name in ("PATTERNS", "get_pattern"):
        from patterns import registry

        return getattr(registry, name)
    if name == "__version__":
        from importlib.metadata import version

        # Kept, so that the metadata is read once.
        globals()["__version__"] = found = version("concurrency-patterns-cookbook")
        return found
    raise AttributeError(f"module 'patterns' has no attribute {name!r}")
