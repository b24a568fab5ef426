"""DataFrames → matplotlib Figures: gap and sparsity against λ, dropout. No database here.

Every axis is labelled in words (``sweep.hparams.hparam_label``), y limits are fitted to the data
(a zero line only where zero lies inside them), the unregularized baseline is a grey reference
band when one is known, and legends sit outside the panels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis._axes import (
    band_handles,
    draw_band,
    fit_y,
    legend_width,
    log_x,
    palette,
    right_legend,
)
from analysis._layout import Grid, hide_unused, no_data, unshown_note
from sweep.hparams import HPARAMS, STRENGTH_KEYS, hparam_label

__all__ = [
    "GAP_LABEL",
    "SPARSITY_LABEL",
    "VAL_ACC_LABEL",
    "band",
    "plot_dropout",
    "plot_gap_vs_strength",
    "plot_sparsity",
    "reference_note",
    "strength_label",
]

GAP_LABEL = "gap: train − validation accuracy"
VAL_ACC_LABEL = "validation accuracy"
SPARSITY_LABEL = "weight sparsity: fraction |w| ≤ 0.0005·max|w|"
_EMPTY = pd.DataFrame(
    {"metric": [], "mean": [], "ci_low": [], "ci_high": [], "n": [], "source": [], "same_split": []}
)


def _log(param: str) -> bool:
    """Whether a strength is read on a log scale (the registry's word; λs are, patience is not)."""
    known = HPARAMS.get(param)
    return known is None or known.log


def strength_label(param: str) -> str:
    """x label of a strength panel: the λ in words, and its scale (``L1 λ (log scale)``)."""
    return f"{hparam_label(param)} (log scale)" if _log(param) else hparam_label(param)


def band(reference: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of ``reference`` (:func:`analysis.baseline_reference`) a search figure draws as
    its band: those on the search trials' own validation split."""
    if reference is None or reference.empty:
        return _EMPTY
    return reference[reference["same_split"].astype(bool)]


def reference_note(reference: pd.DataFrame | None) -> str:
    """What the grey band is, or why there is none."""
    if reference is None or reference.empty:
        return (
            "no baseline band: neither a confirmation study nor two completed runs of the "
            "unregularized family (none)"
        )
    if band(reference).empty:
        return (
            "no baseline band: the search completed fewer than two runs of the unregularized "
            "family (none), and the confirmation's baseline ran on other validation splits, "
            "which shift every point alike (its figures: tables/baseline_reference)"
        )
    r = reference.iloc[0]
    return f"grey: unregularized baseline, mean (dashed) and 95% CI, from the {r['source']}"


def _ordered_params(data: pd.DataFrame) -> list[str]:
    present = set(data["param"])
    return [p for p in STRENGTH_KEYS if p in present] + sorted(present - set(STRENGTH_KEYS))


def _scatter_families(ax: Axes, rows: pd.DataFrame, y: str, colors: Mapping[str, Any]) -> None:
    """One colour per family; collapsed trials (if marked) as crosses in the same colour."""
    dead = rows["collapsed"].astype(bool) if "collapsed" in rows else pd.Series(False, rows.index)
    for family, sub in rows[~dead].groupby("family", sort=True):
        ax.scatter(
            sub["strength"],
            sub[y],
            s=18,
            alpha=0.75,
            color=colors[str(family)],
            label=str(family),
            zorder=3,
        )
    for family, sub in rows[dead].groupby("family", sort=True):
        ax.scatter(
            sub["strength"],
            sub[y],
            s=30,
            marker="x",
            color=colors[str(family)],
            label=f"{family}, collapsed",
            zorder=3,
        )


def plot_gap_vs_strength(
    data: pd.DataFrame, reference: pd.DataFrame | None = None, unshown: Sequence[str] = ()
) -> Figure:
    """Final accuracy gap vs λ: one log-x panel per strength that varies, colour = family.

    ``reference`` (:func:`analysis.baseline_reference`) draws the baseline's gap as a band;
    ``unshown`` names families that searched a λ but completed no trial (the note says so, or
    their missing panels would read as never searched).
    """
    ref = band(reference)
    params = _ordered_params(data)
    families = sorted(data["family"].unique())
    right = 0.3 + (
        legend_width([*families, "collapsed (chance level)"], "family") if params else 0.0
    )
    g = Grid(
        len(params),
        panel=(3.6, 3.0),
        right=right,
        sharey=True,
        title="Generalization gap of the final model vs regularization strength",
        note=(
            reference_note(reference) + "; a trial appears in each panel whose λ it "
            "set > 0" + unshown_note(unshown)
        )
        if params
        else "",
    )
    if not params:
        no_data(
            g.flat[0], "no λ (l1, l2, elastic, weight_decay, clip) varies over the completed trials"
        )
        g.flat[0].set_ylabel(GAP_LABEL)
        return g.fig
    colors = palette(families)
    bounds: list[float] = []
    for i, (ax, param) in enumerate(zip(g.flat, params, strict=False)):
        sub = data[data["param"] == param]
        _scatter_families(ax, sub, "gap", colors)
        bounds += draw_band(ax, ref, "gap_acc")
        if _log(param):
            log_x(ax, sub["strength"])
        ax.set_title(hparam_label(param), fontsize=11)
        ax.set_xlabel(strength_label(param))
        if i % g.ncols == 0:
            ax.set_ylabel(GAP_LABEL)
    for ax in g.flat[: len(params)]:
        fit_y(ax, [*data["gap"], *bounds])
    hide_unused(g.flat, len(params))
    extra_h, extra_l = band_handles(ref)
    if "collapsed" in data and data["collapsed"].astype(bool).any():
        extra_h.append(Line2D([], [], ls="", marker="x", color="0.3"))
        extra_l.append("collapsed (chance level)")
    handles = [Line2D([], [], ls="", marker="o", color=colors[f]) for f in families]
    right_legend(g.fig, [*handles, *extra_h], [*families, *extra_l], top_in=g.top, title="family")
    return g.fig


MIN_FOR_TREND = 6
"""Trials (not collapsed) a dropout panel needs before it draws a median line: through fewer
single runs a line joins noise into a trend."""


def _median_line(ax: Axes, data: pd.DataFrame, y: str) -> None:
    """Median of ``y`` per dropout value when p takes few values, else per bin of p."""
    p = data["dropout"]
    key = p if p.nunique() <= 6 else pd.cut(p, 6)
    med = data.groupby(key, observed=True).agg(x=("dropout", "median"), y=(y, "median"))
    label = "median" if p.nunique() <= 6 else "median per p bin"
    ax.plot(med["x"], med["y"], color="black", lw=1.5, marker="o", ms=4, label=label, zorder=4)


def plot_dropout(data: pd.DataFrame, reference: pd.DataFrame | None = None) -> Figure:
    """Final gap (left) and validation accuracy (right) against dropout probability p.

    ``reference`` (:func:`analysis.baseline_reference`) draws the baseline's gap and validation
    accuracy as bands.
    """
    ref = band(reference)
    dead = data["collapsed"].astype(bool) if "collapsed" in data else pd.Series(False, data.index)
    live = data[~dead]
    g = Grid(
        2,
        panel=(4.3, 3.4),
        top=0.25,
        right=2.4,
        title="Dropout: gap and validation accuracy of the final model vs p",
        note=_dropout_note(data, int(dead.sum()), reference),
    )
    panels = (
        (g.flat[0], "gap", "gap_acc", GAP_LABEL),
        (g.flat[1], "val_acc", "val_acc", VAL_ACC_LABEL),
    )
    for ax, y, metric, label in panels:
        if data.empty:
            no_data(ax, "no completed trial with dropout p > 0")
        else:
            ax.scatter(
                live["dropout"],
                live[y],
                s=22,
                alpha=0.7,
                color="tab:blue",
                label="trials",
                zorder=3,
            )
            if dead.any():
                ax.scatter(
                    data.loc[dead, "dropout"],
                    data.loc[dead, y],
                    s=30,
                    marker="x",
                    color="0.3",
                    label="collapsed (chance level)",
                    zorder=3,
                )
            if len(live) >= MIN_FOR_TREND:
                _median_line(ax, live, y)
            bounds = draw_band(ax, ref, metric)
            fit_y(ax, [*data[y], *bounds], zero_line=y == "gap")
        ax.set_xlabel(hparam_label("dropout"))
        ax.set_ylabel(label)
    if not data.empty:
        handles, labels = g.flat[0].get_legend_handles_labels()
        extra_h, extra_l = band_handles(ref)
        right_legend(g.fig, [*handles, *extra_h], [*labels, *extra_l], top_in=g.top)
    return g.fig


def _dropout_note(data: pd.DataFrame, collapsed: int, reference: pd.DataFrame | None) -> str:
    """What the dropout figure can and cannot show: how many single runs, how many collapsed,
    and why there is no median line when there are too few."""
    if data.empty:
        return ""
    live = len(data) - collapsed
    parts = [f"{len(data)} single run{'s' if len(data) != 1 else ''}"]
    if collapsed:
        parts.append(f"{collapsed} collapsed to chance (×), left out of the median")
    if live < MIN_FOR_TREND:
        parts.append(
            f"no median line: {live} run{'s' if live != 1 else ''} learned, and a "
            f"trend needs {MIN_FOR_TREND}"
        )
    ref = reference_note(reference)
    return "; ".join(parts) + "." + (f" {ref}" if ref else "")


def plot_sparsity(data: pd.DataFrame) -> Figure:
    """Weight sparsity (top row) and dead hidden units (bottom row) vs the L1 and the L2 λ.

    Collapsed trials are already left out by :func:`analysis.sparsity_data`; the note says how
    many (``attrs["collapsed_left_out"]``).
    """
    params = _ordered_params(data)
    measures = [("sparsity", "weight sparsity")]
    if data["dead_units"].notna().any():
        measures.append(("dead_units", "dead hidden units"))
    families = sorted(data["family"].unique())
    left_out = int(data.attrs.get("collapsed_left_out", 0))
    note = (
        f"final model; {SPARSITY_LABEL}; dead unit: same output for every training "
        f"example; {left_out} collapsed trial{'s' if left_out != 1 else ''} (at chance "
        "level) left out; a trial with both penalties appears in both panels"
    )
    g = Grid(
        max(len(params), 1) * len(measures),
        panel=(3.6, 2.8),
        ncols=max(len(params), 1),
        right=0.3 + (legend_width(families, "family") if params else 0.0),
        title="Sparsity vs λ: L1 vs L2 penalty",
        note=note if params else "",
    )
    if not params:
        no_data(g.flat[0], "no completed, non-collapsed trial with an L1 or L2 λ that varies")
        hide_unused(g.flat, 1)
        return g.fig
    colors = palette(families)
    for row, (column, name) in enumerate(measures):
        for col, param in enumerate(params):
            ax = g.axes[row, col]
            sub = data[data["param"] == param]
            _scatter_families(ax, sub, column, colors)
            log_x(ax, sub["strength"])
            fit_y(ax, data[column], zero_line=False, floor=0.0)
            ax.set_title(f"{name} vs {hparam_label(param)}", fontsize=10)
            ax.set_xlabel(strength_label(param))
            if col == 0:
                ax.set_ylabel(f"{name} (fraction)")
    handles = [Line2D([], [], ls="", marker="o", color=colors[f]) for f in families]
    right_legend(g.fig, handles, families, top_in=g.top, title="family")
    return g.fig
