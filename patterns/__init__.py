"""A cookbook of bounded concurrency: four interchangeable ways to run many slow calls at once.

Every recipe module offers the same two entry points, so any one can be swapped for another::

    from patterns import worker_pool

    async with worker_pool.stream(fetch, urls, limit=10) as results:
        async for page in results:  # in completion order
            ...

    pages = await worker_pool.run(fetch, urls, limit=10)  # all of them, in input order
"""

from patterns.core import Outcome, Pattern, collect_errors
from patterns.registry import PATTERNS, get_pattern

__all__ = ["PATTERNS", "Outcome", "Pattern", "collect_errors", "get_pattern"]
__version__ = "0.1.0"
