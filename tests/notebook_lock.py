"""One lock between the notebooks' execution and the site's build (tests/test_notebooks.py,
tests/test_site.py): run side by side (pytest -n 2), the build waits for the executions the
notebooks test is making, and shows them, instead of executing every notebook again."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK = Path(__file__).parent.parent / "build" / "notebooks.lock"


@contextmanager
def notebooks_lock() -> Iterator[None]:
    """Held while the notebooks are executed and kept, or while the site reads them."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # released when the file closes
        yield
