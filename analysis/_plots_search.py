"""DataFrames → Figures of the search: heatmap, loss curves, history, intermediate values,
Pareto front. Nothing here opens a database."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from analysis._axes import LEGEND_RIGHT, legend_width, palette, right_legend
from analysis._format import metric_label
from analysis._layout import Grid, hide_unused, no_data, text_width, unshown_note
from sweep.hparams import hparam_label

__all__ = ["plot_best_curves", "plot_heatmap", "plot_history", "plot_intermediate", "plot_pareto"]

_SCALE_WORDS = {"log": "log-spaced bins", "linear": "linear bins", "values": "one per value"}


def _grid_of(cells: pd.DataFrame, column: str) -> pd.DataFrame:
    xs, ys = list(cells["x"].cat.categories), list(cells["y"].cat.categories)
    flat = cells.assign(x=cells["x"].astype(str), y=cells["y"].astype(str))
    table = flat.pivot(index="y", columns="x", values=column).reindex(index=ys, columns=xs)
    numeric_y = cells.attrs.get("y_scale") in ("log", "linear") or all(_is_number(v) for v in ys)
    return table.iloc[::-1] if numeric_y else table  # low values at the bottom


def _is_number(text: object) -> bool:
    try:
        float(str(text))
    except ValueError:
        return False
    return True


def _color_limits(values: np.ndarray) -> tuple[float, float]:
    """The observed range of the cell means, never beyond 1.0 (an accuracy)."""
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    if hi - lo < 1e-3:
        lo, hi = lo - 0.005, hi + 0.005
    return lo, min(hi, 1.0)


def plot_heatmap(cells: pd.DataFrame) -> Figure:
    """Mean final validation accuracy per cell of two binned parameters, with trial counts.

    ``cells`` is :func:`analysis.heatmap_data`. Empty cells stay blank (``n=0``); the colour
    scale spans the observed cell means.
    """
    if cells.empty:
        g = Grid(1, panel=(6.0, 4.0), top=0.25, title="Validation accuracy heatmap")
        no_data(g.flat[0], "no two searched parameters vary together in the same completed trials")
        return g.fig
    x, y = str(cells.attrs.get("x", "x")), str(cells.attrs.get("y", "y"))
    mean, count = _grid_of(cells, "val_acc"), _grid_of(cells, "n")
    x_w = max(text_width(str(v)) for v in mean.columns)
    y_w = max(text_width(str(v)) for v in mean.index)
    cell = min(1.3, 7.0 / len(mean.columns))
    panel = (cell * len(mean.columns) + 1.3, max(2.5, 0.55 * len(mean.index)))  # + colorbar
    left = max(0.55 + y_w, 0.87 * x_w - cell / 2 + 0.2)
    g = Grid(
        1,
        panel=panel,
        left=left,
        right=1.0,
        bottom=0.7 + 0.5 * x_w,
        top=0.25,
        title=f"Validation accuracy of the final model over {hparam_label(x)} × {hparam_label(y)}",
        note=f"mean over the completed trials in each cell, n = how many; blank: none; "
        f"bins on the scale each parameter was searched on; parameters chosen by "
        f"{cells.attrs.get('chosen_by', 'the caller')}",
    )
    ax = g.flat[0]
    values = mean.to_numpy(dtype=float)
    vmin, vmax = _color_limits(values) if np.isfinite(values).any() else (0.0, 1.0)
    cmap = matplotlib.colormaps["viridis"]
    sns.heatmap(
        mean.astype(float),
        ax=ax,
        vmin=vmin,
        vmax=vmax,
        cmap=cmap,
        annot=False,
        mask=mean.isna(),
        linewidths=0.5,
        linecolor="white",
        cbar_kws={"label": "mean " + metric_label("val_acc")},
    )
    size = 8 if cell >= 0.9 else 7
    for (i, j), v in np.ndenumerate(values):
        n = int(count.iat[i, j])
        if np.isfinite(v):
            r, gg, b = to_rgb(cmap((v - vmin) / (vmax - vmin) if vmax > vmin else 0.5))
            color = "black" if 0.299 * r + 0.587 * gg + 0.114 * b > 0.5 else "white"
            ax.text(
                j + 0.5,
                i + 0.5,
                f"{v:.3f}\nn={n}",
                ha="center",
                va="center",
                fontsize=size,
                color=color,
            )
        else:
            ax.text(
                j + 0.5, i + 0.5, f"n={n}", ha="center", va="center", fontsize=size, color="0.5"
            )
    ax.grid(False)
    ax.set_xlabel(f"{hparam_label(x)} ({_SCALE_WORDS[cells.attrs.get('x_scale', 'values')]})")
    ax.set_ylabel(f"{hparam_label(y)} ({_SCALE_WORDS[cells.attrs.get('y_scale', 'values')]})")
    ax.tick_params(axis="x", labelrotation=30)
    ax.tick_params(axis="y", labelrotation=0)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")
    return g.fig


def _loss_note(data: pd.DataFrame, families: list[str]) -> str:
    base = data.loc[data["role"] == "baseline", "trial"]
    if not base.empty:
        return (
            f"grey dotted/dashed: the unregularized search run with the best value (family none, "
            f"trial {base.iloc[0]}); single runs, one seed each, each at its own learning rate "
            "and other settings: a panel compares two settings, not the regularizer alone (its "
            "effect at equal settings: the effects figure)"
        )
    if families == ["none"]:
        return "only the unregularized family (none) has completed trials"
    return "no unregularized baseline: the study has no completed trial of family none"


_LOSS_STYLE = {
    ("top", "train"): ("tab:blue", "-", 1.6),
    ("top", "val"): ("tab:orange", "-", 1.6),
    ("baseline", "train"): ("0.45", ":", 1.2),
    ("baseline", "val"): ("0.45", "--", 1.2),
}
_LOSS_WORDS = {
    ("top", "train"): "train, top run",
    ("top", "val"): "validation, top run",
    ("baseline", "train"): "train, baseline",
    ("baseline", "val"): "validation, baseline",
}


def plot_best_curves(data: pd.DataFrame, unshown: Sequence[str] = ()) -> Figure:
    """Train vs validation loss of each family's top run; grey: the ``none`` baseline's.
    ``unshown``: families the search tried that completed no trial (the note names them)."""
    families = sorted(data["family"].unique()) if not data.empty else []
    g = Grid(
        len(families),
        panel=(4.0, 2.9),
        right=0.3 + legend_width(_LOSS_WORDS.values()),
        title="Train vs validation loss: each family's top run vs the unregularized one",
        note=_loss_note(data, families) + unshown_note(unshown) if families else "",
    )
    if not families:
        no_data(g.flat[0], "no completed trial with loss curves")
    seen: dict[tuple[str, str], Line2D] = {}
    for ax, family in zip(g.flat, families, strict=False):
        sub = data[data["family"] == family]
        for (role, split), line in sub.groupby(["role", "split"], sort=True):
            color, style, width = _LOSS_STYLE[(str(role), str(split))]
            (seen[(str(role), str(split))],) = ax.plot(
                line["epoch"], line["loss"], color=color, ls=style, lw=width
            )
        top = sub.loc[sub["role"] == "top", "trial"]
        ax.set_title(f"{family} (trial {top.iloc[0]})" if not top.empty else family, fontsize=11)
        ax.set_xlabel("epoch")
        ax.set_ylabel("data loss (nats)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    hide_unused(g.flat, max(len(families), 1))
    if seen:
        keys = [k for k in _LOSS_WORDS if k in seen]
        right_legend(g.fig, [seen[k] for k in keys], [_LOSS_WORDS[k] for k in keys], top_in=g.top)
    return g.fig


_HISTORY_MARKS = (("COMPLETE", "o", "tab:blue"), ("PRUNED", "x", "tab:red"))


def plot_history(data: pd.DataFrame, *, metric: str = "objective") -> Figure:
    """Objective per trial: complete dots, pruned crosses, failed triangles along the bottom."""
    g = Grid(1, panel=(7.0, 3.6), right=1.9, top=0.25, title="Optimization history")
    ax = g.flat[0]
    valued = data.dropna(subset=["value"]) if not data.empty else data
    if data.empty:
        no_data(ax, "no completed, pruned or failed trial")
    for state, marker, color in _HISTORY_MARKS:
        sub = valued[valued["state"] == state]
        if not sub.empty:
            ax.scatter(
                sub["trial"],
                sub["value"],
                marker=marker,
                s=18,
                color=color,
                alpha=0.75,
                label=f"{state.lower()} ({len(sub)})",
            )
    best = valued.dropna(subset=["best_so_far"]) if not valued.empty else valued
    if not best.empty:
        ax.plot(
            best["trial"],
            best["best_so_far"],
            drawstyle="steps-post",
            color="black",
            lw=1.5,
            label="best so far",
        )
    failed = data[data["state"] == "FAIL"] if not data.empty else data
    if not failed.empty:
        ax.autoscale_view()
        lo, hi = ax.get_ylim() if not valued.empty else (0.0, 1.0)
        ax.scatter(
            failed["trial"],
            [lo + 0.03 * (hi - lo)] * len(failed),
            marker="v",
            s=22,
            color="0.25",
            label=f"failed ({len(failed)}, no value)",
        )
        ax.set_ylim(lo, hi)
    if not data.empty:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(**LEGEND_RIGHT)
    ax.set_xlabel("trial number")
    ax.set_ylabel(f"{metric_label(metric)} (objective)")
    return g.fig


def plot_intermediate(data: pd.DataFrame, *, metric: str = "objective") -> Figure:
    """Intermediate values per epoch: one line per trial, pruned trials in red."""
    g = Grid(
        1, panel=(7.0, 3.6), right=1.9, top=0.25, title="Intermediate values reported to the pruner"
    )
    ax = g.flat[0]
    if data.empty:
        no_data(ax, "no intermediate values reported")
    for state, color in (("COMPLETE", "tab:blue"), ("PRUNED", "tab:red")):
        sub = data[data["state"] == state].sort_values(["trial", "epoch"])
        segments = [grp[["epoch", "value"]].to_numpy() for _, grp in sub.groupby("trial")]
        if segments:
            ax.add_collection(
                LineCollection(
                    segments,
                    colors=color,
                    alpha=0.35,
                    lw=0.8,
                    label=f"{state.lower()} ({len(segments)})",
                )
            )
    if not data.empty:
        ax.autoscale_view()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(**LEGEND_RIGHT)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric_label(metric)} (reported each epoch)")
    return g.fig


def _direction_words(direction: str) -> str:
    return "higher is better" if direction == "maximize" else "lower is better"


def plot_pareto(data: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]) -> Figure:
    """Each pair of objectives: every completed trial (grey) and the Pareto front (by family).

    ``data`` is :func:`analysis.pareto_data`; on two objectives the front is joined by a line.
    """
    pairs = list(itertools.combinations(range(len(objectives)), 2))[:3]
    front = data[data["on_front"].astype(bool)] if not data.empty else data
    families = sorted(front["family"].unique()) if not front.empty else []
    labels = [*families, "dominated trials"]
    g = Grid(
        max(len(pairs), 1),
        panel=(4.2, 3.4),
        right=0.3 + legend_width(labels, "front"),
        title="Pareto front of the objectives (final model)",
        note=f"{len(front)} trials on the front of {len(data)} completed" if len(data) else "",
    )
    if data.empty or not pairs:
        no_data(g.flat[0], "no completed trial with every objective")
        return g.fig
    colors = palette(families)
    for ax, (i, j) in zip(g.flat, pairs, strict=False):
        xo, yo = objectives[i], objectives[j]
        ax.scatter(data[xo], data[yo], s=12, color="0.7", zorder=2)
        for family, rows in front.groupby("family", sort=True):
            ax.scatter(rows[xo], rows[yo], s=30, color=colors[str(family)], zorder=3)
        if len(objectives) == 2:
            line = front.sort_values(xo)
            ax.plot(line[xo], line[yo], color="0.2", lw=1.0, zorder=2)
        ax.set_xlabel(f"{metric_label(xo)} ({_direction_words(directions[i])})")
        ax.set_ylabel(f"{metric_label(yo)} ({_direction_words(directions[j])})")
    hide_unused(g.flat, len(pairs))
    handles = [Line2D([], [], ls="", marker="o", color=colors[f]) for f in families]
    handles.append(Line2D([], [], ls="", marker="o", color="0.7"))
    right_legend(g.fig, handles, labels, top_in=g.top, title="front")
    return g.fig
