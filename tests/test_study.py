"""The study layer in process: the one storage module, the one function that ends a trial,
owners and reaping, heartbeats, and a job's link to its trials (real SQLite and journal files)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from sweep import record
from sweep.study import (
    Ending,
    Keeper,
    PeerPercentilePruner,
    StorageError,
    StudyLink,
    TrialGone,
    ask_pending,
    ask_suggested,
    current_owner,
    end_trial,
    ended_among,
    json_safe,
    mask_url,
    numbers_without,
    open_storage,
    owner_is_dead,
    reap,
    resolve_storage,
    stamp_owner,
    write_attrs,
)
from tests.helpers import ask_concurrently, child_env

KEY = "hydra.sweeper.storage"


def _study(path: Path, name: str = "s", heartbeat: int | None = None, **kw: Any) -> optuna.Study:
    storage = open_storage(resolve_storage(str(path)), heartbeat_interval=heartbeat, **kw)
    return optuna.create_study(
        study_name=name, storage=storage, direction="maximize", load_if_exists=True
    )


def _frozen(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    return study._storage.get_trial(
        study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    )


# --------------------------------------------------------------------------- storages


def test_storage_forms_resolve_to_absolute_urls(tmp_path: Path) -> None:
    r = lambda v: resolve_storage(v, base_dir=tmp_path).url  # noqa: E731
    assert r("sqlite:///a/b.db") == f"sqlite:///{tmp_path}/a/b.db"
    assert r(f"sqlite:///{tmp_path}/abs.db") == f"sqlite:///{tmp_path}/abs.db"
    assert r("runs/s.db") == f"sqlite:///{tmp_path}/runs/s.db"
    for suffix in (".log", ".jsonl", ".journal"):
        assert r(f"runs/s{suffix}") == f"journal:///{tmp_path}/runs/s{suffix}"
    assert r("journal:///rel/j.log") == f"journal:///{tmp_path}/rel/j.log"
    assert r(f"journal:///{tmp_path}/abs.log") == f"journal:///{tmp_path}/abs.log"
    pg = "postgresql+psycopg2://u@127.0.0.1:5432/db"
    assert r(pg) == pg and resolve_storage(pg).kind == "rdb"


def test_every_storage_form_the_sweeper_accepts_opens_for_reading_too(tmp_path: Path) -> None:
    """Analysis reads what the sweeper writes: journal files in each form, SQLite files."""
    for given in ("j1.log", "j2.jsonl", "j3.journal", f"journal:///{tmp_path}/j4.log", "s.db"):
        spec = resolve_storage(given, base_dir=tmp_path)
        writer = open_storage(spec)
        optuna.create_study(study_name="x", storage=writer).add_trial(
            optuna.trial.create_trial(value=1.0)
        )
        reader = open_storage(spec, create=False, read_only=True)
        assert [s.study_name for s in reader.get_all_studies()] == ["x"], given


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: p.write_text("not a database at all, just text"), "not a SQLite database"),
        (lambda p: (p.write_bytes(b""), p.chmod(0o444)), "read-only"),
    ],
    ids=["folder", "garbage", "read-only file"],
)
def test_storage_problems_are_one_line_naming_the_key_and_leave_nothing(
    tmp_path: Path, make: Any, cause: str
) -> None:
    path = tmp_path / "studies.db"
    make(path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(StorageError) as info:
        open_storage(resolve_storage(str(path)))
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{KEY}=") and cause in text and "Fix:" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no -wal/-shm left behind


def test_read_only_folder_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(StorageError, match="read-only"):
            open_storage(resolve_storage(str(folder / "new.db")))
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_read_only_database_in_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    """The read-only case printed Optuna's misleading "exceeding max length" and left -wal and
    -shm files; now it is refused before SQLite is touched (even as root, by the file's mode)."""
    path = tmp_path / "s.db"
    _study(path).add_trial(optuna.trial.create_trial(value=1.0))
    path.chmod(0o444)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(StorageError, match=r"read-only.*Fix: make it writable"):
        open_storage(resolve_storage(str(path)))
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_missing_file_is_never_created_for_a_reader(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no such file"):
        open_storage(resolve_storage(str(tmp_path / "missing.db"), key="--storage"), create=False)
    assert not (tmp_path / "missing.db").exists()


def test_garbage_journal_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.log"
    path.write_text("hello\nthis is not an Optuna journal\n")
    with pytest.raises(StorageError, match="not a readable Optuna journal file"):
        open_storage(resolve_storage(str(path)))


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        (
            "postgresql+psycopg2://ann:s3cret@127.0.0.1:9/db",
            "cannot connect to the database server",
        ),
        ("nosuchdb://ann:s3cret@host/db", "unknown database kind"),
    ],
)
def test_database_url_problems_mask_the_password(url: str, cause: str) -> None:
    with pytest.raises(StorageError) as info:
        open_storage(resolve_storage(url))
    text = str(info.value)
    assert cause in text and "s3cret" not in text and "ann:***@" in text and "\n" not in text


def test_sqlite_is_in_wal_mode_and_skips_fsync(tmp_path: Path) -> None:
    storage = open_storage(resolve_storage(str(tmp_path / "s.db")))
    assert isinstance(storage, optuna.storages.RDBStorage)
    with storage.engine.connect() as con:
        assert con.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert con.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_mask_url() -> None:
    assert mask_url("postgresql://bob:s3cret@db:5432/s") == "postgresql://bob:***@db:5432/s"
    assert mask_url("postgresql://bob@db/s") == "postgresql://bob@db/s"
    assert mask_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


# --------------------------------------------------------------------------- ending a trial


@pytest.mark.parametrize("suffix", [".db", ".log"])
def test_end_trial_stores_record_reports_and_state_together(tmp_path: Path, suffix: str) -> None:
    study = _study(tmp_path / f"s{suffix}")
    trial = study.ask()
    frozen = _frozen(study, trial.number)
    ok = end_trial(
        study._storage,
        frozen,
        Ending(
            TrialState.COMPLETE,
            [0.9],
            "completed",
            "",
            record={"val_acc": 0.9, "curves": {"x": [1]}},
        ),
        reports={1: 0.5, 2: 0.9},
    )
    assert ok
    t = _frozen(study, trial.number)
    assert t.state == TrialState.COMPLETE and t.value == 0.9
    assert t.intermediate_values == {1: 0.5, 2: 0.9}
    assert t.user_attrs["val_acc"] == 0.9 and t.user_attrs["stop_reason"] == "completed"
    assert t.user_attrs[record.TRIAL_END] == {"state": "COMPLETE", "values": [0.9]}
    # ending it again is refused and changes nothing
    assert not end_trial(study._storage, frozen, Ending(TrialState.FAIL, None, "interrupted"))
    assert _frozen(study, trial.number).state == TrialState.COMPLETE


def test_json_safe_nulls_every_non_finite_number() -> None:
    import numpy as np

    nan, inf = float("nan"), float("inf")
    record = {
        "val_acc": nan,
        "test_acc": 0.5,
        "epochs": 3,
        "ok": True,
        "none": None,
        4: "x",
        "pair": (1.0, inf),
        "np": np.float64(-inf),
        "deep": {"a": [nan, 2.0]},
        "curves": {"val_loss": [0.5, nan, inf], "epoch": [1.0, 2.0, 3.0], "mixed": (1, nan)},
    }
    safe = json_safe(record)
    assert safe["val_acc"] is None and safe["np"] is None
    assert safe["pair"] == [1.0, None] and safe["deep"] == {"a": [None, 2.0]}
    assert (safe["test_acc"], safe["epochs"], safe["ok"], safe["none"], safe["4"]) == (
        0.5,
        3,
        True,
        None,
        "x",
    )
    # inside curves too: stored per attribute, a diverged run's curves always were null there
    assert safe["curves"] == {
        "val_loss": [0.5, None, None],
        "epoch": [1.0, 2.0, 3.0],
        "mixed": [1, None],
    }
    assert safe["curves"] == json_safe(record["curves"])


def test_json_text_writes_what_json_dumps_writes_of_json_safe() -> None:
    import enum
    import json

    import numpy as np

    from sweep.study._writes import json_text

    class Level(enum.IntEnum):
        HIGH = 2

    nan, inf = float("nan"), float("inf")
    values = [
        0.1,
        1e-300,
        -0.0,
        3,
        -7,
        2**70,
        True,
        False,
        None,
        "",
        'a"b\\c\n',
        "λ=0.1 é",
        nan,
        inf,
        -inf,
        np.float64(0.25),
        np.float64(nan),
        Level.HIGH,
        (1, nan),
        [0.5, nan, inf],
        {"a": [nan, 2.0], 4: "x", "curves": {"v": [nan, 1.0]}},
        {"config": {"trainer": {"epochs": 20, "lr": 0.05}}},
        [[1.0, nan], "s"],
    ]
    for v in values:
        assert json_text(v) == json.dumps(json_safe(v)), v


def test_a_records_file_is_strict_json_with_what_the_study_stores() -> None:
    """A trial's JSON file refuses NaN and Infinity (jq, JavaScript and RFC 8259 do): a diverged
    run's non-finite numbers are null there, as in the study; other records are json.dumps'."""
    import json
    import math

    from sweep.study import record_json
    from sweep.study._writes import json_text

    def strict(text: str) -> object:
        def refuse(token: str) -> object:
            raise AssertionError(f"{token} in {text}")

        return json.loads(text, parse_constant=refuse)

    nan, inf = float("nan"), float("inf")
    diverged = {
        "val_loss": nan,
        "gap_loss": -inf,
        "epochs_run": 2,
        "stop_reason": "diverged",
        "curves": {"train_loss": [2.3, nan], "val_acc": [0.1, 0.1]},
        "population": {"size": 8, "members": (3, 4)},
        "hparams": {"lr": 1e9, "p": None},
    }
    got = strict(record_json(diverged))
    assert isinstance(got, dict)
    assert got == {k: json.loads(json_text(v)) for k, v in diverged.items()}  # as stored
    assert got["val_loss"] is None and got["curves"]["train_loss"] == [2.3, None]
    assert strict(record_json(diverged, indent=2)) == got
    fine = {"val_acc": 0.9, "curves": {"val_acc": [0.5, 0.9]}, "path": Path("a/b")}
    assert record_json(fine) == json.dumps(fine, default=str)
    assert math.isnan(diverged["val_loss"])  # the record itself is left as it was


@pytest.mark.parametrize("suffix", [".db", ".log"])
def test_a_record_and_reports_read_back_the_same_from_every_storage(
    tmp_path: Path, suffix: str
) -> None:
    """SQLite writes rows straight through its driver: what reads back is what the journal,
    written through Optuna's own calls, reads back."""
    import math

    from optuna.storages._rdb import models

    from sweep.study._writes import _sqlite_upsert

    study = _study(tmp_path / f"s{suffix}")
    trial = study.ask()
    nan, inf = float("nan"), float("inf")
    rec = {
        "val_acc": 0.75,
        "test_acc": nan,
        "epochs_run": 4,
        "family": "l2",
        "collapsed": False,
        "hparams": {"l2": 1e-4, "p": None},
        "curves": {"val_loss": [0.5, nan, inf, 0.25]},
    }
    reports = {1: 0.5, 2: nan, 3: inf, 4: -inf, 5: 0.75}
    assert end_trial(
        study._storage,
        _frozen(study, trial.number),
        Ending(TrialState.COMPLETE, [0.75], "completed", "", record=rec),
        reports=reports,
    )
    t = _frozen(study, trial.number)
    assert t.state == TrialState.COMPLETE and t.value == 0.75
    assert t.user_attrs["test_acc"] is None and t.user_attrs["epochs_run"] == 4
    assert t.user_attrs["hparams"] == {"l2": 1e-4, "p": None} and not t.user_attrs["collapsed"]
    assert t.user_attrs["curves"]["val_loss"] == [0.5, None, None, 0.25]
    got = t.intermediate_values
    assert got[1] == 0.5 and math.isnan(got[2]) and got[3] == inf and got[4] == -inf
    assert got[5] == 0.75
    # the driver's path is the one taken for records and reports, never for dated rows
    table = models.TrialIntermediateValueModel.__table__
    columns = ("trial_id", "step", "intermediate_value", "intermediate_value_type")
    assert _sqlite_upsert(table, ("trial_id", "step"), columns) is not None
    beats = models.TrialHeartbeatModel.__table__
    assert _sqlite_upsert(beats, ("trial_id",), ("trial_id", "heartbeat")) is None


def test_end_trial_normalizes_values(tmp_path: Path) -> None:
    study = _study(tmp_path / "s.db")
    nan, pruned = study.ask(), study.ask()
    end_trial(
        study._storage,
        _frozen(study, nan.number),
        Ending(TrialState.COMPLETE, [float("nan")], "completed"),
    )
    t = _frozen(study, nan.number)
    assert t.state == TrialState.FAIL and t.user_attrs["stop_reason"] == "failed"
    end_trial(
        study._storage,
        _frozen(study, pruned.number),
        Ending(TrialState.PRUNED, None, "pruned"),
        reports={1: 0.3, 2: 0.25},
    )
    t = _frozen(study, pruned.number)
    assert t.state == TrialState.PRUNED and t.value == 0.25  # its last report, as Optuna's tell


# --------------------------------------------------------------------------- asking a batch


def _suggest(trial: optuna.trial.Trial) -> dict[str, Any]:
    values = {
        "lr": trial.suggest_float("lr", 1e-3, 1.0, log=True),
        "kind": trial.suggest_categorical("kind", ["l1", "l2"]),
    }
    if values["kind"] == "l1":
        values["l1"] = trial.suggest_float("l1", 1e-6, 1e-2, log=True)
    return values


@pytest.mark.parametrize("suffix", [".db", ".log"])
def test_a_batch_is_stored_as_study_ask_and_suggest_would(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"s{suffix}"
    study = _study(path)
    study.sampler = optuna.samplers.NSGAIISampler(seed=0)  # writes sampler (system) attributes
    study.enqueue_trial({"lr": 0.5, "kind": "l2"})
    asked = ask_suggested(study, 6, _suggest)

    assert [t.number for t, _ in asked] == [0, 1, 2, 3, 4, 5]
    assert asked[0][1] == {"lr": 0.5, "kind": "l2"}  # the queued trial comes first, as given
    fresh = optuna.load_study(study_name="s", storage=open_storage(resolve_storage(str(path))))
    stored = {t.number: t for t in fresh.get_trials()}
    assert len(stored) == 6
    for trial, values in asked:
        t = stored[trial.number]
        assert t.state == TrialState.RUNNING
        assert t.datetime_start == trial._cached_frozen_trial.datetime_start is not None
        assert t.params == pytest.approx(values)  # every suggested value, conditionals included
        assert set(t.distributions) == set(values)
        assert t.user_attrs[record.TRIAL_OWNER] == current_owner()
        assert t.system_attrs == trial._cached_frozen_trial.system_attrs
    assert any(t.system_attrs for t in stored.values())  # NSGA-II's attributes were written
    # the trials go on as any trial does: a later write and the end reach the storage
    trial, values = asked[1]
    trial.set_user_attr("note", "after the batch")
    assert end_trial(
        study._storage, _frozen(study, trial.number), Ending(TrialState.COMPLETE, [values["lr"]])
    )
    t = _frozen(fresh, trial.number)
    assert t.user_attrs["note"] == "after the batch" and t.value == pytest.approx(values["lr"])


def test_a_pending_batch_stores_parameters_configs_and_heartbeats_in_one_commit(
    tmp_path: Path,
) -> None:
    import sqlite3

    import sqlalchemy

    study = _study(tmp_path / "s.db", heartbeat=60)
    asked, pending = ask_pending(study, 3, _suggest)
    first, second, third = (t for t, _ in asked)
    unsaved = study._storage.get_trial(first._trial_id)
    assert unsaved.params == {} and unsaved.state == TrialState.RUNNING  # owned, not yet given
    pending.store_one(third._trial_id)  # one trial's share now (before ending it, say)
    assert _frozen(study, third.number).params == pytest.approx(asked[2][1])

    commits: list[int] = []
    engine = study._storage._backend.engine
    sqlalchemy.event.listen(engine, "commit", lambda _conn: commits.append(1))
    pending.store(
        {first._trial_id: {"config": {"lr": asked[0][1]["lr"]}, "tag": (1, 2)}}, heartbeat=True
    )
    assert len(commits) == 1
    for trial, values in asked[:2]:
        stored = _frozen(study, trial.number)
        assert stored.params == pytest.approx(values)
    assert _frozen(study, first.number).user_attrs["config"] == {"lr": asked[0][1]["lr"]}
    assert _frozen(study, first.number).user_attrs["tag"] == [1, 2]
    assert "config" not in _frozen(study, second.number).user_attrs
    with sqlite3.connect(tmp_path / "s.db") as db:
        beaten = {i for (i,) in db.execute("SELECT trial_id FROM trial_heartbeats")}
    assert beaten == {first._trial_id, second._trial_id}  # the third was stored on its own
    commits.clear()
    pending.store()  # nothing left: no write
    assert commits == []


def test_a_batch_refuses_a_parameter_whose_distribution_changed(tmp_path: Path) -> None:
    study = _study(tmp_path / "s.db")
    ask_suggested(study, 2, _suggest)

    def other(trial: optuna.trial.Trial) -> dict[str, Any]:
        return {"lr": trial.suggest_float("lr", 1e-3, 1.0)}  # not log any more

    with pytest.raises(ValueError, match=r"lr|log"):
        ask_suggested(study, 1, other)


@pytest.mark.parametrize("suffix", [".db", ".log"])
def test_ended_among_names_only_the_given_trials_that_ended(tmp_path: Path, suffix: str) -> None:
    study = _study(tmp_path / f"s{suffix}")
    trials = [study.ask() for _ in range(5)]
    study.tell(trials[0], 0.5)
    study.tell(trials[1], state=TrialState.PRUNED)
    study.tell(trials[2], state=TrialState.FAIL)
    study._storage.set_trial_user_attr(trials[3]._trial_id, "stop_reason", "x")  # still running
    ids = [t._trial_id for t in trials]

    def running(asked: list[int]) -> set[int]:
        return set(asked) - set(ended_among(study._storage, asked, "stop_reason"))

    assert running(ids[:4]) == {ids[3]}  # trial 4 runs but is not asked
    assert running(ids) == {ids[3], ids[4]}
    assert ended_among(study._storage, [], "stop_reason") == {}
    assert ended_among(study._storage, ids, "stop_reason") == {
        ids[0]: (TrialState.COMPLETE, None),
        ids[1]: (TrialState.PRUNED, None),
        ids[2]: (TrialState.FAIL, None),
    }


_OPEN_AT = """
import sys, time
from sweep.study import open_storage, resolve_storage
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # every process opens at one instant
open_storage(resolve_storage(sys.argv[1], key="hydra.sweeper.storage"), create=True)
"""


def test_workers_opening_a_new_sqlite_file_together_all_get_the_study(tmp_path: Path) -> None:
    """Workers started together race to create Optuna's tables; SQLite reports the loser as
    'table ... already exists', which is a race to wait out, not a broken file."""
    path = tmp_path / "fresh.db"
    for attempt in range(2):  # two fresh races
        path.unlink(missing_ok=True)
        start = time.time() + 2.5  # after the interpreters and imports
        env = child_env()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN_AT, str(path), str(start)],
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, (attempt, errors)
    optuna.create_study(study_name="after", storage=f"sqlite:///{path}")


@pytest.mark.parametrize("suffix", [".db", ".log"])
def test_concurrent_batches_never_share_a_trial_number(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"s{suffix}"
    _study(path)
    ask_concurrently(str(path), "s", procs=4, batches=5, size=8)
    trials = _study(path).get_trials()
    assert sorted(t.number for t in trials) == list(range(160))
    assert all("x" in t.params for t in trials)


# --------------------------------------------------------------------------- owners and reaping

_DIE = """
import sys, time
from sweep.study import ask_owned, open_storage, resolve_storage
import optuna
storage = open_storage(resolve_storage(sys.argv[1]))
study = optuna.load_study(study_name="s", storage=storage)
(trial,) = ask_owned(study)  # created with its owner: nothing more is written before the kill
trial.suggest_float("x", 0, 1)
print(trial.number, flush=True)
time.sleep(60)
"""


def _orphan(tmp_path: Path, path: Path) -> int:
    """A trial asked and owned by a process that is then killed (SIGKILL)."""
    _study(path)
    env = child_env()
    proc = subprocess.Popen(
        [sys.executable, "-c", _DIE, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    number = int(proc.stdout.readline())
    proc.kill()
    proc.wait()
    return number


@pytest.mark.parametrize("suffix", [".db", ".log"])
def test_a_dead_owners_trial_is_failed_at_once_on_its_host(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"s{suffix}"
    number = _orphan(tmp_path, path)
    study = _study(path, heartbeat=3600)  # the heartbeat would wait an hour: the owner decides
    owner = _frozen(study, number).user_attrs[record.TRIAL_OWNER]
    assert owner_is_dead(owner) and not owner_is_dead(current_owner())
    lines = reap(study)
    assert len(lines) == 1 and "its process is gone" in lines[0]
    t = _frozen(study, number)
    assert t.state == TrialState.FAIL and t.user_attrs["stop_reason"] == "interrupted"
    assert reap(study) == []


def test_a_dead_owners_trial_with_its_record_stored_is_finished_from_it(tmp_path: Path) -> None:
    """Killed after storing its full record but before its state: the rerun completes it."""
    path = tmp_path / "s.log"  # a journal writes the record and the state in separate steps
    number = _orphan(tmp_path, path)
    study = _study(path)
    write_attrs(
        study._storage,
        _frozen(study, number)._trial_id,
        {
            "best_epoch": 10,
            "val_acc": 0.9704,
            "stop_reason": "completed",
            record.TRIAL_END: {"state": "COMPLETE", "values": [0.9704]},
        },
    )
    (line,) = reap(study)
    assert "after storing its record: finished as COMPLETE" in line
    t = _frozen(study, number)
    assert t.state == TrialState.COMPLETE and t.value == 0.9704
    assert t.user_attrs["stop_reason"] == "completed" and t.user_attrs["best_epoch"] == 10


def test_requeue_enqueues_the_dead_trials_parameters(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    number = _orphan(tmp_path, path)
    study = _study(path)
    params = _frozen(study, number).params
    assert set(params) == {"x"}
    reap(study, requeue_interrupted=True)
    waiting = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert [t.user_attrs.get("requeued_from") for t in waiting] == [number]
    again = study.ask()  # the next ask takes the re-queued parameters
    assert again.suggest_float("x", 0, 1) == params["x"]


def test_a_live_owner_is_spared_and_a_stale_heartbeat_elsewhere_is_not(tmp_path: Path) -> None:
    study = _study(tmp_path / "s.db", heartbeat=1, grace_period=1)
    mine, theirs = study.ask(), study.ask()
    stamp_owner(study._storage, mine._trial_id)
    other_host = {**current_owner(), "host": "another-machine"}
    write_attrs(study._storage, theirs._trial_id, {record.TRIAL_OWNER: other_host})
    for t in (mine, theirs):
        study._storage.record_heartbeat(t._trial_id)  # type: ignore[attr-defined]
    assert reap(study) == []  # heartbeats fresh
    time.sleep(2.2)
    (line,) = reap(study)  # both stale now; only the other machine's trial is provably dead
    assert f"trial {theirs.number}" in line and "heartbeat" in line
    assert _frozen(study, mine.number).state == TrialState.RUNNING


def test_keeper_beats_for_held_trials(tmp_path: Path) -> None:
    study = _study(tmp_path / "s.db", heartbeat=1, grace_period=1)
    trial = study.ask()
    write_attrs(
        study._storage,
        trial._trial_id,
        {record.TRIAL_OWNER: {**current_owner(), "host": "elsewhere"}},
    )
    with Keeper(study._storage, 0.2) as keeper, keeper.holding([trial._trial_id]):
        time.sleep(2.5)
        assert reap(study) == []  # kept fresh by the keeper
    time.sleep(2.5)  # SQLite's clock has whole seconds: stale after more than 1 s
    assert len(reap(study)) == 1


# --------------------------------------------------------------------------- the job's link


def test_job_reconnects_to_its_trial_and_uses_the_stored_pruner(tmp_path: Path) -> None:
    """The DESIGN's reconnection: the job sees the sweeper's trial through the storage alone."""
    path = tmp_path / "s.db"
    study = _study(path)
    study.set_user_attr(record.STUDY_PRUNER, {"name": "threshold", "lower": 0.5})
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    link = StudyLink(open_storage(resolve_storage(str(path)), create=False), "s")
    member = link.member(trial.number)
    assert isinstance(link.study.pruner, optuna.pruners.ThresholdPruner)
    member.report(0.9, 1)
    assert not member.should_prune()
    member.report(0.1, 2)
    assert member.should_prune()
    member.end(Ending(TrialState.PRUNED, None, "pruned", record={"gap_acc": float("nan")}))
    frozen = _frozen(_study(path), trial.number)
    assert frozen.state == TrialState.PRUNED and frozen.value == 0.1
    assert frozen.intermediate_values == {1: 0.9, 2: 0.1}
    assert frozen.user_attrs["gap_acc"] is None
    assert frozen.params == {"x": trial.params["x"]}
    with pytest.raises(TrialGone, match="not RUNNING"):
        link.member(trial.number)


def test_reports_are_batched_and_pruning_sees_every_value(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    study = _study(path)
    study.set_user_attr(record.STUDY_PRUNER, {"name": "threshold", "lower": 0.5})
    a, b = study.ask(), study.ask()
    link = StudyLink(open_storage(resolve_storage(str(path)), create=False), "s")
    ma, mb = link.member(a.number), link.member(b.number)

    def stored(n: int) -> dict[int, float]:
        return _frozen(_study(path), n).intermediate_values

    ma.report(0.9, 1)
    mb.report(0.8, 1)
    ma.report(0.2, 2)
    assert stored(a.number) == {}  # held back (written at most every 2 s)
    assert ma.should_prune() and not mb.should_prune()  # the pruner saw the unwritten value
    link.flush()  # one transaction for both members
    assert stored(a.number) == {1: 0.9, 2: 0.2} and stored(b.number) == {1: 0.8}


def test_an_adopted_trial_is_a_copy_that_shares_nothing_with_its_source(tmp_path: Path) -> None:
    """A job adopts the trials its sweeper has just asked without reading them back: its copy
    holds what ``copy.deepcopy`` would, and later changes to either side stay on that side."""
    import copy

    study = _study(tmp_path / "s.db")
    asked = study.ask({"optimizer.lr": optuna.distributions.FloatDistribution(0.01, 0.1)})
    asked.set_user_attr("config", {"model": {"hidden": [64, 64]}, "optimizer": {"lr": 0.05}})
    asked.report(0.5, 1)
    source = _frozen(study, asked.number)
    source._user_attrs["owner"] = {"host": "h", "pid": 1, "tags": ["a"]}
    link = StudyLink(open_storage(resolve_storage(str(tmp_path / "s.db")), create=False), "s")
    mine = link.adopt([source])[0].frozen
    assert mine is not source
    assert vars(mine) == vars(copy.deepcopy(source))
    source.user_attrs["config"]["model"]["hidden"].append(8)
    source.user_attrs["owner"]["tags"].append("b")
    source._user_attrs["later"] = 1
    source.params["optimizer.lr"] = 0.09
    source.distributions.clear()
    source.intermediate_values[2] = 0.7
    source.system_attrs["x"] = 1
    assert mine.user_attrs["config"]["model"]["hidden"] == [64, 64]
    assert mine.user_attrs["owner"]["tags"] == ["a"] and "later" not in mine.user_attrs
    assert mine.params["optimizer.lr"] == asked.params["optimizer.lr"]
    assert list(mine.distributions) == ["optimizer.lr"]
    assert mine.intermediate_values == {1: 0.5} and "x" not in mine.system_attrs


def test_a_pruned_member_keeps_its_last_report_as_its_value_once_reports_were_flushed(
    tmp_path: Path,
) -> None:
    """Optuna's ``tell`` stores a pruned trial's last report as its value. A member whose
    reports the job had already written (every 2 s, all members at once) is stored the same
    way, not without a value."""
    study = _study(tmp_path / "s.db")
    a, b = study.ask(), study.ask()
    link = StudyLink(open_storage(resolve_storage(str(tmp_path / "s.db")), create=False), "s")
    flushed, held = link.member(a.number), link.member(b.number)
    for epoch, value in ((1, 0.4), (2, 0.5)):
        flushed.report(value, epoch)
        held.report(value + 0.1, epoch)
    link.flush()  # both members' reports are stored ...
    held.report(0.3, 3)  # ... and one of them reports once more before it is pruned
    link.end_many(
        [
            (flushed, Ending(TrialState.PRUNED, None, "pruned")),
            (held, Ending(TrialState.PRUNED, None, "pruned")),
        ]
    )
    stored = _study(tmp_path / "s.db")
    assert (_frozen(stored, a.number).value, _frozen(stored, b.number).value) == (0.5, 0.3)
    assert _frozen(stored, a.number).intermediate_values == {1: 0.4, 2: 0.5}


def _population(path: Path, spec: dict[str, Any], n: int) -> tuple[StudyLink, list[Any]]:
    """``n`` trials asked by a sweeper and adopted by a job's link, as a population's members."""
    study = _study(path)
    study.set_user_attr(record.STUDY_PRUNER, spec)
    asked = [study.ask() for _ in range(n)]
    link = StudyLink(open_storage(resolve_storage(str(path)), create=False), "s")
    return link, [link.member(t.number) for t in asked]


def test_a_population_prunes_against_its_own_running_members(tmp_path: Path) -> None:
    """No trial has finished while the first population trains: Optuna's median pruner
    (finished trials only) can never prune it; with peers, its members are each other's
    reference, with the values they reported and have not yet stored."""
    spec = {"name": "median", "peers": True, "n_startup_trials": 3, "n_warmup_steps": 2}
    link, members = _population(tmp_path / "s.db", spec, 5)
    assert isinstance(link.study.pruner, PeerPercentilePruner)
    at_2 = [0.5, 0.6, 0.7, 0.8, 0.9]
    for m, v in zip(members, at_2, strict=True):
        m.report(v - 0.4, 1)
    assert not any(m.should_prune() for m in members)  # epoch 1 is in the warm-up
    for m, v in zip(members, at_2, strict=True):
        m.report(v, 2)
    # 0.6 against the others' median (0.5, 0.7, 0.8, 0.9 → 0.75) is pruned; 0.7 against
    # (0.5, 0.6, 0.8, 0.9 → 0.7) is not: Optuna's rule keeps a trial that ties the median
    assert [m.should_prune() for m in members] == [True, True, False, False, False]
    optuna_rule, _ = _population(tmp_path / "o.db", {**spec, "peers": False}, 5)
    assert isinstance(optuna_rule.study.pruner, optuna.pruners.PercentilePruner)

    # the job ends three members; its view shows them ended without reading the study
    link.end_many(
        [
            (members[0], Ending(TrialState.PRUNED, None, "pruned")),
            (members[1], Ending(TrialState.PRUNED, None, "pruned")),
            (members[4], Ending(TrialState.COMPLETE, [0.9], "completed")),
        ]
    )
    seen = {t.number: t.state for t in link.snapshot.get_trials(deepcopy=False)}
    assert [seen[m.number] for m in members] == [TrialState.PRUNED] * 2 + [
        TrialState.RUNNING
    ] * 2 + [TrialState.COMPLETE]
    # a member that joins later is judged against the finished and the running, not the
    # pruned: (0.7, 0.8, 0.9) → 0.8 prunes 0.72 (with the pruned ones it would be 0.7)
    late = link.member(_study(tmp_path / "s.db").ask().number)
    late.report(0.1, 1)
    late.report(0.72, 2)
    assert late.should_prune()
    late.report(0.85, 3)  # no other trial has reached epoch 3: nothing to judge against
    assert not late.should_prune()


@pytest.mark.parametrize(
    ("direction", "values", "mine", "pruned"),
    [
        ("maximize", [0.2, 0.4, 0.6], 0.3, True),
        ("maximize", [0.2, 0.4, 0.6], 0.4, False),
        ("minimize", [0.2, 0.4, 0.6], 0.5, True),
        ("minimize", [0.2, 0.4, 0.6], 0.4, False),
    ],
)
def test_peer_percentile_follows_the_direction_on_a_plain_study(
    tmp_path: Path, direction: str, values: list[float], mine: float, pruned: bool
) -> None:
    storage = open_storage(resolve_storage(str(tmp_path / "p.db")))
    study = optuna.create_study(study_name="p", storage=storage, direction=direction)
    for v in values:  # still running: Optuna's own rule would have nothing to compare with
        study.ask().report(v, 1)
    me = study.ask()
    me.report(mine, 1)
    frozen = _frozen(study, me.number)
    assert PeerPercentilePruner(50.0, n_startup_trials=3).prune(study, frozen) is pruned
    assert not PeerPercentilePruner(50.0, n_startup_trials=4).prune(study, frozen)  # too few


def test_peer_percentile_refuses_bad_settings_naming_each() -> None:
    with pytest.raises(ValueError, match=r"percentile=120.*0 to 100.*interval_steps=0"):
        PeerPercentilePruner(120, interval_steps=0)


@pytest.mark.parametrize("suffix", [".db", ".log"])
def test_light_reads_agree_with_reading_the_trials(tmp_path: Path, suffix: str) -> None:
    """The sweeper's one-query reads (budget, ended trials) say what a full read says."""
    study = _study(tmp_path / f"s{suffix}")
    trials = [study.ask() for _ in range(5)]
    for t, reason in zip(trials[:3], ["completed", "interrupted", "over_budget"], strict=True):
        t.set_user_attr("stop_reason", reason)
    study.tell(trials[0], 0.5)
    study.tell(trials[1], state=TrialState.FAIL)
    study.tell(trials[3], state=TrialState.PRUNED)
    left_out = ("interrupted", "over_budget")
    assert numbers_without(study._storage, study._study_id, "stop_reason", left_out) == [
        trials[0].number,
        trials[3].number,
        trials[4].number,
    ]
    ids = [t._trial_id for t in trials]
    assert ended_among(study._storage, ids, "stop_reason") == {
        ids[0]: (TrialState.COMPLETE, "completed"),
        ids[1]: (TrialState.FAIL, "interrupted"),
        ids[3]: (TrialState.PRUNED, None),
    }
    assert ended_among(study._storage, [], "stop_reason") == {}


def test_the_progress_line_counts_the_budget_and_names_the_best(tmp_path: Path) -> None:
    from hydra_plugins.regsweep_sweeper._budget import Tally

    study = _study(tmp_path / "p.db")
    outcomes = [
        (TrialState.COMPLETE, 0.5, None),
        (TrialState.COMPLETE, 0.9, None),
        (TrialState.PRUNED, None, "pruned"),
        (TrialState.FAIL, None, "diverged"),
        (TrialState.FAIL, None, "interrupted"),
        (TrialState.RUNNING, None, None),
    ]
    for state, value, reason in outcomes:
        trial = study.ask()
        if reason is not None:
            trial.set_user_attr("stop_reason", reason)
        trial.set_user_attr("curves", {"val_acc": [0.1] * 50})  # a record it need not read
        if state != TrialState.RUNNING:
            study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
    line = Tally(n_trials=10, max_failure_rate=1.0).progress_line(study)
    # the interrupted trial does not count; the running one counts but is not done
    assert line == "4/10 done, 1 pruned, 1 failed, best 0.9000 (trial 1)"
    study.tell(5, 0.95)
    assert (
        Tally(n_trials=10, max_failure_rate=1.0)
        .progress_line(study)
        .startswith("5/10 done, 1 pruned, 1 failed, best 0.9500 (trial 5)")
    )


def test_a_launch_settles_from_how_its_jobs_left_the_trials(tmp_path: Path) -> None:
    """A launcher (the one part replaced: it stands for jobs that ran elsewhere) whose jobs
    ended one trial, returned a failure with another left RUNNING, and left a third RUNNING
    without a word: the first settles as its job ended it, the others fail with the reason."""
    from hydra.core.utils import JobReturn, JobStatus
    from hydra.plugins.launcher import Launcher

    from hydra_plugins.regsweep_sweeper._launch import Launch, Settled, Unit
    from sweep.config import AppConfig
    from sweep.study import Ending, Keeper, end_trial, resolve_storage

    study = _study(tmp_path / "l.db")
    trials = [study.ask() for _ in range(3)]
    frozen = [_frozen(study, t.number) for t in trials]

    class Jobs(Launcher):
        def setup(self, **_kw: Any) -> None: ...

        def launch(self, job_overrides: Any, initial_job_idx: int) -> list[JobReturn]:
            end_trial(
                study._storage,
                frozen[0],
                Ending(TrialState.PRUNED, None, "pruned", "pruned at epoch 4"),
            )
            failed = JobReturn(status=JobStatus.FAILED)
            failed._return_value = RuntimeError("out of memory")
            return [JobReturn(status=JobStatus.COMPLETED), failed, JobReturn()]

    keeper = Keeper(study._storage, None)
    launch = Launch(
        Jobs(),
        resolve_storage(str(tmp_path / "l.db")),
        keeper,
        heartbeat=0,
        requeue=False,
        app_overrides=[],
    )
    units = [Unit(study, f, AppConfig(), []) for f in frozen]
    launch.in_flight = {u.trial._trial_id: u for u in units}
    seen: list[Settled] = []
    launch.run([[u] for u in units], stage="search", on_settled=seen.append)
    assert seen == [
        Settled(0, TrialState.PRUNED, "pruned"),
        Settled(1, TrialState.FAIL, "failed"),
        Settled(2, TrialState.FAIL, "failed"),
    ]
    assert _frozen(study, 1).user_attrs["message"] == "RuntimeError: out of memory"
    assert _frozen(study, 2).user_attrs["message"] == "the job returned without ending its trial"
    assert not launch.in_flight
