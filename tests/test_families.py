"""Every regularizer judged fairly: equal shares, own samplers, pruning among peers, the audit,
the registry, and a 16-trial sweep end to end."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from analysis import build_report
from analysis._audit import audit_data, audit_sentence
from hydra_plugins.regsweep_sweeper._checks import SweepConfigError, check_settings
from hydra_plugins.regsweep_sweeper._confirm import unregularized
from hydra_plugins.regsweep_sweeper._runner import typed_settings
from hydra_plugins.regsweep_sweeper._samplers import make_sampler
from hydra_plugins.regsweep_sweeper._space import parse_search_space
from sweep.record import TRIAL_FAMILY
from sweep.regularizers import STRENGTHS, Strength, loss_penalty, registered, turn_off
from sweep.study import ask_suggested
from sweep.study._link import audited
from sweep.study._pruners import FamilyStartupPruner, PeerPercentilePruner, make_pruner
from tests.helpers import load_study, run_cli, sweep_args

FAMILIES = ("none", "l1", "l2", "elastic_net", "dropout", "weight_decay", "clip", "early_stop")
CONDITIONAL = {
    "regularizer": {
        "l1": {"regularizer.l1": "tag(log, interval(1e-6, 1e-2))"},
        "l2": {"regularizer.l2": "tag(log, interval(1e-6, 1e-1))"},
        "elastic_net": {"regularizer.elastic": "tag(log, interval(1e-6, 1e-2))"},
        "dropout": {"regularizer.dropout": "interval(0.05, 0.8)"},
        "weight_decay": {"regularizer.weight_decay": "tag(log, interval(1e-6, 1e-1))"},
        "clip": {"regularizer.clip": "tag(log, interval(0.01, 10.0))"},
        "early_stop": {"regularizer.early_stop.patience": "range(2, 11)"},
    }
}


def _space() -> Any:
    params = {
        "regularizer": f"choice({', '.join(FAMILIES)})",
        "optimizer.lr": "tag(log, interval(0.005, 0.2))",
    }
    return parse_search_space(params, CONDITIONAL, [])


def _study(tmp_path: Path, name: str, spec: dict[str, Any] | None = None) -> optuna.Study:
    space = _space()
    sampler = make_sampler(spec or {"name": "tpe", "seed": 0, "n_startup_trials": 2}, space)
    return optuna.create_study(
        study_name=name,
        storage=f"sqlite:///{tmp_path / 'f.db'}",
        sampler=sampler,
        direction="maximize",
    )


@pytest.mark.parametrize("n", [16, 17, 40])
def test_every_family_gets_its_share_of_the_budget(tmp_path: Path, n: int) -> None:
    """Trial k takes family k mod 8: 16 trials give every family (none included) 2, 17 give
    the first family in the choice's order one more, 40 give 5 each; asked in batches of 8, as
    a population asks them."""
    space = _space()
    study = _study(tmp_path, f"share{n}")
    for start in range(0, n, 8):
        for trial, _ in ask_suggested(study, min(8, n - start), space.suggest):
            study.tell(trial, 0.5)
    counts = Counter(t.params["regularizer"] for t in study.trials)
    share, extra = divmod(n, len(FAMILIES))
    assert counts == {f: share + (i < extra) for i, f in enumerate(FAMILIES)}
    assert [t.params["regularizer"] for t in study.trials[:8]] == list(FAMILIES)


def test_a_familys_parameters_are_drawn_from_its_own_trials_only(tmp_path: Path) -> None:
    """l2's learning rates and λs depend on l2's trials alone: two studies whose l1 trials
    scored opposite values draw the same l2 parameters, and TPE (after its start-up) moves them
    towards l2's own good region."""
    space = _space()
    draws = []
    for name, l1_good in (("a", "high"), ("b", "low")):
        study = _study(tmp_path, name)
        for _ in range(6):
            for trial, values in ask_suggested(study, 8, space.suggest):
                lr = values["optimizer.lr"]
                if values["regularizer"] == "l1":
                    score = lr if l1_good == "high" else -lr
                else:
                    score = -abs(math.log10(lr) + 1.5)  # every other family: best at lr ≈ 0.03
                study.tell(trial, score)
        draws.append(
            [
                (t.params["optimizer.lr"], t.params["regularizer.l2"])
                for t in study.trials
                if t.params["regularizer"] == "l2"
            ]
        )
        l1 = [t.params["optimizer.lr"] for t in study.trials if t.params["regularizer"] == "l1"]
        assert len(l1) == 6
    assert draws[0] == draws[1]
    assert len(draws[0]) == 6


def _trial(number: int, family: str, curve: list[float], state: TrialState) -> Any:
    t = create_trial(
        state=state,
        value=curve[-1] if state == TrialState.COMPLETE else None,
        intermediate_values=dict(enumerate(curve, start=1)),
        user_attrs={TRIAL_FAMILY: family},
    )
    t.number = number
    return t


def _pruning_study(tmp_path: Path) -> optuna.Study:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'p.db'}", direction="maximize")
    fast = [0.90, 0.93, 0.94, 0.94, 0.93, 0.92]  # unregularized: learns fast, then overfits
    slow = [0.40, 0.60, 0.75, 0.85, 0.92, 0.96]  # regularized: slow start, wins late
    for i in range(3):
        study.add_trial(_trial(i, "none", [v - 0.01 * i for v in fast], TrialState.COMPLETE))
    for i in range(3):
        study.add_trial(_trial(3 + i, "l2", [v - 0.01 * i for v in slow], TrialState.COMPLETE))
    return study


def test_a_slow_starting_family_is_judged_against_its_peers(tmp_path: Path) -> None:
    """At epoch 3 an L2 run at 0.74 is far below every unregularized run (0.92–0.94) but on a
    par with its own family (0.73–0.75): Optuna's rule across families prunes it, pruning among
    peers keeps it."""
    study = _pruning_study(tmp_path)
    running = _trial(6, "l2", [0.40, 0.61, 0.745], TrialState.RUNNING)
    across = PeerPercentilePruner(50.0, n_startup_trials=3, by_family=False)
    peers = PeerPercentilePruner(50.0, n_startup_trials=3, by_family=True)
    assert across.prune(study, running) is True
    assert peers.prune(study, running) is False
    worse = _trial(7, "l2", [0.30, 0.40, 0.50], TrialState.RUNNING)
    assert peers.prune(study, worse) is True  # a bad run of its own family is still pruned
    # the stored spec turns it on (and a spec from before by_family did not)
    pruner = make_pruner(
        {
            "name": "median",
            "peers": True,
            "by_family": True,
            "n_startup_trials": 3,
            "n_warmup_steps": 0,
        }
    )
    assert pruner.prune(study, running) is False
    assert (
        make_pruner(
            {"name": "median", "peers": True, "n_startup_trials": 3, "n_warmup_steps": 0}
        ).prune(study, running)
        is True
    )


def test_each_familys_first_trials_run_to_the_end(tmp_path: Path) -> None:
    """With family_startup_trials=3 the first three trials of a family are never pruned, however
    bad; the fourth is; a trial pruned earlier passes its place on."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize")
    base = optuna.pruners.ThresholdPruner(lower=0.5)  # prunes anything below 0.5
    pruner = FamilyStartupPruner(base, n_per_family=3)
    study.add_trial(_trial(0, "dropout", [0.1, 0.2], TrialState.COMPLETE))
    study.add_trial(_trial(1, "dropout", [0.1], TrialState.PRUNED))  # passes its place on
    study.add_trial(_trial(2, "dropout", [0.1, 0.2], TrialState.COMPLETE))
    third = _trial(3, "dropout", [0.1], TrialState.RUNNING)
    assert pruner.prune(study, third) is False
    study.add_trial(_trial(3, "dropout", [0.1, 0.2], TrialState.COMPLETE))
    fourth = _trial(4, "dropout", [0.1], TrialState.RUNNING)
    assert pruner.prune(study, fourth) is True
    other = _trial(5, "l1", [0.1], TrialState.RUNNING)  # l1 has no trial yet: spared
    assert pruner.prune(study, other) is False


def test_the_audit_takes_an_evenly_spaced_share_of_the_pruning_decisions() -> None:
    for share in (0.0, 0.1, 0.2, 0.5, 1.0):
        assert sum(audited(k, share) for k in range(1000)) == round(1000 * share)
    assert [k for k in range(20) if audited(k, 0.2)] == [4, 9, 14, 19]
    assert [k for k in range(4) if audited(k, 1.0)] == [0, 1, 2, 3]


def test_the_audit_counts_pruned_trials_that_would_have_won() -> None:
    """Three audited trials: one beats its family's best unaudited completed run (0.90), two do
    not; the rate and its Wilson interval (by hand: z = 1.96) follow."""
    rows = [
        ("l2", "COMPLETE", 0.90, math.nan),
        ("l2", "COMPLETE", 0.85, math.nan),
        ("l2", "COMPLETE", 0.93, 4.0),
        ("l2", "COMPLETE", 0.80, 5.0),
        ("none", "COMPLETE", 0.95, math.nan),
        ("none", "COMPLETE", 0.94, 4.0),
        ("none", "PRUNED", 0.50, math.nan),
    ]
    trials = pd.DataFrame(rows, columns=["family", "state", "value", "audit_pruned_at"])
    trials["counted"] = True
    table = audit_data(trials).set_index("family")
    assert table.loc["l2", ["n_audited", "n_wrong"]].tolist() == [2, 1]
    assert table.loc["none", ["n_audited", "n_wrong", "n_pruned"]].tolist() == [1, 0, 1]
    total = table.loc["all"]
    assert total["n_audited"] == 3 and total["n_wrong"] == 1
    z, n, p = 1.959964, 3, 1 / 3
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert total["wrong_ci_low"] == pytest.approx(centre - half, abs=1e-4)
    assert total["wrong_ci_high"] == pytest.approx(centre + half, abs=1e-4)
    text = audit_sentence(table.reset_index())
    assert "of 3 trials the pruner would have stopped" in text and "1 beat" in text
    assert "(l2)" in text and "33%" in text


def test_a_penalty_added_through_the_registry_is_off_in_the_baseline() -> None:
    """A test-only penalty declared once in the registry: the unregularized baseline turns it
    off (a forgotten entry in a second list used to leave it on), and so does turn_off."""
    config = {
        "regularizer": {"name": "l3", "l3": 0.5, "l2": 1e-3},
        "model": {"dropout": 0.2},
        "optimizer": {"lr": 0.05, "weight_decay": 1e-4},
    }
    extra = Strength(
        "l3", "regularizer.l3", "l3", "L3 λ", True, 1e-6, 1.0, 0.0, fold=lambda r: (0.0, r.l3)
    )  # a second ridge term, for the test
    settings = SimpleNamespace(l1=0.0, l2=1e-3, elastic=0.0, l1_ratio=0.5, l3=0.25)
    assert loss_penalty(settings) == (0.0, 1e-3)
    with registered(extra):
        base = unregularized(config)
        assert base["regularizer"]["l3"] == 0.0
        # the training step's penalty folds it in with no code of its own
        assert loss_penalty(settings) == pytest.approx((0.0, 0.251))
        assert STRENGTHS["l3"].path_values(1e-6, 1.0, 7)[0] == pytest.approx(1e-6)
    assert "l3" not in STRENGTHS
    assert base["regularizer"]["l2"] == 0.0 and base["regularizer"]["name"] == "none"
    assert base["model"]["dropout"] == 0.0 and base["optimizer"]["weight_decay"] == 0.0
    assert base["optimizer"]["lr"] == 0.05  # the other settings stay
    assert base["regularizer"]["early_stop"]["patience"] is None
    assert config["regularizer"]["l3"] == 0.5  # the finalist's config is untouched
    plain: dict[str, Any] = {}
    turn_off(plain)
    assert plain["regularizer"]["clip"] is None and plain["regularizer"]["dropout"] is None


def test_a_path_spans_the_range_on_the_strengths_scale() -> None:
    assert STRENGTHS["l2"].path_values(1e-6, 1e-1, 6) == [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    assert STRENGTHS["dropout"].path_values(0.05, 0.8, 6) == [0.05, 0.2, 0.35, 0.5, 0.65, 0.8]
    # smaller regularizes more: weakest first
    assert STRENGTHS["clip"].path_values(0.01, 10.0, 4) == [10.0, 1.0, 0.1, 0.01]
    assert STRENGTHS["patience"].path_values(2, 10, 6) == [10.0, 8.0, 7.0, 5.0, 4.0, 2.0]


def test_a_16_trial_sweep_explores_every_family_and_draws_their_paths(tmp_path: Path) -> None:
    """The default families search at 16 trials: none and every other family get 2 trials each,
    the confirmation has the baseline arm, and each family's path runs on the confirmation seeds
    (2 points here besides the finalist and strength 0). A pruner told to prune almost everything
    is audited on every trial, so none of them is pruned and each holds its would-be epoch."""
    args = sweep_args(
        "sixteen",
        16,
        "search=families",
        "hydra.sweeper.pruner.name=percentile",
        "hydra.sweeper.pruner.percentile=1",
        "hydra.sweeper.pruner.n_startup_trials=1",
        "hydra.sweeper.pruner.n_warmup_steps=1",
        "hydra.sweeper.pruner.family_startup_trials=1",
        "hydra.sweeper.pruner.audit=1.0",
        epochs=3,
        confirm=2,
        dose=2,
    )
    args = [a for a in args if a != "search=none"]
    proc = run_cli(args, cwd=tmp_path, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "hydra.sweeper.n_trials=16 gives each of the 8 families 2 trials, fewer than the 3 "
        "completed runs"
    ) in proc.stdout
    study = load_study(tmp_path, "sixteen")
    assert Counter(t.params["regularizer"] for t in study.trials) == dict.fromkeys(FAMILIES, 2)
    assert not [t for t in study.trials if t.state == TrialState.PRUNED]
    assert any("audit" in t.user_attrs for t in study.trials)
    confirm = load_study(tmp_path, "sixteen.confirm")
    plan = confirm.user_attrs["regsweep:confirm_plan"]
    assert any(a["family"] == "none" for a in plan)
    doses = [a for a in plan if a["role"] == "dose"]
    families_with_paths = {a["family"] for a in doses}
    assert families_with_paths == set(FAMILIES) - {"none"}
    for arm in doses:  # the finalist's other settings are kept; its baseline is the finalist's
        finalist = next(a for a in plan if a["arm"] == arm["dose"]["finalist"])
        assert arm["baseline"] == finalist["baseline"]
        lr = finalist["config"]["optimizer"]["lr"]
        assert arm["config"]["optimizer"]["lr"] == lr
        dist = study.trials[finalist["source_trial"]].distributions.get(arm["dose"]["path"])
        if isinstance(dist, FloatDistribution):  # the path spans what the search drew from
            assert dist.low <= arm["dose"]["strength"] <= dist.high
    report = build_report(tmp_path / "outputs" / "studies.db", "sixteen", tmp_path / "report")
    dose = report.tables["dose_response"]
    assert set(dose["family"]) == set(FAMILIES) - {"none"}
    assert (dose[dose["role"] != "baseline"]["n_seeds"] == 2).all()
    assert (tmp_path / "report" / "tables" / "dose_response.csv").is_file()
    assert (tmp_path / "report" / "tables" / "dose_response.parquet").is_file()
    assert (tmp_path / "report" / "figures" / "dose_response.png").is_file()
    assert "Pruning audit" in report.answer.text
    # 2 completed search trials per family: fewer than 3, and each verdict's notes say so
    effects = report.tables["effects"]
    judged = effects[effects["family"] != "none"]
    assert judged["notes"].str.contains("completed 2 trials, fewer than 3").all()


def test_a_target_effect_size_adds_seeds_to_the_finalists(tmp_path: Path) -> None:
    """confirm.target_mde=1e-4 (far below what 2 seeds detect): the finalist and its baseline get
    seeds added up to confirm.max_seeds=4, the dose-response arms stay on the first 2, and the
    effects table pairs 4 seeds."""
    args = sweep_args(
        "mde",
        2,
        "hydra.sweeper.sampler.name=grid",
        "regularizer=choice(none,dropout)",
        "hydra.sweeper.pruner.name=none",
        "hydra.sweeper.confirm.target_mde=1e-4",
        "hydra.sweeper.confirm.max_seeds=4",
        epochs=3,
        confirm=2,
        dose=2,
    )
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "adding 2 to the finalists and their baselines" in proc.stdout
    assert "× 2 seed(s), finalists and baselines on 2 more = 12 runs" in proc.stdout
    confirm = load_study(tmp_path, "mde.confirm")
    seeds: dict[str, set[int]] = {}
    for t in confirm.trials:
        info = t.user_attrs["confirm"]
        seeds.setdefault(info["role"], set()).add(info["seed"])
    assert seeds["finalist"] == {1, 2, 3, 4} and seeds["dose"] == {1, 2}
    report = build_report(tmp_path / "outputs" / "studies.db", "mde", tmp_path / "r")
    dropout = report.tables["effects"].set_index("family").loc["dropout"]
    assert dropout["n_pairs"] == 4


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (
            {"confirm": {"target_mde": 0.0}},
            "hydra.sweeper.confirm.target_mde=0.0: allowed a number > 0",
        ),
        ({"pruner": {"audit": 1.5}}, "hydra.sweeper.pruner.audit=1.5: allowed a share from 0 to 1"),
        ({"confirm": {"dose_points": 1}}, "hydra.sweeper.confirm.dose_points=1: allowed 0"),
        ({"confirm": {"population": 0}}, "hydra.sweeper.confirm.population=0: allowed an integer"),
    ],
)
def test_bad_confirmation_and_audit_settings_are_refused(bad: dict[str, Any], words: str) -> None:
    with pytest.raises(SweepConfigError) as info:
        check_settings(typed_settings(bad))
    assert any(p.startswith(words) for p in info.value.problems), info.value.problems


def test_a_memorizing_network_shows_l2_helping_along_its_path(tmp_path: Path) -> None:
    """The trust issue's memorizing setup (400 digits, 40% wrong labels, MLP 256-256, Adam; the
    experiment=memorize preset), through the families search with none and l2, shortened to 60
    epochs: l2 has 3 or more completed search trials, its dose-response path shows it helping
    with an interval above 0 at a strength of 1e-3 or more, and the answer says so, even though
    the search's own finalist (a small λ) shows no detectable difference."""
    args = [
        "-m",
        "experiment=memorize",
        "regularizer=choice(none,l2)",
        "trainer.epochs=60",
        "hydra.sweeper.n_trials=8",
        "hydra.sweeper.confirm.population=48",
    ]
    proc = run_cli(args, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = load_study(tmp_path, "memorize")
    done = Counter(t.params["regularizer"] for t in study.trials if t.state == TrialState.COMPLETE)
    assert done["l2"] >= 3 and done["none"] >= 3
    report = build_report(tmp_path / "outputs" / "studies.db", "memorize", tmp_path / "r")
    dose = report.tables["dose_response"]
    l2 = dose[(dose["family"] == "l2") & (dose["role"] != "baseline")]
    helping = l2[(l2["delta_val_acc_ci_low"] > 0) & (l2["strength"] >= 1e-3)]
    assert not helping.empty, l2[["strength", "delta_val_acc", "delta_val_acc_ci_low"]]
    assert (helping["verdict"] == "helps").all() and (helping["n_seeds"] == 5).all()
    assert helping["delta_val_acc"].max() > 0.05  # several points, as fixed strengths show
    strongest = l2.loc[l2["strength"].idxmax()]
    assert strongest["verdict"] == "hurts"  # λ = 0.1 stops learning
    text = report.answer.text
    assert "l2 is best at L2 λ=" in text and "it helps at" in text
