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
from analysis._facts import pruner_text
from tests.analysis.analysis_studies import controlled_trials, numbered, trial, write_study

ROOT = Path(__file__).resolve().parents[2]


def test_default_storage_is_absolute_and_never_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    assert math.isnan(trials["gap_acc"].iloc[0])
    report = build_report(url, out=tmp_path / "r")  # minimize: ranking by value, ascending
    assert report.tables["top_trials"]["value"].is_monotonic_increasing


@pytest.mark.parametrize("kind", ["empty", "pruned_failed"])
def test_report_on_degenerate_studies(tmp_path: Path, kind: str) -> None:
    trials = (
        []
        if kind == "empty"
        else [
            trial("l2", [0.5, 0.55], [0.4, 0.45], lam=0.1, state=TrialState.PRUNED),
            trial(
                "l1",
                [0.5, math.nan],
                [0.5, math.nan],
                lam=10.0,
                state=TrialState.FAIL,
                stop_reason="diverged",
            ),
        ]
    )
    url = write_study(tmp_path / "d.db", trials)
    report = build_report(url, out=tmp_path / "r")
    assert report.tables["family_summary"].empty and report.tables["effects"].empty
    assert report.tables["param_importances"].empty and len(report.notes) == 2
    html = (tmp_path / "r" / "report.html").read_text()
    svgs = {p.stem for p in (tmp_path / "r" / "figures").glob("*.svg")}
    # nothing to show → no placeholder image, a sentence instead
    assert "gap_vs_strength" not in svgs and "dropout" not in svgs and "effects" not in svgs
    assert "No dropout figure: no completed trial used dropout (p &gt; 0)." in html
    assert "No dropout figure" in (tmp_path / "r" / "report.md").read_text()
    assert html.count("data:image/png;base64,") == len(svgs)
    if kind == "pruned_failed":
        assert report.tables["pruning_summary"].iloc[0]["epochs_saved"] == 2
        assert svgs == {"history", "intermediate"}
    else:
        assert svgs == set()


def test_report_directory(controlled_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    report = build_report(controlled_db, out=out)
    for stem in (
        "effects",
        "confirm_runs",
        "family_summary",
        "top_trials",
        "gap_by_param",
        "pruning_summary",
        "state_summary",
        "param_importances",
        "trials",
    ):
        assert (out / "tables" / f"{stem}.csv").is_file()
        assert (out / "tables" / f"{stem}.parquet").is_file()
    assert {p.stem for p in (out / "figures").glob("*.png")} == set(report.figures)
    md = (out / "report.md").read_text()
    assert "| l2 | 2 | 3 | 0.83 |" in md and "figures/gap_vs_strength.png" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(report.figures) == 7
    assert "figures/" not in html and "effects" not in report.figures
    assert "l2            top run 3: val_acc 0.8300" in report.summary


def test_cli(controlled_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--storage", str(controlled_db), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "report written to" in out and "top run 3" in out
    assert out.startswith("No confirmation yet: this ranking comes from single runs")
    assert main(["--storage", str(controlled_db), "--study", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no study named 'nope'") and err.count("\n") == 1
    assert main(["--storage", str(tmp_path / "missing.db")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_module_help_and_exit_code(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "analysis", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and "--storage" in run.stdout
    run = subprocess.run(
        [sys.executable, "-m", "analysis", "--storage", str(tmp_path / "x.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr


def test_read_while_a_sweep_writes(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    url = write_study(path, controlled_trials()[:1], name="live")
    with sqlite3.connect(path) as conn:  # the sweeper sets WAL mode
        conn.execute("PRAGMA journal_mode=WAL")
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            study = optuna.load_study(
                study_name="live",
                storage=optuna.storages.RDBStorage(
                    url, engine_kwargs={"connect_args": {"timeout": 30}}
                ),
            )
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


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (
            {
                "name": "median",
                "n_startup_trials": 5,
                "n_warmup_steps": 4,
                "interval_steps": 1,
                "n_min_trials": 1,
                "percentile": 25.0,
                "reduction_factor": 3,
                "patience": None,
            },
            "median (n_startup_trials=5, n_warmup_steps=4, interval_steps=1, n_min_trials=1)",
        ),
        (
            {
                "name": "hyperband",
                "min_resource": 1,
                "max_resource": "auto",
                "reduction_factor": 3,
                "bootstrap_count": 0,
                "n_warmup_steps": 4,
            },
            "hyperband (min_resource=1, max_resource=auto, reduction_factor=3, bootstrap_count=0)",
        ),
        (
            {
                "name": "threshold",
                "lower": 0.5,
                "upper": None,
                "n_warmup_steps": 2,
                "interval_steps": 1,
                "patience": 3,
                "min_delta": 0.0,
            },
            "threshold (lower=0.5, n_warmup_steps=2, interval_steps=1, patience=3, min_delta=0.0)",
        ),
        ({"name": "none", "n_warmup_steps": 4}, "none"),
        ({"name": "custom", "alpha": 2, "beta": None}, "custom (alpha=2)"),
        (None, "not recorded"),
    ],
)
def test_pruner_text(spec: object, text: str) -> None:
    assert pruner_text(spec) == text


def test_report_opens_with_the_study_facts(tmp_path: Path) -> None:
    url = write_study(tmp_path / "f.db", controlled_trials(), name="facts")
    study = optuna.load_study(study_name="facts", storage=url)
    study.set_user_attr("regsweep:command", "python -m sweep -m search=families")
    study.set_user_attr(
        "regsweep:search_space",
        {
            "params": {"regularizer": "choice(none, l1)"},
            "conditional": {
                "regularizer": {"l1": {"regularizer.l1": "tag(log, interval(1e-6, 1e-2))"}}
            },
            "cli_overrides": ["trainer.epochs=8"],
        },
    )
    study.set_user_attr(
        "regsweep:pruner",
        {
            "name": "median",
            "n_startup_trials": 5,
            "n_warmup_steps": 4,
            "interval_steps": 1,
            "n_min_trials": 1,
            "reduction_factor": 3,
        },
    )
    report = build_report(url, "facts", tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text()
    head = md[: md.index("## Search: each family's single runs")]
    for line in (
        "- **study**: facts",
        "- **direction**: maximize",
        "- **metric**: val_acc",
        "  - `regularizer: choice(none, l1)`",
        "  - `regularizer.l1: tag(log, interval(1e-6, 1e-2)) (when regularizer=l1)`",
        "  - `fixed on the command line: trainer.epochs=8`",
        "- **command**: `python -m sweep -m search=families`",
        "- **trials**: 11: 8 complete, 2 fail, 1 pruned",
        "- **confirmation**: none yet (single runs only)",
        "- **pruner**: `median (n_startup_trials=5, n_warmup_steps=4, interval_steps=1, "
        "n_min_trials=1)`",
    ):
        assert line in head.splitlines(), line
    assert head.index("## Answer") < head.index("## Study") < head.index("- **study**")
    assert dict(report.facts)["pruner"].startswith("median (")
    html = (tmp_path / "r" / "report.html").read_text()
    assert "<th>command</th><td><code>python -m sweep -m search=families</code>" in html
    assert html.index("<h2>Answer</h2>") < html.index("<h2>Study</h2>")
    assert html.index("<h2>Study</h2>") < html.index("<h2>Search: each family&#x27;s single")


def test_report_facts_of_a_plain_study(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    optuna.create_study(storage=url, study_name="p").add_trial(optuna.trial.create_trial(value=1.0))
    facts = dict(build_report(url, out=tmp_path / "r").facts)
    assert facts["search space"] == "not recorded" and facts["pruner"] == "not recorded"
    assert facts["direction"] == "minimize" and facts["trials"] == "1: 1 complete"


def test_the_answer_names_families_that_no_search_trial_completed(tmp_path: Path) -> None:
    """Pruning stopped every l1 and dropout trial: no finalist, no verdict. The opening says so in
    words (before the confirm command), and the search summary says how their trials ended."""
    rows = [
        trial("l2", [0.9, 0.95], [0.8, 0.85], lam=1e-3),
        trial("none", [0.9, 0.95], [0.8, 0.84]),
        trial("l1", [0.5, 0.55], [0.4, 0.45], lam=0.1, state=TrialState.PRUNED),
        trial("dropout", [0.5, 0.55], [0.4, 0.45], lam=0.3, state=TrialState.PRUNED),
        trial("dropout", [0.5, 0.55], [0.4, 0.45], lam=0.5, state=TrialState.PRUNED),
    ]
    url = write_study(tmp_path / "s.db", numbered(rows), name="unjudged")
    report = build_report(url, out=tmp_path / "r")
    opening = report.answer.text
    assert "dropout and l1 are not judged: no search trial of theirs completed" in opening
    assert opening.index("not judged") < opening.index("Confirm it")
    assert "  dropout       no completed trial (2 pruned)" in report.summary
    assert "  l2            top run 0" in report.summary
    assert (
        "not judged"
        not in build_report(
            write_study(tmp_path / "t.db", numbered(rows[:2]), name="all"), out=tmp_path / "t"
        ).answer.text
    )
