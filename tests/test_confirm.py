"""The confirmation stage end to end: finalists and their unregularized baselines re-trained on
fresh seeds in a companion study; resumed after SIGKILL without duplicates; run on its own."""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from analysis import build_report
from analysis._load import curves_frame, read_study, trials_frame
from analysis._report import report_figures, report_tables
from hydra_plugins.regsweep_sweeper._confirm import plan_arms
from sweep import record
from tests.helpers import load_study, most_at_once, run_cli, sweep_args
from tests.test_reliability import _start, _wait_for

FAMILIES = [
    "regularizer=choice(none,l2,dropout)",
    "optimizer.lr=tag(log, interval(0.01, 0.1))",
    "hydra.sweeper.pruner.name=none",
]
CONDITIONAL = [
    "+hydra.sweeper.conditional.regularizer.l2={regularizer.l2: 'tag(log, interval(1e-5, 1e-2))'}",
    "+hydra.sweeper.conditional.regularizer.dropout={regularizer.dropout: 'interval(0.1, 0.5)'}",
]


def _args(study: str, seeds: int, *extra: str) -> list[str]:
    return sweep_args(
        study, 6, *FAMILIES, *extra, "hydra.sweeper.sampler.seed=1", epochs=3, confirm=seeds
    )


def _runs(cstudy: optuna.Study) -> dict[tuple[str, int], list[optuna.trial.FrozenTrial]]:
    out: dict[tuple[str, int], list[optuna.trial.FrozenTrial]] = collections.defaultdict(list)
    for t in cstudy.trials:
        info = t.user_attrs.get(record.TRIAL_CONFIRM)
        if info is not None:
            out[(info["arm"], info["seed"])].append(t)
    return out


def _check_complete(cwd: Path, name: str, seeds: list[int]) -> list[dict[str, object]]:
    search = load_study(cwd, name)
    cstudy = load_study(cwd, record.confirm_study_name(name))
    assert cstudy.user_attrs[record.STUDY_ROLE] == "confirm"
    assert cstudy.user_attrs[record.STUDY_SEARCH_STUDY] == name
    assert cstudy.user_attrs[record.STUDY_CONFIRM_SEEDS] == seeds
    plan = cstudy.user_attrs[record.STUDY_CONFIRM_PLAN]
    runs = _runs(cstudy)
    for arm in plan:
        for seed in seeds:
            done = [t for t in runs[(arm["arm"], seed)] if t.state == TrialState.COMPLETE]
            assert len(done) == 1, (arm["label"], seed, [t.state for t in runs[(arm["arm"], seed)]])
            t = done[0]
            assert t.user_attrs["seed"] == seed == t.user_attrs["config"]["trainer"]["seed"]
            assert t.user_attrs["family"] == arm["family"]
    assert not [t for t in cstudy.trials if t.state == TrialState.RUNNING]
    # the search's sampler never saw these runs: the search study holds only its own trials
    assert all(record.TRIAL_CONFIRM not in t.user_attrs for t in search.trials)
    return plan  # type: ignore[no-any-return]


def test_confirmation_retrains_finalists_and_baselines_on_fresh_seeds(tmp_path: Path) -> None:
    proc = run_cli([*_args("conf", 3), *CONDITIONAL], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "confirmation:" in proc.stdout
    plan = _check_complete(tmp_path, "conf", [1, 2, 3])
    search = load_study(tmp_path, "conf")
    done = [t for t in search.trials if t.state == TrialState.COMPLETE]
    by_arm = {a["arm"]: a for a in plan}
    finalists = [a for a in plan if a["role"] == "finalist"]
    # one finalist per family the search completed: its best trial
    assert {a["family"] for a in finalists} == {t.user_attrs["family"] for t in done}
    for a in finalists:
        family = [t for t in done if t.user_attrs["family"] == a["family"]]
        assert a["source_trial"] == max(family, key=lambda t: t.value).number
        if a["family"] == "none":
            assert a["baseline"] is None
            continue
        base = by_arm[a["baseline"]]  # the same configuration with every regularizer off
        assert base["family"] == "none"
        assert base["config"]["regularizer"]["name"] == "none"
        assert (
            base["config"]["regularizer"]["l2"] == 0.0 and base["config"]["model"]["dropout"] == 0
        )
        assert base["config"]["optimizer"]["lr"] == a["config"]["optimizer"]["lr"]
        assert base["config"]["trainer"]["epochs"] == a["config"]["trainer"]["epochs"]
    # seeds change the validation split: one arm's runs differ from seed to seed
    cstudy = load_study(tmp_path, "conf.confirm")
    some = finalists[0]["arm"]
    vals = {
        t.user_attrs["seed"]: t.user_attrs["val_acc"]
        for t in cstudy.trials
        if t.user_attrs[record.TRIAL_CONFIRM]["arm"] == some
    }
    assert len(set(vals.values())) > 1, vals
    # a rerun finds nothing missing and duplicates nothing
    again = run_cli([*_args("conf", 3), *CONDITIONAL], cwd=tmp_path)
    assert again.returncode == 0 and "0 to run" in again.stdout
    assert len(load_study(tmp_path, "conf.confirm").trials) == len(cstudy.trials)


def _confirm_running(db: Path) -> bool:
    try:
        con = sqlite3.connect(db, timeout=5)
        n = con.execute(
            "SELECT COUNT(*) FROM trials t JOIN studies s ON s.study_id = t.study_id "
            "WHERE s.study_name LIKE '%.confirm' AND t.state = 'RUNNING'"
        ).fetchone()[0]
        con.close()
    except sqlite3.Error:
        return False
    return bool(n)


def test_confirmation_resumes_after_sigkill_without_duplicates(tmp_path: Path) -> None:
    args = [*_args("kill", 2, "hydra.sweeper.population=1"), *CONDITIONAL]
    args = [a.replace("trainer.epochs=3", "trainer.epochs=60") for a in args]
    proc = _start(args, tmp_path)
    try:
        _wait_for(lambda: _confirm_running(tmp_path / "outputs" / "studies.db"), timeout=180)
        time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    again = run_cli(args, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    _check_complete(tmp_path, "kill", [1, 2])
    cstudy = load_study(tmp_path, "kill.confirm")
    interrupted = [t for t in cstudy.trials if t.state == TrialState.FAIL]
    assert interrupted and all(t.user_attrs["stop_reason"] == "interrupted" for t in interrupted)


def test_confirmation_of_an_existing_study_on_its_own(tmp_path: Path) -> None:
    search = run_cli([*_args("alone", 0), *CONDITIONAL], cwd=tmp_path)
    assert search.returncode == 0, search.stderr[-3000:]
    assert record.confirm_study_name("alone") not in optuna.get_all_study_names(
        f"sqlite:///{tmp_path / 'outputs' / 'studies.db'}"
    )
    only = run_cli(
        [
            "-m",
            "hydra.sweeper.study_name=alone",
            "hydra.sweeper.confirm.only=true",
            "hydra.sweeper.confirm.seeds=2",
        ],
        cwd=tmp_path,
    )
    assert only.returncode == 0, only.stdout[-3000:] + only.stderr[-3000:]
    _check_complete(tmp_path, "alone", [1, 2])
    missing = run_cli(
        ["-m", "hydra.sweeper.study_name=nosuch", "hydra.sweeper.confirm.only=true"], cwd=tmp_path
    )
    assert missing.returncode == 2 and "studies in this storage: alone" in missing.stderr


@pytest.mark.parametrize("top_k", ["null"])
def test_top_k_null_confirms_every_configuration(tmp_path: Path, top_k: object) -> None:
    proc = run_cli(
        sweep_args(
            "grid",
            3,
            "optimizer.lr=choice(0.01,0.03,0.1)",
            "hydra.sweeper.sampler.name=grid",
            f"hydra.sweeper.confirm.top_k={top_k}",
            epochs=2,
            confirm=2,
        ),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    plan = load_study(tmp_path, "grid.confirm").user_attrs[record.STUDY_CONFIRM_PLAN]
    assert sorted(a["config"]["optimizer"]["lr"] for a in plan) == [0.01, 0.03, 0.1]
    assert [a["rank"] for a in sorted(plan, key=lambda a: a["rank"])] == [1, 2, 3]


def _searched(
    number: int,
    family: str,
    lr: float,
    state: TrialState,
    reports: dict[int, float],
    value: float | None = None,
) -> optuna.trial.FrozenTrial:
    config = {"regularizer": {"name": family}, "optimizer": {"lr": lr}, "trainer": {"seed": 0}}
    return optuna.trial.create_trial(
        state=state,
        value=value,
        intermediate_values=reports,
        params={"optimizer.lr": lr},
        distributions={"optimizer.lr": FloatDistribution(1e-3, 1.0)},
        user_attrs={"family": family, "config": config, "stop_reason": state.name.lower()},
    )


def test_a_family_none_of_whose_trials_completed_is_confirmed_from_its_furthest_pruned_trial(
    tmp_path: Path,
) -> None:
    """Pruning stopped every l1 trial: the confirmation still judges l1, from the pruned trial
    that trained furthest (the better value at that epoch breaking ties), as Optuna's TPE ranks
    pruned trials. A family with a completed trial keeps its best completed one, however well a
    pruned trial of it was doing; a family whose trials all failed gets no finalist."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize")
    P, C, F = TrialState.PRUNED, TrialState.COMPLETE, TrialState.FAIL
    trials = [
        _searched(0, "l2", 0.01, C, {1: 0.5, 2: 0.8}, value=0.8),
        _searched(1, "l2", 0.02, P, {1: 0.95}),  # pruned, but l2 has a completed trial
        _searched(2, "l1", 0.03, P, {1: 0.9, 2: 0.4}),  # furthest (epoch 2), lower value there
        _searched(3, "l1", 0.04, P, {1: 0.99}),  # best value, but pruned earlier
        _searched(4, "l1", 0.05, P, {1: 0.2, 2: 0.6}),  # furthest, best at epoch 2: the finalist
        _searched(5, "clip", 0.06, F, {1: 0.7}),
    ]
    for t in trials:
        study.add_trial(t)
    stored = study.get_trials(deepcopy=False)
    planned = plan_arms(stored, maximize=True, top_k=1)
    arms = {a.family: a for a in planned if a.role == "finalist"}
    assert set(arms) == {"l1", "l2"}
    l1, l2 = arms["l1"], arms["l2"]
    assert (l1.source_trial, l1.source_state, l1.source_epochs) == (4, "PRUNED", 2)
    assert l1.config["optimizer"]["lr"] == 0.05
    assert (l2.source_trial, l2.source_state, l2.source_epochs) == (0, "COMPLETE", None)
    base = next(a for a in planned if a.arm == l1.baseline)
    assert base.config["regularizer"]["name"] == "none" and base.config["optimizer"]["lr"] == 0.05
    two = [a for a in plan_arms(stored, maximize=True, top_k=2) if a.family == "l1"]
    assert [a.source_trial for a in sorted(two, key=lambda a: a.rank)] == [4, 2]
    # minimizing (a loss), the lower value at the furthest epoch wins
    low = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", direction="minimize")
    for t in trials:
        low.add_trial(t)
    mins = {
        a.family: a
        for a in plan_arms(low.get_trials(), maximize=False, top_k=1)
        if a.role == "finalist"
    }
    assert mins["l1"].source_trial == 2


def test_a_family_pruned_out_of_the_search_still_gets_a_verdict(tmp_path: Path) -> None:
    """A real search whose every l1 trial (λ ≥ 5: a collapsed network) falls under the threshold
    pruner's floor at epoch 2: the confirmation re-trains l1's furthest pruned trial and its
    baseline to the end, and the answer names l1 as not explored (its search never found a
    setting of it that learns) instead of leaving it unjudged or calling it "no difference"."""
    l1 = "+hydra.sweeper.conditional.regularizer.l1={regularizer.l1: 'interval(5.0, 10.0)'}"
    proc = run_cli(
        sweep_args(
            "out",
            4,
            "regularizer=choice(none,l1)",
            l1,
            "optimizer.lr=0.1",
            "hydra.sweeper.pruner.name=threshold",
            "hydra.sweeper.pruner.lower=0.5",
            "hydra.sweeper.pruner.n_warmup_steps=2",
            "hydra.sweeper.pruner.family_startup_trials=0",
            "hydra.sweeper.population=4",
            "hydra.sweeper.sampler.seed=3",
            epochs=4,
            confirm=3,
        ),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    search = load_study(tmp_path, "out")
    l1_trials = [t for t in search.trials if t.user_attrs["family"] == "l1"]
    assert l1_trials and all(t.state == TrialState.PRUNED for t in l1_trials)
    # the log says where each trial stopped and with which value
    said = proc.stdout + proc.stderr
    for t in l1_trials:
        value = t.intermediate_values[t.last_step]
        assert (
            f"trial {t.number}: pruned after epoch {t.last_step} (val_acc {value:.4g} there)"
            in said
        )
    for t in search.trials:
        if t.state == TrialState.COMPLETE:
            assert f"trial {t.number}: completed, val_acc {t.value:.4g}" in said
    plan = _check_complete(tmp_path, "out", [1, 2, 3])
    finalist = next(a for a in plan if a["family"] == "l1" and a["role"] == "finalist")
    furthest = max(t.last_step for t in l1_trials)
    assert finalist["source_state"] == "PRUNED" and finalist["source_epochs"] == furthest
    source = search.trials[finalist["source_trial"]]
    assert source.user_attrs["family"] == "l1" and source.last_step == furthest
    assert finalist["config"]["trainer"]["epochs"] == 4  # re-trained to the end
    url = f"sqlite:///{tmp_path / 'outputs' / 'studies.db'}"
    report = build_report(url, "out", out=tmp_path / "r")
    assert "l1" in report.answer.text and "not judged" not in report.answer.text
    assert "was not explored (its search completed no trial" in report.answer.text
    effects = report.tables["effects"].set_index("family")
    assert effects.loc["l1", "verdict"] == "not_explored"
    assert effects.loc["l1", "delta_val_acc"] < 0  # still measured, shown in the table
    # no λ varies over the completed trials (none has none): the skipped figure names l1
    assert "(l1: no completed trial)." in report.skipped["gap_vs_strength"]
    data = read_study(url, "out")
    trials = trials_frame(data.trials, objectives=data.objectives)
    figures, _ = report_figures(
        data,
        trials,
        curves_frame(data.trials, objective=data.metric),
        report_tables(data, trials)[0],
    )
    note = " ".join(t.get_text() for t in figures["loss_curves"].texts)  # none's top run only
    assert "not shown, no completed trial (all pruned or failed): l1" in note.replace("\n", " ")
    assert (
        f"l1            no completed trial ({len(l1_trials)} pruned): no top run; the "
        f"confirmation re-trains its furthest pruned trial ({source.number}, pruned after "
        f"epoch {furthest}) to the end"
    ) in report.summary


def test_confirmation_refills_the_places_of_runs_that_ended(tmp_path: Path) -> None:
    """Confirmation populations of 2 take the next missing run into a place freed by a member
    that stopped early (patience 1 or 2 of 8 epochs, improvements under 0.1 not counted): every confirmation run of the network is
    trained by one job, its population growing past 2 members, each run complete and once."""
    proc = run_cli(
        sweep_args(
            "cref",
            4,
            "regularizer=choice(none,early_stop)",
            "+hydra.sweeper.conditional.regularizer.early_stop="
            "{regularizer.early_stop.patience: 'choice(1,2)', "
            "regularizer.early_stop.min_delta: 'choice(0.1)'}",
            "optimizer.lr=0.05",
            "hydra.sweeper.pruner.name=none",
            "hydra.sweeper.sampler.seed=1",
            "hydra.sweeper.confirm.population=2",
            epochs=8,
            confirm=3,
        ),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    plan = _check_complete(tmp_path, "cref", [1, 2, 3])
    runs = [
        t for t in load_study(tmp_path, "cref.confirm").trials if t.state == TrialState.COMPLETE
    ]
    assert len(runs) == 3 * len(plan) >= 6
    assert len({t.user_attrs["job_dir"] for t in runs}) == 1  # one job trained them all
    assert {t.user_attrs["population"]["size"] for t in runs} == {2}
    assert max(len(t.user_attrs["population"]["members"]) for t in runs) == len(runs)
    stopped = [t for t in runs if t.user_attrs["stop_reason"] == "early_stopped"]
    assert stopped and min(t.user_attrs["epochs_run"] for t in stopped) < 8
    # never more than 2 at once
    assert most_at_once(runs) <= 2
