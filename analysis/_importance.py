"""Parameter importances for the validation metric and for the generalization gap."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Literal

import optuna
import pandas as pd
from optuna.importance import BaseImportanceEvaluator, PedAnovaImportanceEvaluator
from optuna.trial import FrozenTrial, TrialState

from analysis._record import final_metrics
from sweep.record import NOT_BUDGETED

__all__ = ["IMPORTANCE_TARGETS", "MIN_TOP", "default_evaluator", "param_importances"]

# target name → (final-model metric, direction of "better")
IMPORTANCE_TARGETS: dict[str, tuple[str, Literal["minimize", "maximize"]]] = {
    "val_acc": ("val_acc", "maximize"),
    "gap_acc": ("gap_acc", "minimize"),
}


def _target_value(t: FrozenTrial, key: str) -> float:
    value = final_metrics(t.user_attrs)[key] if t.user_attrs else math.nan
    if math.isnan(value) and key == "val_acc" and t.values and "curves" not in t.user_attrs:
        return float(t.values[0])  # plain Optuna study: the objective stands in for validation
    return value


def _proxy_study(
    trials: Sequence[FrozenTrial], attr: str, direction: Literal["minimize", "maximize"]
) -> optuna.Study:
    """An in-memory study whose trial values are the target, so any evaluator ranks it."""
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.RandomSampler(0))
    proxies = []
    for t in trials:
        value = _target_value(t, attr)
        if math.isfinite(value) and t.params:
            proxies.append(
                optuna.trial.create_trial(
                    value=value, params=t.params, distributions=t.distributions
                )
            )
    study.add_trials(proxies)
    return study


def _varying_params(study: optuna.Study) -> list[str]:
    trials = study.get_trials(deepcopy=False)
    names = set.intersection(*(set(t.params) for t in trials)) if trials else set()
    return sorted(n for n in names if len({repr(t.params[n]) for t in trials}) > 1)


MIN_TOP = 5
"""Trials in PED-ANOVA's top quantile at the least: its authors ask for 5 or more."""
MANY_TRIALS = 50
"""From this many completed trials the top 10 % holds :data:`MIN_TOP`; below, a note says the
importances are a hint."""


def _top_quantile(n: int) -> float:
    """The best 10 % of ``n`` trials, or the best :data:`MIN_TOP` when that is more."""
    return max(0.1, MIN_TOP / n)


def default_evaluator(n_trials: int = MANY_TRIALS) -> BaseImportanceEvaluator:
    """PED-ANOVA: deterministic and ~10× faster than fANOVA on 1,000 trials.

    It scores how much each parameter's distribution in the best trials (the top 10 %, or the
    best :data:`MIN_TOP` of ``n_trials`` when that is more) differs from all trials. For fANOVA
    pass ``lambda: FanovaImportanceEvaluator(n_trees=16, seed=0)`` to :func:`param_importances`.
    """
    return PedAnovaImportanceEvaluator(target_quantile=_top_quantile(n_trials))


def param_importances(
    trials: Sequence[FrozenTrial],
    *,
    evaluator_factory: Callable[[], BaseImportanceEvaluator] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Importances of the searched parameters for the final model's validation accuracy and gap.

    Only COMPLETE trials that are not interrupted/over budget are used. A target is skipped
    (with a note) when no parameter varies or, with the default PED-ANOVA, when fewer than
    :data:`MIN_TOP` + 1 trials have a finite value (its top must be smaller than all); under
    :data:`MANY_TRIALS` a note says the importances are a hint, not a ranking.

    Returns:
        A DataFrame ``target, param, importance`` (normalized per target), ``n_trials`` (the
        trials used) and ``n_top`` (how many of them formed PED-ANOVA's top; NaN for another
        evaluator), and the notes.
    """
    done = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.user_attrs.get("stop_reason") not in NOT_BUDGETED
    ]
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    default = evaluator_factory is None  # PED-ANOVA with a top of at least MIN_TOP
    for target, (attr, direction) in IMPORTANCE_TARGETS.items():
        study = _proxy_study(done, attr, direction)
        n = len(study.get_trials(deepcopy=False))
        params = _varying_params(study)
        least = MIN_TOP + 1 if default else 2
        if n < least or not params:
            notes.append(
                f"importance for {target} skipped: {n} usable completed trials, "
                f"{len(params)} varying parameters (need ≥ {least} and ≥ 1)"
            )
            continue
        top = math.ceil(_top_quantile(n) * n) if default else math.nan
        if default and n < MANY_TRIALS:
            notes.append(
                f"importance for {target}: from {n} completed single runs, PED-ANOVA compares "
                f"the best {top} with all of them; read it as a hint, not a ranking"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                evaluator = (
                    default_evaluator(n) if evaluator_factory is None else evaluator_factory()
                )
                scores = optuna.importance.get_param_importances(
                    study, evaluator=evaluator, params=params
                )
        except (RuntimeError, ValueError) as exc:
            notes.append(f"importance for {target} skipped: {exc}")
            continue
        rows += [
            {"target": target, "param": p, "importance": v, "n_trials": n, "n_top": top}
            for p, v in scores.items()
        ]
    columns = ["target", "param", "importance", "n_trials", "n_top"]
    return pd.DataFrame(rows, columns=columns), notes
