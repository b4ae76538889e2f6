"""Pictures of a run: when each call started and ended, how many were in flight, where time went.

Every function draws from the lab's reports onto a matplotlib ``Axes`` you pass in (or a figure
it makes), so the same code serves the command line (``--plot FILE.png``) and notebooks.
matplotlib comes with the ``plot`` extra: ``pip install -e '.[plot]'``; it is imported only
where a picture is drawn.

Use them as ``from patterns.show import plots`` then ``plots.<name>``. Each picture has a module
of its own, read top to bottom:

- :mod:`~patterns.show.plots.timelines`: a run's timeline, and what a service adds to it;
- :mod:`~patterns.show.plots.runs`: one run's figure (``run --plot``);
- :mod:`~patterns.show.plots.compare`: every pattern's timeline on one axis (``compare``);
- :mod:`~patterns.show.plots.sweeps`: throughput against the limit, and how much to bound;
- :mod:`~patterns.show.plots.parallel`: concurrency against parallelism, by kind of work;
- :mod:`~patterns.show.plots.exhibits`: a footgun, broken above fixed;
- :mod:`~patterns.show.plots.canvas`: what they share (colours, the figure, saving it).
"""

from __future__ import annotations

from patterns.show.plots.canvas import (
    CAPACITY,
    FAILED,
    IDEAL,
    OK,
    SHADE,
    TURNED_AWAY,
    WAITED,
    check_format,
    figure,
    formats,
    save,
)
from patterns.show.plots.compare import SAME_WITHIN, compare_figure, runs_alike, same_run
from patterns.show.plots.exhibits import spans, verdicts
from patterns.show.plots.parallel import NO_FASTER, parallel_figure, parallel_ideal
from patterns.show.plots.runs import (
    arrival_distribution,
    concurrency,
    latency_distribution,
    report_figure,
)
from patterns.show.plots.sweeps import BEHAVIOUR_COLOURS, REFERENCE, limit_sweep, sweep
from patterns.show.plots.timelines import (
    EXTRA_FLOOR,
    EXTRA_SHARE,
    beyond_latency,
    timeline,
    turned_away,
)

__all__ = [
    "BEHAVIOUR_COLOURS",
    "CAPACITY",
    "EXTRA_FLOOR",
    "EXTRA_SHARE",
    "FAILED",
    "IDEAL",
    "NO_FASTER",
    "OK",
    "REFERENCE",
    "SAME_WITHIN",
    "SHADE",
    "TURNED_AWAY",
    "WAITED",
    "arrival_distribution",
    "beyond_latency",
    "check_format",
    "compare_figure",
    "concurrency",
    "figure",
    "formats",
    "latency_distribution",
    "limit_sweep",
    "parallel_figure",
    "parallel_ideal",
    "report_figure",
    "runs_alike",
    "same_run",
    "save",
    "spans",
    "sweep",
    "timeline",
    "turned_away",
    "verdicts",
]
