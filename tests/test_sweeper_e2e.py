"""End-to-end: ``python -m sweep -m`` in a subprocess against real SQLite study files."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hydra_plugins.regsweep_sweeper._budget import is_budgeted
from tests.helpers import run_cli

FAST = ["model.hidden=[32]", "search=none"]


def sweep_args(study: str, n_trials: int, *extra: str, epochs: int = 3) -> list[str]:
    return [
        "-m",
        *FAST,
        f"trainer.epochs={epochs}",
        f"hydra.sweeper.study_name={study}",
        f"hydra.sweeper.n_trials={n_trials}",
        *extra,
    ]


def load(tmp_path: Path, study: str) -> optuna.Study:
    url = f"sqlite:///{tmp_path / 'outputs' / 'studies.db'}"
    return optuna.load_study(study_name=study, storage=url)


@pytest.mark.slow
def test_sweep_stores_results_and_prunes_a_clearly_worse_trial(tmp_path: Path) -> None:
    good = run_cli(
        sweep_args("prune", 2, "optimizer.lr=0.05",
                   "hydra.sweeper.pruner.n_startup_trials=2", "hydra.sweeper.pruner.n_warmup_steps=0"),
        cwd=tmp_path,
    )  # fmt: skip
    assert good.returncode == 0, good.stderr[-3000:]
    bad = run_cli(
        sweep_args("prune", 3, "optimizer.lr=1e-6",
                   "hydra.sweeper.pruner.n_startup_trials=2", "hydra.sweeper.pruner.n_warmup_steps=0"),
        cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 0, bad.stderr[-3000:]
    assert "resuming study 'prune': 2 of 3 trials stored" in bad.stdout
    study = load(tmp_path, "prune")
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    pruned = study.trials[2]
    assert pruned.user_attrs["stop_reason"] == "pruned"
    assert pruned.user_attrs["epochs_run"] == 1 < 3
    good0 = study.trials[0]
    assert good0.user_attrs["epochs_run"] == 3
    assert len(good0.user_attrs["curves"]["val_acc"]) == 3
    assert good0.value == pytest.approx(max(good0.user_attrs["curves"]["val_acc"]))
    assert good0.value > 0.8  # digits learns fast at lr 0.05
    assert sorted(good0.intermediate_values) == [1, 2, 3]
    assert good0.user_attrs["family"] == "none"
    assert good0.user_attrs["choices"]["data"] == "digits"
    assert study.user_attrs["regsweep:metric"] == "val_acc"
    assert "optimizer.lr=0.05" in study.user_attrs["regsweep:command"]  # the creating command
    # One directory per trial, named by its number; reruns never overwrite.
    sweep_dir = tmp_path / "outputs" / "sweeps" / "prune"
    assert sorted(p.name for p in sweep_dir.glob("trial_*")) == ["trial_0", "trial_1", "trial_2"]
    results = (sweep_dir / "optimization_results.yaml").read_text()
    assert "best_value" in results and "PRUNED: 1" in results


def test_failing_and_diverging_trials_do_not_stop_the_sweep(tmp_path: Path) -> None:
    proc = run_cli(
        sweep_args(
            "fails", 4,
            "hydra.sweeper.sampler.name=grid",
            "data.n_train=choice(200,999999)",
            "optimizer.lr=choice(0.05,1e9)",
            "hydra.sweeper.max_failure_rate=1.0",
        ),
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = load(tmp_path, "fails")
    by_params = {(t.params["data.n_train"], t.params["optimizer.lr"]): t for t in study.trials}
    assert len(by_params) == 4
    ok = by_params[(200, 0.05)]
    assert ok.state == TrialState.COMPLETE
    diverged = by_params[(200, 1e9)]
    assert diverged.state == TrialState.FAIL
    assert diverged.user_attrs["stop_reason"] == "diverged"
    assert "non-finite" in diverged.user_attrs["message"]
    for key in [(999999, 0.05), (999999, 1e9)]:
        failed = by_params[key]
        assert failed.state == TrialState.FAIL
        assert failed.user_attrs["stop_reason"] == "failed"
        assert "data.n_train=999999" in failed.user_attrs["message"]
    log = (
        tmp_path
        / "outputs/sweeps/fails"
        / f"trial_{by_params[(999999, 0.05)].number}"
        / "__main__.log"
    )
    assert "Traceback" in log.read_text()


def test_max_failure_rate_stops_with_an_error(tmp_path: Path) -> None:
    proc = run_cli(sweep_args("allfail", 2, "data.n_train=999999"), cwd=tmp_path)
    assert proc.returncode == 1
    assert "all 2 trials failed" in proc.stderr


def _wait_for(predicate, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("condition not reached in time")


def _running(db: Path, *, min_number: int = 0) -> bool:
    """A trial numbered ``min_number`` or later is RUNNING (its job is training)."""
    if not db.exists():
        return False
    try:
        con = sqlite3.connect(db, timeout=5)
        rows = con.execute(
            "SELECT number FROM trials WHERE state = 'RUNNING' AND number >= ?", (min_number,)
        ).fetchall()
        con.close()
    except sqlite3.Error:
        return False
    return bool(rows)


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sweep", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.slow
@pytest.mark.parametrize("requeue", [False, True])
def test_resume_after_sigkill_reaches_the_exact_budget(tmp_path: Path, requeue: bool) -> None:
    args = sweep_args(
        "resume", 4,
        "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=2",
        "hydra.sweeper.pruner.name=none", "hydra.sweeper.sampler.seed=3",
        f"hydra.sweeper.requeue_interrupted={str(requeue).lower()}",
        "optimizer.lr=tag(log, interval(1e-3, 1e-1))",
        epochs=200,
    )  # fmt: skip
    proc = _start(args, tmp_path)
    db = tmp_path / "outputs" / "studies.db"
    try:
        _wait_for(lambda: _running(db, min_number=1))
        time.sleep(1.0)  # well into its 200 epochs
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = load(tmp_path, "resume")
    running = [t for t in killed.trials if t.state == TrialState.RUNNING]
    assert len(running) == 1
    interrupted = running[0]
    time.sleep(3)  # let its heartbeat go stale (grace period 2 s)
    short = [a.replace("trainer.epochs=200", "trainer.epochs=2") for a in args]
    assert short != args
    again = run_cli(short, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    study = load(tmp_path, "resume")
    trials = study.trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert sum(is_budgeted(t) for t in trials) == 4
    assert len(trials) == 5
    old = trials[interrupted.number]
    assert old.state == TrialState.FAIL and old.user_attrs["stop_reason"] == "interrupted"
    requeued = [t for t in trials if t.user_attrs.get("requeued_from") == interrupted.number]
    if requeue:
        assert len(requeued) == 1
        assert requeued[0].params == interrupted.params
        assert requeued[0].state == TrialState.COMPLETE
    else:
        assert requeued == []


@pytest.mark.slow
def test_two_workers_share_one_sqlite_study(tmp_path: Path) -> None:
    args = sweep_args("workers", 6, "optimizer.lr=tag(log, interval(1e-3, 1e-1))", epochs=2)
    first = _start(args, tmp_path)
    second = _start(args, tmp_path)
    outs = [p.communicate(timeout=240)[0] for p in (first, second)]
    assert first.returncode == 0, outs[0][-3000:]
    assert second.returncode == 0, outs[1][-3000:]
    assert "database is locked" not in "".join(outs)
    trials = load(tmp_path, "workers").trials
    budgeted = [t for t in trials if is_budgeted(t)]
    assert len(budgeted) == 6
    assert all(t.state == TrialState.COMPLETE for t in budgeted)
    numbers = [t.number for t in trials]
    assert len(set(numbers)) == len(numbers)
    # Seeded by trial number, not per process: the workers do not repeat each other's draws.
    assert len({t.params["optimizer.lr"] for t in budgeted}) == 6
    # Both workers did work.
    assert all("done" in out for out in outs)


def test_joblib_launcher_runs_trials_in_parallel_processes(tmp_path: Path) -> None:
    proc = run_cli(
        sweep_args("joblib", 4, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                   "hydra.sweeper.n_jobs=2", "optimizer.lr=tag(log, interval(1e-3, 1e-1))",
                   epochs=2),
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = load(tmp_path, "joblib").trials
    assert len(trials) == 4
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert all(len(t.user_attrs["curves"]["epoch"]) == 2 for t in trials)


def test_ctrl_c_marks_running_trials_failed_and_exits_cleanly(tmp_path: Path) -> None:
    args = sweep_args("ctrlc", 3, "hydra.sweeper.pruner.name=none", epochs=400)
    proc = _start(args, tmp_path)
    db = tmp_path / "outputs" / "studies.db"
    _wait_for(lambda: _running(db))
    time.sleep(0.5)  # into the first trial's 400 epochs (several seconds)
    os.killpg(proc.pid, signal.SIGINT)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, out[-3000:]
    assert "interrupted" in out
    trials = load(tmp_path, "ctrlc").trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    last = trials[-1]
    assert last.state == TrialState.FAIL and last.user_attrs["stop_reason"] == "interrupted"


@pytest.fixture(scope="module")
def kept_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("keep")
    ok = run_cli(sweep_args("keep", 1, epochs=1), cwd=cwd)
    assert ok.returncode == 0, ok.stderr[-2000:]
    return cwd


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["regularizer.l1=interval(0.1"], "interval(0.1"),
        (["regularizer.dropoutt=interval(0,0.5)"], "unknown parameter path"),
        (["regularizer=dropout", "regularizer.dropout=interval(0,1.5)"], "regularizer.dropout=1.5"),
        (["regularizer=choice(l1,l9)"], "Available options in 'regularizer'"),
        (["hydra.sweeper.sampler.name=foo"], "hydra.sweeper.sampler.name='foo'"),
    ],
)
def test_bad_sweep_input_is_reported_before_any_trial(
    kept_study: Path, args: list[str], expected: str
) -> None:
    proc = run_cli(sweep_args("keep", 5, *args), cwd=kept_study, timeout=120)
    # Hydra itself rejects unparsable overrides (exit 1); the sweeper's own checks exit 2.
    assert proc.returncode == (1 if "interval(0.1" in expected else 2), proc.stderr[-2000:]
    assert expected in proc.stdout + proc.stderr
    trials = load(kept_study, "keep").trials
    assert (
        len(trials) == 1 and trials[0].state == TrialState.COMPLETE
    )  # nothing lost, nothing added


PRESETS = sorted(
    p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "experiment").glob("*.yaml")
)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_experiment_preset_passes_the_sweepers_checks(tmp_path: Path, preset: str) -> None:
    proc = run_cli(
        ["-m", f"experiment={preset}", "data=digits", "hydra.sweeper.dry_run=true"], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "search space checked" in proc.stdout
    assert not (tmp_path / "outputs" / "studies.db").exists()  # a dry run stores nothing


def test_notes000_preset_reproduces_l1_sparsity_against_l2(tmp_path: Path) -> None:
    proc = run_cli(["-m", "experiment=notes000_l1_vs_l2", "trainer.epochs=8"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = {t.params["regularizer"]: t for t in load(tmp_path, "notes000_l1_vs_l2").trials}
    assert sorted(trials) == ["l1", "l2", "none"]
    hp = {name: t.user_attrs["hparams"] for name, t in trials.items()}
    # Pinned per arm: the L1 arm has no L2 term and vice versa; 000's lambda = 0.01.
    assert (hp["l1"]["l1"], hp["l1"]["l2"]) == (0.01, 0.0)
    assert (hp["l2"]["l1"], hp["l2"]["l2"]) == (0.0, 0.01)
    assert (hp["none"]["l1"], hp["none"]["l2"]) == (0.0, 0.0)
    assert all(t.user_attrs["config"]["regularizer"]["apply_to"] == "all" for t in trials.values())
    sparsity = {name: t.user_attrs["sparsity_best"] for name, t in trials.items()}
    assert sparsity["l1"] > 10 * max(sparsity["l2"], 1e-3)


def test_multi_objective_study_trades_accuracy_against_sparsity(tmp_path: Path) -> None:
    proc = run_cli(
        sweep_args(
            "pareto", 4,
            "hydra.sweeper.objectives=[val_acc,sparsity]",
            "hydra.sweeper.sampler.name=nsga2",
            "regularizer=l1",
            "regularizer.l1=tag(log, interval(1e-5, 1e-1))",
        ),
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pruning is off" in proc.stdout
    study = load(tmp_path, "pareto")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MAXIMIZE"]
    assert study.user_attrs["regsweep:objectives"] == ["val_acc", "sparsity"]
    for t in study.trials:
        assert t.state == TrialState.COMPLETE
        assert t.values == [t.user_attrs["best_val_acc"], t.user_attrs["sparsity_best"]]
        assert t.intermediate_values == {}  # Optuna cannot report with several objectives
    results = (tmp_path / "outputs/sweeps/pareto/optimization_results.yaml").read_text()
    assert "pareto_front" in results
