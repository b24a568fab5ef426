"""End-to-end: ``python -m sweep -m`` in a subprocess against real SQLite study files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.trial import TrialState

from hydra_plugins.regsweep_sweeper._budget import is_budgeted
from sweep import record
from tests.helpers import load_study, most_at_once, run_cli, sweep_args


def test_sweep_stores_results_and_prunes_a_clearly_worse_trial(tmp_path: Path) -> None:
    """Two trials (L2 λ 1e-4 and 1e-3) complete; a rerun with a larger budget tries the grid's
    third point, λ = 10, which crushes the weights, and the median pruner stops it after its
    first epoch. (The grid shuffles its points with its seed, 0: numpy's legacy RandomState,
    whose stream never changes, puts them in the order 1e-4, 1e-3, 10.)"""
    args = [
        "regularizer=l2",
        "regularizer.l2=choice(10.0,1e-3,1e-4)",
        "hydra.sweeper.sampler.name=grid",
        "hydra.sweeper.population=1",
        "hydra.sweeper.pruner.n_startup_trials=2",
        "hydra.sweeper.pruner.n_warmup_steps=0",
        "hydra.sweeper.pruner.family_startup_trials=0",
        "hydra.sweeper.pruner.audit=0",
    ]
    first = run_cli(sweep_args("prune", 2, *args), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    again = run_cli(sweep_args("prune", 3, *args), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming study 'prune': 2 of 3 trials stored" in again.stdout
    study = load_study(tmp_path, "prune")
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2 + [TrialState.PRUNED]
    pruned = trials[2]
    assert pruned.params["regularizer.l2"] == 10.0
    assert pruned.user_attrs["stop_reason"] == "pruned"
    assert pruned.user_attrs["epochs_run"] == 1 < 3
    assert pruned.value == pruned.intermediate_values[1]  # a pruned trial's value: its last report
    good0 = trials[0]
    assert good0.user_attrs["epochs_run"] == 3
    curve = good0.user_attrs["curves"]["val_acc"]
    assert len(curve) == 3
    # the value is the final model's (the last epoch), not the best epoch's
    assert good0.value == pytest.approx(curve[-1]) == good0.user_attrs["val_acc"]
    assert good0.user_attrs["best_epoch_val_acc"] == pytest.approx(max(curve))
    assert good0.value > 0.8  # digits learns fast at lr 0.05
    assert sorted(good0.intermediate_values) == [1, 2, 3]
    assert good0.user_attrs["family"] == "l2" and good0.user_attrs["hparams"]["l2"] == 1e-4
    assert good0.user_attrs["choices"]["data"] == "digits"
    assert good0.user_attrs["config"]["regularizer"]["l2"] == 1e-4  # stored when it was asked
    assert study.user_attrs[record.STUDY_METRIC] == "val_acc"
    assert list(study.metric_names) == ["val_acc"]  # optuna-dashboard labels its axis with it
    assert (
        "choice(10.0,1e-3,1e-4)" in study.user_attrs[record.STUDY_COMMAND]
    )  # the creating command
    # one folder per job, named by its trial; reruns never overwrite
    sweep_dir = tmp_path / "outputs" / "sweeps" / "prune"
    assert sorted(p.name for p in sweep_dir.glob("trial_*")) == [f"trial_{i}" for i in range(3)]
    assert (sweep_dir / "trial_0" / "metrics.json").is_file()
    results = (sweep_dir / "optimization_results.yaml").read_text()
    assert "best_value" in results and "PRUNED: 1" in results


def test_failing_and_diverging_trials_do_not_stop_the_sweep(tmp_path: Path) -> None:
    proc = run_cli(
        sweep_args(
            "fails",
            4,
            "hydra.sweeper.sampler.name=grid",
            "data.n_train=choice(200,999999)",
            "optimizer.lr=choice(0.05,1e9)",
            "hydra.sweeper.max_failure_rate=1.0",
        ),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = load_study(tmp_path, "fails")
    by_params = {(t.params["data.n_train"], t.params["optimizer.lr"]): t for t in study.trials}
    assert len(by_params) == 4
    ok = by_params[(200, 0.05)]
    assert ok.state == TrialState.COMPLETE
    diverged = by_params[(200, 1e9)]  # in the same population as ok: it fails alone
    assert diverged.state == TrialState.FAIL
    assert diverged.user_attrs["stop_reason"] == "diverged"
    assert "non-finite" in diverged.user_attrs["message"]
    assert ok.user_attrs["population"]["members"] == diverged.user_attrs["population"]["members"]
    # its file is strict JSON: the non-finite losses are null, as in the study
    text = (tmp_path / diverged.user_attrs["job_dir"] / f"trial_{diverged.number}.json").read_text()
    record = json.loads(text, parse_constant=lambda token: pytest.fail(f"{token} in its file"))
    assert record["stop_reason"] == "diverged" and None in record["curves"]["train_loss"]
    assert record["curves"] == diverged.user_attrs["curves"]
    for key in [(999999, 0.05), (999999, 1e9)]:
        failed = by_params[key]
        assert failed.state == TrialState.FAIL
        assert failed.user_attrs["stop_reason"] == "failed"
        assert "data.n_train=999999" in failed.user_attrs["message"]
    logs = "".join(p.read_text() for p in (tmp_path / "outputs/sweeps/fails").rglob("*.log"))
    assert "Traceback" in logs


def test_max_failure_rate_stops_with_an_error(tmp_path: Path) -> None:
    proc = run_cli(sweep_args("allfail", 2, "data.n_train=choice(99999,99998)"), cwd=tmp_path)
    assert proc.returncode == 1
    assert "all 2 trials failed" in proc.stderr


def _swept(tmp_path: Path, study: str, n_trials: int, *args: str, epochs: int) -> list[Any]:
    """Run a sweep that must succeed; its trials as a fresh process reads them."""
    proc = run_cli(sweep_args(study, n_trials, *args, epochs=epochs), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return list(load_study(tmp_path, study).trials)


def test_joblib_launcher_runs_populations_in_parallel_processes(tmp_path: Path) -> None:
    trials = _swept(
        tmp_path,
        "joblib",
        4,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.population=2",
        "optimizer.lr=tag(log, interval(1e-3, 1e-1))",
        epochs=2,
    )
    assert len(trials) == 4
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert all(len(t.user_attrs["curves"]["epoch"]) == 2 for t in trials)
    jobs = {tuple(t.user_attrs["population"]["members"]) for t in trials}
    assert jobs == {(0, 1), (2, 3)}  # two populations of two
    owners = {t.user_attrs[record.TRIAL_OWNER]["pid"] for t in trials}
    assert len(owners) == 2  # trained in two worker processes


def test_mixed_architectures_split_into_separate_populations(tmp_path: Path) -> None:
    trials = _swept(
        tmp_path,
        "mixed",
        6,
        "model.activation=choice(relu,tanh)",
        "hydra.sweeper.sampler.name=random",
        "hydra.sweeper.population=6",
        "hydra.sweeper.pruner.name=none",
        epochs=2,
    )
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:
        members = t.user_attrs["population"]["members"]
        kinds = {trials[m].user_attrs["config"]["model"]["activation"] for m in members}
        assert kinds == {t.params["model.activation"]}  # one architecture each
    assert len({tuple(t.user_attrs["population"]["members"]) for t in trials}) == 2


PRESETS = sorted(
    p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "experiment").glob("*.yaml")
)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_experiment_preset_passes_the_sweepers_checks(tmp_path: Path, preset: str) -> None:
    proc = run_cli(
        ["-m", f"experiment={preset}", "data=digits", "hydra.sweeper.dry_run=true"], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    device = "cuda" if torch.cuda.is_available() else "cpu"  # trainer.device=auto
    assert "search space checked" in proc.stdout and f"data: digits on {device}" in proc.stdout
    assert not (tmp_path / "outputs" / "studies.db").exists()  # a dry run stores nothing


def test_multi_objective_study_trades_accuracy_against_sparsity(tmp_path: Path) -> None:
    proc = run_cli(
        sweep_args(
            "pareto",
            4,
            "hydra.sweeper.objectives=[val_acc,sparsity]",
            "hydra.sweeper.sampler.name=nsga2",
            "regularizer=l1",
            "regularizer.l1=tag(log, interval(1e-5, 1e-1))",
        ),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pruning is off" in proc.stdout
    study = load_study(tmp_path, "pareto")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MAXIMIZE"]
    assert study.user_attrs[record.STUDY_OBJECTIVES] == ["val_acc", "sparsity"]
    assert list(study.metric_names) == ["val_acc", "sparsity"]
    for t in study.trials:
        assert t.state == TrialState.COMPLETE
        assert t.values == [t.user_attrs["val_acc"], t.user_attrs["sparsity"]]
        assert t.intermediate_values == {}  # Optuna cannot report with several objectives
    results = (tmp_path / "outputs/sweeps/pareto/optimization_results.yaml").read_text()
    assert "pareto_front" in results
    assert not [n for n in optuna.get_all_study_names(_url(tmp_path)) if n.endswith(".confirm")]


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'outputs' / 'studies.db'}"


def test_budget_counts_every_worker(tmp_path: Path) -> None:
    first = run_cli(sweep_args("budget", 3, epochs=1), cwd=tmp_path)
    again = run_cli(sweep_args("budget", 3, epochs=1), cwd=tmp_path)
    assert first.returncode == again.returncode == 0
    assert "already has 3 of its 3 trials" in again.stdout
    trials = load_study(tmp_path, "budget").trials
    assert sum(is_budgeted(t) for t in trials) == 3 and len(trials) == 3


def test_the_first_population_prunes_its_own_weak_members(tmp_path: Path) -> None:
    """No trial finishes before the first population's members are judged: with Optuna's rule
    (finished trials only, ``pruner.peers=false``) none of them can be pruned; with the default
    they are each other's reference, and the weak ones stop at the first prunable epoch."""
    common = (
        "optimizer.lr=tag(log, interval(1e-4, 0.5))",
        "hydra.sweeper.population=6",
        "hydra.sweeper.sampler.name=random",
        "hydra.sweeper.sampler.seed=3",
        "hydra.sweeper.pruner.n_startup_trials=3",
        "hydra.sweeper.pruner.n_warmup_steps=2",
        "hydra.sweeper.pruner.family_startup_trials=0",
        "hydra.sweeper.pruner.audit=0",
    )
    finished_only = _swept(
        tmp_path, "finished-only", 6, *common, "hydra.sweeper.pruner.peers=false", epochs=3
    )
    assert [t.state for t in finished_only] == [TrialState.COMPLETE] * 6
    trials = _swept(tmp_path, "peers", 6, *common, epochs=3)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert 1 <= len(pruned) <= 3  # below the others' median: at most half of them
    assert all(t.user_attrs["epochs_run"] == 2 for t in pruned)  # epoch 1 is the warm-up
    # the pruned are the worst at epoch 2
    at_2 = sorted(trials, key=lambda t: t.intermediate_values[2])
    assert {t.number for t in at_2[: len(pruned)]} == {t.number for t in pruned}


def test_a_population_job_refills_the_places_of_trials_that_ended(tmp_path: Path) -> None:
    """With the basic launcher the job runs in the sweeper's process and asks the sweeper for a
    new trial whenever a member ends, so the population stays full: 12 trials, 4 at a time, all
    in one job; the median pruner's victims make room for later trials, the budget is met
    exactly and nothing is left RUNNING."""
    trials = _swept(
        tmp_path,
        "refill",
        12,
        "optimizer.lr=tag(log, interval(1e-4, 0.5))",
        "hydra.sweeper.population=4",
        "hydra.sweeper.sampler.name=random",
        "hydra.sweeper.sampler.seed=3",
        "hydra.sweeper.pruner.n_startup_trials=2",
        "hydra.sweeper.pruner.n_warmup_steps=0",
        epochs=4,
    )
    assert len(trials) == 12
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert any(t.user_attrs["epochs_run"] < 4 for t in pruned)
    assert len({t.user_attrs["job_dir"] for t in trials}) == 1  # one job trained them all
    assert {t.user_attrs["population"]["size"] for t in trials} == {4}
    # a trial asked later joined the running population (not a job of its own)
    last = max(trials, key=lambda t: t.datetime_complete)
    assert len(last.user_attrs["population"]["members"]) == 12
    # never more than 4 at once: at each trial's start, fewer than 4 others were running
    assert most_at_once(trials) <= 4
    job = Path(trials[0].user_attrs["job_dir"])
    assert sorted(p.name for p in job.glob("trial_*.json")) == sorted(
        f"trial_{t.number}.json" for t in trials
    )
