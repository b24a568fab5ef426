"""Every notes preset, run on the bundled data, shows the effect its notes show: asserted on the
confirmation stage's means over seeds (a single run would be noise), end to end."""

from __future__ import annotations

import collections
import statistics
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from sweep import record
from tests.helpers import load_study, run_cli

SEEDS = 3


def _arms(cwd: Path, study: str) -> dict[str, list[dict[str, Any]]]:
    """Each arm's confirmed runs (their records), by the arm's label."""
    cstudy = load_study(cwd, record.confirm_study_name(study))
    labels = {a["arm"]: a["label"] for a in cstudy.user_attrs[record.STUDY_CONFIRM_PLAN]}
    runs: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for t in cstudy.trials:  # finalists and baselines (the dose-response arms aside)
        info = t.user_attrs[record.TRIAL_CONFIRM]
        if t.state == TrialState.COMPLETE and info["role"] != "dose":
            runs[labels[info["arm"]]].append(t.user_attrs)
    assert all(len(r) == SEEDS for r in runs.values()), {k: len(v) for k, v in runs.items()}
    return runs


def _mean(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.fmean(r[key] for r in runs)


def _run(tmp_path: Path, preset: str, *extra: str) -> dict[str, list[dict[str, Any]]]:
    # the notes' arms are what these tests check: no dose-response paths (tested elsewhere)
    proc = run_cli(
        [
            "-m",
            f"experiment={preset}",
            f"hydra.sweeper.confirm.seeds={SEEDS}",
            "hydra.sweeper.confirm.dose_points=0",
            *extra,
        ],
        cwd=tmp_path,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return _arms(tmp_path, preset)


def test_notes000_l1_makes_weights_sparse_and_l2_does_not(tmp_path: Path) -> None:
    arms = _run(tmp_path, "notes000_l1_vs_l2")
    assert set(arms) == {"none", "l1", "l2"}
    sparsity = {name: _mean(runs, "sparsity") for name, runs in arms.items()}
    assert sparsity["l1"] > 10 * max(sparsity["l2"], sparsity["none"], 1e-3)
    assert _mean(arms["l1"], "weight_l1") < _mean(arms["l2"], "weight_l1")
    for runs in arms.values():  # random labels: nothing to learn, validation at chance
        assert 0.35 < _mean(runs, "val_acc") < 0.65
    # the report answers 000's question: at chance is the data here, not a collapse
    from analysis import build_report

    db = tmp_path / "outputs" / "studies.db"
    report = build_report(f"sqlite:///{db}", "notes000_l1_vs_l2", out=tmp_path / "report")
    text = report.answer.text
    assert "seeds at chance" not in text and "Every run, the baseline's included" in text
    assert "l1 raises it by" in text and "l2 raises it" not in text and "l2 lowers it" not in text
    family = report.tables["family_summary"].set_index("family")
    assert family.loc["l1", "sparsity_median"] > 10 * family.loc["l2", "sparsity_median"]


def test_notes001_each_tool_does_what_the_notes_say(tmp_path: Path) -> None:
    arms = _run(tmp_path, "notes001_toolbox", "data=digits")
    gap = {name: _mean(runs, "gap_acc") for name, runs in arms.items()}
    val = {name: _mean(runs, "val_acc") for name, runs in arms.items()}
    sparsity = {name: _mean(runs, "sparsity") for name, runs in arms.items()}
    assert gap["none"] > 0.15  # 500 noisy digits: the unregularized network memorizes them
    for cure in ("dropout", "weight_decay", "clip"):
        assert gap[cure] < gap["none"] - 0.05, (cure, gap)
    assert val["dropout"] > val["none"] + 0.03
    assert sparsity["l1"] > 3 * sparsity["none"] and sparsity["elastic_net"] > sparsity["l1"]
    assert _mean(arms["l2"], "weight_l2") < _mean(arms["none"], "weight_l2")


def test_notes002_overfits_without_a_cure_and_each_cure_narrows_the_gap(tmp_path: Path) -> None:
    arms = _run(tmp_path, "notes002_overfitting", "data=digits")
    for run in arms["none"]:  # train loss falls while validation loss rises
        train, val = run["curves"]["train_loss"], run["curves"]["val_loss"]
        assert train[-1] < 0.05 < train[0]
        assert val[-1] > min(val) + 0.2
    gap = {name: _mean(runs, "gap_acc") for name, runs in arms.items()}
    for cure in ("l2", "weight_decay", "early_stop"):
        assert gap[cure] < gap["none"] - 0.05, (cure, gap)
    # 002's derivation: L2 λ‖W‖² and SGD weight_decay = 2λ are the same update
    by_seed = {r["seed"]: r for r in arms["l2"]}
    for run in arms["weight_decay"]:
        assert run["curves"]["val_loss"] == pytest.approx(
            by_seed[run["seed"]]["curves"]["val_loss"], rel=1e-4
        )
    for run in arms["early_stop"]:
        assert run["final_epoch"] == run["best_epoch"] < run["epochs_max"]


def test_notes003_more_dropout_means_a_smaller_gap(tmp_path: Path) -> None:
    arms = _run(tmp_path, "notes003_mnist_dropout", "data=digits")
    gaps = [
        _mean(arms[f"dropout (dropout p={p}, scheduler=none)"], "gap_acc")
        for p in (0.1, 0.2, 0.5, 0.8)
    ]
    assert gaps == sorted(gaps, reverse=True) and gaps[0] - gaps[-1] > 0.05, gaps
    baseline = arms["none (baseline at scheduler=none)"]
    assert _mean(arms["dropout (dropout p=0.8, scheduler=none)"], "val_acc") > _mean(
        baseline, "val_acc"
    )
    assert min(_mean(r, "val_acc") for r in arms.values()) > 0.5  # the digits values learn


def test_notes004_normalization_and_the_final_exercise_beat_the_plain_network(
    tmp_path: Path,
) -> None:
    arms = _run(tmp_path, "notes004_cifar10", "data=digits", "trainer.epochs=20")
    plain = _mean(arms["none (data.normalize=none)"], "val_acc")
    assert _mean(arms["none (data.normalize=standard)"], "val_acc") > plain + 0.05
    everything = arms["l2_dropout (data.normalize=standard)"]  # the notes' final exercise
    assert _mean(everything, "val_acc") > plain + 0.05
    assert _mean(everything, "test_acc") > _mean(arms["none (data.normalize=none)"], "test_acc")
