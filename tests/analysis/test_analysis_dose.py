"""Dose-response tables, coherent verdicts and the smallest detectable effect, by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis._confirm import PLAN_COLUMNS
from analysis._dose import DOSE_COLUMNS, dose_data, dose_summary
from analysis._effects import effects_data
from analysis._stats import min_detectable

SEEDS = [1, 2, 3, 4, 5]


def _arm(
    arm: str,
    role: str,
    family: str,
    *,
    baseline: str | None = None,
    strength: float = math.nan,
    finalist: str | None = None,
    source_state: str = "COMPLETE",
) -> dict[str, object]:
    return {
        "arm": arm,
        "label": arm,
        "family": family,
        "role": role,
        "rank": 1.0,
        "source_trial": 0.0,
        "baseline": baseline,
        "source_state": source_state,
        "strength": strength,
        "dose_key": "l2" if role == "dose" else None,
        "dose_strength": strength if role == "dose" else math.nan,
        "dose_finalist": finalist,
    }


def _runs(arm: str, val: list[float], gap: list[float] | None = None) -> list[dict[str, object]]:
    gap = gap or [0.05] * len(val)
    return [
        {
            "arm": arm,
            "seed": s,
            "state": "COMPLETE",
            "counted": True,
            "val_acc": v,
            "gap_acc": g,
            "test_acc": v - 0.01,
            "val_loss": 1.0 - v,
            "sparsity": 0.0,
            "collapsed": False,
            "final_epoch": 10.0,
            "epochs_run": 10.0,
            "stop_reason": "completed",
        }
        for s, v, g in zip(SEEDS, val, gap, strict=True)
    ]


def _l2_path() -> tuple[pd.DataFrame, pd.DataFrame]:
    base = [0.60, 0.62, 0.58, 0.61, 0.59]
    arms = [_arm("B", "baseline", "none"), _arm("F", "finalist", "l2", baseline="B", strength=3e-6)]
    runs = _runs("B", base, [0.40, 0.38, 0.42, 0.39, 0.41]) + _runs("F", base)
    effect = {1e-4: 0.01, 1e-3: 0.05, 1e-2: 0.08, 1e-1: -0.30}
    noise = [0.01, -0.01, 0.02, 0.0, -0.02]
    for i, (lam, d) in enumerate(effect.items()):
        arms.append(_arm(f"D{i}", "dose", "l2", baseline="B", strength=lam, finalist="F"))
        runs += _runs(
            f"D{i}", [b + d + e for b, e in zip(base, noise, strict=True)], [0.40 - 2 * d] * 5
        )
    return pd.DataFrame(runs), pd.DataFrame(arms, columns=list(PLAN_COLUMNS))


def test_dose_response_deltas_and_intervals_by_hand() -> None:
    runs, arms = _l2_path()
    table = dose_data(runs, arms)
    assert list(table.columns) == list(DOSE_COLUMNS)
    l2 = table[table["family"] == "l2"].reset_index(drop=True)
    assert l2["role"].tolist() == ["baseline", "finalist", "dose", "dose", "dose", "dose"]
    assert l2["strength"].tolist() == [0.0, 3e-6, 1e-4, 1e-3, 1e-2, 1e-1]
    row = l2[l2["strength"] == 1e-2].iloc[0]
    diffs = np.array([0.08 + e for e in [0.01, -0.01, 0.02, 0.0, -0.02]])
    m = 5  # the finalist and four path points
    half = stats.t.ppf(1 - 0.05 / (2 * m), 4) * diffs.std(ddof=1) / math.sqrt(5)
    assert row["delta_val_acc"] == pytest.approx(diffs.mean())
    assert row["delta_val_acc_ci_low"] == pytest.approx(diffs.mean() - half)
    assert row["delta_val_acc_ci_high"] == pytest.approx(diffs.mean() + half)
    assert row["ci_level"] == pytest.approx(1 - 0.05 / m)
    assert row["n_seeds"] == 5 and row["verdict"] == "helps"
    assert row["delta_gap_acc"] == pytest.approx(0.40 - 2 * 0.08 - 0.40, abs=1e-9)
    assert l2.loc[l2["strength"] == 1e-1, "verdict"].item() == "hurts"
    assert l2.loc[l2["strength"] == 1e-4, "verdict"].item() == "no_difference"
    text = dose_summary(table)
    assert "l2 is best at L2 λ=0.01 (+8.0 points" in text
    assert "it helps at 0.001 to 0.01 and hurts at 0.1" in text


def _confirm_table(deltas: list[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One baseline, and finalists whose paired differences are ``delta`` ± a fixed spread."""
    base = [0.90, 0.91, 0.89, 0.92, 0.88]
    arms = [_arm("B", "finalist", "none")]
    runs = _runs("B", base)
    spread = [0.004, -0.004, 0.008, 0.0, -0.008]
    for i, d in enumerate(deltas):
        arms.append(_arm(f"F{i}", "finalist", f"fam{i}", baseline="B"))
        runs += _runs(f"F{i}", [b + d + e for b, e in zip(base, spread, strict=True)])
    return pd.DataFrame(runs), pd.DataFrame(arms, columns=list(PLAN_COLUMNS))


def test_the_printed_interval_and_the_verdict_never_disagree() -> None:
    """Effects from well below to well above the detection limit: every row whose printed
    interval excludes 0 helps or hurts, every other row has no detectable difference; the
    adjusted p-value says the same (Bonferroni and the 1 − α/m interval are one test)."""
    deltas = [-0.03, -0.012, -0.008, -0.004, 0.0, 0.004, 0.008, 0.012, 0.03]
    runs, arms = _confirm_table(deltas)
    table = effects_data(runs, arms)
    rows = table[table["verdict"] != "baseline"]
    assert len(rows) == len(deltas)
    m = len(deltas)
    assert rows["ci_level"].eq(1 - 0.05 / m).all()
    for _, r in rows.iterrows():
        excludes = r["delta_val_acc_ci_low"] > 0 or r["delta_val_acc_ci_high"] < 0
        assert excludes == (r["verdict"] in ("helps", "hurts")), r[["family", "verdict"]]
        assert excludes == (r["p_value"] < 0.05)
        if excludes:
            assert (r["verdict"] == "helps") == (r["delta_val_acc"] > 0)
        else:
            assert r["verdict"] == "no_difference"
    assert set(rows["verdict"]) == {"helps", "hurts", "no_difference"}


def test_no_difference_states_the_smallest_effect_it_could_detect() -> None:
    runs, arms = _confirm_table([0.002, 0.004])
    table = effects_data(runs, arms).set_index("family")
    spread = np.array([0.004, -0.004, 0.008, 0.0, -0.008])
    alpha = 0.05 / 2
    by_hand = (
        (stats.t.ppf(1 - alpha / 2, 4) + stats.t.ppf(0.8, 4)) * spread.std(ddof=1) / math.sqrt(5)
    )
    assert table.loc["fam0", "mde"] == pytest.approx(by_hand)
    assert min_detectable(spread + 0.002, alpha=alpha) == pytest.approx(by_hand)
    assert table.loc["fam0", "verdict"] == "no_difference"


def test_a_family_its_search_could_not_explore_is_not_explored() -> None:
    runs, arms = _confirm_table([0.03, 0.03, 0.03])
    arms.loc[arms["arm"] == "F0", "source_state"] = "PRUNED"
    table = effects_data(runs, arms, searched={"fam0": 0, "fam1": 2, "fam2": 3}).set_index("family")
    assert table.loc["fam0", "verdict"] == "not_explored"
    assert "completed no trial" in table.loc["fam0", "notes"]
    assert table.loc["fam1", "verdict"] == "helps"  # thinly searched: said in its notes
    assert "completed 2 trials, fewer than 3" in table.loc["fam1", "notes"]
    assert table.loc["fam2", "verdict"] == "helps" and table.loc["fam2", "notes"] == ""
    runs.loc[(runs["arm"] == "F2") & (runs["seed"] <= 3), "collapsed"] = True
    again = effects_data(runs, arms).set_index("family")
    assert again.loc["fam2", "verdict"] == "not_explored"
    assert "found no setting of it that learns" in again.loc["fam2", "notes"]
    assert table.loc["none", "verdict"] == "baseline"


def test_importing_the_analysis_leaves_the_notebooks_backend_alone() -> None:
    """A notebook chooses its own matplotlib backend; importing the analysis (its plotting
    modules included) must not switch it to Agg."""
    import subprocess
    import sys

    code = (
        "import matplotlib; matplotlib.use('svg'); import analysis, analysis._plots, "
        "analysis._plots_search, analysis._plots_effects, analysis._plots_dose; "
        "print(matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "svg"


def test_tables_and_heatmaps_bin_a_decade_alike() -> None:
    """One policy for both: a parameter spanning exactly one decade is binned on a log scale in
    the gap-by-parameter table and in the heatmap (one said ``>= 10``, the other ``> 10``)."""
    from analysis._heatmap import _data_scale
    from analysis._tables import _bins

    values = pd.Series(np.geomspace(0.01, 0.1, 12))
    assert _data_scale(values, 5).kind == "log"
    edges = sorted({float(b.split("–")[1]) for b in _bins(values, 5).unique()})
    assert edges[0] == pytest.approx(0.01 * 10**0.2, rel=0.01)  # geometric, not linear
