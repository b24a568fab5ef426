"""Sweeper settings, names, fingerprints, budget accounting and samplers, in process (fast)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hydra_plugins.regsweep_sweeper._budget import Tally, budget_count
from hydra_plugins.regsweep_sweeper._checks import SweepConfigError, check_names, check_settings
from hydra_plugins.regsweep_sweeper._config import PrunerConfig, SweeperConfig
from hydra_plugins.regsweep_sweeper._runner import typed_settings
from hydra_plugins.regsweep_sweeper._space import parse_search_space
from hydra_plugins.regsweep_sweeper._study import fingerprint_differences, pruner_spec
from sweep.study import FamilyStartupPruner, PeerPercentilePruner, make_pruner


def settings(**overrides: Any) -> SweeperConfig:
    base: dict[str, Any] = {
        "metric": "val_acc",
        "direction": "auto",
        "n_trials": 10,
        "n_jobs": 1,
        "max_failure_rate": 0.5,
        "heartbeat_interval": 10,
        "sampler": {"name": "tpe"},
        "pruner": {"name": "median"},
    }
    base.update(overrides)
    return typed_settings(base)


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
        (
            {"pruner": {"family_startup_trials": -1}},
            "hydra.sweeper.pruner.family_startup_trials=-1: allowed an integer >= 0",
        ),
        (
            {"pruner": {"name": "median", "percentile": 10.0}},
            "hydra.sweeper.pruner.percentile=10.0: not read by pruner.name=median; read by "
            "pruner.name=percentile",
        ),
        (
            {"pruner": {"name": "hyperband", "lower": 0.2}},
            "hydra.sweeper.pruner.lower=0.2: not read by pruner.name=hyperband; read by "
            "pruner.name=threshold",
        ),
        (
            {"pruner": {"name": "none", "audit": 0.5}},
            "hydra.sweeper.pruner.audit=0.5: not read by pruner.name=none; read by pruner.name="
            "median|percentile|successive_halving|hyperband|threshold|wilcoxon",
        ),
        (
            {"pruner": {"name": "wilcoxon", "min_resource": 2}},
            "hydra.sweeper.pruner.min_resource=2: not read by pruner.name=wilcoxon; read by "
            "pruner.name=successive_halving|hyperband",
        ),
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
        ({"name": "median", "peers": True}, PeerPercentilePruner),
        ({"name": "median", "family_startup_trials": 1}, FamilyStartupPruner),
        ({"name": "none", "family_startup_trials": 1}, optuna.pruners.NopPruner),
    ],
)
def test_pruner_specs(spec: dict[str, Any], kind: type) -> None:
    assert isinstance(make_pruner(spec), kind)


def test_each_pruners_defaults_are_declared_once_in_its_settings_class() -> None:
    """The schema sets no pruner field (null: the chosen pruner's default); what the study
    stores is that pruner's fields at its class's defaults: wilcoxon waits 2 epochs (the schema
    said 0 while make_pruner used 2), the median pruner 4."""
    assert [f.name for f in dataclasses.fields(PrunerConfig) if f.default is not None] == ["name"]
    wilcoxon = pruner_spec(settings(pruner={"name": "wilcoxon"}), 1)
    assert wilcoxon == {
        "name": "wilcoxon",
        "p_threshold": 0.1,
        "n_warmup_steps": 2,
        "family_startup_trials": 3,
        "audit": 0.2,
        "patience": None,
        "min_delta": 0.0,
    }
    built = make_pruner(wilcoxon)
    assert isinstance(built, FamilyStartupPruner)
    assert built.base._n_startup_steps == 2  # type: ignore[attr-defined]
    median = pruner_spec(settings(pruner={"name": "median", "n_warmup_steps": 1}), 1)
    assert median["n_warmup_steps"] == 1 and median["n_startup_trials"] == 3
    assert "percentile" not in median and "p_threshold" not in median


def test_budget_ignores_interrupted_and_over_budget_trials(tmp_path: Path) -> None:
    study = optuna.create_study()
    for reason in ["completed", "interrupted", "over_budget", "pruned"]:
        t = study.ask()
        t.set_user_attr("stop_reason", reason)
        study.tell(
            t,
            1.0 if reason == "completed" else None,
            state=TrialState.COMPLETE if reason == "completed" else TrialState.FAIL,
        )
    study.ask()  # running: counts
    assert budget_count(study) == 3
    assert budget_count(study, before=2) == 1


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


def test_a_seeded_sampler_is_built_only_for_trials_that_sample() -> None:
    from hydra_plugins.regsweep_sweeper._samplers import SeedPerTrial

    seeds: list[int] = []

    def factory(seed: int) -> optuna.samplers.BaseSampler:
        seeds.append(seed)
        return optuna.samplers.RandomSampler(seed=seed)

    study = optuna.create_study(sampler=SeedPerTrial(factory, 5))
    for _ in range(3):  # nothing sampled: no sampler built
        study.tell(study.ask(), 0.0)
    assert seeds == [5]  # the one built up front
    trial = study.ask()  # trial 3
    x = trial.suggest_float("x", 0.0, 1.0)
    assert seeds == [5, 5 + 7919 * 3]
    alone = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5 + 7919 * 3))
    assert x == alone.ask().suggest_float("x", 0.0, 1.0)  # the draw its number seeds


def test_tpe_draws_only_the_groups_of_the_parameters_a_trial_suggests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With conditional parameters, a trial's TPE fits the groups it suggests from (the root
    choice with the learning rate, its own family's parameters) and takes their values from
    those group draws; no other family's group is fitted for it."""
    from hydra_plugins.regsweep_sweeper._samplers import GroupOnDemandTPE, make_sampler
    from hydra_plugins.regsweep_sweeper._space import parse_search_space

    space = parse_search_space(
        {"reg": "choice(a, b, c)", "lr": "interval(0.1, 1)"},
        {
            "reg": {
                "a": {"pa": "interval(0, 1)"},
                "b": {"pb": "interval(0, 1)", "qb": "interval(0, 1)"},
                "c": {"pc": "interval(0, 1)"},
            }
        },
    )
    fits: dict[int, list[tuple[frozenset[str], dict[str, Any]]]] = {}
    draw = GroupOnDemandTPE._sample_relative

    def recorded(self: Any, study: Any, trial: Any, search_space: Any) -> dict[str, Any]:
        out = draw(self, study, trial, search_space)
        fits.setdefault(trial.number, []).append((frozenset(search_space), dict(out)))
        return out

    monkeypatch.setattr(GroupOnDemandTPE, "_sample_relative", recorded)
    sampler = make_sampler({"name": "tpe", "seed": 0, "n_startup_trials": 4}, space)
    study = optuna.create_study(sampler=sampler)
    for _ in range(16):
        trial = study.ask()
        values = space.suggest(trial)
        study.tell(trial, sum(v for v in values.values() if isinstance(v, float)))
    later = [t for t in study.trials if t.number >= 4]
    assert {t.params["reg"] for t in later} == {"a", "b", "c"}
    for t in later:
        spaces = [names for names, _ in fits[t.number]]
        assert frozenset({"reg", "lr"}) in spaces
        assert all(names <= set(t.params) for names in spaces), (t.params, spaces)
        own = frozenset(t.params) - {"reg", "lr"}
        seen = any(own <= set(u.params) for u in study.trials[: t.number])
        assert (own in spaces) == seen  # a family no finished trial had yet is drawn alone
        drawn = {k: v for _, out in fits[t.number] for k, v in out.items()}
        expected = dict(t.params) if seen else {"reg": t.params["reg"], "lr": t.params["lr"]}
        assert drawn == expected  # the values came from their groups' draws


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
        return {
            "job": out,
            "task": hydra["overrides"]["task"],
            "dirname": hydra["job"]["override_dirname"],
            "choices": hydra["runtime"]["choices"],
        }

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        inner = GlobalHydra.instance().config_loader()
        master = inner.load_configuration("config", overrides=[], run_mode=RunMode.MULTIRUN)
        with open_dict(master):
            master.hydra.overrides.hydra = []
        cached = CachingConfigLoader(inner, {"regularizer.l1", "optimizer.lr", "trial.number"})
        for number, (l1, lr) in enumerate([(1e-3, 0.1), (2e-5, 0.05), (0.5, 1e-4)]):
            overrides = [
                "regularizer=l1",
                f"regularizer.l1={l1}",
                "trainer.epochs=3",
                f"optimizer.lr={lr}",
                f"trial.number={number}",
            ]
            fast = cached.load_sweep_config(master, overrides)
            fresh = inner.load_sweep_config(master, overrides)
            assert job_part(fast) == job_part(fresh)
            assert fast.regularizer.l1 == l1 and fast.trial.number == number
        assert len(cached._cache) == 1  # composed once for three trials
        # the plain job of a trial: the fresh composition without hydra and trial, resolved
        for l1 in (1e-3, 0.25):
            overrides = ["regularizer=l1", "trainer.epochs=3", "optimizer.lr=0.1"]
            plain, choices = cached.compose_plain(
                master, overrides, ("regularizer", "optimizer"), {"regularizer.l1": l1}
            )
            fresh = inner.load_sweep_config(master, [*overrides, f"regularizer.l1={l1}"])
            with open_dict(fresh):
                del fresh["hydra"], fresh["trial"]
            want = OmegaConf.to_container(fresh, resolve=True)
            assert plain == want and plain["regularizer"]["l1"] == l1
            assert choices == {"regularizer": "l1", "optimizer": "sgd"}
        assert len(cached._cache) == 1  # the plain jobs came from the same composition
        plain_ones = ["regularizer=l1", "trainer.epochs=3"]  # the composition is unchanged
        again = cached.load_sweep_config(master, plain_ones)
        assert job_part(again) == job_part(inner.load_sweep_config(master, plain_ones))
        with pytest.raises(Exception, match=r"trial\.number"):
            cached.load_sweep_config(master, ["regularizer=l1", "trial.number=abc"])


def test_stored_command_masks_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    from hydra_plugins.regsweep_sweeper._study import command_line as _command_line

    monkeypatch.setattr(
        "sys.argv",
        ["/x/sweep/__main__.py", "-m", "hydra.sweeper.storage=postgresql://bob:s3cret@db:5432/s"],
    )
    assert (
        _command_line()
        == "python -m sweep -m 'hydra.sweeper.storage=postgresql://bob:***@db:5432/s'"
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"population": 0}, "hydra.sweeper.population=0: allowed an integer >= 1"),
        ({"confirm": {"seeds": -1}}, "hydra.sweeper.confirm.seeds=-1: allowed an integer >= 0"),
        ({"confirm": {"top_k": 0}}, "hydra.sweeper.confirm.top_k=0"),
        ({"confirm": {"only": True, "seeds": 0}}, "confirm.only=true: needs"),
        ({"grace_period": 0}, "hydra.sweeper.grace_period=0"),
    ],
)
def test_bad_new_settings(override: dict[str, Any], expected: str) -> None:
    with pytest.raises(SweepConfigError) as info:
        check_settings(settings(**override))
    assert expected in str(info.value)


@pytest.mark.parametrize("name", ["a,b", "x'; DROP TABLE trials;--", "é ü", "a=b", "[x]", 'x"y'])
def test_names_that_work_end_to_end_pass(name: str) -> None:
    check_names(name, f"outputs/{name}.db")


@pytest.mark.parametrize(
    ("name", "storage", "expected"),
    [
        ("a/b", "s.db", "without '/'"),
        ("..", "s.db", "not '.' or '..'"),
        (" padded", "s.db", "leading or trailing spaces"),
        ("", "s.db", "non-empty"),
        ("a${b}", "s.db", "interpolation"),
        ("ok", "runs/${oops}.db", "interpolation"),
        ("x" * 201, "s.db", "up to 200"),
    ],
)
def test_names_that_cannot_work_are_refused(name: str, storage: str, expected: str) -> None:
    with pytest.raises(SweepConfigError, match=re.escape(expected)):
        check_names(name, storage)


def test_fingerprint_differences_name_what_changed() -> None:
    log = parse_search_space({"regularizer.l1": "tag(log, interval(1e-6, 1e-2))"})
    lin = parse_search_space({"regularizer.l1": "interval(1e-6, 1e-2)"})
    stored = {
        "space": log.signature(),
        "objectives": ["val_acc"],
        "directions": ["maximize"],
        "config": {"trainer.epochs": 20, "optimizer.lr": 0.05},
    }
    same = fingerprint_differences(stored, dict(stored))
    assert same == []
    now = {
        "space": lin.signature(),
        "objectives": ["sparsity"],
        "directions": ["maximize"],
        "config": {"trainer.epochs": 30, "optimizer.lr": 0.05},
    }
    lines = fingerprint_differences(stored, now)
    assert any(
        line.startswith("objectives: stored ['val_acc'], now ['sparsity']") for line in lines
    )
    assert any("searched regularizer.l1" in line and "'log': True" in line for line in lines)
    assert any(line == "config trainer.epochs: stored 20, now 30" for line in lines)
    assert len(lines) == 3
