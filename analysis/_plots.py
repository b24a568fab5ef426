"""DataFrames → matplotlib Figures (seaborn styling). Nothing here opens a database."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from analysis._layout import Grid, hide_unused, no_data, text_width
from analysis._plotdata import STRENGTH_KEYS, compact

__all__ = [
    "GAP_LABEL",
    "STRENGTH_NAMES",
    "VAL_ACC_LABEL",
    "plot_best_curves",
    "plot_dropout",
    "plot_gap_vs_strength",
    "plot_heatmap",
    "plot_history",
    "plot_intermediate",
    "plot_sparsity",
    "strength_label",
]

GAP_LABEL = "gap: train − val accuracy"
VAL_ACC_LABEL = "validation accuracy"
SPARSITY_LABEL = "sparsity: fraction |w| ≤ 0.0005·max|w|"
# ``hparams`` key → what the strength is (panel titles).
STRENGTH_NAMES = {"l1": "L1 penalty λ", "l2": "L2 penalty λ", "elastic": "elastic-net λ",
                  "weight_decay": "weight decay", "clip": "gradient clip norm"}  # fmt: skip
_LEGEND_RIGHT = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0,
                 "fontsize": 9}  # fmt: skip


def strength_label(param: str) -> str:
    """x label of a strength panel: the ``hparams`` key it reads, on a log scale."""
    return f"hparams.{param} (log scale)"


def _log_x(ax: Axes, values: pd.Series) -> None:
    """Log x axis whose labels never collide: 1-2-5 ticks within a narrow span, 3 digits."""
    ax.set_xscale("log")
    lo, hi = float(values.min()), float(values.max())
    decades = math.log10(hi / lo) if lo > 0 else 0.0
    if decades < 0.7:  # too narrow for 1-2-5 ticks: a few evenly spaced ones
        ax.xaxis.set_major_locator(MaxNLocator(nbins=3))
    else:
        subs = (1.0, 2.0, 5.0) if decades < 1.5 else (1.0,)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs, numticks=6))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: compact(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _palette(keys: list[str]) -> dict[str, tuple[float, float, float]]:
    colors = sns.color_palette("tab10", max(len(keys), 1))
    return dict(zip(keys, colors, strict=False))


def _legend_width(labels: list[str], title: str = "") -> float:
    return max([text_width(s, 9) for s in [*labels, title]] or [0.0]) + 0.6


def _strength_panels(data: pd.DataFrame, y: str, *, ylabel: str, title: str, note: str,
                     empty: str) -> Figure:  # fmt: skip
    """One log-x panel per ``param`` of ``data`` (long format), colour = family, shared y."""
    params = [p for p in STRENGTH_KEYS if p in set(data["param"])]
    params += sorted(set(data["param"]) - set(params))
    families = sorted(data["family"].unique())
    right = 0.3 + (_legend_width(families, "family") if families else 0.0)
    g = Grid(len(params), panel=(3.6, 3.0), right=right, sharey=True, title=title,
             note=note if params else "")  # fmt: skip
    if not params:
        no_data(g.flat[0], empty)
        g.flat[0].set_ylabel(ylabel)
        return g.fig
    colors = _palette(families)
    for i, (ax, param) in enumerate(zip(g.flat, params, strict=False)):
        sub = data[data["param"] == param]
        for family, rows in sub.groupby("family", sort=True):
            ax.scatter(rows["strength"], rows[y], s=18, alpha=0.75, color=colors[str(family)],
                       label=str(family))  # fmt: skip
        _log_x(ax, sub["strength"])
        ax.set_title(STRENGTH_NAMES.get(param, param), fontsize=11)
        ax.set_xlabel(strength_label(param))
        if i % g.ncols == 0:
            ax.set_ylabel(ylabel)
    hide_unused(g.flat, len(params))
    handles = [Line2D([], [], ls="", marker="o", color=colors[f]) for f in families]
    g.fig.legend(handles, families, title="family", loc="upper right", fontsize=9,
                 bbox_to_anchor=(1 - 0.1 / g.width, 1 - g.top / g.height))  # fmt: skip
    return g.fig


def plot_gap_vs_strength(data: pd.DataFrame) -> Figure:
    """Accuracy gap vs λ: one log-x panel per strength that varies, colour = family."""
    fig = _strength_panels(
        data,
        "gap",
        ylabel=GAP_LABEL,
        title="Generalization gap vs regularization strength",
        note="one panel per λ that varies; a trial appears in each panel whose λ it set > 0",
        empty="no λ (l1, l2, elastic, weight_decay, clip) varies over the completed trials",
    )
    for ax in fig.axes:
        if ax.collections:
            ax.axhline(0.0, color="0.3", lw=0.8, ls=":")
    return fig


def plot_sparsity(data: pd.DataFrame) -> Figure:
    """Sparsity at the best epoch vs the L1 and the L2 λ (log x), colour = family."""
    return _strength_panels(
        data,
        "sparsity",
        ylabel=SPARSITY_LABEL,
        title="Sparsity vs λ: L1 vs L2 penalty",
        note="sparsity at the best epoch; a trial with both penalties appears in both panels",
        empty="no completed trial with an L1 or L2 λ that varies",
    )


def _median_line(ax: Axes, data: pd.DataFrame, y: str) -> None:
    """Median of ``y`` per dropout value when p takes few values, else per bin of p."""
    p = data["dropout"]
    key = p if p.nunique() <= 6 else pd.cut(p, 6)
    med = data.groupby(key, observed=True).agg(x=("dropout", "median"), y=(y, "median"))
    label = "median" if p.nunique() <= 6 else "median per p bin"
    ax.plot(med["x"], med["y"], color="black", lw=1.5, marker="o", ms=4, label=label)
    ax.legend(fontsize=9)


def plot_dropout(data: pd.DataFrame) -> Figure:
    """Gap (left) and validation accuracy (right) against dropout probability p."""
    g = Grid(2, panel=(4.6, 3.4), top=0.25, title="Dropout: gap and validation accuracy vs p")
    for ax, y, label in ((g.flat[0], "gap", GAP_LABEL), (g.flat[1], "val_acc", VAL_ACC_LABEL)):
        if data.empty:
            no_data(ax, "no completed trial with dropout p > 0")
        else:
            ax.scatter(
                data["dropout"],
                data[y],
                s=22,
                alpha=0.7,
                color="tab:blue",
                label="trials",
                zorder=3,
            )
            _median_line(ax, data, y)
        ax.set_xlabel("dropout probability p")
        ax.set_ylabel(label)
    return g.fig


def plot_heatmap(pivot: pd.DataFrame) -> Figure:
    """Mean validation accuracy over two searched parameters (from :func:`heatmap_data`)."""
    if pivot.empty:
        g = Grid(1, panel=(6.0, 4.0), top=0.25, title="Validation accuracy heatmap")
        no_data(g.flat[0], "no two searched parameters vary together in the same completed trials")
        return g.fig
    x, y = pivot.attrs.get("x", "x"), pivot.attrs.get("y", "y")
    x_w = max(text_width(str(v)) for v in pivot.columns)
    y_w = max(text_width(str(v)) for v in pivot.index)
    cell = min(1.3, 6.0 / len(pivot.columns))
    panel = (cell * len(pivot.columns) + 1.3, max(2.5, 0.5 * len(pivot.index)))  # + colorbar
    left = max(0.55 + y_w, 0.87 * x_w - cell / 2 + 0.2)
    g = Grid(1, panel=panel, left=left, right=1.0, bottom=0.7 + 0.5 * x_w, top=0.25,
             title=f"Validation accuracy over {x} × {y}",
             note=f"parameters chosen by {pivot.attrs.get('chosen_by', 'the caller')}; "
                  "mean over the completed trials in each cell (blank: none)")  # fmt: skip
    ax = g.flat[0]
    sns.heatmap(pivot, ax=ax, annot=pivot.size <= 64, fmt=".3f", cmap="viridis",
                linewidths=0, cbar_kws={"label": "mean " + VAL_ACC_LABEL})  # fmt: skip
    ax.grid(False)
    ax.set_xlabel(f"{x} (bin)")
    ax.set_ylabel(f"{y} (bin)")
    ax.tick_params(axis="x", labelrotation=30)
    ax.tick_params(axis="y", labelrotation=0)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")
    return g.fig


def _loss_note(data: pd.DataFrame, families: list[str]) -> str:
    base = data.loc[data["role"] == "baseline", "trial"]
    if not base.empty:
        return f"grey dotted/dashed: unregularized baseline (family none, trial {base.iloc[0]})"
    if families == ["none"]:
        return "only the unregularized family (none) has completed trials"
    return "no unregularized baseline: the study has no completed trial of family none"


def plot_best_curves(data: pd.DataFrame) -> Figure:
    """Train vs validation loss of each family's best trial; grey: the ``none`` baseline."""
    families = sorted(data["family"].unique()) if not data.empty else []
    g = Grid(len(families), panel=(4.0, 2.9), title="Train vs validation loss, best trial per "
             "family", note=_loss_note(data, families) if families else "")  # fmt: skip
    colors = {"train": "tab:blue", "val": "tab:orange"}
    if not families:
        no_data(g.flat[0], "no completed trial with loss curves")
    for ax, family in zip(g.flat, families, strict=False):
        sub = data[data["family"] == family]
        for (role, split), line in sub.groupby(["role", "split"], sort=True):
            best = role == "best"
            style = "-" if best else {"train": ":", "val": "--"}[split]
            ax.plot(
                line["epoch"],
                line["loss"],
                color=colors[split] if best else "0.45",
                ls=style,
                lw=1.6 if best else 1.2,
                label=f"{split} ({'trial ' + str(line['trial'].iloc[0]) if best else role})",
            )
        ax.set_title(family, fontsize=11)
        ax.set_xlabel("epoch")
        ax.set_ylabel("data loss (nats)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8, loc="upper right")
    hide_unused(g.flat, len(families))
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
        ax.legend(**_LEGEND_RIGHT)
    ax.set_xlabel("trial number")
    ax.set_ylabel(f"{metric} (objective)")
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
            lines = LineCollection(
                segments,
                colors=color,
                alpha=0.35,
                lw=0.8,
                label=f"{state.lower()} ({len(segments)})",
            )
            ax.add_collection(lines)
    if not data.empty:
        ax.autoscale_view()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(**_LEGEND_RIGHT)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric} (reported each epoch)")
    return g.fig
