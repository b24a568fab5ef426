"""A synthetic trial's record (docs/trial-record.md, version 2) derived from its curves, for the
synthetic search and confirmation studies of :mod:`analysis.testing`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from sweep.hparams import HPARAMS
from sweep.record import (
    RECORD_VERSION,
    collapsed,
)

__all__ = ["record_trial", "synthetic_curves"]

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
