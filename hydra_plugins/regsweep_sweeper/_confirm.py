"""The confirmation stage: the search's finalists and the unregularized baseline, on fresh seeds.

A single search trial is one run on one validation split: a ranking of such runs is noise (one
digits validation example is 0.37 points). After the search, each regularizer family's best
configuration (``confirm.top_k`` of them) and, for each, the same configuration with every
regularizer off (the baseline) are re-trained on ``confirm.seeds`` seeds. A seed changes the
initialization, the batch order, the dropout masks and which examples form the validation split;
the test split never changes. The runs live in a companion study (``<study>.confirm``) that the
search's sampler never sees; a rerun finishes the runs that are missing and repeats none.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from sweep import record
from sweep.hparams import hparam_label
from sweep.job import app_config, refills
from sweep.power import seeds_for
from sweep.record import StopReason
from sweep.regularizers import family_strength, set_at, turn_off
from sweep.run import structure_key
from sweep.study import Ending, ask_pending, end_trial, reap

from ._budget import is_budgeted
from ._launch import Launch, Settled, Unit, population_chunks
from ._study import store_study_attrs, version

__all__ = [
    "Arm",
    "ConfirmPlan",
    "open_confirm_study",
    "plan_arms",
    "plan_dose",
    "run_confirmation",
    "seeds_wanted",
    "unregularized",
]

log = logging.getLogger("regsweep.sweeper")


@dataclass(frozen=True)
class Arm:
    """One configuration the confirmation stage trains on every seed (docs/trial-record.md)."""

    arm: str
    label: str
    family: str
    role: str
    source_trial: int
    rank: int
    baseline: str | None
    config: dict[str, Any]
    choices: dict[str, str]
    # how the source trial ended in the search: COMPLETE, or PRUNED when none of the family's
    # trials completed (then ``source_epochs``: how far it trained there)
    source_state: str = "COMPLETE"
    source_epochs: int | None = None
    # a dose-response arm: ``{key, path, strength, finalist}`` (the finalist's arm id); None
    # for finalists and baselines
    dose: dict[str, Any] | None = None


@dataclass(frozen=True)
class ConfirmPlan:
    """Every arm on ``seeds``; finalists and baselines also on ``more`` (``confirm.target_mde``
    adds those until the finalists' smallest detectable effect is small enough)."""

    arms: list[Arm]
    seeds: list[int]
    more: list[int] = field(default_factory=list)

    @property
    def units(self) -> list[tuple[Arm, int]]:
        base = [(arm, seed) for arm in self.arms for seed in self.seeds]
        return base + [(a, seed) for a in self.arms if a.role != "dose" for seed in self.more]


def seeds_wanted(
    study: optuna.Study,
    plan: ConfirmPlan,
    *,
    target: float,
    metric: str,
    cap: int,
    alpha: float = 0.05,
) -> tuple[int, int]:
    """``(have, want)``: the paired seeds the finalists have in ``study`` (the fewest of any),
    and the seeds (at most ``cap``) their paired spreads of ``metric`` need for a smallest
    detectable effect of ``target`` at 80 % power, at the level the analysis uses (α over the
    finalists compared, Bonferroni)."""
    values: dict[tuple[str, int], float] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        unit, value = _unit_of(t), t.user_attrs.get(metric)
        if unit is not None and isinstance(value, (int, float)) and math.isfinite(value):
            values[unit] = float(value)
    finalists = [a for a in plan.arms if a.role == "finalist" and a.baseline is not None]
    seeds = sorted({s for _, s in values})
    have, want = (min(len(seeds), cap), 0) if finalists else (0, 0)
    for a in finalists:
        diffs = [
            values[(a.arm, s)] - values[(str(a.baseline), s)]
            for s in seeds
            if (a.arm, s) in values and (str(a.baseline), s) in values
        ]
        have = min(have, len(diffs))
        want = max(want, seeds_for(diffs, target, alpha=alpha / len(finalists), cap=cap))
    return have, want


def _arm_id(config: Mapping[str, Any]) -> str:
    """A short stable id of a configuration, whatever its seed."""
    cfg = copy.deepcopy(dict(config))
    cfg.get("trainer", {}).pop("seed", None)
    text = json.dumps(cfg, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def unregularized(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with every regularizer off: every strength of the registry
    (:mod:`sweep.regularizers`) at its off value, regularizer ``none``, the model's dropout and
    the optimizer's weight decay at 0; everything else (data, model, learning rate, schedule,
    epochs, how penalties would be scaled) as it was."""
    cfg = copy.deepcopy(dict(config))
    turn_off(cfg)
    return cfg


REGULARIZATION_PATHS = ("regularizer", "model.dropout", "optimizer.weight_decay")
"""Searched paths that regularize (a baseline turns them off); every other path is one of the
"other settings" a baseline shares with its finalist."""


def _regularizes(path: str) -> bool:
    return any(path == p or path.startswith(p + ".") for p in REGULARIZATION_PATHS)


def _describe(params: Mapping[str, Any], *, baseline: bool = False) -> str:
    """The searched values in words (a baseline's: only those it shares with its finalist)."""
    parts = []
    for path, value in params.items():
        if path == "regularizer" or (baseline and _regularizes(path)):
            continue
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        parts.append(f"{hparam_label(path)}={shown}")
    return ", ".join(parts)


def plan_arms(trials: Sequence[FrozenTrial], *, maximize: bool, top_k: int | None) -> list[Arm]:
    """Finalists per family and their baselines: a family's best completed search trials, or,
    for a family none of whose trials completed, its best pruned ones (:func:`_pruned_rank`), so
    every family the search tried and did not see fail gets a verdict."""
    sign = -1.0 if maximize else 1.0
    by_family: dict[str, list[FrozenTrial]] = {}
    for t in trials:
        if is_budgeted(t) and isinstance(t.user_attrs.get("config"), Mapping):
            by_family.setdefault(str(t.user_attrs.get("family", "none")), []).append(t)
    arms: dict[str, Arm] = {}
    for family in sorted(by_family):
        done = [t for t in by_family[family] if t.state == TrialState.COMPLETE and t.values]
        if done:
            ranked = sorted(done, key=lambda t: (sign * t.values[0], t.number))
        else:
            pruned = [
                (key, t) for t in by_family[family] if (key := _pruned_rank(t, sign)) is not None
            ]
            ranked = [t for _, t in sorted(pruned, key=lambda kt: kt[0])]
        finalists: list[FrozenTrial] = []
        seen: set[str] = set()
        for t in ranked:
            arm_id = _arm_id(t.user_attrs["config"])
            if arm_id in seen:
                continue
            seen.add(arm_id)
            finalists.append(t)
            if top_k is not None and len(finalists) >= top_k:
                break
        for rank, t in enumerate(finalists, start=1):
            _add_finalist(arms, t, family, rank)
    return list(arms.values())


def _pruned_rank(t: FrozenTrial, sign: float) -> tuple[float, float, int] | None:
    """The sort key of a pruned trial among its family's: the furthest epoch first, then the
    better value there, as Optuna's TPE ranks pruned trials; None for a trial that is not pruned
    or has no finite value at its last epoch."""
    step = t.last_step
    if t.state != TrialState.PRUNED or step is None:
        return None
    value = t.intermediate_values.get(step)
    if value is None or not math.isfinite(value):
        return None
    return (-float(step), sign * value, t.number)


def _add_finalist(arms: dict[str, Arm], t: FrozenTrial, family: str, rank: int) -> None:
    config = dict(t.user_attrs["config"])
    # the source trial's end in the search: a pruned finalist says how far it trained there
    state, epochs = t.state.name, (t.last_step if t.state == TrialState.PRUNED else None)
    choices = dict(t.user_attrs.get("choices") or {})
    where = _describe(t.params)
    arm_id = _arm_id(config)
    baseline_id: str | None = None
    if family != "none":
        base_cfg = unregularized(config)
        baseline_id = _arm_id(base_cfg)
        if baseline_id not in arms:
            shared = _describe(t.params, baseline=True)
            label = f"none (baseline at {shared})" if shared else "none (baseline)"
            arms[baseline_id] = Arm(
                baseline_id,
                label,
                "none",
                "baseline",
                t.number,
                rank,
                None,
                base_cfg,
                {**choices, "regularizer": "none"},
                state,
                epochs,
            )
    label = f"{family} ({where})" if where else family
    if arm_id in arms and arms[arm_id].role == "baseline":
        old = arms[arm_id]  # the none finalist is also this baseline: keep it as a finalist
        arms[arm_id] = Arm(
            arm_id,
            label,
            family,
            "finalist",
            t.number,
            rank,
            None,
            old.config,
            old.choices,
            state,
            epochs,
        )
        return
    if arm_id not in arms:
        arms[arm_id] = Arm(
            arm_id,
            label,
            family,
            "finalist",
            t.number,
            rank,
            baseline_id,
            config,
            choices,
            state,
            epochs,
        )


def plan_dose(arms: Sequence[Arm], trials: Sequence[FrozenTrial], *, points: int) -> list[Arm]:
    """The dose-response arms: for each family's first finalist with a strength of its own
    (:func:`sweep.regularizers.family_strength`), ``points`` strengths spanning the range its
    search drew that strength from (the registry's range where the search did not draw it), the
    finalist's other settings kept. With the finalist itself and its baseline (strength off)
    they make the family's path. A value equal to the finalist's is not repeated."""
    if points <= 0:
        return []
    by_number = {t.number: t for t in trials}
    out: list[Arm] = []
    seen = {a.arm for a in arms}
    for arm in arms:
        strength = family_strength(arm.family)
        if arm.role != "finalist" or arm.rank != 1 or strength is None or arm.baseline is None:
            continue
        low, high = strength.low, strength.high
        dist = getattr(by_number.get(arm.source_trial), "distributions", {}).get(strength.path)
        if isinstance(dist, (FloatDistribution, IntDistribution)):
            low, high = float(dist.low), float(dist.high)
        for value in strength.path_values(low, high, points):
            config = copy.deepcopy(arm.config)
            set_at(config, strength.path, int(value) if strength.integer else value)
            arm_id = _arm_id(config)
            if arm_id in seen:
                continue
            seen.add(arm_id)
            shown = f"{value:g}"
            dose = {
                "key": strength.key,
                "path": strength.path,
                "strength": value,
                "finalist": arm.arm,
            }
            out.append(
                Arm(
                    arm_id,
                    f"{arm.family} at {strength.label}={shown}",
                    arm.family,
                    "dose",
                    arm.source_trial,
                    arm.rank,
                    arm.baseline,
                    config,
                    dict(arm.choices),
                    arm.source_state,
                    arm.source_epochs,
                    dose,
                )
            )
    return out


def confirm_seeds(arms: Sequence[Arm], n: int) -> list[int]:
    """``n`` seeds after the search's own (so no confirmation run repeats a search split)."""
    base = max((int(a.config.get("trainer", {}).get("seed", 0)) for a in arms), default=0)
    return [base + 1 + i for i in range(n)]


def open_confirm_study(
    storage: BaseStorage, search: optuna.Study, plan: ConfirmPlan, metrics: list[str]
) -> optuna.Study:
    name = record.confirm_study_name(search.study_name)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        load_if_exists=True,
        directions=[StudyDirection[d.name] for d in search.directions],
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),
    )
    attrs = {
        record.STUDY_ROLE: "confirm",
        record.STUDY_SEARCH_STUDY: search.study_name,
        record.STUDY_VERSION: version(),
        record.STUDY_METRIC: metrics[0],
        record.STUDY_OBJECTIVES: metrics,
        record.STUDY_PRUNER: {"name": "none", "why": "confirmation runs train to the end"},
        record.STUDY_CONFIRM_SEEDS: [*plan.seeds, *plan.more],
        record.STUDY_CONFIRM_PLAN: [asdict(a) for a in plan.arms],
    }
    store_study_attrs(study, attrs, metrics)
    return study


def _unit_of(t: FrozenTrial) -> tuple[str, int] | None:
    info = t.user_attrs.get(record.TRIAL_CONFIRM)
    if isinstance(info, Mapping) and "arm" in info and "seed" in info:
        return str(info["arm"]), int(info["seed"])
    return None


def _taken(study: optuna.Study) -> set[tuple[str, int]]:
    """Units that are done or being run: finished (except interrupted) or running."""
    out = set()
    for t in study.get_trials(deepcopy=False):
        unit = _unit_of(t)
        if unit is None:
            continue
        if t.state == TrialState.RUNNING or (t.state.is_finished() and is_budgeted(t)):
            out.add(unit)
    return out


def run_confirmation(
    study: optuna.Study,
    plan: ConfirmPlan,
    launch: Launch,
    *,
    population: int,
    batch: int,
    requeue_interrupted: bool,
    on_settled: Callable[[Settled], None],
) -> tuple[int, int]:
    """Train every missing (arm, seed) unit of ``plan`` in populations; returns (stored, ran)."""
    for line in reap(study, requeue_interrupted=False):
        print(f"[regsweep] {line}")
    units = plan.units
    taken = _taken(study)
    missing = [(a, s) for a, s in units if (a.arm, s) not in taken]
    more = f", finalists and baselines on {len(plan.more)} more" if plan.more else ""
    print(
        f"[regsweep] confirmation: {len(plan.arms)} arm(s) × {len(plan.seeds)} seed(s){more} = "
        f"{len(units)} runs in study {study.study_name!r}: {len(units) - len(missing)} "
        f"stored, {len(missing)} to run"
    )
    ran = 0
    keys: dict[str, tuple[Any, ...]] = {}

    def key_of(arm: Arm) -> tuple[Any, ...]:
        if arm.arm not in keys:
            keys[arm.arm] = structure_key(app_config(arm.config))
        return keys[arm.arm]

    def refill(key: tuple[Any, ...], n: int, attrs: Mapping[str, Any]) -> list[FrozenTrial]:
        """The next ``n`` missing runs whose network is ``key``, for a running job's free
        places (see ``sweep.job.refills``)."""
        nonlocal missing, ran
        picked = [u for u in missing if key_of(u[0]) == key][:n]
        if not picked:
            return []
        chosen = {(a.arm, seed) for a, seed in picked}
        missing = [u for u in missing if (u[0].arm, u[1]) not in chosen]
        ready = _ask(study, launch, picked, attrs)
        launch.join(ready)
        ran += len(ready)
        return [u.trial for u in ready]

    # a member that ends (early stopping, divergence, a dose's short patience) frees its place
    # for the next missing run of its network, as in the search
    with refills(study.study_name, "confirm", refill) if population > 1 else nullcontext():
        while missing:
            todo, missing = missing[:batch], missing[batch:]
            ready = _ask(study, launch, todo)
            ran += len(ready)
            launch.run(
                population_chunks(ready, population),
                stage="confirm",
                on_settled=on_settled,
                slots=population,
            )
    del requeue_interrupted  # confirmation units are re-run by the plan, never re-queued
    return len(units) - ran, ran


def _ask(
    study: optuna.Study,
    launch: Launch,
    todo: Sequence[tuple[Arm, int]],
    attrs: Mapping[str, Any] | None = None,
) -> list[Unit]:
    """Ask one trial per (arm, seed), store their configs (and ``attrs``, a running job's, for
    runs that join it) in one transaction, and drop any unit another worker took between our
    look and our asks."""
    units, stamps = [], []
    asked, pending = ask_pending(study, len(todo), None)
    for (arm, seed), (trial, _) in zip(todo, asked, strict=True):
        frozen = copy.copy(trial._cached_frozen_trial)
        config = copy.deepcopy(arm.config)
        config.setdefault("trainer", {})["seed"] = seed
        info = {
            "arm": arm.arm,
            "label": arm.label,
            "family": arm.family,
            "role": arm.role,
            "seed": seed,
            "source_trial": arm.source_trial,
        }
        if arm.dose is not None:
            info["dose"] = arm.dose
        units.append(Unit(study, frozen, app_config(config), []))
        stamps.append((config, arm.choices, {**(attrs or {}), record.TRIAL_CONFIRM: info}))
    launch.stamp(units, stamps, pending)
    trials = study.get_trials(deepcopy=False)
    ready = []
    for unit, (_, _, extra) in zip(units, stamps, strict=True):
        assert extra is not None
        key = (extra[record.TRIAL_CONFIRM]["arm"], extra[record.TRIAL_CONFIRM]["seed"])
        first = [
            t
            for t in trials
            if t.number < unit.trial.number
            and _unit_of(t) == key
            and (t.state == TrialState.RUNNING or is_budgeted(t))
        ]
        if not first:
            ready.append(unit)
            continue
        launch.keeper.release([unit.trial._trial_id])
        launch.in_flight.pop(unit.trial._trial_id, None)
        end_trial(
            study._storage,
            unit.trial,
            Ending(
                TrialState.FAIL,
                None,
                StopReason.OVER_BUDGET,
                f"run {key[0]} seed {key[1]} was taken by trial {first[0].number}",
            ),
            n_objectives=len(study.directions),
        )
    return ready
