"""Confirmation runs → effects with simultaneous intervals and Bonferroni-adjusted p-values,
checked by hand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from scipy import stats

from analysis import (
    build_report,
    effects,
    gap_vs_strength_data,
    load_confirm,
    load_trials,
    open_storage,
    plot_effects,
    plot_gap_vs_strength,
    read_study,
    resolve_study_name,
)
from analysis.__main__ import main
from analysis._stats import holm, min_detectable, paired_p, t_interval
from tests.analysis.analysis_studies import (
    confirmed_study,
    controlled_trials,
    numbered,
    trial,
    write_study,
)

BASE = [0.80, 0.81, 0.79, 0.82, 0.80]
# dropout − its baseline, per seed: clear at the simultaneous level of 4 finalists
DROP = [0.02, 0.03, 0.03, 0.04, 0.03]
ARMS: dict[str, dict[str, Any]] = {
    "base-drop": {"family": "none", "role": "baseline", "val_acc": BASE, "gap_acc": 0.10},
    "drop": {
        "family": "dropout",
        "role": "finalist",
        "baseline": "base-drop",
        "val_acc": [b + d for b, d in zip(BASE, DROP, strict=True)],
        "gap_acc": [0.06, 0.05, 0.07, 0.04, 0.05],
        "test_acc": 0.79,
    },
    "base-l2": {"family": "none", "role": "baseline", "val_acc": 0.8},
    # the same accuracy as its baseline, a loss 2.5 % apart: a model of its own, not the same run
    "l2": {
        "family": "l2",
        "role": "finalist",
        "baseline": "base-l2",
        "val_acc": 0.8,
        "val_loss": 0.41,
    },
    "base-l1": {"family": "none", "role": "baseline", "val_acc": [0.8, 0.82, 0.84, 0.86, 0.88]},
    "l1": {
        "family": "l1",
        "role": "finalist",
        "baseline": "base-l1",
        "val_acc": [0.78, 0.80, 0.82, 0.84, 0.86],
    },
    "base-wd": {"family": "none", "role": "baseline", "val_acc": 0.8, "failed": {4}},
    "wd": {
        "family": "weight_decay",
        "role": "finalist",
        "baseline": "base-wd",
        "val_acc": [0.81, 0.79, 0.82, 0.80, 0.90],
    },
    "none": {"family": "none", "role": "finalist", "val_acc": [0.80, 0.80, 0.81, 0.79, 0.80]},
}
T975 = {2: 4.302652729911275, 3: 3.182446305284263, 4: 2.7764451051977987}  # t(0.975, df)


def _by_hand(d: list[float], k: int = 1) -> tuple[float, float, float, float]:
    """Mean, CI and two-sided paired-t p of differences ``d``, from the formulas: the CI at
    95 % for one comparison, at 1 − 0.05/k (Bonferroni) for one of ``k``."""
    x = np.asarray(d)
    n, m = len(x), float(x.mean())
    se = float(np.sqrt(((x - m) ** 2).sum() / (n - 1)) / np.sqrt(n))
    p = float(2 * stats.t.sf(abs(m / se), n - 1))
    t = T975[n - 1] if k == 1 else float(stats.t.ppf(1 - 0.05 / (2 * k), n - 1))
    return m, m - t * se, m + t * se, p


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory: pytest.TempPathFactory) -> str:
    return confirmed_study(tmp_path_factory.mktemp("conf") / "c.db", ARMS)


def test_effects_match_intervals_and_p_values_by_hand(confirmed: str) -> None:
    table = effects(confirmed, "conf").set_index("family")
    assert list(table.index) == ["dropout", "weight_decay", "l2", "l1", "none"]  # best Δ first
    m, lo, hi, p_drop = _by_hand(DROP, 4)  # 4 finalists compared: simultaneous intervals
    drop = table.loc["dropout"]
    assert drop["delta_val_acc"] == pytest.approx(m)
    assert (drop["delta_val_acc_ci_low"], drop["delta_val_acc_ci_high"]) == pytest.approx((lo, hi))
    assert drop["p_raw"] == pytest.approx(p_drop)
    gap_m, gap_lo, gap_hi, _ = _by_hand([-0.04, -0.05, -0.03, -0.06, -0.05], 4)
    assert drop["delta_gap_acc"] == pytest.approx(gap_m)
    assert drop["delta_gap_acc_ci_low"] == pytest.approx(gap_lo)
    assert drop["delta_gap_acc_ci_high"] == pytest.approx(gap_hi)
    vm, vlo, vhi, _ = _by_hand([b + d for b, d in zip(BASE, DROP, strict=True)])
    assert (drop["val_acc_mean"], drop["val_acc_ci_low"], drop["val_acc_ci_high"]) == (
        pytest.approx((vm, vlo, vhi))
    )
    assert drop["test_acc_mean"] == pytest.approx(0.79) and drop["gap_acc_mean"] == (
        pytest.approx(0.054)
    )
    assert drop["n_seeds"] == 5 and drop["n_pairs"] == 5 and drop["baseline"] == "base-drop"
    # identical differences: all zero → p = 1, constant nonzero → p = 0
    assert table.loc["l2", "p_raw"] == 1.0 and table.loc["l2", "delta_val_acc"] == pytest.approx(0)
    assert table.loc["l1", "p_raw"] == 0.0
    assert table.loc["l1", "delta_val_acc"] == pytest.approx(-0.02)
    # a baseline seed failed: only the 4 seeds where both completed are paired
    wd = table.loc["weight_decay"]
    m, lo, hi, p_wd = _by_hand([0.01, -0.01, 0.02, 0.0], 4)
    assert wd["n_seeds"] == 5 and wd["baseline_n_seeds"] == 4 and wd["n_pairs"] == 4
    assert (wd["delta_val_acc"], wd["delta_val_acc_ci_low"]) == pytest.approx((m, lo))
    assert wd["p_raw"] == pytest.approx(p_wd)
    # Bonferroni by hand over the 4 finalists: p · 4, capped at 1
    adjusted = [min(1.0, p * 4) for p in (0.0, p_drop, p_wd, 1.0)]
    assert [table.loc[f, "p_value"] for f in ("l1", "dropout", "weight_decay", "l2")] == (
        pytest.approx(adjusted)
    )
    assert table["verdict"].to_dict() == {
        "dropout": "helps",
        "l2": "no_difference",
        "weight_decay": "no_difference",
        "l1": "hurts",
        "none": "baseline",
    }
    assert (table["ci_level"].drop("none") == 1 - 0.05 / 4).all()
    none = table.loc["none"]
    assert math.isnan(none["delta_val_acc"]) and math.isnan(none["p_value"])
    assert none["val_acc_mean"] == pytest.approx(0.80)


def test_verdict_follows_the_loss_when_the_study_minimizes_it(tmp_path: Path) -> None:
    arms = {
        "b": {
            "family": "none",
            "role": "baseline",
            "val_acc": 0.8,
            "val_loss": [0.50, 0.52, 0.51, 0.49, 0.50],
        },
        "d": {
            "family": "dropout",
            "role": "finalist",
            "baseline": "b",
            "val_acc": 0.8,
            "val_loss": [0.45, 0.46, 0.47, 0.43, 0.44],
        },
    }
    url = confirmed_study(tmp_path / "l.db", arms, metric="val_loss")
    row = effects(url, "conf").iloc[0]
    assert row["decided_on"] == "val_loss" and row["verdict"] == "helps"  # lower loss
    assert row["delta_val_loss"] == pytest.approx(-0.054)
    # every family has a verdict (none is "no detectable difference"): the answer still opens
    text = build_report(url, "conf", out=tmp_path / "r").answer.text
    assert text.startswith("Against the unregularized baseline, dropout lowers validation loss")


def test_too_few_seeds_and_no_confirmation(tmp_path: Path) -> None:
    arms = {
        "b": {"family": "none", "role": "baseline", "val_acc": 0.8, "failed": {1, 2, 3, 4}},
        "d": {"family": "dropout", "role": "finalist", "baseline": "b", "val_acc": 0.82},
    }
    url = confirmed_study(tmp_path / "f.db", arms)
    row = effects(url).iloc[0]
    assert row["n_pairs"] == 1 and row["verdict"] == "not_explored"
    assert row["notes"].startswith("too few paired seeds (n=1)")
    assert math.isnan(row["p_value"]) and math.isnan(row["delta_val_acc_ci_low"])
    plain = write_study(tmp_path / "p.db", controlled_trials()[:2])
    table = effects(plain)
    assert table.empty and {"delta_val_acc", "p_value", "verdict"} <= set(table.columns)


def test_stats_helpers() -> None:
    assert holm([0.01, 0.04, 0.03, math.nan]).round(3).tolist()[:3] == [0.03, 0.06, 0.06]
    assert math.isnan(holm([math.nan])[0]) and paired_p([0.1]) != paired_p([0.1])  # NaN
    assert t_interval([2.0]).n == 1 and math.isnan(t_interval([2.0]).low)
    wide = t_interval([0.0, 1.0], within=(0.0, 1.0))  # uncut: 0.5 ± 6.35
    assert (wide.mean, wide.low, wide.high) == (0.5, 0.0, 1.0)
    assert paired_p([0.0, 0.0, 0.0]) == 1.0 and paired_p([0.3, 0.3]) == 0.0


def test_confirmation_runs_and_study_names(confirmed: str) -> None:
    runs = load_confirm(confirmed, "conf.confirm")
    assert len(runs) == 9 * 5 and set(runs["role"]) == {"finalist", "baseline"}
    drop = runs[runs["arm"] == "drop"].set_index("seed")
    assert drop["baseline"].unique().tolist() == ["base-drop"]
    assert drop.loc[2, "val_acc"] == pytest.approx(0.82) and drop.loc[2, "state"] == "COMPLETE"
    assert (runs.loc[(runs["arm"] == "base-wd"), "state"] == "FAIL").sum() == 1
    # S or S.confirm: the same search study with its companion; the default skips .confirm
    assert resolve_study_name(open_storage(confirmed)) == "conf"  # the search, not its companion
    for name in ("conf", "conf.confirm", None):
        data = read_study(confirmed, name)
        assert data.name == "conf" and data.confirm is not None
        assert data.confirm.name == "conf.confirm" and len(data.confirm.confirm_plan) == 9
    assert len(load_trials(confirmed, "conf.confirm")) == len(controlled_trials())


def test_forest_plot(confirmed: str) -> None:
    fig = plot_effects(effects(confirmed))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["dropout", "weight_decay", "l2", "l1"]
    assert ax.get_xlabel() == "Δ validation accuracy vs baseline (percentage points)"
    zero = [
        ln
        for ln in ax.get_lines()
        if list(ln.get_xdata()) == [0, 0] and list(ln.get_ydata()) == [0, 1]
    ]  # axvline
    assert len(zero) == 1
    bars = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2 and ln not in zero]
    _, lo, hi, _ = _by_hand(DROP, 4)
    top = max(bars, key=lambda ln: ln.get_ydata()[0])  # dropout: the top row
    assert list(top.get_xdata()) == pytest.approx([lo * 100, hi * 100])
    assert top.get_color() == "tab:green"
    assert {t.get_text() for t in ax.texts} == {"n=5", "n=4"}
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "helps",
        "no detectable difference",
        "hurts",
    ]


def test_a_collapsed_finalist_does_not_flatten_the_others_intervals(tmp_path: Path) -> None:
    """A finalist at chance on some seeds sits ~60 points below its baseline; the others differ
    by fractions of a point. The axis follows the others, so their intervals stay readable, and
    the collapsed one is drawn to the edge with its mean written out."""
    url = confirmed_study(
        tmp_path / "c.db",
        {
            "shaky": {
                "family": "dropout",
                "role": "finalist",
                "baseline": "base",
                "val_acc": [0.10, 0.10, 0.90, 0.91, 0.89],
            },
            "steady": {
                "family": "l2",
                "role": "finalist",
                "baseline": "base",
                "val_acc": [0.905, 0.898, 0.915, 0.893, 0.902],
            },
            "base": {
                "family": "none",
                "role": "finalist",
                "val_acc": [0.90, 0.90, 0.91, 0.89, 0.90],
            },
        },
    )
    table = effects(url, "conf")
    ax = plot_effects(table).axes[0]
    l2 = table.set_index("family").loc["l2"]
    lo, hi = 100 * l2["delta_val_acc_ci_low"], 100 * l2["delta_val_acc_ci_high"]
    x_lo, x_hi = ax.get_xlim()
    assert x_lo > -5 and x_hi < 5 and x_lo < lo and hi < x_hi  # l2's bar fits, at its scale
    shaky = table.set_index("family").loc["dropout"]
    m, lo, hi = 100 * shaky[["delta_val_acc", "delta_val_acc_ci_low", "delta_val_acc_ci_high"]]
    assert m < -30
    assert f"mean {m:+.1f}, 95% CI {lo:+.1f} to {hi:+.1f}: off scale" in {
        t.get_text() for t in ax.texts
    }
    assert any(ln.get_marker() == "<" and ln.get_xdata()[0] == x_lo for ln in ax.get_lines())


def test_wide_intervals_do_not_flatten_the_narrow_ones(tmp_path: Path) -> None:
    """The default study's forest plot: five finalists within ±1.5 points, elastic_net's
    interval 28 points wide and dropout's 98 (two seeds collapsed). Drawn to scale, the five
    were dots. The axis follows the narrow ones; each wide interval runs to the axis edges,
    arrow-headed, with its figures written, whether or not it collapsed."""
    base = [0.90, 0.91, 0.89, 0.90, 0.92]
    shift = {
        "wd": [0.004, 0.008, 0.0, 0.01, 0.006],
        "l2": [0.0, 0.004, -0.004, 0.002, 0.0],
        "elastic": [-0.20, 0.02, 0.0, 0.01, -0.04],
        "drop": [-0.8, -0.8, 0.0, 0.01, 0.0],
    }
    families = {"wd": "weight_decay", "l2": "l2", "elastic": "elastic_net", "drop": "dropout"}
    arms: dict[str, dict[str, Any]] = {
        "base": {"family": "none", "role": "finalist", "val_acc": base}
    }
    for arm, d in shift.items():
        arms[arm] = {
            "family": families[arm],
            "role": "finalist",
            "baseline": "base",
            "val_acc": [b + x for b, x in zip(base, d, strict=True)],
        }
    url = confirmed_study(tmp_path / "c.db", arms)
    table = effects(url, "conf").set_index("family")
    assert table.loc["elastic_net", "n_collapsed"] == 0  # wide, not collapsed
    ax = plot_effects(effects(url, "conf")).axes[0]
    x_lo, x_hi = ax.get_xlim()
    for family in ("weight_decay", "l2"):  # the narrow bars fit, at their own scale
        lo, hi = 100 * table.loc[family, ["delta_val_acc_ci_low", "delta_val_acc_ci_high"]]
        assert x_lo < lo and hi < x_hi, family
    assert x_hi - x_lo < 4
    texts = {t.get_text() for t in ax.texts}
    for family in ("elastic_net", "dropout"):
        m, lo, hi = (
            100
            * table.loc[family, ["delta_val_acc", "delta_val_acc_ci_low", "delta_val_acc_ci_high"]]
        )
        assert lo < x_lo and hi > x_hi
        assert f"mean {m:+.1f}, 95% CI {lo:+.1f} to {hi:+.1f}: off scale" in texts, family
    heads = [(ln.get_marker(), ln.get_xdata()[0]) for ln in ax.get_lines()]
    assert heads.count(("<", x_lo)) == 2 and heads.count((">", x_hi)) == 2


def test_report_opens_with_the_answer(
    confirmed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "--storage",
                confirmed.removeprefix("sqlite:///"),
                "--study",
                "conf.confirm",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    m, lo, hi, _ = _by_hand(DROP, 4)
    sentence = (
        f"Against the unregularized baseline, dropout raises validation accuracy by "
        f"{m * 100:.1f} points (simultaneous 95% CI {lo * 100:.1f} to {hi * 100:.1f}, "
        "n=5 seeds, Bonferroni-adjusted p="
    )
    assert printed.startswith(sentence)
    assert "weight_decay and l2 show no detectable difference at n=4/5" in printed
    assert "l1 lowers validation accuracy by 2.0 points (simultaneous 95% CI 2.0 to 2.0" in printed
    md = (tmp_path / "r" / "report.md").read_text()
    assert md.index("## Answer") < md.index(sentence) < md.index("figures/effects.png")
    assert md.index("figures/effects.png") < min(
        md.index(f"figures/{s}.png") for s in ("gap_vs_strength", "dropout")
    )
    assert "| dropout | 5 (5) |" in md and "| none | 5 (0) |" in md
    html = (tmp_path / "r" / "report.html").read_text()
    assert html.index('alt="Effect of each finalist') < html.index('alt="Generalization gap')
    tables = tmp_path / "r" / "tables"
    assert (tables / "effects.csv").is_file() and (tables / "effects.parquet").is_file()
    assert (tables / "confirm_runs.csv").is_file()


def test_report_without_confirmation_says_single_runs(tmp_path: Path) -> None:
    url = write_study(tmp_path / "s.db", controlled_trials(), name="search-1")
    report = build_report(url, out=tmp_path / "r")
    text = report.answer.text
    assert text.startswith("No confirmation yet: this ranking comes from single runs")
    assert "l2 0.830, l1 0.810, dropout 0.800, none 0.680" in text
    assert report.answer.command == (
        f"python -m sweep -m hydra.sweeper.storage={url} hydra.sweeper.study_name=search-1 "
        "hydra.sweeper.confirm.only=true"
    )
    assert report.summary.startswith("No confirmation yet")
    md = (tmp_path / "r" / "report.md").read_text()
    assert f"```\n{report.answer.command}\n```" in md and "effects" not in report.figures
    assert "hydra.sweeper.confirm.seeds, default 5" in md


def test_multi_objective_report_names_objectives_and_draws_the_front(tmp_path: Path) -> None:
    from analysis.testing.synthetic import record_trial

    url = f"sqlite:///{tmp_path / 'mo.db'}"
    study = optuna.create_study(storage=url, study_name="mo", directions=["maximize"] * 2)
    study.set_user_attr("regsweep:metric", "val_acc")
    study.set_user_attr("regsweep:objectives", ["val_acc", "sparsity"])
    for v, s in ((0.90, 0.1), (0.85, 0.5), (0.80, 0.4)):
        study.add_trial(
            record_trial(
                family="l1",
                values=[v, s],
                hparams={"l1": s / 10},
                curves={
                    "val_acc": [v],
                    "train_acc": [v + 0.01],
                    "val_loss": [1.0],
                    "train_loss": [1.0],
                    "sparsity": [s],
                },
            )
        )
    report = build_report(url, out=tmp_path / "r")
    facts = dict(report.facts)
    assert facts["objectives"] == (
        "validation accuracy (val_acc, maximize), weight sparsity (sparsity, maximize)"
    )
    assert report.tables["pareto_front"]["trial"].tolist() == [0, 1]
    assert "pareto_front" in report.figures and "intermediate" in report.skipped
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Objective 0" not in md and "## Pareto front" in md


def test_a_finalist_that_collapses_on_some_seeds_says_so(tmp_path: Path) -> None:
    """A mean over seeds hides an unstable configuration: one of its five runs collapsed to
    chance, so its verdict and the report's answer say how many."""
    url = confirmed_study(
        tmp_path / "c.db",
        {
            "shaky": {
                "family": "dropout",
                "role": "finalist",
                "baseline": "base",
                "val_acc": [0.10, 0.90, 0.91, 0.89, 0.90],
            },
            "base": {
                "family": "none",
                "role": "finalist",
                "val_acc": [0.90, 0.90, 0.91, 0.89, 0.90],
            },
        },
    )
    table = effects(url, "conf").set_index("family")
    assert table.loc["dropout", "n_collapsed"] == 1 and table.loc["none", "n_collapsed"] == 0
    assert table.loc["dropout", "verdict"] == "no_difference"
    assert "collapsed to chance on 1 of 5 seeds" in table.loc["dropout", "notes"]
    assert table.loc["none", "verdict"] == "baseline"
    answer = build_report(url, "conf", out=tmp_path / "r").answer.text
    assert "dropout (1 of 5 seeds at chance) shows no detectable difference at n=5" in answer
    assert answer.count("chance") == 1  # said once, not in the name and again after it


def test_a_finalist_that_trains_as_its_baseline_on_every_seed_says_so(tmp_path: Path) -> None:
    """A clip threshold the gradients never reach, or an L1 λ of 1e-6, trains as its baseline:
    the same validation accuracy on every seed and a validation loss within 0.01 %. "No
    detectable difference" would read as a tested regularizer that did not matter; the answer
    says instead that at the chosen strength it had no measurable effect, and names it."""
    base_loss = [0.31, 0.29, 0.33, 0.30, 0.32]
    url = confirmed_study(
        tmp_path / "c.db",
        {
            "clip": {
                "family": "clip",
                "role": "finalist",
                "baseline": "base-clip",
                "label": "clip (learning rate=0.0282, gradient clip norm=4.32)",
                "val_acc": [0.90, 0.91, 0.89, 0.90, 0.92],
                "val_loss": [v * (1 + 2e-5) for v in base_loss],
            },
            "base-clip": {
                "family": "none",
                "role": "baseline",
                "label": "none (baseline at learning rate=0.0282)",
                "val_acc": [0.90, 0.91, 0.89, 0.90, 0.92],
                "val_loss": base_loss,
            },
            # the same accuracy on every seed, but a loss 1 % apart: it did change the model
            "l2": {
                "family": "l2",
                "role": "finalist",
                "baseline": "base-l2",
                "label": "l2 (learning rate=0.05, L2 λ=0.001)",
                "val_acc": [0.90, 0.91, 0.89, 0.90, 0.92],
                "val_loss": [v * 1.01 for v in base_loss],
            },
            "base-l2": {
                "family": "none",
                "role": "baseline",
                "label": "none (baseline at learning rate=0.05)",
                "val_acc": [0.90, 0.91, 0.89, 0.90, 0.92],
                "val_loss": base_loss,
            },
            "none": {
                "family": "none",
                "role": "finalist",
                "val_acc": [0.90, 0.90, 0.91, 0.89, 0.9],
            },
        },
    )
    table = effects(url, "conf").set_index("family")
    assert table.loc["clip", "n_same"] == 5 and table.loc["l2", "n_same"] == 0
    assert table.loc["clip", "verdict"] == "same_as_baseline"
    assert "same as its baseline on every seed" in table.loc["clip", "notes"]
    assert table.loc["l2", "verdict"] == "no_difference"
    ticks = {t.get_text() for t in plot_effects(effects(url, "conf")).axes[0].get_yticklabels()}
    assert ticks == {"clip (same as baseline)", "l2"}
    answer = build_report(url, "conf", out=tmp_path / "r").answer.text
    assert "l2 shows no detectable difference at n=5" in answer
    assert (
        "clip trained as its baseline did on every seed (the same validation accuracy, "
        "validation loss within 0.01 %): at the strength the search chose (gradient clip "
        "norm=4.32) it had no measurable effect"
    ) in answer
    assert "clip shows" not in answer


def test_intervals_stay_within_what_the_metric_can_take(tmp_path: Path) -> None:
    """A t-interval on a few seeds, one of them collapsed, reaches past what an accuracy can be
    (the default study printed "91.9 (78.2 to 105.5)" %). The mean cannot lie outside 0–100 %,
    so the bound is cut there: the interval still holds the mean whenever the uncut one did."""
    url = confirmed_study(
        tmp_path / "c.db",
        {
            "shaky": {
                "family": "dropout",
                "role": "finalist",
                "baseline": "base",
                "val_acc": [0.05, 0.05, 0.95],
                "test_acc": [0.05, 0.06, 0.96],
                "gap_acc": [-0.9, 0.9, 0.0],
                "val_loss": [0.01, 2.0, 0.02],
            },
            "base": {
                "family": "none",
                "role": "finalist",
                "val_acc": [0.95, 0.95, 0.95],
                "test_acc": 0.95,
                "gap_acc": 0.02,
                "val_loss": 0.2,
            },
        },
        seeds=(0, 1, 2),
    )
    row = effects(url, "conf").set_index("family").loc["dropout"]
    # uncut, by hand: mean ± t(0.975, 2)·s/√3
    half = stats.t.ppf(0.975, 2) * np.std([0.05, 0.05, 0.95], ddof=1) / np.sqrt(3)
    assert row["val_acc_mean"] == pytest.approx(0.35)
    assert 0.35 - half < 0 and 0.35 + half > 1  # the uncut interval leaves [0, 1] both ways
    assert (row["val_acc_ci_low"], row["val_acc_ci_high"]) == (0.0, 1.0)
    assert row["test_acc_ci_low"] == 0.0 and row["test_acc_ci_high"] == 1.0
    assert row["val_loss_ci_low"] == 0.0  # a loss is never negative
    loss_half = stats.t.ppf(0.975, 2) * np.std([0.01, 2.0, 0.02], ddof=1) / np.sqrt(3)
    assert row["val_loss_ci_high"] == pytest.approx(2.03 / 3 + loss_half)  # uncut: in range
    assert (row["gap_acc_ci_low"], row["gap_acc_ci_high"]) == (-1.0, 1.0)
    # Δ of two accuracies lies in [−1, 1]: the uncut −0.6 − 1.29 is cut at −1 (one finalist:
    # its simultaneous interval is the plain 95% one)
    assert row["delta_val_acc"] == pytest.approx(-0.6)
    assert row["delta_val_acc_ci_low"] == -1.0
    assert row["delta_val_acc_ci_high"] == pytest.approx(-0.6 + half)
    md = build_report(url, "conf", out=tmp_path / "r").tables["effects"]
    assert md.set_index("family").loc["dropout", "val_acc_ci_high"] == 1.0


def test_no_detectable_difference_states_how_large_a_change_the_seeds_leave_open(
    tmp_path: Path,
) -> None:
    """A verdict of "no detectable difference" is not "no difference": at n=5 one finalist's interval may
    rule out anything beyond a point, another's leave ±15 points open. The answer gives each
    one's interval, so the reader sees which it is."""
    wide = [-0.30, 0.10, 0.05, 0.12, -0.02]  # one seed 30 points down
    url = confirmed_study(
        tmp_path / "c.db",
        {
            "base-a": {"family": "none", "role": "baseline", "val_acc": BASE},
            "l2": {
                "family": "l2",
                "role": "finalist",
                "baseline": "base-a",
                "val_acc": [
                    b + d for b, d in zip(BASE, [0.004, -0.002, 0.006, 0.0, 0.002], strict=True)
                ],
            },
            "base-b": {"family": "none", "role": "baseline", "val_acc": BASE},
            "dropout": {
                "family": "dropout",
                "role": "finalist",
                "baseline": "base-b",
                "val_acc": [b + d for b, d in zip(BASE, wide, strict=True)],
            },
            "none": {"family": "none", "role": "finalist", "val_acc": BASE},
        },
    )
    text = build_report(url, "conf", out=tmp_path / "r").answer.text
    _, lo_l2, hi_l2, _ = _by_hand([0.004, -0.002, 0.006, 0.0, 0.002], 2)
    _, lo_d, hi_d, _ = _by_hand(wide, 2)
    assert lo_l2 < 0 < hi_l2 and lo_d < -0.15 and hi_d > 0.1  # both unsure, by very different spans
    mde = {
        f: min_detectable(np.asarray(d), alpha=0.05 / 2) * 100
        for f, d in (("l2", [0.004, -0.002, 0.006, 0.0, 0.002]), ("dropout", wide))
    }
    assert text == (
        "Against the unregularized baseline, l2 and dropout show no detectable difference at "
        f"n=5 (simultaneous 95% CIs, in points of validation accuracy: l2 {lo_l2 * 100:+.1f} to "
        f"{hi_l2 * 100:+.1f}, dropout {lo_d * 100:+.1f} to {hi_d * 100:+.1f}); the smallest "
        f"change these seeds detect with 80% power: l2 ±{mde['l2']:.1f} points, dropout "
        f"±{mde['dropout']:.1f} points."
    )
    # a single finalist, and a study decided on the loss (its interval in the loss's units)
    url = confirmed_study(
        tmp_path / "l.db",
        {
            "b": {
                "family": "none",
                "role": "baseline",
                "val_acc": 0.8,
                "val_loss": [0.50, 0.52, 0.51, 0.49, 0.50],
            },
            "d": {
                "family": "dropout",
                "role": "finalist",
                "baseline": "b",
                "val_acc": 0.8,
                "val_loss": [0.51, 0.50, 0.52, 0.47, 0.52],
            },
        },
        metric="val_loss",
    )
    _, lo, hi, _ = _by_hand([0.01, -0.02, 0.01, -0.02, 0.02])
    mde = min_detectable(np.asarray([0.01, -0.02, 0.01, -0.02, 0.02]))
    text = build_report(url, "conf", out=tmp_path / "r2").answer.text
    assert text == (
        "Against the unregularized baseline, dropout shows no detectable difference "
        f"at n=5 (simultaneous 95% CI {lo:+.3g} to {hi:+.3g} in validation loss); "
        f"the smallest change these seeds detect with 80% power: dropout "
        f"±{mde:.3g}."
    )


RANDOM_LABELS = {  # 000's notes: random binary labels, so every run ends at chance (0.5)
    "none": {
        "family": "none",
        "role": "finalist",
        "chance_acc": 0.5,
        "val_acc": [0.50, 0.49, 0.51, 0.50, 0.48],
        "sparsity": 0.002,
    },
    "l1": {
        "family": "l1",
        "role": "finalist",
        "baseline": "none",
        "chance_acc": 0.5,
        "val_acc": [0.49, 0.50, 0.50, 0.51, 0.49],
        "sparsity": [0.121, 0.118, 0.130, 0.125, 0.116],
    },
    "l2": {
        "family": "l2",
        "role": "finalist",
        "baseline": "none",
        "chance_acc": 0.5,
        "val_acc": [0.50, 0.48, 0.51, 0.49, 0.50],
        "sparsity": [0.002, 0.0021, 0.0019, 0.002, 0.002],
    },
}


def test_when_every_run_is_at_chance_none_collapsed_and_the_weights_answer(tmp_path: Path) -> None:
    """000's notes compare L1's sparsity with L2's on random labels, where every model, the
    unregularized one too, ends at chance. That is the data, not a collapse: runs at chance
    count as collapsed only where some run of the study learned. The answer says accuracy
    cannot separate the regularizers here, and reports what does differ: the weights."""
    url = confirmed_study(tmp_path / "c.db", RANDOM_LABELS)
    table = effects(url, "conf").set_index("family")
    assert table["n_collapsed"].tolist() == [0, 0, 0]
    runs = load_confirm(url, "conf")
    assert runs["at_chance"].all() and not runs["collapsed"].any()
    # the paired Δ of sparsity, by hand
    d = [s - 0.002 for s in RANDOM_LABELS["l1"]["sparsity"]]
    m, lo, hi, p = _by_hand(d, 2)
    l1 = table.loc["l1"]
    assert (l1["delta_sparsity"], l1["delta_sparsity_ci_low"], l1["delta_sparsity_ci_high"]) == (
        pytest.approx((m, lo, hi))
    )
    p_l2 = paired_p([s - 0.002 for s in RANDOM_LABELS["l2"]["sparsity"]])
    assert l1["p_sparsity"] == pytest.approx(min(1.0, 2 * p)) and p_l2 > 0.05  # Bonferroni, 2
    text = build_report(url, "conf", out=tmp_path / "r").answer.text
    assert "seeds at chance" not in text
    assert text == (
        "Against the unregularized baseline, l1 and l2 show no detectable difference at n=5 "
        f"(simultaneous 95% CIs, in points of validation accuracy: l1 {_signed(table, 'l1')}, l2 "
        f"{_signed(table, 'l2')}); the smallest change these seeds detect with 80% power: "
        f"l1 ±{table.loc['l1', 'mde'] * 100:.1f} points, l2 ±{table.loc['l2', 'mde'] * 100:.1f} "
        "points. Every run, the baseline's included, ended at chance level on "
        "validation: on this data the network learned nothing that generalizes (random labels, "
        "for instance), so validation accuracy cannot tell the regularizers apart. On the "
        "weights (the share within 0.05 % of the largest |w|, as 000's notes count them), l1 "
        f"raises it by {m * 100:.1f} points (simultaneous 95% CI {lo * 100:.1f} to "
        f"{hi * 100:.1f}, n=5 seeds, Bonferroni-adjusted p<0.001)."
    )
    assert 2 * p < 0.001
    md = (tmp_path / "r" / "report.md").read_text()
    assert f"| {m * 100:+.1f} ({lo * 100:.1f} to {hi * 100:.1f}) |" in md  # Δ sparsity column


def _signed(table: pd.DataFrame, family: str) -> str:
    lo, hi = table.loc[family, ["delta_val_acc_ci_low", "delta_val_acc_ci_high"]] * 100
    return f"{lo:+.1f} to {hi:+.1f}"


def test_a_search_whose_every_run_is_at_chance_says_so_before_the_command(tmp_path: Path) -> None:
    rows = [
        trial(f, [0.56, 0.56], [0.5, v], chance_acc=0.5, test_acc=0.5)
        for f, v in (("none", 0.5), ("l1", 0.49), ("l2", 0.51))
    ]
    url = write_study(tmp_path / "s.db", numbered(rows), name="noise")
    report = build_report(url, out=tmp_path / "r")
    text = report.answer.text
    assert (
        "Every completed search run ended at chance level on validation: on this data the "
        "network learned nothing that generalizes"
    ) in text
    assert text.endswith("default 5):") and "baseline's included" not in text
    assert report.answer.command is not None


def test_a_run_at_chance_is_collapsed_where_others_learned(tmp_path: Path) -> None:
    """Where the baseline learned, runs at chance collapsed. The answer names a change of the
    weights of a point or more; a detected change of 0.1 points stays in the table only."""
    arms = {
        **RANDOM_LABELS,
        "none": {**RANDOM_LABELS["none"], "val_acc": 0.9},
        "wd": {
            "family": "weight_decay",
            "role": "finalist",
            "baseline": "none",
            "val_acc": 0.9,
            "sparsity": [0.0030, 0.0031, 0.0029, 0.0030, 0.0031],
        },
    }
    url = confirmed_study(tmp_path / "c.db", arms)
    table = effects(url, "conf").set_index("family")
    assert table.loc["l1", "n_collapsed"] == 5 and table.loc["none", "n_collapsed"] == 0
    wd = table.loc["weight_decay"]
    assert wd["delta_sparsity"] == pytest.approx(0.00102) and wd["p_sparsity"] < 0.05
    text = build_report(url, "conf", out=tmp_path / "r").answer.text
    assert "l1 (5 of 5 seeds at chance)" in text and "Every run" not in text
    assert "l1 raises it by" in text and "weight_decay raises it" not in text


def test_the_search_figures_band_comes_from_the_searchs_own_split(tmp_path: Path) -> None:
    """Every search trial shares one seed, so one validation split; the confirmation's seeds
    are others. In the default study the unregularized search runs had gaps of 3.7–4.4 points
    and the confirmation's baseline 2.4 (1.3 to 3.4) over five other splits: drawn as the band,
    it put every regularized search run above the baseline, which the paired confirmation
    contradicted. The band comes from the search's none trials when it has two or more; the
    confirmation's arm only stands in, saying it is from other splits."""
    search = [trial("none", [0.9, 0.9 + g], [0.8, 0.9], test_acc=0.8) for g in (0.04, 0.045)]
    search += [trial("l2", [0.9, 0.941], [0.8, 0.9], lam=1e-3, test_acc=0.8)]
    arms = {
        "none": {
            "family": "none",
            "role": "finalist",
            "val_acc": 0.9,
            "gap_acc": [0.02, 0.025, 0.03, 0.02, 0.025],
        },
        "l2": {"family": "l2", "role": "finalist", "baseline": "none", "val_acc": 0.9},
    }
    url = confirmed_study(tmp_path / "c.db", arms, search=numbered(search))
    ref = build_report(url, "conf", out=tmp_path / "r").tables["baseline_reference"]
    gap = ref.set_index("metric").loc["gap_acc"]
    assert gap["mean"] == pytest.approx(0.0425) and gap["n"] == 2
    assert "search trials of family none" in gap["source"] and gap["same_split"]
    fig = plot_gap_vs_strength(gap_vs_strength_data(load_trials(url, "conf")), ref)
    assert [p for ax in fig.axes for p in ax.patches if p.get_alpha() == 0.25]  # a band
    # without two none runs in the search, the confirmation's arm stands in, and says so
    url = confirmed_study(tmp_path / "d.db", arms, search=numbered(search[1:]))
    ref = build_report(url, "conf", out=tmp_path / "r2").tables["baseline_reference"]
    gap = ref.set_index("metric").loc["gap_acc"]
    assert gap["mean"] == pytest.approx(0.024) and gap["n"] == 5
    assert "other seeds, so other validation splits, than the search's" in gap["source"]
    assert not gap["same_split"] and ref["same_split"].dtype == bool
    # ... and the figure draws no band from other splits, and says why
    fig = plot_gap_vs_strength(gap_vs_strength_data(load_trials(url, "conf")), ref)
    assert not [p for ax in fig.axes for p in ax.patches if p.get_alpha() == 0.25]
    assert "the confirmation's baseline ran on other validation splits" in " ".join(
        t.get_text() for t in fig.texts
    )


def test_weights_chosen_on_the_validation_split_are_also_judged_on_the_test_split(
    tmp_path: Path,
) -> None:
    """Early stopping with restore_best keeps the epoch that did best on the validation split,
    then is scored on that same split: its validation figures flatter it (the best of many
    noisy epochs). The answer says so for such a finalist and gives its paired Δ on the test
    split, which chose nothing; a finalist whose model is simply its last epoch gets no such
    note."""
    test_es = [0.80, 0.82, 0.80, 0.83, 0.81]  # the test split: about +1 point, not +5
    url = confirmed_study(
        tmp_path / "c.db",
        {
            "es": {
                "family": "early_stop",
                "role": "finalist",
                "baseline": "base",
                "val_acc": [b + 0.05 for b in BASE],
                "test_acc": test_es,
                "restored": [True, True, False, True, True],
            },
            "l2": {
                "family": "l2",
                "role": "finalist",
                "baseline": "base",
                "val_acc": [b + d for b, d in zip(BASE, DROP, strict=True)],
                "test_acc": 0.80,
            },
            "base": {"family": "none", "role": "finalist", "val_acc": BASE, "test_acc": BASE},
        },
    )
    table = effects(url, "conf").set_index("family")
    assert table.loc["early_stop", "n_restored"] == 4 and table.loc["l2", "n_restored"] == 0
    runs = load_confirm(url, "conf").set_index(["family", "seed"])
    assert runs.loc[("early_stop", 2), "final_epoch"] == runs.loc[("early_stop", 2), "epochs_run"]
    assert runs.loc[("early_stop", 0), "final_epoch"] < runs.loc[("early_stop", 0), "epochs_run"]
    m, lo, hi, _ = _by_hand([t - b for t, b in zip(test_es, BASE, strict=True)], 2)
    text = build_report(url, "conf", out=tmp_path / "r").answer.text
    assert text.startswith(
        "Against the unregularized baseline, early_stop raises validation accuracy by 5.0 points"
    )
    assert text.endswith(
        " For early_stop, training kept the epoch that did best on the validation split that "
        "scores it (an earlier epoch restored on 4 of 5 seeds), so its validation figures may "
        "flatter it; on the "
        f"test split, which chose nothing, it changes test accuracy by {m * 100:+.1f} points "
        f"(simultaneous 95% CI {lo * 100:+.1f} to {hi * 100:+.1f}, n=5 seeds)."
    )
    assert text.count("test split") == 1  # l2's model is its last epoch: no such note
    ticks = {t.get_text() for t in plot_effects(effects(url, "conf")).axes[0].get_yticklabels()}
    assert ticks == {"early_stop (epoch picked on validation)", "l2"}


def test_a_run_that_diverged_is_named_not_silently_unpaired(tmp_path: Path) -> None:
    """A diverged run ends without a model, so its seed cannot be paired. Preventing divergence
    is what gradient clipping is for, though: the baseline diverging on 2 of 5 seeds while clip
    never does must not read as a plain "no detectable difference at n=3". The verdict and the
    answer say who diverged, on how many seeds; so for a finalist that diverges itself."""
    url = confirmed_study(
        tmp_path / "c.db",
        {
            "clip": {
                "family": "clip",
                "role": "finalist",
                "baseline": "base",
                "val_acc": [0.90, 0.91, 0.89, 0.90, 0.92],
            },
            "base": {"family": "none", "role": "baseline", "val_acc": 0.9, "diverged": {3, 4}},
            "wd": {
                "family": "weight_decay",
                "role": "finalist",
                "baseline": "base2",
                "val_acc": [0.90, 0.91, 0.89, 0.90, 0.92],
                "diverged": {1},
            },
            "base2": {"family": "none", "role": "baseline", "val_acc": 0.9},
            "l2": {
                "family": "l2",
                "role": "finalist",
                "baseline": "base3",
                "val_acc": [0.90, 0.91, 0.92, 0.93, 0.94],
                "diverged": {0},
            },
            "base3": {"family": "none", "role": "baseline", "val_acc": 0.9, "diverged": {2, 4}},
            "none": {"family": "none", "role": "finalist", "val_acc": 0.9},
        },
    )
    table = effects(url, "conf").set_index("family")
    assert table.loc["l2", ["n_diverged", "baseline_n_diverged", "n_pairs"]].tolist() == [1, 2, 2]
    assert table.loc["clip", ["n_diverged", "baseline_n_diverged"]].tolist() == [0, 2]
    assert table.loc["weight_decay", ["n_diverged", "baseline_n_diverged"]].tolist() == [1, 0]
    assert table.loc["clip", "verdict"] == "no_difference"
    assert table.loc["clip", "notes"].endswith("its baseline diverged on 2 of 5 seeds")
    assert table.loc["weight_decay", "verdict"] == "no_difference"
    assert table.loc["weight_decay", "notes"].endswith("; diverged on 1 of 5 seeds")
    assert table.loc["none", "verdict"] == "baseline"
    ticks = {t.get_text() for t in plot_effects(effects(url, "conf")).axes[0].get_yticklabels()}
    assert ticks == {
        "clip (baseline diverged on 2 of 5)",
        "weight_decay (diverged on 1 of 5)",
        "l2 (diverged on 1 of 5; baseline diverged on 2 of 5)",
    }
    text = build_report(url, "conf", out=tmp_path / "r").answer.text
    said = text.partition(
        " A run that diverged left no model to compare, so its seed is "
        "missing from the pairs above: "
    )[2]
    assert said.endswith(".") and sorted(said[:-1].split("; ")) == [
        "clip's baseline diverged on 2 of 5 seeds and clip on none",
        "l2 diverged on 1 of 5 seeds and its baseline on 2 of 5",
        "weight_decay diverged on 1 of 5 seeds and its baseline on none",
    ]
