"""A server's side read aloud: how ``serve``'s connections ended, and a thread per connection
against async tasks (``threads-vs-async``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:
    from patterns.lab.threads_vs_async import Result
    from patterns.server import Counts


def serve_summary(counts: Counts) -> str:
    """The line ``serve`` prints at exit: how every accepted connection ended."""
    c = counts
    return (
        f"accepted {c.accepted} = completed {c.completed} + cancelled {c.cancelled} + "
        f"timed out {c.timed_out} + failed {c.failed}; rejected {c.rejected}; "
        f"at most {c.peak_open} open at once"
    )


def threads_vs_async_table(results: Sequence[Result]) -> Table:
    """Both sides, a row each: makespan, sockets and threads at the peak, memory."""
    first = results[0]
    table = Table(title=f"{first.clients:,} clients, each answered after {first.delay_s:g} s")
    headers = ("served by", "makespan s", "peak open sockets", "peak threads", "RSS growth MiB")
    for header in headers:
        table.add_column(header, justify="left" if header == "served by" else "right")
    for r in results:
        table.add_row(
            _served_by(r),
            f"{r.makespan_s:.2f}",
            f"{r.peak_open:,}",
            f"{r.peak_threads:,}",
            f"{r.rss_growth_mib:.1f}",
        )
    return table


def _served_by(result: Result) -> str:
    return "a thread per connection" if result.kind == "threads" else "async tasks (anyio)"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def threads_vs_async_sentence(results: Sequence[Result]) -> str:
    """What each side measured, and nothing it did not: "at once" only for a side whose
    server held every client open at the same moment."""
    parts = []
    for r in results:
        if r.peak_open >= r.clients:
            held = (
                f"served all {r.clients:,} clients at once"
                if r.clients > 1
                else "served its one client"
            )
        else:
            held = f"had at most {r.peak_open:,} of the {r.clients:,} clients open at a time"
        parts.append(
            f"{_served_by(r)} {held} and took {r.makespan_s:.2f} s, with "
            f"{_plural(r.peak_threads, 'thread')} at the peak and {r.rss_growth_mib:.1f} MiB "
            "more memory"
        )
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]
