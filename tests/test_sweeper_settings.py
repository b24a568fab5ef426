"""Sweeper settings, budget accounting and the Optuna reconnection, in process (fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hydra_plugins.regsweep_sweeper._budget import Tally, budget_count
from hydra_plugins.regsweep_sweeper._checks import SweepConfigError, check_settings
from sweep.optuna_link import (
    fail_stale_trials,
    make_pruner,
    open_storage,
    open_trial,
    resolve_storage_url,
)
from sweep.record import STUDY_PRUNER


def settings(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "metric": "val_acc", "direction": "auto", "n_trials": 10, "n_jobs": 1,
        "max_failure_rate": 0.5, "heartbeat_interval": 10,
        "sampler": {"name": "tpe"}, "pruner": {"name": "median"},
    }  # fmt: skip
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("val_acc", "maximize"),
        ("val_loss", "minimize"),
        ("gap_acc", "minimize"),
        ("gap_loss", "minimize"),
    ],
)
def test_direction_follows_the_metric(metric: str, direction: str) -> None:
    assert check_settings(settings(metric=metric)) == [direction]
    assert check_settings(settings(metric=metric, direction="maximize")) == ["maximize"]


def test_objectives_make_a_multi_objective_study() -> None:
    two = ["val_acc", "sparsity"]
    assert check_settings(settings(objectives=two)) == ["maximize", "maximize"]
    assert check_settings(settings(objectives=["val_acc", "gap_acc"])) == ["maximize", "minimize"]
    assert check_settings(settings(objectives=two, direction=["auto", "minimize"])) == [
        "maximize",
        "minimize",
    ]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"metric": "acc"}, "hydra.sweeper.metric='acc': allowed val_acc"),
        ({"direction": "up"}, "hydra.sweeper.direction='up'"),
        ({"n_trials": 0}, "hydra.sweeper.n_trials=0"),
        ({"n_jobs": 0}, "hydra.sweeper.n_jobs=0"),
        ({"max_failure_rate": 1.5}, "hydra.sweeper.max_failure_rate=1.5: allowed [0, 1]"),
        ({"heartbeat_interval": 0}, "hydra.sweeper.heartbeat_interval=0"),
        ({"sampler": {"name": "bayes"}}, "hydra.sweeper.sampler.name='bayes': allowed tpe, random"),
        ({"objectives": ["val_acc"]}, "allowed two or more objectives"),
        ({"objectives": ["val_acc", "l1"]}, "hydra.sweeper.objectives='l1': allowed val_acc"),
        (
            {"objectives": ["val_acc", "sparsity"], "direction": ["maximize"]},
            "allowed one of auto, maximize, minimize per objective (2",
        ),
        (
            {"objectives": ["val_acc", "sparsity"], "sampler": {"name": "cmaes"}},
            "allowed for one objective only",
        ),
        ({"pruner": {"name": "asha"}}, "hydra.sweeper.pruner.name='asha': allowed none, median"),
    ],
)
def test_bad_settings_name_key_value_and_allowed(override: dict[str, Any], expected: str) -> None:
    with pytest.raises(SweepConfigError) as info:
        check_settings(settings(**override))
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ({"name": "none"}, optuna.pruners.NopPruner),
        ({"name": "median"}, optuna.pruners.PercentilePruner),
        ({"name": "percentile", "percentile": 10}, optuna.pruners.PercentilePruner),
        ({"name": "successive_halving"}, optuna.pruners.SuccessiveHalvingPruner),
        ({"name": "hyperband", "min_resource": 1}, optuna.pruners.HyperbandPruner),
        ({"name": "threshold", "lower": 0.2}, optuna.pruners.ThresholdPruner),
        ({"name": "wilcoxon"}, optuna.pruners.WilcoxonPruner),
        ({"name": "median", "patience": 3}, optuna.pruners.PatientPruner),
    ],
)
def test_pruner_specs(spec: dict[str, Any], kind: type) -> None:
    assert isinstance(make_pruner(spec), kind)


def test_storage_urls_are_made_absolute(tmp_path: Path) -> None:
    assert resolve_storage_url("sqlite:///a/b.db", tmp_path) == f"sqlite:///{tmp_path}/a/b.db"
    assert resolve_storage_url("runs/s.db", tmp_path) == f"sqlite:///{tmp_path}/runs/s.db"
    assert resolve_storage_url("runs/s.log", tmp_path) == f"journal:///{tmp_path}/runs/s.log"
    pg = "postgresql+psycopg2://u@127.0.0.1:5432/db"
    assert resolve_storage_url(pg, tmp_path) == pg


def test_sqlite_storage_is_in_wal_mode(tmp_path: Path) -> None:
    import sqlite3

    url = resolve_storage_url("s.db", tmp_path)
    open_storage(url)
    mode = sqlite3.connect(tmp_path / "s.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    with pytest.raises(FileNotFoundError, match=r"missing\.db"):
        open_storage(resolve_storage_url("missing.db", tmp_path), create=False)
    assert not (tmp_path / "missing.db").exists()


def test_job_reconnects_to_its_trial_and_uses_the_stored_pruner(tmp_path: Path) -> None:
    """The DESIGN's reconnection: the job sees the sweeper's trial through the storage alone."""
    url = resolve_storage_url("s.db", tmp_path)
    study = optuna.create_study(study_name="s", storage=open_storage(url), direction="maximize")
    study.set_user_attr(STUDY_PRUNER, {"name": "threshold", "lower": 0.5})
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    handle = open_trial(url, "s", trial.number)
    assert isinstance(handle.study.pruner, optuna.pruners.ThresholdPruner)
    handle.report(0.9, 1)
    assert not handle.should_prune()
    handle.report(0.1, 2)
    assert handle.should_prune()
    handle.record({"curves": {"val_acc": [0.9, float("nan")]}, "gap_acc_best": float("nan")})
    handle.finish(TrialState.PRUNED)
    frozen = optuna.load_study(study_name="s", storage=url).trials[0]
    assert frozen.state == TrialState.PRUNED
    assert frozen.intermediate_values == {1: 0.9, 2: 0.1}
    assert frozen.user_attrs["gap_acc_best"] is None
    assert frozen.params == {"x": trial.params["x"]}
    with pytest.raises(RuntimeError, match="not RUNNING"):
        open_trial(url, "s", trial.number)


def test_nan_objective_is_stored_as_fail(tmp_path: Path) -> None:
    url = resolve_storage_url("s.db", tmp_path)
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    trial = study.ask()
    open_trial(url, "s", trial.number).finish(TrialState.COMPLETE, float("nan"))
    assert optuna.load_study(study_name="s", storage=url).trials[0].state == TrialState.FAIL


def test_budget_ignores_interrupted_and_over_budget_trials(tmp_path: Path) -> None:
    study = optuna.create_study()
    for reason in ["completed", "interrupted", "over_budget", "pruned"]:
        t = study.ask()
        t.set_user_attr("stop_reason", reason)
        study.tell(t, 1.0 if reason == "completed" else None,
                   state=TrialState.COMPLETE if reason == "completed" else TrialState.FAIL)  # fmt: skip
    study.ask()  # running: counts
    assert budget_count(study) == 3
    assert budget_count(study, before=2) == 1


def test_stale_trials_are_failed_and_requeued(tmp_path: Path) -> None:
    import time

    url = resolve_storage_url("s.db", tmp_path)
    storage = open_storage(url, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    trial.suggest_float("lr", 0.1, 1.0)
    storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]
    time.sleep(2.2)
    assert fail_stale_trials(study, requeue=True) == [trial.number]
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL
    assert trials[0].user_attrs["stop_reason"] == "interrupted"
    assert trials[1].state == TrialState.WAITING
    assert trials[1].system_attrs["fixed_params"] == trials[0].params
    assert trials[1].user_attrs["requeued_from"] == trial.number
    assert fail_stale_trials(study) == []


def test_tally_failure_rate_waits_for_five_trials() -> None:
    tally = Tally(n_trials=20, max_failure_rate=0.5)
    study = optuna.create_study()
    for i in range(4):
        t = study.ask()
        study.tell(t, state=TrialState.FAIL)
        tally.add(study.trials[i])
        assert not tally.failure_rate_exceeded
    assert tally.all_failed
    t = study.ask()
    study.tell(t, 1.0)
    tally.add(study.trials[4])
    assert tally.failure_rate_exceeded  # 4 of 5 > 0.5
    assert not tally.all_failed


def _draws(seed: int, n: int) -> list[float]:
    from hydra_plugins.regsweep_sweeper._samplers import make_sampler
    from hydra_plugins.regsweep_sweeper._space import parse_search_space

    space = parse_search_space({"x": "interval(0, 1)"})
    study = optuna.create_study(
        sampler=make_sampler({"name": "tpe", "seed": seed, "n_startup_trials": 3}, space)
    )
    out = []
    for _ in range(n):
        trial = study.ask()
        x = space.suggest(trial)["x"]
        study.tell(trial, x)
        out.append(x)
    return out


def test_seeded_sampler_is_reproducible_and_seeds_each_trial_by_number() -> None:
    first, again, other = _draws(0, 6), _draws(0, 6), _draws(1, 6)
    assert first == again
    assert len(set(first)) == 6
    assert first != other


def test_seeded_grid_visits_every_point_once() -> None:
    from hydra_plugins.regsweep_sweeper._samplers import make_sampler
    from hydra_plugins.regsweep_sweeper._space import parse_search_space

    space = parse_search_space({"a": "choice(1, 2)", "b": "choice(x, y)"})
    study = optuna.create_study(sampler=make_sampler({"name": "grid", "seed": 0}, space))
    seen = []
    for _ in range(4):
        trial = study.ask()
        seen.append(tuple(space.suggest(trial).values()))
        # Told by another process (as the job does), so the grid's stop() hook is not involved.
        optuna.load_study(study_name=study.study_name, storage=study._storage).tell(
            trial.number, 1.0
        )
    assert sorted(seen) == [(1, "x"), (1, "y"), (2, "x"), (2, "y")]


def test_cached_composition_equals_a_fresh_one() -> None:
    """A job config built from the cache plus the trial's values is what Hydra would compose."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from omegaconf import OmegaConf, open_dict

    from hydra_plugins.regsweep_sweeper._compose_cache import CachingConfigLoader
    from tests.helpers import CONF

    def job_part(cfg: Any) -> dict[str, Any]:
        out = OmegaConf.to_container(cfg, resolve=False)
        assert isinstance(out, dict)
        hydra = out.pop("hydra")
        return {"job": out, "task": hydra["overrides"]["task"], "dirname": hydra["job"]["override_dirname"],
                "choices": hydra["runtime"]["choices"]}  # fmt: skip

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        inner = GlobalHydra.instance().config_loader()
        master = inner.load_configuration("config", overrides=[], run_mode=RunMode.MULTIRUN)
        with open_dict(master):
            master.hydra.overrides.hydra = []
        cached = CachingConfigLoader(inner, {"regularizer.l1", "optimizer.lr", "trial.number"})
        for number, (l1, lr) in enumerate([(1e-3, 0.1), (2e-5, 0.05), (0.5, 1e-4)]):
            overrides = ["regularizer=l1", f"regularizer.l1={l1}", "trainer.epochs=3",
                         f"optimizer.lr={lr}", f"trial.number={number}"]  # fmt: skip
            fast = cached.load_sweep_config(master, overrides)
            fresh = inner.load_sweep_config(master, overrides)
            assert job_part(fast) == job_part(fresh)
            assert fast.regularizer.l1 == l1 and fast.trial.number == number
        assert len(cached._cache) == 1  # composed once for three trials
        with pytest.raises(Exception, match=r"trial\.number"):
            cached.load_sweep_config(master, ["regularizer=l1", "trial.number=abc"])


def test_sqlite_connections_skip_fsync_in_wal_mode(tmp_path: Path) -> None:
    storage = open_storage(resolve_storage_url("s.db", tmp_path))
    assert isinstance(storage, optuna.storages.RDBStorage)
    with storage.engine.connect() as con:
        assert con.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert con.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_stored_command_masks_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    from hydra_plugins.regsweep_sweeper._impl import _command_line

    monkeypatch.setattr(
        "sys.argv",
        ["/x/sweep/__main__.py", "-m", "hydra.sweeper.storage=postgresql://bob:s3cret@db:5432/s"],
    )
    assert (
        _command_line()
        == "python -m sweep -m 'hydra.sweeper.storage=postgresql://bob:***@db:5432/s'"
    )


def test_reports_are_written_in_batches_and_prune_on_every_value(tmp_path: Path) -> None:
    url = resolve_storage_url("s.db", tmp_path)
    study = optuna.create_study(study_name="s", storage=open_storage(url), direction="maximize")
    study.set_user_attr(STUDY_PRUNER, {"name": "threshold", "lower": 0.5})
    trial = study.ask()
    handle = open_trial(url, "s", trial.number)
    handle.flush_every_s = 3600.0

    def stored() -> dict[int, float]:
        return optuna.load_study(study_name="s", storage=url).trials[0].intermediate_values

    handle.report(0.9, 1)
    handle.report(0.8, 2)
    assert stored() == {}  # held back
    assert not handle.should_prune()
    handle.report(0.2, 3)
    assert handle.should_prune()  # the pruner saw the unwritten value
    handle.flush()
    assert stored() == {1: 0.9, 2: 0.8, 3: 0.2}
    handle.flush_every_s = 0.0
    handle.report(0.1, 4)
    assert stored()[4] == 0.1  # written at once when the interval has passed
    handle.flush_every_s = 3600.0
    handle.report(0.05, 5)
    handle.finish(TrialState.PRUNED)
    frozen = optuna.load_study(study_name="s", storage=url).trials[0]
    assert frozen.state == TrialState.PRUNED
    assert frozen.value == 0.05  # a pruned trial's value is its last report: written before tell
