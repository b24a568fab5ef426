"""Synthetic regsweep search studies shaped like docs/trial-record.md (version 2), for tests,
demos and benchmarks: trials whose record is derived from their curves. Confirmation studies:
:mod:`analysis.testing.synthetic_confirm`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from analysis.testing.records import record_trial, synthetic_curves
from analysis.testing.synthetic_confirm import synthetic_confirmation
from sweep.hparams import FAMILY_STRENGTH
from sweep.record import (
    STUDY_METRIC,
    STUDY_OBJECTIVES,
    STUDY_ROLE,
    STUDY_SEARCH_SPACE,
)

__all__ = ["record_trial", "synthetic_curves", "synthetic_study"]


def _range(family: str) -> tuple[float, float, bool]:
    return (0.05, 0.8, False) if family == "dropout" else (1e-5, 1e-1, True)


def _search_space(families: Sequence[str]) -> dict[str, Any]:
    conditional: dict[str, dict[str, str]] = {}
    for family in families:
        key = FAMILY_STRENGTH.get(family)
        if key:
            low, high, log = _range(family)
            expr = f"interval({low}, {high})"
            conditional[family] = {f"regularizer.{key}": f"tag(log, {expr})" if log else expr}
    return {
        "params": {
            "regularizer": f"choice({', '.join(families)})",
            "optimizer.lr": "tag(log, interval(0.001, 0.1))",
        },
        "conditional": {"regularizer": conditional},
        "cli_overrides": [],
    }


def _random_trial(
    i: int, n_epochs: int, families: Sequence[str], rng: np.random.Generator, prune_rate: float
) -> FrozenTrial:
    family = families[i % len(families)]
    key = FAMILY_STRENGTH.get(family)
    low, high, _ = _range(family)
    strength = float(math.exp(rng.uniform(math.log(low), math.log(high)))) if key else 0.0
    lr = float(10 ** rng.uniform(-3, -1))
    hparams = {"lr": lr, "batch_size": 64.0, **({key: strength} if key else {})}
    pruned = rng.random() < prune_rate
    run = int(rng.integers(3, n_epochs)) if pruned else n_epochs
    curves = synthetic_curves(
        n_epochs,
        strength,
        rng,
        sparsity_rate=1.0 if family == "l1" else 0.05,
        collapse=family == "l1" and strength > 0.03,
    )
    curves = {k: v[:run] for k, v in curves.items()}
    params: dict[str, Any] = {"regularizer": family, "optimizer.lr": lr}
    dists: dict[str, BaseDistribution] = {
        "regularizer": CategoricalDistribution(list(families)),
        "optimizer.lr": FloatDistribution(1e-3, 1e-1, log=True),
    }
    if key:
        params[f"regularizer.{key}"] = strength
        dists[f"regularizer.{key}"] = FloatDistribution(low, high, log=family != "dropout")
    return record_trial(
        family=family,
        curves=curves,
        hparams=hparams,
        epochs_max=n_epochs,
        seed=i,
        state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
        test_acc=curves["val_acc"][-1] - 0.01,
        params=params,
        distributions=dists,
    )


def synthetic_study(
    storage: str | optuna.storages.BaseStorage,
    *,
    study_name: str = "synthetic",
    n_trials: int = 100,
    n_epochs: int = 20,
    families: Sequence[str] = ("none", "l1", "l2", "elastic_net", "dropout", "weight_decay"),
    prune_rate: float = 0.3,
    seed: int = 0,
    confirm_seeds: int = 0,
) -> optuna.Study:
    """Create a search study of ``n_trials`` synthetic trials (``study.add_trials``, no
    training), and its confirmation study on ``confirm_seeds`` seeds when > 0."""
    rng = np.random.default_rng(seed)
    study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize")
    for key, value in (
        (STUDY_ROLE, "search"),
        (STUDY_METRIC, "val_acc"),
        (STUDY_OBJECTIVES, ["val_acc"]),
        (STUDY_SEARCH_SPACE, _search_space(families)),
    ):
        study.set_user_attr(key, value)
    study.add_trials(
        [_random_trial(i, n_epochs, families, rng, prune_rate) for i in range(n_trials)]
    )
    if confirm_seeds > 0:
        synthetic_confirmation(storage, study_name, seeds=confirm_seeds, rng_seed=seed)
    return study
