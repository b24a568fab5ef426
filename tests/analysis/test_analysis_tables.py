"""Trial rows and result tables of the controlled study: exact values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis import (
    curves_frame,
    family_summary,
    gap_by_param,
    param_importances,
    pruning_summary,
    read_study,
    state_summary,
    top_trials,
    trials_frame,
)


def test_trial_rows_follow_the_record(controlled_frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    trials, _ = controlled_frames
    t0 = trials.set_index("trial").loc[0]
    assert t0["family"] == "none" and t0["state"] == "COMPLETE"
    assert t0["best_epoch"] == 3 and t0["best_val_acc"] == pytest.approx(0.72)
    assert t0["gap_acc_best"] == pytest.approx(0.95 - 0.72)
    assert t0["gap_loss_best"] == pytest.approx(0.75 - 0.3)
    assert t0["final_val_acc"] == pytest.approx(0.68) and t0["epochs_run"] == 4
    assert math.isnan(t0["strength"])  # family none has no strength
    by = trials.set_index("trial")
    assert by.loc[1, "strength"] == pytest.approx(1e-3) and by.loc[5, "strength"] == 0.5
    assert by.loc[1, "sparsity_best"] == pytest.approx(0.4)
    assert by.loc[9, "stop_reason"] == "interrupted" and not by.loc[9, "counted"]
    assert by.loc[8, "stop_reason"] == "diverged" and math.isnan(by.loc[8, "final_val_acc"])
    assert by.loc[7, "state"] == "PRUNED" and by.loc[7, "epochs_run"] == 2
    # trial 10 misses nearly every attribute: NaN, not an error
    assert math.isnan(by.loc[10, "best_val_acc"]) and by.loc[10, "value"] == 0.5
    assert by.loc[10, "epochs_run"] == 0 and math.isnan(by.loc[10, "epochs_max"])
    assert by.loc[3, "params_regularizer"] == "l2" and by.loc[3, "params_lr"] == 0.03


def test_curves_long_format(controlled_frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    _, curves = controlled_frames
    assert list(curves.columns) == ["trial", "epoch", "split", "metric", "value"]
    t0 = curves[curves["trial"] == 0]
    val_acc = t0[(t0["split"] == "val") & (t0["metric"] == "acc")]
    assert val_acc["epoch"].tolist() == [1, 2, 3, 4]
    assert val_acc["value"].tolist() == pytest.approx([0.55, 0.70, 0.72, 0.68])
    inter = t0[t0["split"] == "intermediate"]
    assert set(inter["metric"]) == {"val_acc"} and len(inter) == 4
    assert set(t0.loc[t0["split"] == "other", "metric"]) == {"sparsity"}
    assert curves_frame([]).empty


def test_family_summary_values(controlled_frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    fam = family_summary(controlled_frames[0]).set_index("family")
    assert list(fam.index) == ["l2", "dropout", "l1", "none"]  # by best val acc
    # the interrupted l2 trial (val 0.99) is left out
    assert fam.loc["l2", "best_trial"] == 3 and fam.loc["l2", "best_val_acc"] == 0.83
    assert fam.loc["l2", "test_acc_at_best"] == 0.80
    assert fam.loc["l2", "gap_at_best"] == pytest.approx(0.07)
    assert fam.loc["l2", "gap_mean"] == pytest.approx((0.07 + 0.0) / 2)  # trial 4: 0.75 − 0.75
    assert fam.loc["l1", "gap_iqr"] == pytest.approx(0.02)
    assert fam.loc["l1", "sparsity_median"] == pytest.approx(0.5)
    assert fam.loc["none", "n"] == 2 and fam.loc["none", "gap_median"] == pytest.approx(0.23)


def test_top_trials_order(controlled_frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    top = top_trials(controlled_frames[0], n=3)
    assert top["trial"].tolist() == [3, 5, 1]
    assert top_trials(controlled_frames[0])["trial"].iloc[-1] == 10  # NaN metric last


def test_gap_by_param(controlled_frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    table = gap_by_param(controlled_frames[0])
    reg = table[table["param"] == "regularizer"].set_index("bin")
    assert reg.loc["none", "gap_mean"] == pytest.approx(0.23) and reg.loc["l1", "n"] == 2
    drop = table[table["param"] == "model.dropout"].set_index("bin")
    assert drop.loc["0.5", "gap_mean"] == pytest.approx(0.02) and drop.loc["0.0", "n"] == 6
    lr = table[table["param"] == "lr"]
    assert lr["n"].sum() == 8 and len(lr) <= 5  # log-spaced bins


def test_pruning_and_state_summary(controlled_frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    p = pruning_summary(controlled_frames[0]).iloc[0]
    assert p["trials"] == 10 and p["pruned"] == 1 and p["fraction_pruned"] == pytest.approx(0.1)
    assert p["epochs_saved"] == 2 and p["epochs_if_all_ran"] == 40 and p["epochs_run"] == 32
    states = state_summary(controlled_frames[0])
    assert states.set_index("stop_reason").loc["interrupted", "n"] == 1
    assert states["n"].sum() == 11


def test_param_importances(controlled_db: object) -> None:
    data = read_study(controlled_db)  # type: ignore[arg-type]
    table, notes = param_importances(data.trials)
    assert set(table["target"]) == {"val_acc", "gap_acc"} and notes == []
    for _, group in table.groupby("target"):
        assert group["importance"].sum() == pytest.approx(1.0)
    assert set(table["param"]) <= {"regularizer", "lr", "model.dropout"}


def test_importances_skip_with_a_note() -> None:
    table, notes = param_importances([])
    assert table.empty and list(table.columns) == ["target", "param", "importance"]
    assert len(notes) == 2 and "skipped" in notes[0]


def test_empty_frames_keep_their_columns() -> None:
    trials = trials_frame([])
    assert {"trial", "family", "gap_acc_best", "strength"} <= set(trials.columns)
    assert family_summary(trials).empty and top_trials(trials).empty
    assert gap_by_param(trials).empty and state_summary(trials).empty
    assert pruning_summary(trials).iloc[0]["trials"] == 0
