"""Dose-response figure: Δ validation accuracy and Δ gap against each family's strength."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis._layout import Grid
from sweep.regularizers import STRENGTHS

__all__ = ["plot_dose"]


def plot_dose(table: pd.DataFrame) -> Figure:
    """One panel per family of :func:`analysis.dose_data`: Δ validation accuracy and Δ gap
    (points, vs the baseline at strength off) against the strength, each with its simultaneous
    interval as a band, a zero line (the baseline), the search's finalist ringed; log axes for
    strengths read on a log scale, reversed where a smaller value regularizes more."""
    families = list(dict.fromkeys(table["family"]))
    g = Grid(
        len(families),
        panel=(3.6, 2.7),
        top=0.35,
        title="Dose-response: effect vs strength (paired by seed vs the baseline, strength off)",
        note="bands: intervals simultaneous over each family's path (Bonferroni); ring: the "
        "search's finalist; zero line: the baseline",
    )
    for ax, family in zip(g.flat, families, strict=False):
        path = table[(table["family"] == family) & (table["role"] != "baseline")]
        path = path.dropna(subset=["delta_val_acc"]).sort_values("strength")
        key = str(path["key"].iloc[0]) if len(path) else ""
        x = path["strength"].to_numpy(dtype=float)
        for metric, color, name in (
            ("val_acc", "tab:blue", "Δ val acc"),
            ("gap_acc", "tab:orange", "Δ gap"),
        ):
            y = path[f"delta_{metric}"].to_numpy(dtype=float) * 100
            lo = path[f"delta_{metric}_ci_low"].to_numpy(dtype=float) * 100
            hi = path[f"delta_{metric}_ci_high"].to_numpy(dtype=float) * 100
            ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
            ax.plot(x, y, "o-", color=color, ms=4, label=name)
            fin = (path["role"] == "finalist").to_numpy()
            ax.plot(x[fin], y[fin], "o", ms=10, mfc="none", mec="black")
        ax.axhline(0.0, color="0.3", lw=0.8)
        if key in STRENGTHS:
            s = STRENGTHS[key]
            if s.log and len(x) and np.all(x > 0):
                ax.set_xscale("log")
            if s.stronger == "lower":
                ax.invert_xaxis()
            ax.set_xlabel(s.label + (" (stronger →, smaller)" if s.stronger == "lower" else ""))
        ax.set_title(str(family))
        ax.set_ylabel("points vs baseline")
        ax.legend(fontsize=7, loc="best")
    for ax in g.flat[len(families) :]:
        ax.set_visible(False)
    return g.fig
