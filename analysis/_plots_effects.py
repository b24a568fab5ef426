"""The effects table → a forest plot: each finalist's paired effect with its 95% CI."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis._axes import legend_width, right_legend
from analysis._effects import diverged_of
from analysis._format import metric_label
from analysis._layout import Grid, no_data, text_width

__all__ = ["VERDICT_WORDS", "forest_rows", "plot_effects", "verdict_color"]


VERDICT_WORDS = {
    "helps": "helps",
    "hurts": "hurts",
    "no_difference": "no detectable difference",
    "same_as_baseline": "same as baseline",
    "not_explored": "not explored",
}
"""Each verdict category (:data:`analysis.VERDICTS`) in words, for legends and tables."""


def verdict_color(verdict: str) -> str:
    """Green helps, red hurts, dark grey no detectable difference, light grey the rest."""
    return {"helps": "tab:green", "hurts": "tab:red", "no_difference": "0.35"}.get(verdict, "0.7")


def forest_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows a forest plot draws: finalists compared with a baseline, with a name each
    (the family, or the arm's label when a family has several finalists; ``plain_name`` without
    the count of collapsed seeds that ``name`` carries) and ``same``: whether
    it trained as its baseline on every seed (its verdict's note, read here once for the figure
    and the answer)."""
    rows = table[table["baseline"].notna()].copy()
    rows["same"] = rows["verdict"].astype(str) == "same_as_baseline"
    several = rows["family"].duplicated(keep=False)
    rows["name"] = rows["family"].where(~several, rows["label"].fillna(rows["arm"]))
    rows["plain_name"] = rows["name"]  # without the note on collapsed seeds
    if "n_collapsed" in rows:
        shaky = rows["n_collapsed"].fillna(0).astype(int) > 0
        rows.loc[shaky, "name"] = [
            f"{n} ({k} of {s} seeds at chance)"
            for n, k, s in zip(
                rows.loc[shaky, "name"],
                rows.loc[shaky, "n_collapsed"],
                rows.loc[shaky, "n_seeds"],
                strict=True,
            )
        ]
    return rows.reset_index(drop=True)


def _label(row: pd.Series) -> str:
    """A forest-plot row's name with what the answer also says of it: trained as its baseline
    on every seed, weights picked on validation by early stopping, runs that diverged."""
    notes = ["same as baseline"] if row["same"] else []
    if row["n_restored"] > 0:
        notes.append("epoch picked on validation")
    (own, n_own), (base, n_base) = diverged_of(row)
    if own:
        notes.append(f"diverged on {own} of {n_own}")
    if base:
        notes.append(f"baseline diverged on {base} of {n_base}")
    return f"{row['name']} ({'; '.join(notes)})" if notes else str(row["name"])


def plot_effects(table: pd.DataFrame) -> Figure:
    """Forest plot of :func:`analysis.effects_data`: Δ of the decision metric vs the baseline.

    One row per finalist (top: largest improvement), a dot at the mean paired difference, a bar
    for its simultaneous t-interval (``ci_level``), a zero line, colour by verdict and the number of paired seeds on the
    right. Accuracy differences are in percentage points. A finalist that trained as its
    baseline on every seed is labelled ``(same as baseline)``, one whose final weights early
    stopping restored on some seed ``(epoch picked on validation)``, one whose runs or whose
    baseline's diverged ``(diverged on k of n)`` / ``(baseline diverged on k of n)``.
    """
    rows = forest_rows(table)
    decide = str(rows["decided_on"].iloc[0]) if not rows.empty else "val_acc"
    scale = 100.0 if decide.endswith("_acc") else 1.0
    unit = " (percentage points)" if scale == 100.0 else ""
    groups = list(dict.fromkeys(str(v) for v in rows["verdict"]))
    names = [_label(r) for _, r in rows.iterrows()]
    level = float(rows["ci_level"].iloc[0]) if not rows.empty else 0.95
    left = 0.4 + max([text_width(n) for n in names] or [1.0])
    g = Grid(
        1,
        panel=(5.0, max(1.6, 0.42 * len(rows) + 0.6)),
        left=left,
        right=0.9 + legend_width([VERDICT_WORDS.get(v, v) for v in groups], "verdict"),
        top=0.25,
        title=f"Effect on {metric_label(decide)}: each finalist minus its unregularized "
        "baseline, paired by seed",
        note=f"dot: mean paired difference; bar: its {level:.1%} t-interval, simultaneous "
        f"95% over the {len(rows)} finalists (Bonferroni); colour: the verdict, read "
        "off that bar (clear of zero: helps or hurts); n: paired seeds",
    )
    ax = g.flat[0]
    if rows.empty:
        no_data(ax, "no finalist with a baseline in the confirmation study")
        return g.fig
    y = np.arange(len(rows))[::-1].astype(float)
    mean = rows[f"delta_{decide}"].to_numpy(dtype=float) * scale
    low = rows[f"delta_{decide}_ci_low"].to_numpy(dtype=float) * scale
    high = rows[f"delta_{decide}_ci_high"].to_numpy(dtype=float) * scale
    x_lo, x_hi = _limits(mean, low, high)
    for yi, m, lo, hi, v in zip(y, mean, low, high, rows["verdict"], strict=True):
        _draw_row(ax, yi, (m, lo, hi), (x_lo, x_hi), verdict_color(str(v)))
    for yi, n in zip(y, rows["n_pairs"], strict=True):
        ax.annotate(
            f"n={int(n)}",
            xy=(1.0, yi),
            xycoords=("axes fraction", "data"),
            xytext=(10, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
        )
    ax.axvline(0.0, color="0.2", lw=1.0, zorder=2)
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_yticks(y, names)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(f"Δ {metric_label(decide)} vs baseline{unit}")
    handles = [Line2D([], [], color=verdict_color(grp), marker="o", lw=2.2) for grp in groups]
    words = [VERDICT_WORDS.get(grp, grp) for grp in groups]
    right_legend(g.fig, handles, words, top_in=g.top, title="verdict")
    return g.fig


SCALE_RATIO = 3.0
"""A row whose interval stretches the axis past this many times what the other rows need is
drawn to the axis edges instead (:func:`_limits`)."""


def _draw_row(
    ax: Axes, yi: float, row: tuple[float, float, float], limits: tuple[float, float], color: Any
) -> None:
    """One finalist's bar and dot; a bar or dot beyond ``limits`` is cut at the axis edge with
    an arrowhead there, and its mean and interval are written out."""
    m, lo, hi = row
    x_lo, x_hi = limits
    if np.isfinite(lo) and np.isfinite(hi):
        ax.plot(
            [max(lo, x_lo), min(hi, x_hi)],
            [yi, yi],
            color=color,
            lw=2.2,
            solid_capstyle="butt",
            zorder=3,
        )
    if np.isfinite(m) and x_lo <= m <= x_hi:
        ax.plot([m], [yi], "o", color=color, ms=7, zorder=4)
    left = bool(np.nanmin([m, lo]) < x_lo) if np.isfinite(m) else False
    right = bool(np.nanmax([m, hi]) > x_hi) if np.isfinite(m) else False
    for beyond, edge, head in ((left, x_lo, "<"), (right, x_hi, ">")):
        if beyond:
            ax.plot([edge], [yi], head, color=color, ms=8, zorder=4, clip_on=False)
    if left or right:
        ci = f", 95% CI {lo:+.1f} to {hi:+.1f}" if np.isfinite(lo) and np.isfinite(hi) else ""
        at_left = left or not right
        ax.annotate(
            f"mean {m:+.1f}{ci}: off scale",
            xy=(x_lo if at_left else x_hi, yi),
            xytext=(2 if at_left else -2, 7),
            textcoords="offset points",
            va="bottom",
            ha="left" if at_left else "right",
            fontsize=8,
            color=color,
            zorder=5,
            bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"},
        )


def _limits(mean: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[float, float]:
    """The x range: every dot, bar and zero, except that the rows that would stretch it past
    :data:`SCALE_RATIO`× what the others need do not set it (the default study's dropout,
    −93 to +6 points, and elastic_net, −18 to +10, flattened five ±1-point intervals to dots);
    taken out widest first, at most half of the rows. They are drawn to its edges."""
    index = np.arange(len(mean))

    def span(mask: np.ndarray) -> np.ndarray:
        v = np.concatenate([mean[mask], low[mask], high[mask], [0.0]])
        return v[np.isfinite(v)]

    keep = np.ones(len(mean), dtype=bool)
    while (~keep).sum() < len(mean) // 2:
        spans = {int(i): np.ptp(span(keep & (index != i))) for i in index[keep]}
        widest = min(spans, key=lambda i: spans[i])  # the row whose leaving shrinks it most
        if np.ptp(span(keep)) <= SCALE_RATIO * max(spans[widest], 1e-9):
            break
        keep[widest] = False
    shown = span(keep)
    pad = 0.08 * np.ptp(shown) if np.ptp(shown) > 0 else 0.5
    return float(shown.min() - pad), float(shown.max() + pad)
