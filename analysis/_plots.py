"""DataFrames → matplotlib Figures (seaborn styling). Nothing here opens a database."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

__all__ = [
    "GAP_LABEL",
    "STRENGTH_LABEL",
    "plot_best_curves",
    "plot_dropout",
    "plot_gap_vs_strength",
    "plot_heatmap",
    "plot_history",
    "plot_intermediate",
    "plot_sparsity",
]

GAP_LABEL = "generalization gap: train − val accuracy (fraction)"
STRENGTH_LABEL = "regularization strength λ (family's own hyperparameter, log scale)"
VAL_ACC_LABEL = "validation accuracy (fraction)"
_STYLE = {"axes.grid": True, "grid.alpha": 0.4}


def _figure(nrows: int = 1, ncols: int = 1, *, width: float = 7.0, height: float = 4.5,
            sharex: bool = False) -> tuple[Figure, np.ndarray]:
    with sns.axes_style("whitegrid", _STYLE):
        fig = Figure(figsize=(width, height))
        axes = fig.subplots(nrows, ncols, squeeze=False, sharex=sharex)
    # Fixed margins in inches instead of a layout engine: layout passes cost a draw each.
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.25 / width, bottom=0.6 / height,
                        top=1 - (0.75 if nrows > 1 or ncols > 1 else 0.45) / height,
                        wspace=0.8 / (width / ncols), hspace=2.4 / height)
    return fig, axes


def _no_data(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])


def _palette(keys: list[str]) -> dict[str, tuple[float, float, float]]:
    colors = sns.color_palette("tab10", max(len(keys), 1))
    return dict(zip(keys, colors, strict=False))


def _scatter_by_family(ax: Axes, data: pd.DataFrame, x: str, y: str) -> None:
    """One PathCollection per family (label = family), so the legend and tests can count."""
    families = sorted(data["family"].unique())
    colors = _palette(families)
    for family in families:
        sub = data[data["family"] == family]
        ax.scatter(sub[x], sub[y], s=18, alpha=0.75, color=colors[family], label=family)
    if families:
        ax.legend(title="family", fontsize=9)


def plot_gap_vs_strength(data: pd.DataFrame) -> Figure:
    """Accuracy gap vs λ on a log x axis, one point colour per family."""
    fig, axes = _figure()
    ax = axes[0, 0]
    ax.set_title("Generalization gap vs regularization strength")
    if data.empty:
        _no_data(ax, "no completed trial with a family strength > 0")
    else:
        _scatter_by_family(ax, data, "strength", "gap")
        ax.set_xscale("log")
        ax.axhline(0.0, color="0.3", lw=0.8, ls=":")
    ax.set_xlabel(STRENGTH_LABEL)
    ax.set_ylabel(GAP_LABEL)
    return fig


def _median_line(ax: Axes, data: pd.DataFrame, y: str) -> None:
    if data["dropout"].nunique() <= 12:
        med = data.groupby("dropout")[y].median()
        ax.plot(med.index, med.to_numpy(), color="black", lw=1.5, marker="o", label="median")
        ax.legend(fontsize=9)


def plot_dropout(data: pd.DataFrame) -> Figure:
    """Gap (left) and validation accuracy (right) against dropout probability p."""
    fig, axes = _figure(1, 2, width=11.0)
    fig.suptitle("Dropout: gap and validation accuracy vs p")
    for ax, y, label in ((axes[0, 0], "gap", GAP_LABEL), (axes[0, 1], "val_acc", VAL_ACC_LABEL)):
        if data.empty:
            _no_data(ax, "no completed trial with dropout p > 0")
        else:
            ax.scatter(data["dropout"], data[y], s=18, alpha=0.7, color="tab:blue",
                       label="trials")
            _median_line(ax, data, y)
        ax.set_xlabel("dropout probability p")
        ax.set_ylabel(label)
    return fig


def plot_heatmap(pivot: pd.DataFrame) -> Figure:
    """Mean validation accuracy over two searched parameters (from :func:`heatmap_data`)."""
    fig, axes = _figure(width=8.0, height=6.0)
    ax = axes[0, 0]
    if pivot.empty:
        _no_data(ax, "fewer than two searched parameters vary")
        ax.set_title("Validation accuracy heatmap")
        return fig
    x, y = pivot.attrs.get("x", "x"), pivot.attrs.get("y", "y")
    sns.heatmap(pivot, ax=ax, annot=pivot.size <= 64, fmt=".3f", cmap="viridis",
                cbar_kws={"label": "mean " + VAL_ACC_LABEL})
    ax.set_title(f"Validation accuracy over {x} × {y}")
    ax.set_xlabel(f"{x} (bin)")
    ax.set_ylabel(f"{y} (bin)")
    ax.tick_params(axis="x", labelrotation=30)
    ax.tick_params(axis="y", labelrotation=0)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    fig.subplots_adjust(left=0.2, bottom=0.25, right=0.98, top=0.93)
    return fig


def plot_best_curves(data: pd.DataFrame) -> Figure:
    """Train vs validation loss of each family's best trial; dashed grey: the baseline."""
    families = sorted(data["family"].unique()) if not data.empty else []
    ncols = min(3, max(len(families), 1))
    nrows = max(1, math.ceil(len(families) / ncols))
    fig, axes = _figure(nrows, ncols, width=4.2 * ncols, height=3.4 * nrows)
    fig.suptitle("Train vs validation loss: best trial per family (grey: unregularized)")
    colors = {"train": "tab:blue", "val": "tab:orange"}
    for i, ax in enumerate(axes.flat):
        if i >= len(families):
            if not families:
                _no_data(ax, "no completed trial with loss curves")
            else:
                ax.set_visible(False)
            continue
        sub = data[data["family"] == families[i]]
        for (role, split), line in sub.groupby(["role", "split"], sort=True):
            best = role == "best"
            style = "-" if best else {"train": ":", "val": "--"}[split]
            ax.plot(line["epoch"], line["loss"], color=colors[split] if best else "0.45",
                    ls=style, lw=1.6 if best else 1.2,
                    label=f"{split} ({'trial ' + str(line['trial'].iloc[0]) if best else role})")
        ax.set_title(f"{families[i]}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("data loss (nats)")
        ax.legend(fontsize=8)
    return fig


def plot_sparsity(data: pd.DataFrame) -> Figure:
    """Sparsity at the best epoch vs λ for L1 and L2 (log x)."""
    fig, axes = _figure()
    ax = axes[0, 0]
    ax.set_title("Sparsity vs λ: L1 vs L2")
    if data.empty:
        _no_data(ax, "no completed l1/l2 trial with λ > 0")
    else:
        _scatter_by_family(ax, data, "strength", "sparsity")
        ax.set_xscale("log")
    ax.set_xlabel("penalty coefficient λ (log scale)")
    ax.set_ylabel("sparsity: fraction of |w| ≤ 0.0005·max|w|")
    return fig


def plot_history(data: pd.DataFrame, *, metric: str = "objective") -> Figure:
    """Objective per trial; pruned trials as crosses; best-so-far as a step line."""
    fig, axes = _figure(width=9.0)
    ax = axes[0, 0]
    ax.set_title("Optimization history")
    if data.empty:
        _no_data(ax, "no completed or pruned trial with a value")
    for state, marker, color in (("COMPLETE", "o", "tab:blue"), ("PRUNED", "x", "tab:red")):
        sub = data[data["state"] == state]
        if not sub.empty:
            ax.scatter(sub["trial"], sub["value"], marker=marker, s=16, color=color,
                       alpha=0.7, label=f"{state.lower()} ({len(sub)})")
    best = data.dropna(subset=["best_so_far"]) if not data.empty else data
    if not best.empty:
        ax.plot(best["trial"], best["best_so_far"], drawstyle="steps-post", color="black",
                lw=1.5, label="best so far")
    if not data.empty:
        ax.legend(fontsize=9)
    ax.set_xlabel("trial number")
    ax.set_ylabel(f"{metric} (objective)")
    return fig


def plot_intermediate(data: pd.DataFrame, *, metric: str = "objective") -> Figure:
    """Intermediate values per epoch: one line per trial, pruned trials in red."""
    fig, axes = _figure(width=9.0)
    ax = axes[0, 0]
    ax.set_title("Intermediate values (pruned trials in red)")
    if data.empty:
        _no_data(ax, "no intermediate values reported")
    for state, color in (("COMPLETE", "tab:blue"), ("PRUNED", "tab:red")):
        sub = data[data["state"] == state].sort_values(["trial", "epoch"])
        segments = [g[["epoch", "value"]].to_numpy() for _, g in sub.groupby("trial")]
        if segments:
            lines = LineCollection(segments, colors=color, alpha=0.35, lw=0.8,
                                   label=f"{state.lower()} ({len(segments)})")
            ax.add_collection(lines)
    if not data.empty:
        ax.autoscale_view()
        ax.legend(fontsize=9)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric} (reported each epoch)")
    return fig
