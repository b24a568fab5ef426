"""Storage resolution, robustness cases, the report directory and the command line."""

from __future__ import annotations

import datetime
import math
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from analysis import (
    StorageNotFoundError,
    StudyNotFoundError,
    build_report,
    load_curves,
    load_trials,
    read_study,
    resolve_storage,
)
from analysis.__main__ import main
from tests.analysis.analysis_studies import controlled_trials, trial, write_study

ROOT = Path(__file__).resolve().parents[2]


def test_default_storage_is_absolute_and_never_created(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StorageNotFoundError, match="does not exist"):
        load_trials()
    assert not (tmp_path / "outputs").exists()
    (tmp_path / "outputs").mkdir()
    write_study(tmp_path / "outputs" / "studies.db", controlled_trials()[:2])
    assert resolve_storage() == f"sqlite:///{tmp_path / 'outputs' / 'studies.db'}"
    assert resolve_storage("outputs/studies.db") == resolve_storage()
    assert len(load_trials()) == 2


def test_missing_sqlite_url_raises_before_optuna(tmp_path: Path) -> None:
    path = tmp_path / "nope.db"
    with pytest.raises(StorageNotFoundError, match=r"nope\.db"):
        load_trials(f"sqlite:///{path}")
    assert not path.exists()


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_text("not sqlite")
    with pytest.raises(StorageNotFoundError):
        load_trials(path)


def test_unknown_study_lists_the_studies(controlled_db: Path) -> None:
    with pytest.raises(StudyNotFoundError, match=r"'nope'.*controlled"):
        load_trials(controlled_db, "nope")


def test_storage_without_studies(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    optuna.storages.RDBStorage(url)  # tables, no study
    with pytest.raises(StudyNotFoundError, match="no study"):
        load_trials(url)


def test_most_recent_study_is_picked(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    url = write_study(path, controlled_trials()[:1], name="older")
    newer = optuna.create_study(storage=url, study_name="newer")
    newer.add_trial(optuna.trial.create_trial(value=1.0))
    optuna.create_study(storage=url, study_name="empty-latest")  # no trials: ranks last
    old = optuna.load_study(study_name="older", storage=url)
    assert old.trials[0].datetime_start < newer.trials[0].datetime_start
    assert read_study(path).name == "newer"


def test_journal_file(tmp_path: Path) -> None:
    path = tmp_path / "study.log"
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(storage=storage, study_name="j", direction="maximize")
    study.add_trials(controlled_trials()[:3])
    assert load_trials(path)["trial"].tolist() == [0, 1, 2]
    with pytest.raises(StorageNotFoundError):
        load_trials(tmp_path / "missing.jsonl")


def test_plain_optuna_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    study = optuna.create_study(storage=url, study_name="plain")
    study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.2) ** 2, n_trials=4)
    trials = load_trials(url)
    assert len(trials) == 4 and set(trials["family"]) == {"unknown"}
    assert trials["params_x"].notna().all() and trials["value"].notna().all()
    assert math.isnan(trials["gap_acc_best"].iloc[0])
    report = build_report(url, out=tmp_path / "r")  # minimize: ranking by value, ascending
    assert report.tables["top_trials"]["value"].is_monotonic_increasing


@pytest.mark.parametrize("kind", ["empty", "pruned_failed"])
def test_report_on_degenerate_studies(tmp_path: Path, kind: str) -> None:
    trials = [] if kind == "empty" else [
        trial("l2", [0.5, 0.55], [0.4, 0.45], lam=0.1, state=TrialState.PRUNED),
        trial("l1", [0.5, math.nan], [0.5, math.nan], lam=10.0, state=TrialState.FAIL,
              stop_reason="diverged"),
    ]
    url = write_study(tmp_path / "d.db", trials)
    report = build_report(url, out=tmp_path / "r")
    assert report.tables["family_summary"].empty
    assert report.tables["param_importances"].empty and len(report.notes) == 2
    assert (tmp_path / "r" / "report.html").is_file()
    assert len(list((tmp_path / "r" / "figures").glob("*.svg"))) == 7
    if kind == "pruned_failed":
        assert report.tables["pruning_summary"].iloc[0]["epochs_saved"] == 2


def test_report_directory(controlled_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    report = build_report(controlled_db, out=out)
    for stem in ("family_summary", "top_trials", "gap_by_param", "pruning_summary",
                 "state_summary", "param_importances", "trials"):
        assert (out / "tables" / f"{stem}.csv").is_file()
        assert (out / "tables" / f"{stem}.parquet").is_file()
    assert {p.stem for p in (out / "figures").glob("*.png")} == set(report.figures)
    md = (out / "report.md").read_text()
    assert "| l2 | 2 | 3 | 0.83 |" in md and "figures/gap_vs_strength.png" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 7 and "figures/" not in html
    assert "l2" in report.summary and "best trial 3" in report.summary


def test_cli(controlled_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--storage", str(controlled_db), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "report written to" in out and "best trial 3" in out
    assert main(["--storage", str(controlled_db), "--study", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no study named 'nope'") and err.count("\n") == 1
    assert main(["--storage", str(tmp_path / "missing.db")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_module_help_and_exit_code(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "analysis", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "--storage" in run.stdout
    run = subprocess.run([sys.executable, "-m", "analysis", "--storage",
                          str(tmp_path / "x.db")], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr


def test_read_while_a_sweep_writes(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    url = write_study(path, controlled_trials()[:1], name="live")
    with sqlite3.connect(path) as conn:  # the sweeper sets WAL mode
        conn.execute("PRAGMA journal_mode=WAL")
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            study = optuna.load_study(study_name="live", storage=optuna.storages.RDBStorage(
                url, engine_kwargs={"connect_args": {"timeout": 30}}))
            for i in range(15):
                t = study.ask()
                for epoch in range(1, 5):
                    t.report(0.1 * epoch, epoch)
                t.set_user_attr("family", "l2")
                study.tell(t, 0.5 + i / 100)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=30)
    while thread.is_alive() and datetime.datetime.now() < deadline:
        seen.append(len(load_trials(path)))
        load_curves(path)
    thread.join()
    assert not errors
    assert seen == sorted(seen) and len(load_trials(path)) == 16
