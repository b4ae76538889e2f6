"""What every picture shares: its colours, a figure to draw on, the service's capacity as a
line, and writing the figure to a file in a format matplotlib can write.

matplotlib is imported inside the functions that draw, never on import: the rest of the package
works without the ``plot`` extra.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

OK, SHADE, FAILED, IDEAL = "#4C72B0", "#7A9CCB", "#C44E52", "#55A868"
#: A service's marks: calls it turned away, time calls waited (or were slowed) past its
#: capacity, and the capacity itself.
TURNED_AWAY, WAITED, CAPACITY = "#8C1D6B", "#E1A23B", "#222222"


def figure(**options: Any) -> Figure:
    # A Figure made without pyplot: no global state, no display backend needed, and in
    # Jupyter it shows once, as the cell's value, not again when the cell ends.
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install -e '.[plot]'") from None
    return Figure(layout="constrained", **options)


def capacity_line(ax: Axes, capacity: int, *, linestyle: str, linewidth: float) -> None:
    """The service's capacity across ``ax``, at the height of ``capacity`` calls, labelled
    for the legend as ``service capacity N``."""
    ax.axhline(
        capacity,
        color=CAPACITY,
        linestyle=linestyle,
        linewidth=linewidth,
        label=f"service capacity {capacity}",
    )


def save(fig: Figure, path: str) -> None:
    """Write ``fig`` to ``path``; the format follows the extension (see :func:`check_format`)."""
    fig.savefig(path, dpi=110)


def formats() -> dict[str, str]:
    """The file formats matplotlib can write, by extension, as it names them."""
    from matplotlib.backend_bases import FigureCanvasBase

    return FigureCanvasBase.get_supported_filetypes()


def check_format(path: str) -> str:
    """The format :func:`save` writes ``path`` in, or a ValueError saying why it cannot.

    The extension must be one matplotlib knows; and since some of those need more than
    matplotlib (pgf a TeX install, the bitmaps a Pillow built with them), a tiny figure is drawn
    in that format, in memory, to find out now rather than after the run.
    """
    extension = os.path.splitext(path)[1][1:].lower()
    known = formats()
    if not extension:
        raise ValueError(f"{path} needs an extension naming the format: {', '.join(sorted(known))}")
    if extension not in known:
        raise ValueError(
            f"matplotlib cannot write .{extension} files; choose from: {', '.join(sorted(known))}"
        )
    trial = figure(figsize=(1, 1))
    trial.subplots().set_title("x")
    try:
        trial.savefig(io.BytesIO(), format=extension)
    except Exception as exc:  # whatever the format's writer needs and lacks
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"matplotlib cannot write .{extension} files here: {reason}") from None
    return extension
