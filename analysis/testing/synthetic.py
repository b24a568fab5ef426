"""Synthetic regsweep search studies shaped like docs/trial-record.md (version 2), for tests,
demos and benchmarks: trials whose record is derived from their curves. Confirmation studies:
:mod:`analysis.testing.synthetic_confirm`."""

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

from sweep.hparams import FAMILY_STRENGTH, HPARAMS
from sweep.record import (
    RECORD_VERSION,
    STUDY_METRIC,
    STUDY_OBJECTIVES,
    STUDY_ROLE,
    STUDY_SEARCH_SPACE,
    collapsed,
)

__all__ = ["record_trial", "synthetic_curves", "synthetic_study"]

_METRICS = ("val_acc", "val_loss", "train_acc", "train_loss")
_WEIGHTS = ("sparsity", "sparsity_abs", "dead_units", "weight_l1", "weight_l2")


def _json_float(value: float) -> float | None:
    """Record floats outside ``curves`` are finite or null (docs/trial-record.md)."""
    return float(value) if math.isfinite(value) else None


def _at(curves: Mapping[str, list[float]], key: str, i: int) -> float:
    values = curves.get(key) or []
    return float(values[i]) if -len(values) <= i < len(values) else math.nan


def _final_attrs(c: Mapping[str, list[float]], f: int, chance_acc: float) -> dict[str, Any]:
    final = {k: _at(c, k, f) for k in (*_METRICS, *_WEIGHTS)}
    final["gap_acc"] = final["train_acc"] - final["val_acc"]
    final["gap_loss"] = final["val_loss"] - final["train_loss"]
    out: dict[str, Any] = {k: _json_float(v) for k, v in final.items()}
    out["chance_acc"] = chance_acc
    if math.isfinite(final["val_acc"]):
        out["collapsed"] = collapsed(final["val_acc"], chance_acc)
    return out


def _best_epoch_attrs(c: Mapping[str, list[float]]) -> dict[str, Any]:
    acc = np.asarray(c["val_acc"], dtype=float)
    if not np.isfinite(acc).any():
        return {}
    b = int(np.nanargmax(acc))
    out: dict[str, Any] = {"best_epoch": b + 1}
    for k in _METRICS:
        out[f"best_epoch_{k}"] = _json_float(_at(c, k, b))
    out["best_epoch_gap_acc"] = _json_float(_at(c, "train_acc", b) - _at(c, "val_acc", b))
    out["best_epoch_gap_loss"] = _json_float(_at(c, "val_loss", b) - _at(c, "train_loss", b))
    return out


def record_trial(
    *,
    family: str,
    curves: Mapping[str, Sequence[float]],
    hparams: Mapping[str, float] | None = None,
    state: TrialState = TrialState.COMPLETE,
    stop_reason: str | None = None,
    epochs_max: int | None = None,
    test_acc: float | None = None,
    test_loss: float | None = None,
    params: dict[str, Any] | None = None,
    distributions: dict[str, BaseDistribution] | None = None,
    seed: int = 0,
    chance_acc: float = 0.1,
    final_epoch: int | None = None,
    values: Sequence[float] | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
) -> FrozenTrial:
    """A finished trial with a version-2 record derived from ``curves``.

    ``curves`` needs ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc`` (same length);
    ``sparsity``, ``dead_units``, ... are optional. The final model is the last epoch's (or
    ``final_epoch``'s, as early stopping restores); ``test_acc``/``test_loss`` are its test
    metrics. The best epoch (highest ``val_acc``) fills the secondary ``best_epoch_*``. The
    trial's value is the final ``val_acc`` (``values`` for a multi-objective trial; the last
    reported value for a pruned one).
    """
    c = {k: [float(v) for v in vals] for k, vals in curves.items()}
    n = len(c["val_acc"])
    c.setdefault("epoch", [float(e) for e in range(1, n + 1)])
    f = (final_epoch or n) - 1
    attrs: dict[str, Any] = {
        "record_version": RECORD_VERSION,
        "curves": c,
        "family": family,
        "final_epoch": f + 1,
        "epochs_run": n,
        "epochs_max": epochs_max if epochs_max is not None else n,
        "hparams": {k: float((hparams or {}).get(k, 0.0)) for k in HPARAMS},
        "stop_reason": stop_reason
        or {TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}.get(state, "completed"),
        "choices": {"regularizer": family},
        "test_acc": test_acc,
        "test_loss": test_loss,
        "run_seconds": 0.1 * n,
        "seed": seed,
    }
    if n:
        attrs.update(_final_attrs(c, f, chance_acc))
        attrs.update(_best_epoch_attrs(c))
    attrs.update(extra_attrs or {})
    several = list(values) if values is not None and len(values) >= 2 else None
    value: float | None = None
    if state == TrialState.COMPLETE and several is None:
        value = attrs.get("val_acc")
    if state == TrialState.PRUNED and n:
        value = c["val_acc"][-1]
    multi = several is not None
    return optuna.trial.create_trial(
        state=state,
        value=value,
        values=several if state == TrialState.COMPLETE else None,
        params=params or {},
        distributions=distributions or {},
        user_attrs=attrs,
        intermediate_values={} if multi else {e + 1: v for e, v in enumerate(c["val_acc"])},
    )


def synthetic_curves(
    n_epochs: int,
    strength: float,
    rng: np.random.Generator,
    *,
    sparsity_rate: float = 0.0,
    collapse: bool = False,
) -> dict[str, list[float]]:
    """Curves where a weak regularizer overfits (val loss rises) and a strong one closes it;
    ``collapse``: the network ends at chance level (every unit dead)."""
    e = np.arange(1, n_epochs + 1, dtype=float)
    damp = 1.0 / (1.0 + 30.0 * strength)  # how much the run overfits
    train_loss = 2.3 * np.exp(-e / (0.25 * n_epochs)) + 0.05 + 0.3 * (1 - damp)
    val_loss = train_loss + damp * 0.02 * e + rng.normal(0, 0.01, n_epochs)
    train_acc = np.clip(1.0 - 0.4 * train_loss, 0, 1)
    val_acc = np.clip(train_acc - damp * 0.004 * e + rng.normal(0, 0.005, n_epochs), 0, 1)
    sparsity = np.clip(sparsity_rate * strength * 10 * (1 - np.exp(-e / 5)), 0, 1)
    dead = np.clip(0.5 * sparsity, 0, 1)
    if collapse:
        train_acc = val_acc = np.full(n_epochs, 0.1) + rng.normal(0, 0.003, n_epochs)
        train_loss = val_loss = np.full(n_epochs, 2.3)
        sparsity, dead = np.full(n_epochs, 0.99), np.ones(n_epochs)
    return {
        "train_loss": train_loss.tolist(),
        "val_loss": val_loss.tolist(),
        "train_acc": train_acc.tolist(),
        "val_acc": val_acc.tolist(),
        "lr": [0.01] * n_epochs,
        "sparsity": sparsity.tolist(),
        "sparsity_abs": sparsity.tolist(),
        "dead_units": dead.tolist(),
        "weight_l1": (50 * (1 - sparsity)).tolist(),
        "weight_l2": (5 * damp + 0 * e).tolist(),
        "grad_norm": [1.0] * n_epochs,
        "epoch_seconds": [0.1] * n_epochs,
    }


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
        from analysis.testing.synthetic_confirm import (
            synthetic_confirmation,  # it builds on this module
        )

        synthetic_confirmation(storage, study_name, seeds=confirm_seeds, rng_seed=seed)
    return study
