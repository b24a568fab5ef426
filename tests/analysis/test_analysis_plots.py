"""Figures checked by content: labels, scales, points and lines per family."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

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
from analysis._plotdata import compact
from analysis._plots import GAP_LABEL, STRENGTH_NAMES, strength_label
from tests.analysis.analysis_studies import cocktail_trials, numbered, trial

Frames = tuple[pd.DataFrame, pd.DataFrame]


def _points(ax: object) -> dict[str, int]:
    return {
        c.get_label(): len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)
    }  # type: ignore[attr-defined]


def _panels(fig: Figure) -> dict[str, Any]:
    return {ax.get_title(): ax for ax in fig.axes if ax.get_visible() and ax.get_title()}


def _layout_problems(fig: Figure) -> list[str]:
    """Text outside the figure, and legends or figure texts on top of a panel."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    problems = []
    box = fig.get_tightbbox(renderer)
    w, h = fig.get_size_inches()
    if box.x0 < -0.01 or box.y0 < -0.01 or box.x1 > w + 0.01 or box.y1 > h + 0.01:
        problems.append(f"clipped: {box.bounds} outside {w:.2f}×{h:.2f} in")
    panels = [
        ax.get_window_extent(renderer)
        for ax in fig.axes
        if ax.get_visible() and ax.get_label() != "<colorbar>"
    ]
    floating: list[tuple[str, Bbox]] = [
        (f"legend {i}", leg.get_window_extent(renderer)) for i, leg in enumerate(fig.legends)
    ]
    titles = [*fig.texts, *([fig._suptitle] if fig._suptitle else [])]
    floating += [(f"text {t.get_text()[:30]!r}", t.get_window_extent(renderer))
                 for t in titles if t.get_text()]  # fmt: skip
    for name, bbox in floating:
        if any(bbox.overlaps(p) for p in panels):
            problems.append(f"{name} overlaps a panel")
    return problems


def test_gap_vs_strength(controlled_frames: Frames) -> None:
    data = gap_vs_strength_data(controlled_frames[0])
    assert sorted(data["trial"]) == [1, 2, 3, 4]  # pruned/failed/interrupted left out
    assert data.groupby("param")["trial"].apply(sorted).to_dict() == {"l1": [1, 2], "l2": [3, 4]}
    fig = plot_gap_vs_strength(data)
    panels = _panels(fig)
    assert set(panels) == {STRENGTH_NAMES["l1"], STRENGTH_NAMES["l2"]}
    ax = panels[STRENGTH_NAMES["l1"]]
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == strength_label("l1") and ax.get_ylabel() == GAP_LABEL
    assert _points(ax) == {"l1": 2} and _points(panels[STRENGTH_NAMES["l2"]]) == {"l2": 2}
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["l1", "l2"]
    assert _layout_problems(fig) == []


def test_gap_vs_strength_cocktail_has_a_panel_per_strength() -> None:
    data = gap_vs_strength_data(trials_frame(cocktail_trials(4)))
    assert data.groupby("param").size().to_dict() == {"clip": 4, "l1": 4, "l2": 4,
                                                      "weight_decay": 4}  # fmt: skip
    clip = data[data["param"] == "clip"].set_index("trial")
    assert clip["strength"].to_dict() == pytest.approx({0: 0.1, 1: 0.5, 2: 2.5, 3: 12.5})
    assert clip["gap"].to_dict() == pytest.approx({0: 0.01, 1: 0.02, 2: 0.03, 3: 0.04})
    fig = plot_gap_vs_strength(data)
    panels = _panels(fig)
    assert list(panels) == [STRENGTH_NAMES[k] for k in ("l1", "l2", "weight_decay", "clip")]
    for key in ("l1", "l2", "weight_decay", "clip"):
        ax = panels[STRENGTH_NAMES[key]]
        assert _points(ax) == {"cocktail": 4}
        assert ax.get_xscale() == "log" and ax.get_xlabel() == strength_label(key)
    ticks = [t.get_text() for ax in fig.axes for t in ax.get_xticklabels() if t.get_text()]
    assert all(len(t) <= 8 for t in ticks), ticks  # 3 digits, no 16-digit floats
    assert _layout_problems(fig) == []


def test_gap_vs_strength_single_family_and_nothing_varying() -> None:
    one = [trial("l2", [0.6, 0.9], [0.6, 0.8], lam=lam) for lam in (1e-4, 1e-3, 1e-2)]
    fig = plot_gap_vs_strength(gap_vs_strength_data(trials_frame(numbered(one))))
    assert list(_panels(fig)) == [STRENGTH_NAMES["l2"]]
    assert _points(fig.axes[0]) == {"l2": 3} and _layout_problems(fig) == []
    same = [trial("l2", [0.6, 0.9], [0.6, 0.8], lam=1e-3) for _ in range(3)]
    data = gap_vs_strength_data(trials_frame(numbered(same)))
    assert data.empty
    fig = plot_gap_vs_strength(data)
    assert fig.axes[0].texts[0].get_text().startswith("no λ")


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


@pytest.mark.parametrize(("value", "text"), [
    (1e-5, "1e-05"), (1.2345e-4, "1.23e-04"), (0.5, "0.5"), (0.0123456, "0.0123"),
    (12.5, "12.5"), (3e6, "3e+06"), (0.0, "0"), (5.0, "5"),
])  # fmt: skip
def test_compact_numbers(value: float, text: str) -> None:
    assert compact(value) == text


def test_heatmap(controlled_frames: Frames) -> None:
    pivot = heatmap_data(controlled_frames[0])
    assert pivot.attrs == {"x": "lr", "y": "regularizer", "chosen_by": "distinct values"}
    # 6 distinct lr values over 1.7 decades: 5 log-spaced bins, 3 significant digits
    assert list(pivot.columns) == ["0.001–0.00219", "0.00219–0.00478", "0.00478–0.0105",
                                   "0.0105–0.0229", "0.0229–0.05"]  # fmt: skip
    assert pivot.loc["l2", "0.0229–0.05"] == pytest.approx((0.83 + 0.75) / 2)  # trials 3, 4
    assert pivot.loc["dropout"].dropna().tolist() == pytest.approx([0.82, 0.78])
    fig = plot_heatmap(pivot)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "lr (bin)" and ax.get_ylabel() == "regularizer (bin)"
    assert "lr × regularizer" in fig._suptitle.get_text()  # type: ignore[union-attr]
    assert not any(line.get_visible() for line in [*ax.get_xgridlines(), *ax.get_ygridlines()])
    assert _layout_problems(fig) == []


def test_heatmap_bins_and_importance() -> None:
    trials = trials_frame(cocktail_trials(8))
    pivot = heatmap_data(trials, importance={"regularizer.dropout": 0.7, "regularizer.l1": 0.2})
    assert (pivot.attrs["x"], pivot.attrs["y"]) == ("regularizer.dropout", "regularizer.l1")
    assert pivot.attrs["chosen_by"] == "importance"
    # l1 spans 7 decades: 5 log-spaced bins labelled with 3 significant digits
    assert list(pivot.index) == ["1e-06–2.51e-05", "2.51e-05–6.31e-04", "6.31e-04–0.0158",
                                 "0.0158–0.398", "0.398–10"]  # fmt: skip
    assert list(pivot.columns) == [
        "0.1–0.24",
        "0.24–0.38",
        "0.38–0.52",
        "0.52–0.66",
        "0.66–0.8",
    ]  # dropout: < 1 decade, linear bins
    assert pivot.loc["1e-06–2.51e-05", "0.1–0.24"] == pytest.approx(0.805)  # trials 0, 1
    fig = plot_heatmap(pivot)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(pivot.index)
    assert _layout_problems(fig) == []
    by_count = heatmap_data(trials)  # every parameter has 8 values: ties broken by name
    assert (by_count.attrs["x"], by_count.attrs["y"]) == ("regularizer.clip",
                                                          "regularizer.dropout")  # fmt: skip


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
    base_val = data[
        (data["role"] == "baseline") & (data["split"] == "val") & (data["family"] == "l1")
    ]["loss"].tolist()
    assert base_val[-1] > min(base_val)


def test_best_curves_without_baseline_says_so() -> None:
    trials = trials_frame(cocktail_trials(2))
    data = best_curves_data(trials, curves_frame(cocktail_trials(2)))
    assert set(data["role"]) == {"best"} and set(data["trial"]) == {1}
    fig = plot_best_curves(data)
    texts = [t.get_text() for t in fig.texts]
    assert any("no unregularized baseline" in t for t in texts), texts
    assert _layout_problems(fig) == []  # one panel: the title wraps instead of being clipped


def test_sparsity_l1_vs_l2(controlled_frames: Frames) -> None:
    data = sparsity_data(controlled_frames[0])
    assert data.groupby("family")["sparsity"].max().to_dict() == pytest.approx(
        {"l1": 0.6, "l2": 0.01}
    )
    fig = plot_sparsity(data)
    panels = _panels(fig)
    l1, l2 = panels[STRENGTH_NAMES["l1"]], panels[STRENGTH_NAMES["l2"]]
    assert l1.get_xscale() == "log" and _points(l1) == {"l1": 2} and _points(l2) == {"l2": 2}
    assert "sparsity" in l1.get_ylabel() and l1.get_xlabel() == strength_label("l1")
    assert _layout_problems(fig) == []


def test_sparsity_cocktail_searches_l1_and_l2_together() -> None:
    data = sparsity_data(trials_frame(cocktail_trials(3)))
    assert data.groupby("param")["trial"].apply(sorted).to_dict() == {
        "l1": [0, 1, 2],
        "l2": [0, 1, 2],
    }
    l2 = data[data["param"] == "l2"].set_index("trial")
    assert l2["sparsity"].to_dict() == pytest.approx({0: 0.0, 1: 0.1, 2: 0.2})
    assert l2["strength"].to_dict() == pytest.approx({0: 1e-5, 1: 1e-4, 2: 1e-3})
    panels = _panels(plot_sparsity(data))
    assert {k: _points(ax) for k, ax in panels.items()} == {
        STRENGTH_NAMES["l1"]: {"cocktail": 3},
        STRENGTH_NAMES["l2"]: {"cocktail": 3},
    }


def test_history_marks_pruned_and_failed(controlled_frames: Frames) -> None:
    data = history_data(controlled_frames[0])
    assert data["best_so_far"].dropna().iloc[-1] == pytest.approx(0.83)
    assert data.loc[data["state"] == "FAIL", "trial"].tolist() == [8]  # not interrupted 9
    fig = plot_history(data, metric="val_acc")
    ax = fig.axes[0]
    assert _points(ax) == {"complete (8)": 8, "pruned (1)": 1, "failed (1, no value)": 1}
    markers = {
        c.get_paths()[0].vertices.round(2).tobytes()
        for c in ax.collections
        if isinstance(c, PathCollection)
    }
    assert len(markers) == 3  # three different marker shapes
    assert ax.get_xlabel() == "trial number" and "val_acc" in ax.get_ylabel()
    assert len(ax.get_lines()) == 1  # best so far
    assert _layout_problems(fig) == []  # draws: the ticks below are the drawn ones
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert len(ticks) >= 3 and all(float(t).is_integer() for t in ticks)


def test_intermediate_values(controlled_frames: Frames) -> None:
    data = intermediate_data(*controlled_frames)
    assert 9 not in set(data["trial"])  # interrupted
    ax = plot_intermediate(data).axes[0]
    lines = {
        c.get_label(): len(c.get_segments())
        for c in ax.collections
        if isinstance(c, LineCollection)
    }
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
        assert _layout_problems(fig) == []


def test_loss_curves_fit_at_every_panel_count(controlled_frames: Frames) -> None:
    base = best_curves_data(*controlled_frames)
    base = base[base["family"] == "l1"]
    names = ["none", "l1", "l2", "dropout", "elastic_net", "weight_decay", "clip"]
    for n in range(1, 8):
        fig = plot_best_curves(pd.concat([base.assign(family=f) for f in names[:n]]))
        assert len(_panels(fig)) == n
        assert _layout_problems(fig) == [], n
