"""Figure layout in inches: panel grids, margins that fit their labels, wrapped titles.

Margins are computed from text lengths instead of a layout engine: a layout pass costs a draw
per figure, and the report draws each figure twice already (PNG and SVG).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "Grid",
    "add_titles",
    "hide_unused",
    "no_data",
    "text_width",
    "title_height",
    "unshown_note",
    "wrap",
]

_STYLE = {"axes.grid": True, "grid.alpha": 0.4}
_CHAR_EM = 0.62  # average glyph width of DejaVu Sans in em, a little generous


def text_width(text: str, fontsize: float = 10.0) -> float:
    """Estimated width of one line of ``text`` in inches."""
    return len(text) * _CHAR_EM * fontsize / 72


def wrap(text: str, width_in: float, fontsize: float) -> list[str]:
    """``text`` broken into lines that fit ``width_in`` inches at ``fontsize``."""
    chars = max(10, int(width_in * 72 / (_CHAR_EM * fontsize)))
    return textwrap.wrap(text, chars) or [""]


class Grid:
    """A figure of ``n`` panels in rows of at most ``ncols``, with margins in inches."""

    def __init__(
        self,
        n: int,
        *,
        panel: tuple[float, float] = (4.0, 3.0),
        ncols: int = 3,
        left: float = 0.85,
        right: float = 0.3,
        top: float = 0.5,
        bottom: float = 0.65,
        wspace: float | None = None,
        hspace: float = 0.9,
        sharey: bool = False,
        title: str = "",
        note: str = "",
    ) -> None:
        self.n = max(n, 1)
        self.ncols = min(ncols, self.n)
        self.nrows = math.ceil(self.n / self.ncols)
        pw, ph = panel
        if wspace is None:  # room for the next panel's y tick labels and y label
            wspace = 0.35 if sharey else 0.9
        self.width = left + self.ncols * pw + (self.ncols - 1) * wspace + right
        if title:
            top += title_height(title, note, self.width - 0.3)
        self.height = bottom + self.nrows * ph + (self.nrows - 1) * hspace + top
        with sns.axes_style("whitegrid", _STYLE):
            self.fig = Figure(figsize=(self.width, self.height))
            self.axes: np.ndarray = self.fig.subplots(
                self.nrows, self.ncols, squeeze=False, sharey=sharey
            )
        self.fig.subplots_adjust(
            left=left / self.width,
            right=1 - right / self.width,
            bottom=bottom / self.height,
            top=1 - top / self.height,
            wspace=wspace / pw,
            hspace=hspace / ph,
        )
        self.top = top
        if title:
            add_titles(self.fig, title, note)

    @property
    def flat(self) -> list[Axes]:
        """The panels in reading order."""
        return list(self.axes.flat)


def title_height(
    title: str, note: str, width_in: float, *, size: float = 12.0, note_size: float = 9.0
) -> float:
    """Inches that :func:`add_titles` needs above the panels."""
    lines = len(wrap(title, width_in, size)) * size * 1.35
    if note:
        lines += len(wrap(note, width_in, note_size)) * note_size * 1.35
    return lines / 72 + 0.2


def add_titles(
    fig: Figure, title: str, note: str = "", *, size: float = 12.0, note_size: float = 9.0
) -> None:
    """A wrapped suptitle and, below it, a smaller wrapped note (e.g. what grey lines mean)."""
    width_in, height_in = fig.get_size_inches()
    usable = width_in - 0.3
    lines = wrap(title, usable, size)
    fig.suptitle("\n".join(lines), fontsize=size, y=1 - 0.08 / height_in, va="top")
    if note:
        y = 1 - (0.08 + len(lines) * size * 1.35 / 72) / height_in
        fig.text(
            0.5,
            y,
            "\n".join(wrap(note, usable, note_size)),
            ha="center",
            va="top",
            fontsize=note_size,
            color="0.3",
        )


def no_data(ax: Axes, message: str) -> None:
    """Write ``message`` in the middle of an empty panel."""
    ax.text(
        0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=11, wrap=True
    )
    ax.set_xticks([])
    ax.set_yticks([])


def unshown_note(families: Sequence[str]) -> str:
    """The end of a figure's note naming the families it cannot show, since it draws final
    models and none of their trials completed: their missing panels or points would read as
    never searched."""
    if not families:
        return ""
    return f"; not shown, no completed trial (all pruned or failed): {', '.join(families)}"


def hide_unused(axes: list[Axes], used: int) -> None:
    """Hide the panels after the first ``used``."""
    for ax in axes[used:]:
        ax.set_visible(False)
