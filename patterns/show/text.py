"""How a figure that may be missing reads in a table, a sentence or a picture: ``–`` for none.

Shared by the tables and sentences (:mod:`patterns.show.present`) and the pictures
(:mod:`patterns.show.plots`), so that a missing figure looks the same everywhere.
"""

from __future__ import annotations


def maybe(value: float | None, spec: str, suffix: str = "") -> str:
    """``value`` in ``spec`` (``".1f"``) with ``suffix`` (``"×"``), or ``–`` where it is None."""
    return "–" if value is None else format(value, spec) + suffix


def seconds(value: float | None) -> str:
    """Seconds in a table: three decimals (``0.123``), or ``–`` where there are none."""
    return maybe(value, ".3f")
