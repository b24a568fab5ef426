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

__all__ = ["IMPORTANCE_TARGETS", "default_evaluator", "param_importances"]

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
            proxies.append(optuna.trial.create_trial(
                value=value, params=t.params, distributions=t.distributions))  # fmt: skip
    study.add_trials(proxies)
    return study


def _varying_params(study: optuna.Study) -> list[str]:
    trials = study.get_trials(deepcopy=False)
    names = set.intersection(*(set(t.params) for t in trials)) if trials else set()
    return sorted(n for n in names if len({repr(t.params[n]) for t in trials}) > 1)


def default_evaluator() -> BaseImportanceEvaluator:
    """PED-ANOVA: deterministic and ~10× faster than fANOVA on 1,000 trials.

    It scores how much each parameter's distribution in the best 10 % of trials differs from
    all trials. For fANOVA pass ``lambda: FanovaImportanceEvaluator(n_trees=16, seed=0)``.
    """
    return PedAnovaImportanceEvaluator()


def param_importances(
    trials: Sequence[FrozenTrial],
    *,
    evaluator_factory: Callable[[], BaseImportanceEvaluator] = default_evaluator,
) -> tuple[pd.DataFrame, list[str]]:
    """Importances of the searched parameters for the final model's validation accuracy and gap.

    Only COMPLETE trials that are not interrupted/over budget are used. A target is skipped
    (with a note) when fewer than 2 trials have a finite value or no parameter varies.

    Returns:
        A DataFrame ``target, param, importance`` (normalized per target) and the notes.
    """
    done = [
        t for t in trials
        if t.state == TrialState.COMPLETE and t.user_attrs.get("stop_reason") not in NOT_BUDGETED
    ]  # fmt: skip
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    for target, (attr, direction) in IMPORTANCE_TARGETS.items():
        study = _proxy_study(done, attr, direction)
        n = len(study.get_trials(deepcopy=False))
        params = _varying_params(study)
        if n < 2 or not params:
            notes.append(
                f"importance for {target} skipped: {n} usable completed trials, "
                f"{len(params)} varying parameters (need ≥ 2 and ≥ 1)"
            )
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scores = optuna.importance.get_param_importances(
                    study, evaluator=evaluator_factory(), params=params
                )
        except (RuntimeError, ValueError) as exc:
            notes.append(f"importance for {target} skipped: {exc}")
            continue
        rows += [{"target": target, "param": p, "importance": v} for p, v in scores.items()]
    return pd.DataFrame(rows, columns=["target", "param", "importance"]), notes
