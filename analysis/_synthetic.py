"""Synthetic regsweep trials shaped like docs/trial-record.md, for tests, demos and benchmarks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from analysis._schema import FAMILY_STRENGTH, HPARAM_KEYS, STUDY_METRIC

__all__ = ["record_trial", "synthetic_curves", "synthetic_study"]


def record_trial(
    *,
    family: str,
    curves: Mapping[str, Sequence[float]],
    hparams: Mapping[str, float] | None = None,
    state: TrialState = TrialState.COMPLETE,
    stop_reason: str | None = None,
    epochs_max: int | None = None,
    test_acc: float | None = None,
    params: dict[str, Any] | None = None,
    distributions: dict[str, BaseDistribution] | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
) -> FrozenTrial:
    """A finished trial whose user attributes follow the contract, derived from ``curves``.

    ``curves`` needs ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc`` (same length);
    the best epoch is the one with the highest ``val_acc``.
    """
    c = {k: [float(v) for v in vals] for k, vals in curves.items()}
    n = len(c["val_acc"])
    c.setdefault("epoch", [float(e) for e in range(1, n + 1)])
    finite = np.isfinite(np.asarray(c["val_acc"], dtype=float))
    best = int(np.nanargmax(c["val_acc"])) if finite.any() else 0
    attrs: dict[str, Any] = {
        "curves": c, "family": family, "best_epoch": best + 1, "epochs_run": n,
        "epochs_max": epochs_max if epochs_max is not None else n,
        "hparams": {k: float((hparams or {}).get(k, 0.0)) for k in HPARAM_KEYS},
        "stop_reason": stop_reason or {TrialState.PRUNED: "pruned",
                                       TrialState.FAIL: "failed"}.get(state, "completed"),
        "choices": {"regularizer": family}, "test_acc": test_acc, "run_seconds": 0.1 * n,
    }  # fmt: skip
    if n:
        for split in ("val", "train"):
            for m in ("acc", "loss"):
                attrs[f"best_{split}_{m}"] = c[f"{split}_{m}"][best]
        attrs["gap_acc_best"] = c["train_acc"][best] - c["val_acc"][best]
        attrs["gap_loss_best"] = c["val_loss"][best] - c["train_loss"][best]
        attrs["gap_acc_last"] = c["train_acc"][-1] - c["val_acc"][-1]
        attrs["gap_loss_last"] = c["val_loss"][-1] - c["train_loss"][-1]
        if "sparsity" in c:
            attrs["sparsity_best"] = c["sparsity"][best]
    attrs.update(extra_attrs or {})
    value = attrs.get("best_val_acc") if state == TrialState.COMPLETE else None
    if state == TrialState.PRUNED and n:
        value = c["val_acc"][-1]
    return optuna.trial.create_trial(
        state=state, value=value, params=params or {}, distributions=distributions or {},
        user_attrs=attrs, intermediate_values={e + 1: v for e, v in enumerate(c["val_acc"])},
    )  # fmt: skip


def synthetic_curves(
    n_epochs: int, strength: float, rng: np.random.Generator, *, sparsity_rate: float = 0.0
) -> dict[str, list[float]]:
    """Curves where a weak regularizer overfits (val loss rises) and a strong one closes it."""
    e = np.arange(1, n_epochs + 1, dtype=float)
    damp = 1.0 / (1.0 + 30.0 * strength)  # how much the run overfits
    train_loss = 2.3 * np.exp(-e / (0.25 * n_epochs)) + 0.05 + 0.3 * (1 - damp)
    val_loss = train_loss + damp * 0.02 * e + rng.normal(0, 0.01, n_epochs)
    train_acc = np.clip(1.0 - 0.4 * train_loss, 0, 1)
    val_acc = np.clip(train_acc - damp * 0.004 * e + rng.normal(0, 0.005, n_epochs), 0, 1)
    sparsity = np.clip(sparsity_rate * strength * 10 * (1 - np.exp(-e / 5)), 0, 1)
    return {
        "train_loss": train_loss.tolist(), "val_loss": val_loss.tolist(),
        "train_acc": train_acc.tolist(), "val_acc": val_acc.tolist(),
        "lr": [0.01] * n_epochs, "sparsity": sparsity.tolist(),
        "sparsity_abs": sparsity.tolist(), "weight_l1": (50 * (1 - sparsity)).tolist(),
        "weight_l2": (5 * damp + 0 * e).tolist(), "grad_norm": [1.0] * n_epochs,
        "epoch_seconds": [0.1] * n_epochs,
    }  # fmt: skip


def _random_trial(
    i: int, n_epochs: int, families: Sequence[str], rng: np.random.Generator, prune_rate: float
) -> FrozenTrial:
    family = families[i % len(families)]
    key = FAMILY_STRENGTH.get(family)
    low, high = (0.05, 0.8) if key == "dropout" else (1e-5, 1e-1)
    strength = float(math.exp(rng.uniform(math.log(low), math.log(high)))) if key else 0.0
    lr = float(10 ** rng.uniform(-3, -1))
    hparams = {"lr": lr, "batch_size": 64.0, **({key: strength} if key else {})}
    pruned = rng.random() < prune_rate
    run = int(rng.integers(3, n_epochs)) if pruned else n_epochs
    curves = synthetic_curves(
        n_epochs, strength, rng, sparsity_rate=1.0 if family == "l1" else 0.05
    )
    curves = {k: v[:run] for k, v in curves.items()}
    return record_trial(
        family=family, curves=curves, hparams=hparams, epochs_max=n_epochs,
        state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
        test_acc=curves["val_acc"][-1] - 0.01,
        params={"regularizer": family, "optimizer.lr": lr, "strength": strength},
        distributions={
            "regularizer": CategoricalDistribution(list(families)),
            "optimizer.lr": FloatDistribution(1e-3, 1e-1, log=True),
            "strength": FloatDistribution(0.0, 1.0),
        },
    )  # fmt: skip


def synthetic_study(
    storage: str | optuna.storages.BaseStorage,
    *,
    study_name: str = "synthetic",
    n_trials: int = 100,
    n_epochs: int = 20,
    families: Sequence[str] = ("none", "l1", "l2", "elastic_net", "dropout", "weight_decay"),
    prune_rate: float = 0.3,
    seed: int = 0,
) -> optuna.Study:
    """Create a study of ``n_trials`` synthetic trials (``study.add_trials``, no training)."""
    rng = np.random.default_rng(seed)
    study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize")
    study.set_user_attr(STUDY_METRIC, "val_acc")
    study.add_trials(
        [_random_trial(i, n_epochs, families, rng, prune_rate) for i in range(n_trials)]
    )
    return study
