"""End to end: real sweeps (``python -m sweep -m`` subprocesses) on the storages besides SQLite.

PostgreSQL: a throwaway server on 127.0.0.1 (``tests/pg.py``), started once per session; every
test gets its own fresh database, so schema creation is part of what the sweeps do. Without the
server binaries the tests skip (run scripts/ensure-postgres). Journal: Optuna's journal file.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from hydra_plugins.regsweep_sweeper._budget import is_budgeted
from sweep import record
from sweep.record import StopReason
from tests.helpers import ask_concurrently, run_cli

try:  # tests/ as a package or as a plain folder on sys.path
    from tests.pg import PostgresServer, PostgresUnavailable, start_postgres
except ImportError:
    from pg import PostgresServer, PostgresUnavailable, start_postgres  # type: ignore[no-redef]

EPOCHS = 2
STOP_REASONS = {StopReason.COMPLETED, StopReason.PRUNED, StopReason.EARLY_STOPPED}
SPACE = [
    "search=none",
    "regularizer=l2",
    "regularizer.l2=tag(log, interval(1e-6, 1e-2))",
    "hydra.sweeper.confirm.seeds=0",
]
SWEEP_TIMEOUT_S = 240

Cli = Callable[..., subprocess.CompletedProcess[str]]


def sweep_args(storage: str, study: str, n_trials: int, *extra: str) -> list[str]:
    """Overrides of a short sweep: ``n_trials`` trials of ``EPOCHS`` epochs searching the L2."""
    return [
        "-m",
        f"hydra.sweeper.storage={storage}",
        f"hydra.sweeper.study_name={study}",
        f"hydra.sweeper.n_trials={n_trials}",
        f"trainer.epochs={EPOCHS}",
        "hydra.sweeper.confirm.dose_points=0",
        *SPACE,
        *extra,
    ]


def explain(proc: subprocess.CompletedProcess[str]) -> str:
    out, err = proc.stdout[-3000:], proc.stderr[-3000:]
    return f"exit {proc.returncode}\n--- stdout\n{out}\n--- stderr\n{err}"


def check_trial_record(trial: FrozenTrial) -> None:
    """A finished sweep trial carries its curves and summary (docs/trial-record.md)."""
    assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED), (trial.number, trial.state)
    attrs = trial.user_attrs
    assert attrs["stop_reason"] in STOP_REASONS, attrs.get("message")
    epochs_run = attrs["epochs_run"]
    assert 1 <= epochs_run <= EPOCHS
    assert attrs["epochs_max"] == EPOCHS
    curves = attrs["curves"]
    assert isinstance(curves, dict) and {"epoch", "train_loss", "val_acc"} <= set(curves)
    for name, values in curves.items():
        assert len(values) == epochs_run, name
    assert curves["epoch"] == list(range(1, epochs_run + 1))
    assert sorted(trial.intermediate_values) == list(range(1, epochs_run + 1))
    assert 1e-6 <= trial.params["regularizer.l2"] <= 1e-2
    if trial.state == TrialState.COMPLETE:
        assert trial.value is not None and math.isfinite(trial.value)


def check_study_record(study: optuna.Study, n_trials: int) -> None:
    attrs = study.user_attrs
    space = attrs[record.STUDY_SEARCH_SPACE]
    assert set(space["params"]) == {"regularizer.l2"}, space
    assert "interval(1e-6, 1e-2)" in str(space["params"]["regularizer.l2"]).replace("1e-06", "1e-6")
    assert attrs[record.STUDY_METRIC] == "val_acc"
    assert attrs[record.STUDY_N_TRIALS] == n_trials
    assert isinstance(attrs[record.STUDY_PRUNER], dict) and "name" in attrs[record.STUDY_PRUNER]
    assert "sweep" in attrs[record.STUDY_COMMAND]
    assert attrs[record.STUDY_VERSION]
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session, stopped (and removed) at the end."""
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """A fresh, empty database of the session's server."""
    return pg_server.create_database()


@pytest.mark.postgres
def test_sweep_on_postgres_stores_trials_and_study_record(cli: Cli, pg_url: str) -> None:
    proc = cli(*sweep_args(pg_url, "pg-e2e", 3), timeout=SWEEP_TIMEOUT_S)
    assert proc.returncode == 0, explain(proc)

    study = optuna.load_study(study_name="pg-e2e", storage=pg_url)
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state.is_finished() for t in trials)
    for trial in trials:
        check_trial_record(trial)
    check_study_record(study, 3)


@pytest.mark.postgres
def test_concurrent_batches_on_postgres_never_share_a_trial_number(pg_url: str) -> None:
    optuna.create_study(study_name="pg-ask", storage=pg_url)
    ask_concurrently(pg_url, "pg-ask", procs=4, batches=5, size=8)
    trials = optuna.load_study(study_name="pg-ask", storage=pg_url).get_trials()
    assert sorted(t.number for t in trials) == list(range(160))
    assert all("x" in t.params and t.state == TrialState.RUNNING for t in trials)


@pytest.mark.postgres
def test_submitit_jobs_two_at_a_time_on_postgres(cli: Cli, pg_url: str, tmp_path: Path) -> None:
    """Hydra's submitit launcher (``submitit_local``: the SLURM launcher's local twin, each job
    its own process started through submitit) on a PostgreSQL study: 4 trials, 2 jobs at a
    time, every trial finished with its record, the jobs' logs under ``.submitit/``."""
    out = tmp_path / "sweep"
    args = sweep_args(
        pg_url,
        "pg-submitit",
        4,
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=5",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.population=1",
        f"hydra.sweep.dir={out}",
    )
    proc = cli(*args, timeout=SWEEP_TIMEOUT_S)
    assert proc.returncode == 0, explain(proc)
    assert "Submitit 'local' sweep output dir" in proc.stdout + proc.stderr

    study = optuna.load_study(study_name="pg-submitit", storage=pg_url)
    trials = sorted(study.get_trials(), key=lambda t: t.number)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    for trial in trials:
        check_trial_record(trial)
    check_study_record(study, 4)
    # two launches of two jobs, each job a submitit job of its own
    jobs = {p.parent.name for p in (out / ".submitit").rglob("*_result.pkl")}
    assert len(jobs) == 4, sorted(p.name for p in (out / ".submitit").rglob("*"))
    starts = [t.datetime_start for t in trials]
    ends = [t.datetime_complete for t in trials]
    assert starts[1] < ends[0] and starts[0] < ends[1]  # 0 and 1 ran at the same time


def _database_text(server: PostgresServer, url: str) -> str:
    """Every row of every table of the database behind ``url``, as text."""
    import psycopg2

    con = psycopg2.connect(
        host="127.0.0.1", port=server.port, user="postgres", dbname=url.rsplit("/", 1)[1]
    )
    try:
        with con.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
            tables = [r[0] for r in cur.fetchall()]
            rows = []
            for table in tables:
                cur.execute(f'SELECT * FROM "{table}"')
                rows += [f"{table}: {row}" for row in cur.fetchall()]
    finally:
        con.close()
    assert any(r.startswith("trial_user_attributes") for r in rows)  # the study is there
    return "\n".join(rows)


@pytest.mark.postgres
def test_a_database_password_leaves_no_trace(pg_server: PostgresServer, tmp_path: Path) -> None:
    """Issue 7, case 6: a sweep (search and confirmation jobs), its analysis and the errors for
    an unreachable server, with the password in the URL of a server that requires it: the
    password appears in no output line, no file under the working directory (job configs,
    Hydra's files, logs, results, the report) and no row of the database."""
    import sqlalchemy

    password = f"Pw{uuid.uuid4().hex}"
    bare = pg_server.password_database("regsweep_secret", password)
    url = bare.replace("regsweep_secret@", f"regsweep_secret:{password}@")
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    with pytest.raises(sqlalchemy.exc.OperationalError):  # the server does want the password
        sqlalchemy.create_engine(bare).connect().close()

    def run(*args: str, module: str = "sweep") -> subprocess.CompletedProcess[str]:
        return run_cli(args, cwd=tmp_path, env=env, module=module, timeout=SWEEP_TIMEOUT_S)

    sweep = run(
        *sweep_args(url, "secret", 3, "hydra.sweeper.population=2", "hydra.sweeper.confirm.seeds=2")
    )
    assert sweep.returncode == 0, explain(sweep)
    study = optuna.load_study(study_name="secret", storage=url)
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) >= 1
    confirm = optuna.load_study(study_name="secret.confirm", storage=url)
    assert len(confirm.trials) == 4 and all(t.state.is_finished() for t in confirm.trials)
    report = run("--storage", url, "--study", "secret", "--out", "report", module="analysis")
    assert report.returncode == 0, explain(report)
    closed = url.replace(f":{pg_server.port}/", f":{_closed_port()}/")
    unreachable = [
        run("--storage", closed, "--study", "secret", module="analysis"),
        run(*sweep_args(closed, "secret", 1)),
    ]
    assert [p.returncode for p in unreachable] == [2, 2], [explain(p) for p in unreachable]
    assert "***" in unreachable[0].stderr + unreachable[1].stderr  # masked, not left out

    outputs = "\n".join(p.stdout + p.stderr for p in [sweep, report, *unreachable])
    assert password not in outputs
    files = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert any(f.name == "config.yaml" for f in files) and any(f.suffix == ".log" for f in files)
    assert any(f.name == "report.html" for f in files)
    leaking = [str(f) for f in files if password.encode() in f.read_bytes()]
    assert not leaking
    assert password not in _database_text(pg_server, url)


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0"}
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


@pytest.mark.postgres
def test_two_workers_share_one_postgres_study_and_budget(tmp_path: Path, pg_url: str) -> None:
    """Two sweep processes started together on the same (new) study: the budget of 4 is the
    study's, so together they run exactly 4 budgeted trials; an over-the-budget ask is FAIL
    with reason ``over_budget`` and does not count."""
    args = sweep_args(pg_url, "pg-shared", 4, "hydra.sweeper.n_jobs=1")
    procs: list[subprocess.Popen[str]] = []
    outputs: list[tuple[int, str, str]] = []
    try:
        for i in range(2):
            cwd = tmp_path / f"worker{i}"
            cwd.mkdir()
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "sweep", *args],
                    cwd=cwd,
                    env=_env(),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for p in procs:
            out, err = p.communicate(timeout=SWEEP_TIMEOUT_S)
            outputs.append((p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    for rc, out, err in outputs:
        assert rc == 0, f"exit {rc}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}"

    study = optuna.load_study(study_name="pg-shared", storage=pg_url)
    trials = study.get_trials()
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) and sorted(numbers) == list(range(len(numbers)))
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    budgeted = [t for t in trials if is_budgeted(t)]
    assert len(budgeted) == 4, [(t.number, t.state.name, t.user_attrs) for t in trials]
    for trial in budgeted:
        check_trial_record(trial)
    for trial in trials:
        if not is_budgeted(trial):
            assert trial.state == TrialState.FAIL
            assert trial.user_attrs["stop_reason"] == "over_budget"
    check_study_record(study, 4)


_OPEN_TOGETHER = """
import sys, time
from pathlib import Path
import optuna
from sweep.study import open_storage, resolve_storage
from sweep.record import StopReason
url, folder, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
(folder / name).touch()  # imported: ready
deadline = time.monotonic() + 60
while not (folder / "go").exists() and time.monotonic() < deadline:
    time.sleep(0.001)
storage = open_storage(resolve_storage(url), heartbeat_interval=10)
optuna.create_study(study_name="together", storage=storage, load_if_exists=True)
"""


@pytest.mark.postgres
def test_workers_create_schema_together(tmp_path: Path, pg_url: str) -> None:
    """Workers started at the same moment on a new PostgreSQL database each open the storage
    (creating Optuna's tables) and the study; none may crash."""
    n = 3
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_TOGETHER, pg_url, str(tmp_path), f"ready{i}"],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    errors = []
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("ready*"))) < n and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.01)
        (tmp_path / "go").touch()
        for p in procs:
            _, err = p.communicate(timeout=60)
            if p.returncode != 0:
                lines = [ln for ln in err.splitlines() if "Error" in ln]
                errors.append(lines[-1] if lines else f"exit {p.returncode}: {err[-500:]}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    assert not errors, errors
    assert optuna.get_all_study_names(storage=pg_url) == ["together"]


# --------------------------------------------------------------------------- journal file


def test_sweep_on_journal_file(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "journal" / "study.log"
    proc = cli(*sweep_args(str(path), "journal-e2e", 2), timeout=SWEEP_TIMEOUT_S)
    assert proc.returncode == 0, explain(proc)
    assert path.is_file()
    assert not list(tmp_path.rglob("*.db")), "a journal path must not create a SQLite database"

    storage: Any = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.load_study(study_name="journal-e2e", storage=storage)
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1]
    for trial in trials:
        check_trial_record(trial)
    check_study_record(study, 2)


def test_stop_reasons_are_the_strings_records_hold() -> None:
    """One enum for the trainer, the job and the analysis; each member is its record string in
    comparisons, dict keys, JSON and f-strings, so records of any version read the same."""
    assert [r.value for r in StopReason] == [
        "completed",
        "pruned",
        "early_stopped",
        "diverged",
        "failed",
        "interrupted",
        "over_budget",
    ]
    assert StopReason("diverged") is StopReason.DIVERGED == "diverged"
    assert {"pruned": 1}[StopReason.PRUNED] == 1 and {StopReason.FAILED: 2}["failed"] == 2
    assert json.dumps([StopReason.EARLY_STOPPED]) == '["early_stopped"]'
    assert f"{StopReason.INTERRUPTED}: {StopReason.OVER_BUDGET!s}" == "interrupted: over_budget"
