"""Progress on a terminal while the work runs: a bar per run, and the server's status line.

Both go to stderr and vanish when done (rich's transient display), so that stdout holds only
the report; the command line shows them only on a terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from patterns.server import Counts

#: Told how many results are in and how many calls are in flight, as a run goes.
OnProgress = Callable[[int, int], None]


class progress_bars:
    """A rich progress bar per run, on ``console``, each of ``total`` steps; nothing at all
    unless ``enabled``. Entered, it gives ``on_start(name)``: a new bar's ``on_progress``, or
    None when there is no bar to follow."""

    def __init__(self, console: Console, total: int, enabled: bool) -> None:
        self._total = total
        self._bar: Progress | None = None
        if enabled:
            self._bar = Progress(
                TextColumn("{task.description:<20}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("in flight: {task.fields[in_flight]:>4}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )

    def __enter__(self) -> Callable[[str], OnProgress | None]:
        if self._bar is None:
            return lambda name: None
        self._bar.start()
        return self._start_task

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def tasks(self) -> list[tuple[str, float, float | None, int]]:
        """(name, completed, total, in flight) of each run so far, for tests."""
        if self._bar is None:
            return []
        return [
            (t.description, t.completed, t.total, t.fields["in_flight"]) for t in self._bar.tasks
        ]

    def _start_task(self, name: str) -> OnProgress:
        assert self._bar is not None
        bar = self._bar
        task = bar.add_task(name, total=self._total, in_flight=0)

        def update(done: int, in_flight: int) -> None:
            bar.update(task, completed=done, in_flight=in_flight)

        return update


async def status_line(console: Console, counts: Callable[[], Counts]) -> None:
    """A live line on ``console``, four times a second until cancelled: the connections open,
    served and rejected, as ``counts()`` gives them."""
    import anyio
    from rich.live import Live

    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while True:
            c = counts()
            live.update(f"open {c.open}  served {c.completed}  rejected {c.rejected}")
            await anyio.sleep(0.25)
