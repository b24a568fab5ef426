"""Axis helpers shared by the figures: log axes, limits fitted to the data, reference bands,
legends outside the panels."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from analysis._format import compact
from analysis._layout import text_width

__all__ = [
    "LEGEND_RIGHT",
    "band_handles",
    "draw_band",
    "fit_y",
    "legend_width",
    "log_x",
    "palette",
    "right_legend",
]

LEGEND_RIGHT = {
    "loc": "upper left",
    "bbox_to_anchor": (1.02, 1.0),
    "borderaxespad": 0.0,
    "fontsize": 9,
}
"""An axes legend just outside the panel's right edge (room made by the figure's margin)."""
BAND_COLOR = "0.55"


def log_x(ax: Axes, values: pd.Series) -> None:
    """Log x axis whose labels never collide: 1-2-5 ticks within a narrow span, 3 digits."""
    ax.set_xscale("log")
    lo, hi = float(values.min()), float(values.max())
    decades = math.log10(hi / lo) if lo > 0 else 0.0
    if lo > 0 and lo == hi:  # one value: its own tick, half a decade either side
        ax.set_xlim(lo / 3, lo * 3)
        ax.xaxis.set_major_locator(FixedLocator([lo]))
    elif decades < 0.7:  # too narrow for 1-2-5 ticks: a few evenly spaced ones
        ax.xaxis.set_major_locator(MaxNLocator(nbins=3))
    else:
        subs = (1.0, 2.0, 5.0) if decades < 1.5 else (1.0,)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs, numticks=6))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: compact(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def palette(keys: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One tab10 colour per key, in order."""
    colors = sns.color_palette("tab10", max(len(keys), 1))
    return dict(zip(keys, colors, strict=False))


def legend_width(labels: Iterable[str], title: str = "") -> float:
    """Inches a 9-point legend of ``labels`` needs (markers and padding included)."""
    return max([text_width(s, 9) for s in [*labels, title]] or [0.0]) + 0.6


def fit_y(
    ax: Axes, values: Iterable[float], *, zero_line: bool = True, floor: float | None = None
) -> tuple[float, float]:
    """y limits fitted to ``values`` (8% padding), and a dotted zero line only when zero lies
    within them; with ``floor`` (0 for a fraction), the padding stops just below it. Returns the
    data range (before padding); NaN when nothing is finite."""
    arr = np.asarray([v for v in values], dtype=float)
    arr = arr[np.isfinite(arr)]
    if not len(arr):
        return math.nan, math.nan
    lo, hi = float(arr.min()), float(arr.max())
    pad = 0.08 * (hi - lo) if hi > lo else max(0.01, 0.05 * abs(hi))
    low = lo - pad
    if floor is not None and lo >= floor and low < floor:  # a point on the floor stays visible
        low = floor - 0.04 * (hi + pad - floor)
    ax.set_ylim(low, hi + pad)
    if zero_line and lo <= 0.0 <= hi:
        ax.axhline(0.0, color="0.3", lw=0.8, ls=":", zorder=1)
    return lo, hi


def draw_band(ax: Axes, reference: pd.DataFrame, metric: str) -> list[float]:
    """The baseline's mean (dashed) and 95% CI (shaded) of ``metric`` across the panel.

    ``reference`` is :func:`analysis.baseline_reference`; returns the band's bounds (for
    :func:`fit_y`), [] when it has no row for ``metric``.
    """
    rows = reference[reference["metric"] == metric] if not reference.empty else reference
    if rows.empty:
        return []
    r = rows.iloc[0]
    ax.axhspan(r["ci_low"], r["ci_high"], color=BAND_COLOR, alpha=0.25, lw=0, zorder=0)
    ax.axhline(r["mean"], color=BAND_COLOR, lw=1.2, ls="--", zorder=1)
    return [float(r["ci_low"]), float(r["ci_high"])]


def band_handles(reference: pd.DataFrame) -> tuple[list[Artist], list[str]]:
    """Legend entries for :func:`draw_band`: the baseline's mean and its 95% CI."""
    if reference.empty:
        return [], []
    n = int(reference["n"].iloc[0])
    return (
        [Line2D([], [], color=BAND_COLOR, ls="--"), Patch(color=BAND_COLOR, alpha=0.25, lw=0)],
        ["baseline mean", f"baseline 95% CI (n={n})"],
    )


def right_legend(
    fig: Figure,
    handles: Sequence[Artist],
    labels: Sequence[str],
    *,
    top_in: float,
    title: str | None = None,
) -> None:
    """A figure legend in the right margin, its top aligned with the panels' top."""
    width, height = fig.get_size_inches()
    fig.legend(
        handles,
        labels,
        title=title,
        loc="upper right",
        fontsize=9,
        bbox_to_anchor=(1 - 0.1 / width, 1 - top_in / height),
    )
