"""Reports read aloud: the tables and sentences of the command line and the notebooks.

Above the lab, below the command line: ``python -m patterns`` prints these, and a notebook
shows the same tables (rich renders them in Jupyter). They take reports, never run anything.

Use them as ``from patterns.show.present import comparison_table``. Each subject has a module of
its own, its table beside the sentence that reads it aloud:

- :mod:`~patterns.show.present.runs`: a run, and a comparison of patterns (``run``, ``compare``);
- :mod:`~patterns.show.present.sweeps`: a limit sweep against a service (``sweep``);
- :mod:`~patterns.show.present.parallel`: each kind of work by where it ran (``parallel``);
- :mod:`~patterns.show.present.serving`: a server's side (``serve``, ``threads-vs-async``).
"""

from __future__ import annotations

from patterns.show.present.parallel import parallel_sentence, parallel_table
from patterns.show.present.runs import (
    KEEPS_UP,
    PLUMBING_MATTERS_S,
    compare_sentence,
    comparison_table,
    fast_calls_sentence,
    report_table,
)
from patterns.show.present.serving import (
    serve_summary,
    threads_vs_async_sentence,
    threads_vs_async_table,
)
from patterns.show.present.sweeps import sweep_sentence, sweep_table

__all__ = [
    "KEEPS_UP",
    "PLUMBING_MATTERS_S",
    "compare_sentence",
    "comparison_table",
    "fast_calls_sentence",
    "parallel_sentence",
    "parallel_table",
    "report_table",
    "serve_summary",
    "sweep_sentence",
    "sweep_table",
    "threads_vs_async_sentence",
    "threads_vs_async_table",
]
