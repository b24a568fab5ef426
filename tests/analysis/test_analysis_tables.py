"""Trial rows and result tables of the controlled study: exact values."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from optuna.trial import TrialState

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
from analysis._report import summary_text
from analysis._tables import _bins
from tests.analysis.analysis_studies import numbered, trial, v1_trial

Frames = tuple[pd.DataFrame, pd.DataFrame]


def test_trial_rows_follow_the_record(controlled_frames: Frames) -> None:
    trials, _ = controlled_frames
    t0 = trials.set_index("trial").loc[0]
    assert t0["family"] == "none" and t0["state"] == "COMPLETE" and t0["record_version"] == 2
    # the final model (last epoch), not the best epoch
    assert t0["val_acc"] == pytest.approx(0.68) and t0["gap_acc"] == pytest.approx(0.99 - 0.68)
    assert t0["gap_loss"] == pytest.approx(0.9 - 0.1) and t0["test_acc"] == pytest.approx(0.70)
    assert t0["final_epoch"] == 4 and t0["epochs_run"] == 4 and t0["value"] == pytest.approx(0.68)
    # hindsight figures only in best_epoch_* columns
    assert t0["best_epoch"] == 3 and t0["best_epoch_val_acc"] == pytest.approx(0.72)
    assert t0["best_epoch_gap_acc"] == pytest.approx(0.95 - 0.72)
    assert t0["chance_acc"] == pytest.approx(0.1) and not t0["collapsed"]
    assert math.isnan(t0["strength"])  # family none has no strength
    by = trials.set_index("trial")
    assert by.loc[1, "strength"] == pytest.approx(1e-3) and by.loc[5, "strength"] == 0.5
    assert by.loc[1, "sparsity"] == pytest.approx(0.4)
    assert by.loc[9, "stop_reason"] == "interrupted" and not by.loc[9, "counted"]
    assert by.loc[8, "stop_reason"] == "diverged" and math.isnan(by.loc[8, "val_acc"])
    assert by.loc[7, "state"] == "PRUNED" and by.loc[7, "epochs_run"] == 2
    # trial 10 misses nearly every attribute: NaN, not an error
    assert math.isnan(by.loc[10, "val_acc"]) and by.loc[10, "value"] == 0.5
    assert by.loc[10, "epochs_run"] == 0 and math.isnan(by.loc[10, "epochs_max"])
    assert pd.isna(by.loc[10, "collapsed"])
    assert by.loc[3, "params_regularizer"] == "l2" and by.loc[3, "params_lr"] == 0.03
    assert {f"hp_{k}" for k in ("l1", "momentum", "batch_size")} <= set(trials.columns)


def test_version_1_records_map_best_epoch_figures_aside() -> None:
    old = v1_trial(
        "l1",
        [0.6, 0.9, 0.95],
        [0.55, 0.85, 0.80],
        test_acc=0.84,
        sparsity=[0.1, 0.2, 0.3],
        hparams={"l1": 1e-3},
    )
    dead = v1_trial("l1", [0.1, 0.12], [0.12, 0.11], hparams={"l1": 1.0})
    rows = trials_frame(numbered([old, dead])).set_index("trial")
    r = rows.loc[0]
    assert r["record_version"] == 1
    assert r["val_acc"] == pytest.approx(0.80) and r["gap_acc"] == pytest.approx(0.15)
    assert r["sparsity"] == pytest.approx(0.3) and r["final_epoch"] == 3
    assert math.isnan(r["test_acc"])  # v1 measured test at the best epoch only
    assert r["best_epoch_test_acc"] == pytest.approx(0.84)
    assert r["best_epoch_val_acc"] == pytest.approx(0.85)
    assert r["best_epoch_gap_acc"] == pytest.approx(0.05)
    assert r["best_epoch_sparsity"] == pytest.approx(0.2)
    assert math.isnan(r["chance_acc"]) and not r["collapsed"]
    # chance assumed 0.1: 0.11 < 0.1 + 0.1 · 0.9 = 0.19 → collapsed
    assert bool(rows.loc[1, "collapsed"]) and rows.loc[1, "strength"] == 1.0


def test_early_stopped_final_model_is_the_restored_epoch() -> None:
    t = trial("l2", [0.6, 0.8, 0.9, 0.95], [0.6, 0.75, 0.8, 0.7], lam=1e-3, final_epoch=3)
    r = trials_frame(numbered([t])).iloc[0]
    assert r["final_epoch"] == 3 and r["val_acc"] == pytest.approx(0.8)
    assert r["gap_acc"] == pytest.approx(0.1)


def test_curves_long_format(controlled_frames: Frames) -> None:
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


def test_family_summary_ranks_final_models_and_shows_spread(controlled_frames: Frames) -> None:
    fam = family_summary(controlled_frames[0]).set_index("family")
    assert list(fam.index) == ["l2", "l1", "dropout", "none"]  # by the top final val acc
    # the interrupted l2 trial (val 0.99) is left out
    assert fam.loc["l2", "top_trial"] == 3 and fam.loc["l2", "top_val_acc"] == 0.83
    assert fam.loc["l2", "top_test_acc"] == 0.80
    assert fam.loc["l2", "top_gap_acc"] == pytest.approx(0.07)
    assert fam.loc["l2", "val_acc_median"] == pytest.approx((0.83 + 0.75) / 2)
    assert fam.loc["l2", "val_acc_q25"] == pytest.approx(0.77)
    assert fam.loc["dropout", "top_trial"] == 5 and fam.loc["dropout", "top_val_acc"] == 0.80
    assert fam.loc["dropout", "gap_acc_iqr"] == pytest.approx((0.13 - 0.06) / 2)
    assert fam.loc["l1", "sparsity_median"] == pytest.approx(0.5)
    assert fam.loc["none", "n"] == 2 and fam.loc["none", "gap_acc_median"] == pytest.approx(0.31)
    assert set(fam["evidence"]) == {"single runs"} and (fam["n_collapsed"] == 0).all()


def test_family_summary_leaves_collapsed_trials_out_of_sparsity() -> None:
    rows = [
        trial("l1", [0.6, 0.9], [0.6, 0.85], lam=1e-3, sparsity=[0.1, 0.2]),
        trial("l1", [0.1, 0.11], [0.1, 0.12], lam=1.0, sparsity=[0.99, 0.99]),
    ]
    fam = family_summary(trials_frame(numbered(rows))).set_index("family")
    assert fam.loc["l1", "sparsity_median"] == pytest.approx(0.2)
    assert fam.loc["l1", "n_collapsed"] == 1 and fam.loc["l1", "n"] == 2


def test_top_trials_order(controlled_frames: Frames) -> None:
    top = top_trials(controlled_frames[0], n=3)
    assert top["trial"].tolist() == [3, 1, 5]  # final val acc .83, .81, .80
    assert top_trials(controlled_frames[0])["trial"].iloc[-1] == 10  # NaN metric last
    assert "best_epoch_val_acc" in top and "val_acc" in top


def test_gap_by_param(controlled_frames: Frames) -> None:
    table = gap_by_param(controlled_frames[0])
    reg = table[table["param"] == "regularizer"].set_index("bin")
    assert reg.loc["none", "gap_mean"] == pytest.approx(0.31) and reg.loc["l1", "n"] == 2
    drop = table[table["param"] == "model.dropout"].set_index("bin")
    assert drop.loc["0.5", "gap_mean"] == pytest.approx(0.06) and drop.loc["0", "n"] == 6
    lr = table[table["param"] == "lr"]
    assert lr["n"].sum() == 8 and len(lr) <= 5  # log-spaced bins


def test_gap_by_param_names_a_few_searched_values_in_three_digits() -> None:
    """A family searched a few times has a bin per value: the value in 3 significant digits
    (as in the bins' edges), not Python's 17 ("0.3603605808667198"); an integer as one."""
    drop = (0.3603605808667198, 0.5688992033929918)
    rows = [trial("dropout", [0.9, 0.95], [0.8, 0.9], lam=p) for p in drop]
    rows += [trial("l1", [0.9, 0.95], [0.8, 0.9], lr=0.00013051621550749636)]
    table = gap_by_param(trials_frame(numbered(rows)))
    assert set(table["bin"]) >= {"0.36", "0.569", "0.000131"}
    patience = _bins(pd.Series([2.0, 7.0, 2.0, None]), 5)
    assert patience.tolist()[:3] == ["2", "7", "2"] and pd.isna(patience.iloc[3])


def test_pruning_and_state_summary(controlled_frames: Frames) -> None:
    p = pruning_summary(controlled_frames[0]).iloc[0]
    assert p["trials"] == 10 and p["pruned"] == 1 and p["fraction_pruned"] == pytest.approx(0.1)
    assert p["epochs_saved"] == 2 and p["epochs_if_all_ran"] == 40 and p["epochs_run"] == 32
    states = state_summary(controlled_frames[0])
    assert states.set_index("stop_reason").loc["interrupted", "n"] == 1
    assert states["n"].sum() == 11


def test_param_importances(controlled_db: object) -> None:
    data = read_study(controlled_db)  # type: ignore[arg-type]
    table, notes = param_importances(data.trials)
    assert set(table["target"]) == {"val_acc", "gap_acc"}
    assert len(notes) == 2 and "a hint, not a ranking" in notes[0]  # 6 runs: the best 5 vs all
    for _, group in table.groupby("target"):
        assert group["importance"].sum() == pytest.approx(1.0)
    assert set(table["param"]) <= {"regularizer", "lr", "model.dropout"}


def test_importances_skip_with_a_note() -> None:
    table, notes = param_importances([])
    assert table.empty and list(table.columns) == [
        "target",
        "param",
        "importance",
        "n_trials",
        "n_top",
    ]
    assert len(notes) == 2 and "skipped" in notes[0]


def test_importances_from_few_runs_compare_five_best_and_say_it_is_a_hint() -> None:
    """PED-ANOVA scores how the best 10 % of trials differ from all; its authors want 5 or
    more in that top. The default study completes about 13 trials: its top 10 % was 2 runs,
    and "lr 0.88" read as a finding. With few runs the top is the best 5, the table says how
    many runs and how many in the top, and a note calls it a hint."""
    rows = [
        trial("l2", [0.9, 0.95], [0.8, 0.7 + 0.02 * i], lr=0.001 * (i + 1), lam=1e-3)
        for i in range(13)
    ]
    table, notes = param_importances(numbered(rows))
    assert set(table["n_trials"]) == {13} and set(table["n_top"]) == {5}
    assert any("13 completed single runs" in n and "a hint, not a ranking" in n for n in notes)
    few, notes = param_importances(numbered(rows[:5]))
    assert few.empty and all("need ≥ 6" in n for n in notes)


def test_empty_frames_keep_their_columns() -> None:
    trials = trials_frame([])
    assert {
        "trial",
        "family",
        "val_acc",
        "gap_acc",
        "best_epoch_val_acc",
        "strength",
        "collapsed",
        "dead_units",
        "seed",
    } <= set(trials.columns)
    assert family_summary(trials).empty and top_trials(trials).empty
    assert gap_by_param(trials).empty and state_summary(trials).empty
    assert pruning_summary(trials).iloc[0]["trials"] == 0


def test_the_search_summary_names_a_family_that_never_completed() -> None:
    """Every l1 trial was pruned and every dropout trial failed: neither has a top run, and the
    summary says so instead of leaving them out without a word. l1 is judged by a confirmation
    (from its furthest pruned trial); dropout has no finalist."""
    nan = float("nan")
    rows = [
        trial("l2", [0.9, 0.95], [0.8, 0.85], lam=1e-3),
        trial("l2", [0.5, nan], [0.4, nan], lam=1.0, state=TrialState.FAIL, stop_reason="diverged"),
        trial("l2", [0.5, 0.55], [0.4, 0.45], lam=0.5, state=TrialState.FAIL, stop_reason="failed"),
        trial("l1", [0.5, 0.55], [0.4, 0.45], lam=0.1, state=TrialState.PRUNED),
        trial("l1", [0.5, 0.55], [0.4, 0.45], lam=0.2, state=TrialState.PRUNED),
        trial("dropout", [0.5, 0.55], [0.4, 0.45], lam=0.2, state=TrialState.FAIL),
        trial("none", [0.5, nan], [0.4, nan], state=TrialState.FAIL, stop_reason="diverged"),
        trial("none", [0.5, nan], [0.4, nan], state=TrialState.FAIL, stop_reason="diverged"),
        trial("none", [0.5, 0.5], [0.4, 0.4], state=TrialState.FAIL),
    ]
    frame = trials_frame(numbered(rows))
    text = summary_text("s", frame, family_summary(frame))
    # one completed run has no spread to give: no median or IQR of a single value; a run that
    # diverged is a result and is counted (a crash is not)
    assert (
        "  l2            top run 0: val_acc 0.8500, gap +0.1000; its only completed run; "
        "1 diverged\n"
    ) in (text + "\n")
    assert (
        "  l1            no completed trial (2 pruned): no top run; a confirmation re-trains "
        "its furthest pruned trial to the end and judges it"
    ) in text
    assert (
        "  dropout       no completed trial (1 fail): no top run, no finalist to confirm, so "
        "the answer cannot judge it"
    ) in text
    assert (
        "  none          no completed trial (2 diverged, 1 fail): no top run, no finalist "
        "to confirm"
    ) in text
    assert text.count("no completed trial") == 3
    confirmed = summary_text("s", frame, family_summary(frame), {"l1": (2, 7)})
    assert (
        "  l1            no completed trial (2 pruned): no top run; the confirmation re-trains "
        "its furthest pruned trial (2, pruned after epoch 7) to the end"
    ) in confirmed
    assert "  dropout       no completed trial (1 fail): no top run, no finalist" in confirmed


def test_runs_at_chance_are_collapsed_only_where_some_run_learned() -> None:
    """On random labels (000's notes) every model ends at chance, the unregularized one too:
    their weights still show what L1 and L2 do, so none is left out as collapsed. Where another
    run learned, a run at chance did collapse and is left out of the weights' figures."""

    def rows(none_val: float) -> list:
        return [
            trial(f, [0.56, 0.56], [0.5, v], chance_acc=0.5, sparsity=[0.0, s])
            for f, v, s in (
                ("none", none_val, 0.002),
                ("l1", 0.49, 0.12),
                ("l1", 0.5, 0.14),
                ("l2", 0.5, 0.002),
            )
        ]

    chance = trials_frame(numbered(rows(0.5)))
    assert chance["at_chance"].all() and not chance["collapsed"].any()
    family = family_summary(chance).set_index("family")
    assert family.loc["l1", "sparsity_median"] == pytest.approx(0.13)
    assert family.loc["l1", "n_collapsed"] == 0
    learned = trials_frame(numbered(rows(0.9)))
    assert learned["collapsed"].tolist() == [False, True, True, True]
    assert learned["at_chance"].tolist() == [False, True, True, True]
    assert math.isnan(family_summary(learned).set_index("family").loc["l1", "sparsity_median"])
