"""Figures checked by content: labels, scales, points and lines per family."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection

from analysis import (
    best_curves_data,
    curves_frame,
    dropout_data,
    gap_vs_strength_data,
    heatmap_data,
    history_data,
    intermediate_data,
    plot_best_curves,
    plot_dropout,
    plot_gap_vs_strength,
    plot_heatmap,
    plot_history,
    plot_intermediate,
    plot_sparsity,
    sparsity_data,
    trials_frame,
)
from analysis._plots import GAP_LABEL, STRENGTH_LABEL

Frames = tuple[pd.DataFrame, pd.DataFrame]


def _points(ax: object) -> dict[str, int]:
    return {c.get_label(): len(c.get_offsets())
            for c in ax.collections if isinstance(c, PathCollection)}  # type: ignore[attr-defined]


def test_gap_vs_strength(controlled_frames: Frames) -> None:
    data = gap_vs_strength_data(controlled_frames[0])
    assert sorted(data["trial"]) == [1, 2, 3, 4, 5, 6]  # pruned/failed/interrupted left out
    ax = plot_gap_vs_strength(data).axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == STRENGTH_LABEL and ax.get_ylabel() == GAP_LABEL
    assert _points(ax) == {"dropout": 2, "l1": 2, "l2": 2}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["dropout", "l1", "l2"]


def test_dropout_figure(controlled_frames: Frames) -> None:
    data = dropout_data(controlled_frames[0])
    assert data.set_index("trial")["dropout"].to_dict() == {5: 0.5, 6: 0.2}
    fig = plot_dropout(data)
    left, right = fig.axes
    assert left.get_xlabel() == "dropout probability p" and left.get_ylabel() == GAP_LABEL
    assert "validation accuracy" in right.get_ylabel()
    assert _points(left) == {"trials": 2}
    median = left.get_lines()[0]
    assert list(median.get_xdata()) == [0.2, 0.5]
    assert list(median.get_ydata()) == pytest.approx([0.10, 0.02])


def test_heatmap(controlled_frames: Frames) -> None:
    pivot = heatmap_data(controlled_frames[0])
    assert pivot.attrs == {"x": "lr", "y": "model.dropout"}
    assert pivot.loc["0.5"].dropna().tolist() == pytest.approx([0.82])
    ax = plot_heatmap(pivot).axes[0]
    assert ax.get_xlabel() == "lr (bin)" and ax.get_ylabel() == "model.dropout (bin)"
    assert "lr" in ax.get_title()


def test_best_curves_with_baseline(controlled_frames: Frames) -> None:
    data = best_curves_data(*controlled_frames)
    best = data[data["role"] == "best"].groupby("family")["trial"].first().to_dict()
    assert best == {"dropout": 5, "l1": 1, "l2": 3, "none": 0}
    assert set(data.loc[data["role"] == "baseline", "trial"]) == {0}
    fig = plot_best_curves(data)
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert set(panels) == {"dropout", "l1", "l2", "none"}
    assert len(panels["l1"].get_lines()) == 4 and len(panels["none"].get_lines()) == 2
    assert panels["l1"].get_xlabel() == "epoch" and "loss" in panels["l1"].get_ylabel()
    # the overfitting picture: baseline val loss rises after its minimum
    base_val = data[(data["role"] == "baseline") & (data["split"] == "val")
                    & (data["family"] == "l1")]["loss"].tolist()
    assert base_val[-1] > min(base_val)


def test_sparsity_l1_vs_l2(controlled_frames: Frames) -> None:
    data = sparsity_data(controlled_frames[0])
    assert data.groupby("family")["sparsity"].max().to_dict() == pytest.approx(
        {"l1": 0.6, "l2": 0.01})
    ax = plot_sparsity(data).axes[0]
    assert ax.get_xscale() == "log" and _points(ax) == {"l1": 2, "l2": 2}
    assert "sparsity" in ax.get_ylabel() and "λ" in ax.get_xlabel()


def test_history_marks_pruned(controlled_frames: Frames) -> None:
    data = history_data(controlled_frames[0])
    assert data["best_so_far"].dropna().iloc[-1] == pytest.approx(0.83)
    ax = plot_history(data, metric="val_acc").axes[0]
    assert _points(ax) == {"complete (8)": 8, "pruned (1)": 1}
    assert ax.get_xlabel() == "trial number" and "val_acc" in ax.get_ylabel()
    assert len(ax.get_lines()) == 1  # best so far


def test_intermediate_values(controlled_frames: Frames) -> None:
    data = intermediate_data(*controlled_frames)
    assert 9 not in set(data["trial"])  # interrupted
    ax = plot_intermediate(data).axes[0]
    lines = {c.get_label(): len(c.get_segments())
             for c in ax.collections if isinstance(c, LineCollection)}
    assert lines == {"complete (7)": 7, "pruned (1)": 1}
    assert ax.get_xlabel() == "epoch"


def test_figures_on_empty_data_say_so() -> None:
    empty = trials_frame([])
    curves = curves_frame([])
    figs = [
        plot_gap_vs_strength(gap_vs_strength_data(empty)),
        plot_dropout(dropout_data(empty)),
        plot_heatmap(heatmap_data(empty)),
        plot_best_curves(best_curves_data(empty, curves)),
        plot_sparsity(sparsity_data(empty)),
        plot_history(history_data(empty)),
        plot_intermediate(intermediate_data(empty, curves)),
    ]
    for fig in figs:
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert any(t.startswith(("no ", "fewer")) for t in texts), texts
