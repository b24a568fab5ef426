"""One stored trial → one flat row, for both record versions (docs/trial-record.md).

Version 2 stores the final model's metrics under their own names. Version 1 (no
``record_version``) stored best-epoch figures (``best_val_acc``, ``gap_acc_best``, ``test_acc``
at the best epoch, ...): they become ``best_epoch_*`` columns, and the final model's metrics are
read from the last entry of its ``curves`` (its test accuracy is unknown: NaN).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from analysis._schema import (
    BEST_EPOCH_COLUMNS,
    HPARAM_KEYS,
    METRIC_COLUMNS,
    V1_BEST_EPOCH,
    V1_CHANCE_ACC,
)
from sweep.hparams import FAMILY_STRENGTH
from sweep.record import NOT_BUDGETED, TRIAL_AUDIT, StopReason, collapsed

__all__ = ["ROW_COLUMNS", "as_float", "final_metrics", "record_version", "trial_row"]

ROW_COLUMNS = (
    "trial",
    "state",
    "stop_reason",
    "family",
    "value",
    "strength",
    "record_version",
    *METRIC_COLUMNS,
    "at_chance",
    "collapsed",
    "final_epoch",
    "best_epoch",
    *BEST_EPOCH_COLUMNS,
    "epochs_run",
    "epochs_max",
    "seed",
    "run_seconds",
    "duration_s",
    "datetime_start",
    "counted",
    "audit_pruned_at",
)
_STATE_REASON = {
    TrialState.COMPLETE: StopReason.COMPLETED.value,
    TrialState.PRUNED: StopReason.PRUNED.value,
    TrialState.FAIL: StopReason.FAILED.value,
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}
_LAST_FROM_CURVES = (
    "val_acc",
    "val_loss",
    "train_acc",
    "train_loss",
    "sparsity",
    "sparsity_abs",
    "dead_units",
    "weight_l1",
    "weight_l2",
)


def as_float(value: Any) -> float:
    """``value`` as a float; NaN for None, text and anything else that is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def record_version(attrs: Mapping[str, Any]) -> int:
    """2 for a version-2 record, 1 otherwise (version 1 had no ``record_version``)."""
    return int(as_float(attrs.get("record_version")) == 2) + 1


def _last(curves: Mapping[str, Any], key: str) -> float:
    values = curves.get(key)
    return as_float(values[-1]) if isinstance(values, list) and values else math.nan


def final_metrics(attrs: Mapping[str, Any]) -> dict[str, float]:
    """The final model's metrics (``METRIC_COLUMNS``) and ``at_chance`` (1.0 when its validation
    accuracy is at chance level, NaN when unknown; the record stores it as ``collapsed``).
    Whether that is a collapse depends on the study: :func:`analysis._chance.mark_collapse`.

    Version 2: the stored values. Version 1: the last epoch of ``curves``, no test metrics, and
    the collapse test against a chance level of 0.1 unless ``chance_acc`` is stored.
    """
    if record_version(attrs) == 2:
        out = {k: as_float(attrs.get(k)) for k in METRIC_COLUMNS}
    else:
        curves = _mapping(attrs.get("curves"))
        out = {k: math.nan for k in METRIC_COLUMNS}
        out.update({k: _last(curves, k) for k in _LAST_FROM_CURVES})
        out["gap_acc"] = out["train_acc"] - out["val_acc"]
        out["gap_loss"] = out["val_loss"] - out["train_loss"]
        out["chance_acc"] = as_float(attrs.get("chance_acc"))
    stored = attrs.get("collapsed")
    if isinstance(stored, bool):
        out["at_chance"] = float(stored)
    elif math.isfinite(out["val_acc"]):
        chance = out["chance_acc"] if math.isfinite(out["chance_acc"]) else V1_CHANCE_ACC
        out["at_chance"] = float(collapsed(out["val_acc"], chance))
    else:
        out["at_chance"] = math.nan
    return out


def _best_epoch_metrics(attrs: Mapping[str, Any]) -> dict[str, float]:
    if record_version(attrs) == 2:
        return {k: as_float(attrs.get(k)) for k in BEST_EPOCH_COLUMNS}
    by_new = {new: old for old, new in V1_BEST_EPOCH.items()}
    return {
        k: as_float(attrs.get(by_new[k])) if k in by_new else math.nan for k in BEST_EPOCH_COLUMNS
    }


def _family(t: FrozenTrial, attrs: Mapping[str, Any]) -> str:
    confirm = _mapping(attrs.get("confirm"))
    family = attrs.get("family") or _mapping(attrs.get("choices")).get("regularizer")
    family = family or confirm.get("family")
    if family is None and isinstance(t.params.get("regularizer"), str):
        family = t.params["regularizer"]
    return str(family) if family is not None else "unknown"


def trial_row(t: FrozenTrial) -> dict[str, Any]:
    """A trial as one flat dict with every :data:`ROW_COLUMNS` key, ``hp_*`` and ``params_*``."""
    attrs = t.user_attrs
    curves = _mapping(attrs.get("curves"))
    hparams = _mapping(attrs.get("hparams"))
    reason = attrs.get("stop_reason") or _STATE_REASON.get(t.state, t.state.name.lower())
    row: dict[str, Any] = {
        "trial": t.number,
        "state": t.state.name,
        "stop_reason": str(reason),
        "family": _family(t, attrs),
        "value": as_float(t.values[0]) if t.values else math.nan,
        "record_version": record_version(attrs) if attrs else math.nan,
    }
    row.update(final_metrics(attrs))
    row.update(_best_epoch_metrics(attrs))
    for key in ("best_epoch", "epochs_run", "epochs_max", "seed", "run_seconds"):
        row[key] = as_float(attrs.get(key))
    if math.isnan(row["epochs_run"]):
        row["epochs_run"] = float(len(curves.get("epoch") or t.intermediate_values))
    row["final_epoch"] = as_float(attrs.get("final_epoch", row["epochs_run"] if curves else None))
    row["duration_s"] = t.duration.total_seconds() if t.duration is not None else math.nan
    row["datetime_start"] = t.datetime_start
    row["counted"] = row["stop_reason"] not in NOT_BUDGETED
    # an audited trial: the epoch after which the pruner would have stopped it
    row["audit_pruned_at"] = as_float(_mapping(attrs.get(TRIAL_AUDIT)).get("would_prune_at"))
    row.update({f"hp_{k}": as_float(hparams.get(k)) for k in HPARAM_KEYS})
    own = FAMILY_STRENGTH.get(row["family"])
    row["strength"] = row[f"hp_{own}"] if own else math.nan
    row.update({f"params_{k}": v for k, v in t.params.items()})
    return row
