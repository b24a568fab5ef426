"""The study record survives every way a sweep can end or be restarted (issue "A study record
that no kill, signal, resume or bad value can corrupt"): each numbered case of the issue is a
test here, end to end, against real SQLite and journal files."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hydra_plugins.regsweep_sweeper._budget import is_budgeted
from hydra_plugins.regsweep_sweeper._space import quote
from sweep import record
from tests.helpers import child_env, load_study, run_cli, sweep_args


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = child_env(PYTHONUNBUFFERED="1")
    env.pop("PYTEST_CURRENT_TEST", None)
    # SIGINT as a terminal delivers it: a test runner started in the background of a
    # non-interactive shell passes SIGINT on as ignored, and Python then never raises Ctrl-C
    return subprocess.Popen(
        [sys.executable, "-m", "sweep", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=env,
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _running(db: Path, *, min_epochs: int = 0, at_least: int = 1) -> bool:
    """``at_least`` trials are RUNNING and have reported ``min_epochs`` epochs between them
    (jobs are training)."""
    if not db.exists():
        return False
    try:
        con = sqlite3.connect(db, timeout=5)
        rows = con.execute("SELECT trial_id FROM trials WHERE state = 'RUNNING'").fetchall()
        if len(rows) < at_least:
            con.close()
            return False
        if rows and min_epochs:
            ids = ",".join(str(r[0]) for r in rows)
            n = con.execute(
                f"SELECT COUNT(*) FROM trial_intermediate_values WHERE trial_id IN ({ids})"
            ).fetchone()[0]
            con.close()
            return bool(n >= min_epochs)
        con.close()
    except sqlite3.Error:
        return False
    return bool(rows)


def _wait_for(predicate, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def _kill_while_training(args: list[str], cwd: Path) -> None:
    """Start a sweep, SIGKILL its process group once a trial has reported an epoch."""
    proc = _start(args, cwd)
    db = cwd / "outputs" / "studies.db"
    try:
        _wait_for(lambda: _running(db, min_epochs=1))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _check_exact(study: optuna.Study, n_trials: int) -> None:
    """Nothing RUNNING, the budget exactly spent, every finished record whole."""
    trials = study.get_trials()
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    assert sum(is_budgeted(t) for t in trials) == n_trials, [
        (t.number, t.state.name) for t in trials
    ]
    for t in trials:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            attrs = t.user_attrs
            assert attrs["epochs_run"] == len(attrs["curves"]["epoch"]) >= 1
            assert t.value is not None


# --------------------------------------------------------------------------- 1. SIGKILL


LONG = [
    "hydra.sweeper.pruner.name=none",
    "hydra.sweeper.sampler.seed=3",
    "optimizer.lr=tag(log, interval(1e-3, 1e-1))",
    "hydra.sweeper.population=1",
]


def test_sigkill_then_an_immediate_rerun_ends_at_the_exact_budget(tmp_path: Path) -> None:
    """The killed trial was RUNNING forever and the rerun ended at 7 of 8 with RUNNING: 1;
    now the rerun sees its owner is gone at once (no heartbeat wait) and finishes the budget."""
    # long trials: the rerun must still be training when the test has seen the reap (with 400
    # epochs of ~8 ms, a loaded machine saw the rerun finish its budget first)
    args = sweep_args("killed", 4, *LONG, "hydra.sweeper.heartbeat_interval=3600", epochs=3000)
    _kill_while_training(args, tmp_path)
    killed = [t for t in load_study(tmp_path, "killed").trials if t.state == TrialState.RUNNING]
    assert len(killed) == 1
    proc2 = _start(args, tmp_path)  # the same command, at once
    # the rerun must not wait an hour for the heartbeat: it fails the dead trial at once
    _wait_for(
        lambda: load_study(tmp_path, "killed").trials[killed[0].number].state == TrialState.FAIL,
        timeout=60,
    )
    os.killpg(proc2.pid, signal.SIGTERM)
    out = proc2.communicate(timeout=60)[0]
    assert proc2.returncode == 143, out[-2000:]
    old = load_study(tmp_path, "killed").trials[killed[0].number]
    assert old.user_attrs["stop_reason"] == "interrupted"
    assert "its process is gone" in old.user_attrs["message"]


def test_a_rerun_after_sigkill_completes_the_budget(tmp_path: Path) -> None:
    args = sweep_args("resume", 2, *LONG, epochs=300)
    _kill_while_training(args, tmp_path)
    # the rerun may not change what the study computes (epochs are part of its fingerprint)
    refused = run_cli([a.replace("epochs=300", "epochs=2") for a in args], cwd=tmp_path)
    assert refused.returncode == 2 and "config trainer.epochs: stored 300, now 2" in refused.stderr
    again = run_cli(args, cwd=tmp_path, timeout=240)
    assert again.returncode == 0, again.stdout[-3000:]
    study = load_study(tmp_path, "resume")
    _check_exact(study, 2)
    results = (tmp_path / "outputs/sweeps/resume/optimization_results.yaml").read_text()
    assert "RUNNING" not in results


def _joined(db: Path, more_than: int) -> bool:
    """More than ``more_than`` trials exist and one is RUNNING: a refilled place is training."""
    if not db.exists():
        return False
    try:
        con = sqlite3.connect(db, timeout=5)
        states = [r[0] for r in con.execute("SELECT state FROM trials").fetchall()]
        con.close()
    except sqlite3.Error:
        return False
    return len(states) > more_than and "RUNNING" in states


def test_sigkill_of_a_refilling_population_then_a_rerun_ends_at_the_exact_budget(
    tmp_path: Path,
) -> None:
    """A population of 3 whose pruned members' places went to new trials is killed while a
    refilled member trains; the rerun ends at exactly the budget of 10, nothing RUNNING, each
    record whole, and its own population refilled past 3 members again."""
    args = sweep_args(
        "refill-kill",
        10,
        "optimizer.lr=tag(log, interval(1e-4, 0.5))",
        "hydra.sweeper.population=3",
        "hydra.sweeper.sampler.name=random",
        "hydra.sweeper.sampler.seed=5",
        "hydra.sweeper.pruner.n_startup_trials=2",
        "hydra.sweeper.pruner.n_warmup_steps=1",
        "hydra.sweeper.pruner.family_startup_trials=0",
        "hydra.sweeper.heartbeat_interval=3600",
        epochs=150,
    )
    proc = _start(args, tmp_path)
    try:
        _wait_for(lambda: _joined(tmp_path / "outputs" / "studies.db", 3))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = load_study(tmp_path, "refill-kill").trials
    assert len(before) > 3 and any(t.state == TrialState.RUNNING for t in before)
    again = run_cli(args, cwd=tmp_path, timeout=240)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    study = load_study(tmp_path, "refill-kill")
    _check_exact(study, 10)
    dead = [study.trials[t.number] for t in before if t.state == TrialState.RUNNING]
    assert all(t.user_attrs["stop_reason"] == "interrupted" for t in dead)
    rerun = [
        t
        for t in study.trials
        if t.number >= len(before) and t.state in (TrialState.COMPLETE, TrialState.PRUNED)
    ]
    assert rerun and max(len(t.user_attrs["population"]["members"]) for t in rerun) > 3


def test_killing_one_of_three_workers_leaves_nothing_running(tmp_path: Path) -> None:
    args = sweep_args(
        "workers",
        9,
        "optimizer.lr=tag(log, interval(1e-3, 1e-1))",
        "hydra.sweeper.population=1",
        "hydra.sweeper.pruner.name=none",
        "hydra.sweeper.heartbeat_interval=3600",
        epochs=300,
    )
    # trials of several seconds: a worker that starts late (imports on a loaded machine, ~10 s
    # under pytest -n 2) still finds the others training, rather than the budget spent by the
    # first two (with 150 epochs, a faster sweeper spent it first in one run)
    procs = [_start(args, tmp_path) for _ in range(3)]
    db = tmp_path / "outputs" / "studies.db"
    _wait_for(lambda: _running(db, at_least=3))  # every worker is training a trial
    os.killpg(procs[0].pid, signal.SIGKILL)
    outs = [p.communicate(timeout=240)[0] for p in procs[1:]]
    procs[0].wait()
    assert [p.returncode for p in procs[1:]] == [0, 0], [o[-2000:] for o in outs]
    assert "database is locked" not in "".join(outs)
    study = load_study(tmp_path, "workers")
    _check_exact(study, 9)
    numbers = [t.number for t in study.trials]
    assert len(set(numbers)) == len(numbers)
    # seeded by trial number, not per process: the workers do not repeat each other's draws
    assert len({t.params["optimizer.lr"] for t in study.trials if is_budgeted(t)}) == 9


# --------------------------------------------------------------------------- 3. SIGTERM


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_end_running_trials_write_results_and_flush_reports(
    tmp_path: Path, sig: int
) -> None:
    args = sweep_args(
        "term", 3, "hydra.sweeper.pruner.name=none", "hydra.sweeper.population=1", epochs=400
    )
    proc = _start(args, tmp_path)
    db = tmp_path / "outputs" / "studies.db"
    _wait_for(lambda: _running(db))
    time.sleep(1.0)  # into the first trial's epochs, well under the 2 s between report writes
    os.killpg(proc.pid, sig)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130), out[-3000:]
    assert "interrupted" in out and "Traceback" not in out
    trials = load_study(tmp_path, "term").trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    last = trials[-1]
    assert last.state == TrialState.FAIL and last.user_attrs["stop_reason"] == "interrupted"
    assert len(last.intermediate_values) >= 2  # the reports held back were written first
    assert (tmp_path / "outputs/sweeps/term/optimization_results.yaml").is_file()


# --------------------------------------------------------------------------- 4, 5. resuming


@pytest.fixture(scope="module")
def kept_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("keep")
    ok = run_cli(
        sweep_args(
            "keep", 1, "regularizer=l1", "regularizer.l1=tag(log, interval(1e-6, 1e-2))", epochs=1
        ),
        cwd=cwd,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    return cwd


def _unchanged(cwd: Path) -> None:
    study = load_study(cwd, "keep")
    assert len(study.trials) == 1 and study.trials[0].state == TrialState.COMPLETE
    assert study.user_attrs[record.STUDY_N_TRIALS] == 1
    assert study.user_attrs[record.STUDY_SEARCH_SPACE]["params"] == {
        "regularizer.l1": "tag(log, interval(1e-6, 1e-2))"
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["regularizer=l1", "regularizer.l1=interval(1e-6, 1e-2)"], "searched regularizer.l1"),
        (
            [
                "regularizer=l1",
                "regularizer.l1=tag(log, interval(1e-6, 1e-2))",
                "hydra.sweeper.metric=sparsity",
            ],
            "objectives: stored ['val_acc'], now ['sparsity']",
        ),
        (
            [
                "regularizer=l1",
                "regularizer.l1=tag(log, interval(1e-6, 1e-2))",
                "hydra.sweeper.direction=minimize",
            ],
            "directions: stored ['maximize']",
        ),
        (
            ["regularizer=l2", "regularizer.l1=tag(log, interval(1e-6, 1e-2))"],
            "config regularizer.name: stored l1, now l2",
        ),
    ],
    ids=["space", "metric", "direction", "config"],
)
def test_an_incompatible_resume_is_refused_before_anything_is_written(
    kept_study: Path, args: list[str], expected: str
) -> None:
    proc = run_cli(sweep_args("keep", 5, *args, epochs=1), cwd=kept_study)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert expected in proc.stderr and "hydra.sweeper.study_name=keep-2" in proc.stderr
    assert "Traceback" not in proc.stderr
    _unchanged(kept_study)


def test_a_study_killed_while_its_attributes_were_stored_is_resumed(tmp_path: Path) -> None:
    """A kill between creating the study and storing its attributes (one write each) leaves a
    study with some attributes and no trial; the rerun took it for a different study and
    refused it ("objectives: stored [None]"), found by the random-kill test. Now it is resumed,
    unless its directions (fixed at creation) differ."""
    db = tmp_path / "outputs" / "studies.db"
    db.parent.mkdir(parents=True)
    half = optuna.create_study(study_name="half", storage=f"sqlite:///{db}", direction="maximize")
    half.set_user_attr(record.STUDY_ROLE, "search")  # the first writes, then the kill
    half.set_user_attr(record.STUDY_VERSION, "0")
    proc = run_cli(sweep_args("half", 2, epochs=1), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = load_study(tmp_path, "half")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert study.user_attrs[record.STUDY_OBJECTIVES] == ["val_acc"]
    optuna.create_study(study_name="flip", storage=f"sqlite:///{db}", direction="minimize")
    refused = run_cli(sweep_args("flip", 1, epochs=1), cwd=tmp_path)
    assert refused.returncode == 2 and "directions: stored ['minimize']" in refused.stderr


def test_a_resume_may_change_how_trials_run_but_not_what_they_compute(tmp_path: Path) -> None:
    """Threads, the population's chunk size and the device change speed, not results: a resume
    that changes them (and widens the budget) is accepted."""
    space = ("regularizer=l1", "regularizer.l1=tag(log, interval(1e-6, 1e-2))")
    first = run_cli(sweep_args("exec", 1, *space, epochs=1), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    again = run_cli(
        sweep_args(
            "exec",
            2,
            *space,
            "trainer.max_population=1",
            "trainer.threads=1",
            "trainer.device=cpu",
            epochs=1,
        ),
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert [t.state for t in load_study(tmp_path, "exec").trials] == [TrialState.COMPLETE] * 2


# --------------------------------------------------------------------------- 7. names


def test_names_with_quotes_and_commas_work_end_to_end(tmp_path: Path) -> None:
    name = "x'; DROP TABLE trials;--"
    storage = tmp_path / "odd, 'folder'" / "a,b.db"
    proc = run_cli(
        sweep_args(quote(name), 2, f"hydra.sweeper.storage={quote(str(storage))}", epochs=1),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{storage}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert (tmp_path / "outputs" / "sweeps" / name / "optimization_results.yaml").is_file()
    other = run_cli(sweep_args("'a,b'", 1, epochs=1), cwd=tmp_path)
    assert other.returncode == 0, other.stderr[-3000:]
    assert [t.state for t in load_study(tmp_path, "a,b").trials] == [TrialState.COMPLETE]


def test_a_name_that_cannot_work_is_refused_before_anything_exists(tmp_path: Path) -> None:
    proc = run_cli(sweep_args("runs/../x", 1, epochs=1), cwd=tmp_path)
    assert proc.returncode == 2 and "hydra.sweeper.study_name='runs/../x'" in proc.stderr
    assert not (tmp_path / "outputs").exists()


# --------------------------------------------------------------------------- 9. storages


def _garbage(path: Path) -> None:
    path.write_text("this is not a database\n" * 10)


@pytest.mark.parametrize(
    ("setup", "value", "cause"),
    [
        (lambda p: p.mkdir(), "db", "is a folder"),
        (_garbage, "db", "not a SQLite database"),
        (lambda p: (p.write_bytes(b""), p.chmod(0o444)), "db", "read-only"),
        (None, "postgresql+psycopg2://u:pw@127.0.0.1:9/x", "cannot connect"),
    ],
    ids=["folder", "garbage", "read-only", "unreachable server"],
)
def test_storage_problems_exit_2_with_one_line_and_leave_nothing(
    tmp_path: Path, setup: object, value: str, cause: str
) -> None:
    target = tmp_path / "store" / "s.db"
    target.parent.mkdir()
    if setup is not None:
        setup(target)  # type: ignore[operator]
        value = str(target)
    before = sorted(p.name for p in target.parent.iterdir())
    proc = run_cli(sweep_args("s", 1, f"hydra.sweeper.storage={value}", epochs=1), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("[regsweep] hydra.sweeper.storage="), lines
    assert cause in lines[0] and "Fix:" in lines[0] and "pw" not in lines[0].split("@")[0][-3:]
    assert sorted(p.name for p in target.parent.iterdir()) == before  # no -wal/-shm left


# --------------------------------------------------------------------------- 10. pre-flight


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["data=mnist", "data.root=nowhere"], "MNIST not found"),
        (["regularizer=choice(none,l1)", "data.n_train=999999"], "data.n_train=999999"),
        pytest.param(
            ["trainer.device=cuda"],
            "CUDA is not available",
            marks=pytest.mark.skipif(
                __import__("torch").cuda.is_available(), reason="this machine has CUDA"
            ),
        ),
    ],
    ids=["missing files", "too many training examples", "no GPU"],
)
def test_missing_data_or_device_is_refused_before_any_trial(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    proc = run_cli(sweep_args("pre", 4, *args, epochs=1), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) < 8
    assert not (tmp_path / "outputs" / "studies.db").exists()  # no study, no trial


# --------------------------------------------------------------------------- 11. conventions


def test_hydras_basic_sweeper_grids_over_the_job_config(tmp_path: Path) -> None:
    proc = run_cli(
        [
            "-m",
            "hydra/sweeper=basic",
            "regularizer=l1,l2",
            "trainer.epochs=1",
            "trainer.progress=false",
            "model.hidden=[16]",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted((tmp_path / "outputs" / "sweeps").glob("basic_*/*/metrics.json"))
    assert [p.parent.name for p in runs] == ["0", "1"]
    assert not (tmp_path / "outputs" / "studies.db").exists()


def test_cfg_info_and_help_work_and_help_describes_every_key(tmp_path: Path) -> None:
    cfg = run_cli(["--cfg", "job", "regularizer=l1"], cwd=tmp_path)
    assert cfg.returncode == 0 and "l1: 0.0001" in cfg.stdout
    info = run_cli(["--info", "defaults"], cwd=tmp_path)
    assert info.returncode == 0 and "hydra/sweeper/regsweep" in info.stdout
    help_ = run_cli(["--help", "regularizer=l1"], cwd=tmp_path)
    assert help_.returncode == 0, help_.stderr
    text = help_.stdout
    for key in (
        "regularizer.l1=0.0001",
        "trainer.threads=null",
        "hydra.sweeper.population=8",
        "hydra.sweeper.confirm.seeds=5",
        "hydra.sweeper.storage=",
    ):
        line = next(line for line in text.splitlines() if key in line)
        assert len(line.split(key, 1)[1].strip()) > 5, line  # it says what the key does
    assert "trial." not in text  # internal keys are hidden
    assert "data.n_samples" not in text  # the noise data's sizes only with data=noise
    noise = run_cli(["--help", "data=noise"], cwd=tmp_path)
    assert "data.n_samples=1000" in noise.stdout


def test_help_names_the_search_presets_and_sweeper_groups(tmp_path: Path) -> None:
    proc = run_cli(["--help"], cwd=tmp_path)
    assert "search: families, none, regularization" in proc.stdout


# --------------------------------------------------------------------------- 12. ranges


def test_a_bad_fixed_value_is_reported_once(tmp_path: Path) -> None:
    proc = run_cli(
        sweep_args(
            "nan",
            4,
            "optimizer.lr=nan",
            "regularizer=l2",
            "regularizer.l2=tag(log, interval(1e-6, 1e-2))",
            "model.dropout=interval(0, 0.5)",
        ),
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    problems = [line for line in proc.stderr.splitlines() if line.strip().startswith("- ")]
    assert len(problems) == 1 and "optimizer.lr=nan" in problems[0], proc.stderr


# --------------------------------------------------------------------------- random kills


def _kill_and_rerun(lane: Path, iterations: int, seed: int, errors: list[str]) -> None:
    rng = random.Random(seed)
    n = 3
    for i in range(iterations):
        cwd = lane / f"run{i}"
        cwd.mkdir(parents=True)
        args = sweep_args(
            "chaos",
            n,
            "optimizer.lr=tag(log, interval(1e-3, 1e-1))",
            "hydra.sweeper.population=2",
            "hydra.sweeper.pruner.name=none",
            "hydra.sweeper.heartbeat_interval=3600",
            epochs=10,
        )
        proc = _start(args, cwd)
        time.sleep(rng.uniform(1.5, 4.5))  # from start-up to the last trial's end
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        db = cwd / "outputs" / "studies.db"
        before = {}
        if db.exists():
            try:
                for t in load_study(cwd, "chaos").trials:
                    if t.state == TrialState.COMPLETE:
                        before[t.number] = t.user_attrs.get("val_acc")
            except Exception:  # killed before the study existed
                before = {}
        again = run_cli(args, cwd=cwd, timeout=240)
        if again.returncode != 0:
            errors.append(f"{cwd}: rerun exit {again.returncode}: {again.stderr[-1500:]}")
            continue
        try:
            study = load_study(cwd, "chaos")
            _check_exact(study, n)
            for number, val in before.items():  # no completed record lost or changed
                t = study.trials[number]
                assert t.state == TrialState.COMPLETE and t.user_attrs["val_acc"] == val
        except AssertionError as exc:
            errors.append(f"{cwd}: {exc}")


def test_sigkill_at_random_moments_never_corrupts_the_study(tmp_path: Path) -> None:
    """20 short sweeps killed at random moments (starting up, asking, training, storing),
    each followed by a rerun: nothing left RUNNING, no completed record lost, budget exact.
    Two lanes run side by side."""
    errors: list[str] = []
    lanes = [
        threading.Thread(target=_kill_and_rerun, args=(tmp_path / f"lane{k}", 10, k, errors))
        for k in range(2)
    ]
    for lane in lanes:
        lane.start()
    for lane in lanes:
        lane.join()
    assert not errors, "\n".join(errors)
