"""Figures checked by content: labels in words, fitted axes, bands, points per family, legends."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.transforms import Bbox
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from analysis import (
    baseline_reference,
    best_curves_data,
    curves_frame,
    dropout_data,
    gap_vs_strength_data,
    heatmap_data,
    history_data,
    intermediate_data,
    pareto_data,
    plot_best_curves,
    plot_dropout,
    plot_gap_vs_strength,
    plot_heatmap,
    plot_history,
    plot_intermediate,
    plot_pareto,
    plot_sparsity,
    sparsity_data,
    trials_frame,
)
from analysis._heatmap import param_scales
from analysis._plotdata import compact, strength_families_unshown
from analysis._plots import GAP_LABEL, strength_label
from sweep.hparams import hparam_label
from tests.analysis.analysis_studies import cocktail_trials, numbered, record_trial, trial

Frames = tuple[pd.DataFrame, pd.DataFrame]


def _points(ax: object) -> dict[str, int]:
    return {
        c.get_label(): len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)
    }  # type: ignore[attr-defined]


def _panels(fig: Figure) -> dict[str, Any]:
    return {ax.get_title(): ax for ax in fig.axes if ax.get_visible() and ax.get_title()}


def _layout_problems(fig: Figure) -> list[str]:
    """Text outside the figure; legends (figure or axes) or figure texts on top of a panel."""
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
    floating += [
        (f"axes legend {i}", ax.get_legend().get_window_extent(renderer))
        for i, ax in enumerate(fig.axes)
        if ax.get_legend() is not None
    ]
    titles = [*fig.texts, *([fig._suptitle] if fig._suptitle else [])]
    floating += [
        (f"text {t.get_text()[:30]!r}", t.get_window_extent(renderer))
        for t in titles
        if t.get_text()
    ]
    for name, bbox in floating:
        if any(bbox.overlaps(p) for p in panels):
            problems.append(f"{name} overlaps a panel")
    return problems


def _all_labels(fig: Figure) -> list[str]:
    out = [fig._suptitle.get_text()] if fig._suptitle else []  # type: ignore[union-attr]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    return [t for t in out if t]


def _zero_lines(ax: Any) -> int:
    return sum(1 for line in ax.get_lines() if list(line.get_ydata()) == [0, 0])


def _bands(ax: Any) -> list[tuple[float, float]]:
    """(low, high) of each horizontal span (axhspan) in the panel."""
    return [
        (round(p.get_y(), 6), round(p.get_y() + p.get_height(), 6))
        for p in ax.patches
        if isinstance(p, Rectangle)
    ]


def _fig_text(fig: Figure) -> str:
    return " ".join(t.get_text().replace("\n", " ") for t in fig.texts)


def test_gap_vs_strength(controlled_frames: Frames) -> None:
    data = gap_vs_strength_data(controlled_frames[0])
    assert sorted(data["trial"]) == [1, 2, 3, 4]  # pruned/failed/interrupted left out
    assert data.groupby("param")["trial"].apply(sorted).to_dict() == {"l1": [1, 2], "l2": [3, 4]}
    # the final model's gap, not the best epoch's
    assert data.set_index("trial")["gap"].to_dict() == pytest.approx(
        {1: 0.07, 2: 0.03, 3: 0.07, 4: 0.02}
    )
    fig = plot_gap_vs_strength(data)
    panels = _panels(fig)
    assert set(panels) == {"L1 λ", "L2 λ"}
    ax = panels["L1 λ"]
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "L1 λ (log scale)" == strength_label("l1")
    assert ax.get_ylabel() == GAP_LABEL
    assert _points(ax) == {"l1": 2} and _points(panels["L2 λ"]) == {"l2": 2}
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["l1", "l2"]
    assert not any("hparams." in t for t in _all_labels(fig))
    assert _layout_problems(fig) == []


def test_gap_axis_fits_the_data_and_zero_line_only_inside() -> None:
    rows = [
        trial("l2", [0.9, 0.8 + g], [0.8, 0.8], lam=lam)
        for g, lam in ((0.05, 1e-4), (0.07, 1e-3), (0.10, 1e-2))
    ]
    data = gap_vs_strength_data(trials_frame(numbered(rows)))
    ax = plot_gap_vs_strength(data).axes[0]
    lo, hi = ax.get_ylim()
    assert 0.04 < lo < 0.05 and 0.10 < hi < 0.11  # not stretched down to 0
    assert _zero_lines(ax) == 0
    rows.append(trial("l2", [0.9, 0.78], [0.8, 0.8], lam=1e-1))  # gap −0.02: zero inside
    ax = plot_gap_vs_strength(gap_vs_strength_data(trials_frame(numbered(rows)))).axes[0]
    assert _zero_lines(ax) == 1 and ax.get_ylim()[0] < -0.02


def test_baseline_band_from_search_none_trials() -> None:
    rows = [trial("none", [0.9, 0.8 + g], [0.8, 0.8]) for g in (0.08, 0.10, 0.12)]
    rows += [
        trial("l2", [0.9, 0.8 + g], [0.8, 0.8], lam=lam) for g, lam in ((0.05, 1e-4), (0.03, 1e-2))
    ]
    trials = trials_frame(numbered(rows))
    ref = baseline_reference(trials).set_index("metric")
    half = 4.302652729911275 * 0.02 / np.sqrt(3)  # t(0.975, 2) · sd / √n
    assert ref.loc["gap_acc", "mean"] == pytest.approx(0.10)
    assert ref.loc["gap_acc", "ci_low"] == pytest.approx(0.10 - half)
    assert ref.loc["gap_acc", "n"] == 3 and "search" in ref.loc["gap_acc", "source"]
    fig = plot_gap_vs_strength(gap_vs_strength_data(trials), baseline_reference(trials))
    assert _bands(fig.axes[0]) == [(round(0.10 - half, 6), round(0.10 + half, 6))]
    assert "baseline 95% CI (n=3)" in [t.get_text() for t in fig.legends[0].get_texts()]
    assert _layout_problems(fig) == []
    one = baseline_reference(trials_frame(numbered(rows[2:])))  # a single none run: no band
    assert one.empty
    fig = plot_gap_vs_strength(gap_vs_strength_data(trials), one)
    assert _bands(fig.axes[0]) == [] and "no baseline band" in _fig_text(fig)
    # one collapsed run of three: the uncut band (0.8 ± 0.86) reaches past what accuracy can be
    shaky = trials_frame(numbered([trial("none", [1.0, 1.0], [0.9, v]) for v in (1.0, 1.0, 0.4)]))
    ref = baseline_reference(shaky).set_index("metric")
    assert ref.loc["val_acc", "mean"] == pytest.approx(0.8)
    assert (ref.loc["val_acc", "ci_low"], ref.loc["val_acc", "ci_high"]) == (0.0, 1.0)


def test_gap_vs_strength_names_families_it_cannot_show() -> None:
    """Every l1 trial was pruned, so l1 has no final model to place; its missing panel would
    read as "not searched" unless the note names it. A pruned-out family without a λ
    (dropout) is not this figure's to name."""
    rows = [
        trial("l2", [0.9, 0.85], [0.8, 0.8], lam=1e-4),
        trial("l2", [0.9, 0.87], [0.8, 0.8], lam=1e-2),
        trial("l1", [0.5, 0.55], [0.4, 0.45], lam=0.1, state=TrialState.PRUNED),
        trial("dropout", [0.5, 0.55], [0.4, 0.45], lam=0.3, state=TrialState.PRUNED),
    ]
    trials = trials_frame(numbered(rows))
    assert strength_families_unshown(trials) == ["l1"]
    fig = plot_gap_vs_strength(gap_vs_strength_data(trials), None, ["l1"])
    assert set(_panels(fig)) == {"L2 λ"}
    assert "not shown, no completed trial (all pruned or failed): l1" in _fig_text(fig)
    assert "not shown" not in _fig_text(plot_gap_vs_strength(gap_vs_strength_data(trials)))
    assert _layout_problems(fig) == []


def test_gap_vs_strength_marks_collapsed_trials() -> None:
    rows = [
        trial("l1", [0.9, 0.95], [0.8, 0.85], lam=1e-4),
        trial("l1", [0.1, 0.11], [0.1, 0.11], lam=1.0),
    ]
    data = gap_vs_strength_data(trials_frame(numbered(rows)))
    assert data.set_index("trial")["collapsed"].to_dict() == {0: False, 1: True}
    fig = plot_gap_vs_strength(data)
    assert _points(fig.axes[0]) == {"l1": 1, "l1, collapsed": 1}
    assert "collapsed (chance level)" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_gap_vs_strength_cocktail_has_a_panel_per_strength() -> None:
    data = gap_vs_strength_data(trials_frame(cocktail_trials(4)))
    assert data.groupby("param").size().to_dict() == {
        "clip": 4,
        "l1": 4,
        "l2": 4,
        "weight_decay": 4,
    }
    clip = data[data["param"] == "clip"].set_index("trial")
    assert clip["strength"].to_dict() == pytest.approx({0: 0.1, 1: 0.5, 2: 2.5, 3: 12.5})
    assert clip["gap"].to_dict() == pytest.approx({0: 0.01, 1: 0.02, 2: 0.03, 3: 0.04})
    fig = plot_gap_vs_strength(data)
    panels = _panels(fig)
    assert list(panels) == [hparam_label(k) for k in ("l1", "l2", "weight_decay", "clip")]
    for key in ("l1", "l2", "weight_decay", "clip"):
        ax = panels[hparam_label(key)]
        assert _points(ax) == {"cocktail": 4}
        assert ax.get_xscale() == "log" and ax.get_xlabel() == strength_label(key)
    ticks = [t.get_text() for ax in fig.axes for t in ax.get_xticklabels() if t.get_text()]
    assert all(len(t) <= 8 for t in ticks), ticks  # 3 digits, no 16-digit floats
    assert _layout_problems(fig) == []


def test_gap_vs_strength_single_family_and_nothing_varying() -> None:
    one = [trial("l2", [0.6, 0.9], [0.6, 0.8], lam=lam) for lam in (1e-4, 1e-3, 1e-2)]
    fig = plot_gap_vs_strength(gap_vs_strength_data(trials_frame(numbered(one))))
    assert list(_panels(fig)) == ["L2 λ"]
    assert _points(fig.axes[0]) == {"l2": 3} and _layout_problems(fig) == []
    same = [trial("l2", [0.6, 0.9], [0.6, 0.8], lam=1e-3) for _ in range(3)]
    data = gap_vs_strength_data(trials_frame(numbered(same)))
    assert data.empty
    fig = plot_gap_vs_strength(data)
    assert fig.axes[0].texts[0].get_text().startswith("no λ")


def test_dropout_figure(controlled_frames: Frames) -> None:
    data = dropout_data(controlled_frames[0])
    assert data.set_index("trial")["dropout"].to_dict() == {5: 0.5, 6: 0.2}
    ref = baseline_reference(controlled_frames[0])  # trials 0 and 10: only one with metrics
    assert ref.empty
    fig = plot_dropout(data, ref)
    left, right = fig.axes
    assert left.get_xlabel() == "dropout p" and left.get_ylabel() == GAP_LABEL
    assert "validation accuracy" in right.get_ylabel()
    assert _points(left) == {"trials": 2}
    # two single runs show no trend: no median line joins them, and the figure says why
    assert [ln.get_label() for ln in left.get_lines()] == []
    assert "no median line: 2 runs learned, and a trend needs 6" in _fig_text(fig)
    assert left.get_ylim()[0] > 0.0  # fitted: gaps 0.06–0.13, zero not dragged in
    assert _layout_problems(fig) == []  # the legend sits outside the panels


def test_dropout_figure_marks_collapsed_runs_and_leaves_them_out_of_the_median() -> None:
    """A run at chance level learned nothing: its gap near 0 is no regularization effect. It is
    drawn as a cross and not counted in the median line (which needs 6 runs that learned)."""
    ps = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    rows = [trial("dropout", [0.9, 0.95 - p / 10], [0.8, 0.85], lam=p) for p in ps]
    rows.append(trial("dropout", [0.1, 0.1], [0.1, 0.1], lam=0.8))  # collapsed: chance level
    data = dropout_data(trials_frame(numbered(rows)))
    assert data.set_index("trial")["collapsed"].to_dict() == {i: i == 6 for i in range(7)}
    fig = plot_dropout(data)
    left, _ = fig.axes
    assert _points(left) == {"trials": 6, "collapsed (chance level)": 1}
    (median,) = [ln for ln in left.get_lines() if ln.get_label() == "median"]
    assert list(median.get_xdata()) == ps  # p = 0.8 (collapsed) is not on the line
    assert list(median.get_ydata()) == pytest.approx([0.1 - p / 10 for p in ps])
    assert "1 collapsed to chance (×), left out of the median" in _fig_text(fig)
    assert "no median line" not in _fig_text(fig)
    # with one run fewer that learned, the line would join noise: it is not drawn
    fewer = plot_dropout(data[data["trial"] != 0])
    assert [ln for ln in fewer.axes[0].get_lines() if ln.get_label() == "median"] == []


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-5, "1e-05"),
        (1.2345e-4, "1.23e-04"),
        (0.5, "0.5"),
        (0.0123456, "0.0123"),
        (12.5, "12.5"),
        (3e6, "3e+06"),
        (0.0, "0"),
        (5.0, "5"),
    ],
)
def test_compact_numbers(value: float, text: str) -> None:
    assert compact(value) == text


def _cells(data: pd.DataFrame) -> dict[tuple[str, str], tuple[int, float]]:
    return {(str(r.y), str(r.x)): (int(r.n), float(r.val_acc)) for r in data.itertuples()}


def test_heatmap_bins_by_data_without_a_space(controlled_frames: Frames) -> None:
    data = heatmap_data(controlled_frames[0])
    assert data.attrs["x"] == "lr" and data.attrs["y"] == "regularizer"
    assert data.attrs["x_scale"] == "log" and data.attrs["chosen_by"] == "distinct values"
    # 6 distinct lr values over 1.7 decades: 5 log-spaced bins, 3 significant digits
    assert list(data["x"].cat.categories) == [
        "0.001–0.00219",
        "0.00219–0.00478",
        "0.00478–0.0105",
        "0.0105–0.0229",
        "0.0229–0.05",
    ]
    cells = _cells(data)
    assert cells[("l2", "0.0229–0.05")] == pytest.approx((2, (0.83 + 0.75) / 2))  # trials 3, 4
    assert cells[("none", "0.001–0.00219")][0] == 0  # empty cell kept
    assert len(cells) == 4 * 5  # every regularizer × every bin


def test_heatmap_bins_on_the_search_scale_and_annotates_counts() -> None:
    rows = [
        trial("l1", [0.9, 0.9], [0.7, v], lam=lam, lr=lr)
        for v, lam, lr in (
            (0.80, 2e-5, 0.01),
            (0.82, 3e-5, 0.02),
            (0.84, 5e-5, 0.01),
            (0.86, 8e-5, 0.05),
        )
    ]
    frozen = numbered(rows)
    for t in frozen:  # the distributions Optuna stores with each trial
        t.distributions = {
            "lr": FloatDistribution(0.0, 0.1),
            "l1": FloatDistribution(1e-6, 1e-2, log=True),
        }
    trials = trials_frame(frozen).assign(params_l1=[2e-5, 3e-5, 5e-5, 8e-5])
    data = heatmap_data(trials, "lr", "l1", scales=param_scales(frozen))
    assert data.attrs["y_scale"] == "log" and data.attrs["x_scale"] == "linear"
    # log bins over the searched 1e-6..1e-2 (4 decades, 5 bins), not over the data's range
    assert list(data["y"].cat.categories) == [
        "1e-06–6.31e-06",
        "6.31e-06–3.98e-05",
        "3.98e-05–2.51e-04",
        "2.51e-04–0.00158",
        "0.00158–0.01",
    ]
    assert data["x"].cat.categories[0] == "0–0.02"
    assert data["n"].sum() == 4 and (data["n"] == 0).sum() == 25 - 3
    fig = plot_heatmap(data)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert "0.810\nn=2" in texts and texts.count("n=0") == 22
    lo, hi = ax.collections[0].get_clim()
    assert lo >= 0.81 - 1e-9 and hi <= 0.86 + 1e-9  # colour range = observed cell means
    assert ax.get_ylabel() == "L1 λ (log-spaced bins)"
    assert ax.get_xlabel() == "learning rate (linear bins)"
    assert _layout_problems(fig) == []


def test_heatmap_colour_limit_never_beyond_one() -> None:
    rows = [
        trial("l2", [1.0, 1.0], [1.0, 1.0], lam=lam, lr=lr)
        for lam, lr in ((1e-3, 0.01), (1e-2, 0.02), (1e-3, 0.02), (1e-2, 0.01))
    ]
    data = heatmap_data(trials_frame(numbered(rows)), "lr", "model.dropout")
    data = heatmap_data(
        trials_frame(numbered(rows)).assign(params_l2=[1e-3, 1e-2, 1e-3, 1e-2]), "lr", "l2"
    )
    assert data.attrs["x_scale"] == "values"
    assert plot_heatmap(data).axes[0].collections[0].get_clim()[1] <= 1.0


def test_heatmap_picks_by_importance() -> None:
    trials = trials_frame(cocktail_trials(8))
    data = heatmap_data(trials, importance={"regularizer.dropout": 0.7, "regularizer.l1": 0.2})
    assert (data.attrs["x"], data.attrs["y"]) == ("regularizer.dropout", "regularizer.l1")
    assert data.attrs["chosen_by"] == "importance"
    fig = plot_heatmap(data)
    assert fig.axes[0].get_xlabel().startswith("dropout p")
    assert _layout_problems(fig) == []
    by_count = heatmap_data(trials)  # every parameter has 8 values: ties broken by name
    assert (by_count.attrs["x"], by_count.attrs["y"]) == ("regularizer.clip", "regularizer.dropout")


def test_best_curves_with_baseline(controlled_frames: Frames) -> None:
    data = best_curves_data(*controlled_frames)
    top = data[data["role"] == "top"].groupby("family")["trial"].first().to_dict()
    assert top == {"dropout": 5, "l1": 1, "l2": 3, "none": 0}
    assert set(data.loc[data["role"] == "baseline", "trial"]) == {0}
    fig = plot_best_curves(data)
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert set(panels) == {"dropout (trial 5)", "l1 (trial 1)", "l2 (trial 3)", "none (trial 0)"}
    l1 = panels["l1 (trial 1)"]
    assert len(l1.get_lines()) == 4 and len(panels["none (trial 0)"].get_lines()) == 2
    assert l1.get_xlabel() == "epoch" and "loss" in l1.get_ylabel()
    assert all(ax.get_legend() is None for ax in fig.axes)  # one legend, outside the panels
    assert len(fig.legends) == 1 and _layout_problems(fig) == []
    base_val = data[
        (data["role"] == "baseline") & (data["split"] == "val") & (data["family"] == "l1")
    ]["loss"].tolist()
    assert base_val[-1] > min(base_val)  # the overfitting picture
    named = plot_best_curves(data, ["clip"])  # a family the search tried, all pruned
    assert "not shown, no completed trial (all pruned or failed): clip" in _fig_text(named)
    assert "not shown" not in _fig_text(fig) and _layout_problems(named) == []
    # the baseline is a search run at its own settings: the figure must not read as an effect
    assert "not the regularizer alone" in _fig_text(fig)


def test_best_curves_without_baseline_says_so() -> None:
    trials = trials_frame(cocktail_trials(2))
    data = best_curves_data(trials, curves_frame(cocktail_trials(2)))
    assert set(data["role"]) == {"top"} and set(data["trial"]) == {1}
    fig = plot_best_curves(data)
    texts = [t.get_text() for t in fig.texts]
    assert any("no unregularized baseline" in t for t in texts), texts
    assert _layout_problems(fig) == []  # one panel: the title wraps instead of being clipped


def test_sparsity_l1_vs_l2_leaves_collapsed_out(controlled_frames: Frames) -> None:
    data = sparsity_data(controlled_frames[0])
    assert data.groupby("family")["sparsity"].max().to_dict() == pytest.approx(
        {"l1": 0.6, "l2": 0.01}
    )
    assert data.attrs["collapsed_left_out"] == 0
    rows = [
        trial("l1", [0.6, 0.9], [0.6, 0.85], lam=1e-3, sparsity=[0.1, 0.2]),
        trial("l1", [0.6, 0.9], [0.6, 0.85], lam=1e-2, sparsity=[0.1, 0.3]),
        trial("l1", [0.1, 0.1], [0.1, 0.11], lam=1.0, sparsity=[0.99, 0.99]),
    ]
    data = sparsity_data(trials_frame(numbered(rows)))
    assert sorted(data["trial"]) == [0, 1] and data.attrs["collapsed_left_out"] == 1
    fig = plot_sparsity(data)
    assert "1 collapsed trial (at chance level) left out" in _fig_text(fig)
    assert _layout_problems(fig) == []


def test_sparsity_and_dead_units_rows() -> None:
    rows = [
        trial(
            "l1", [0.6, 0.9], [0.6, 0.85], lam=lam, sparsity=[0.0, s], extra_attrs={"dead_units": d}
        )
        for lam, s, d in ((1e-4, 0.1, 0.0), (1e-3, 0.3, 0.05), (1e-2, 0.6, 0.25))
    ]
    rows += [trial("l2", [0.6, 0.9], [0.6, 0.85], lam=lam) for lam in (1e-4, 1e-2)]
    data = sparsity_data(trials_frame(numbered(rows)))
    l1 = data[data["param"] == "l1"].set_index("trial")
    assert l1["dead_units"].to_dict() == pytest.approx({0: 0.0, 1: 0.05, 2: 0.25})
    panels = _panels(plot_sparsity(data))
    assert set(panels) == {
        "weight sparsity vs L1 λ",
        "weight sparsity vs L2 λ",
        "dead hidden units vs L1 λ",
        "dead hidden units vs L2 λ",
    }
    assert _points(panels["dead hidden units vs L1 λ"]) == {"l1": 3}


def test_sparsity_at_one_lambda_each_reads_its_lambda_and_stays_at_zero_or_more() -> None:
    """000's notes: L1 and L2 at λ = 0.01 only, every unit alive. Each panel's one λ is a tick
    of its own (a 1-2-5 or evenly spaced locator left 0.01 unlabelled, between no ticks or
    beside 0.05 and 0.1), and a fraction's axis does not run below zero ("-0.0075" widened the
    labels until the axis title fell off the figure)."""
    rows = [
        trial(
            f,
            [0.56, 0.56],
            [0.5, 0.5],
            lam=0.01,
            chance_acc=0.5,
            sparsity=[0.0, s],
            extra_attrs={"dead_units": 0.0},
        )
        for f, s in (("l1", 0.12), ("l1", 0.13), ("l2", 0.002))
    ]
    fig = plot_sparsity(sparsity_data(trials_frame(numbered(rows))))
    assert _layout_problems(fig) == []  # drawn: the tick labels are set
    for title, ax in _panels(fig).items():
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0.01"], title
        lo, hi = ax.get_xlim()
        assert lo < 0.01 < hi and hi / lo < 20, title  # centred, not stretched to 0.1
        low, high = ax.get_ylim()
        assert -0.05 * high <= low <= 0.0 < high, title  # a sliver below 0, for a point on it
        shown = [t.get_position()[1] for t in ax.get_yticklabels() if t.get_text()]
        assert min(y for y in shown if low <= y <= high) == 0.0, (title, shown)


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
    assert _points(panels["weight sparsity vs L1 λ"]) == {"cocktail": 3}
    assert _points(panels["weight sparsity vs L2 λ"]) == {"cocktail": 3}


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
    assert ax.get_xlabel() == "trial number"
    assert ax.get_ylabel() == "validation accuracy (objective)"
    assert len(ax.get_lines()) == 1  # best so far
    assert _layout_problems(fig) == []  # draws: the ticks below are the drawn ones
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert len(ticks) >= 3 and all(float(t).is_integer() for t in ticks)


def test_intermediate_values(controlled_frames: Frames) -> None:
    data = intermediate_data(*controlled_frames)
    assert 9 not in set(data["trial"])  # interrupted
    fig = plot_intermediate(data)
    ax = fig.axes[0]
    lines = {
        c.get_label(): len(c.get_segments())
        for c in ax.collections
        if isinstance(c, LineCollection)
    }
    assert lines == {"complete (7)": 7, "pruned (1)": 1}
    assert ax.get_xlabel() == "epoch" and _layout_problems(fig) == []


def test_pareto_front() -> None:
    points = [(0.90, 0.1), (0.85, 0.5), (0.80, 0.4), (0.70, 0.9), (0.88, 0.05)]
    rows = [
        record_trial(
            family="l1",
            curves={
                "val_acc": [v],
                "train_acc": [v],
                "val_loss": [1],
                "train_loss": [1],
                "sparsity": [s],
            },
            values=[v, s],
        )
        for v, s in points
    ]
    trials = trials_frame(numbered(rows, 2), objectives=["val_acc", "sparsity"])
    assert trials["objective_sparsity"].tolist() == pytest.approx([0.1, 0.5, 0.4, 0.9, 0.05])
    data = pareto_data(trials, ["val_acc", "sparsity"], ["maximize", "maximize"])
    assert data.loc[data["on_front"], "trial"].tolist() == [0, 1, 3]  # by val_acc, best first
    assert set(data.loc[~data["on_front"], "trial"]) == {2, 4}
    fig = plot_pareto(data, ["val_acc", "sparsity"], ["maximize", "maximize"])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "validation accuracy (higher is better)"
    assert ax.get_ylabel() == "weight sparsity (higher is better)"
    assert _layout_problems(fig) == []
    flipped = pareto_data(trials, ["val_acc", "sparsity"], ["maximize", "minimize"])
    assert set(flipped.loc[flipped["on_front"], "trial"]) == {0, 4}  # 0.90/0.1 vs 0.88/0.05


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
        plot_pareto(
            pareto_data(empty, ["val_acc", "sparsity"], ["maximize", "maximize"]),
            ["val_acc", "sparsity"],
            ["maximize", "maximize"],
        ),
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
