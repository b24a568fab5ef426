"""Study database → tidy DataFrames (one row per trial; long-format curves)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from analysis._schema import (
    CURVE_KEYS,
    FAMILY_STRENGTH,
    HPARAM_KEYS,
    NOT_BUDGETED,
    STUDY_METRIC,
    TRIAL_FLOAT_ATTRS,
    TRIAL_INT_ATTRS,
)
from analysis._storage import load_study, open_storage, resolve_study_name

__all__ = [
    "CURVE_COLUMNS",
    "StudyData",
    "curves_frame",
    "load_curves",
    "load_trials",
    "read_study",
    "trials_frame",
]

CURVE_COLUMNS = ("trial", "epoch", "split", "metric", "value")
_BASE_COLUMNS = (
    "trial", "state", "stop_reason", "family", "value", "strength",
    *TRIAL_FLOAT_ATTRS, *TRIAL_INT_ATTRS,
    "final_val_acc", "final_val_loss", "final_train_acc", "final_train_loss",
    "duration_s", "datetime_start", "counted",
)  # fmt: skip
_STATE_REASON = {
    TrialState.COMPLETE: "completed",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


@dataclass
class StudyData:
    """What one read of a study gives: its name, metadata and frozen trials."""

    name: str
    directions: list[str]
    user_attrs: dict[str, Any]
    trials: list[FrozenTrial] = field(default_factory=list)

    @property
    def metric(self) -> str:
        """The optimized metric (``regsweep:metric``), ``value`` for plain Optuna studies."""
        return str(self.user_attrs.get(STUDY_METRIC, "value"))


def read_study(
    storage: str | os.PathLike[str] | None = None, study: str | None = None
) -> StudyData:
    """Read a study once (default storage, most recent study when ``study`` is None)."""
    opened = open_storage(storage)
    name = resolve_study_name(opened, study)
    loaded = load_study(opened, name)
    return StudyData(
        name=name,
        directions=[d.name.lower() for d in loaded.directions],
        user_attrs=dict(loaded.user_attrs),
        trials=loaded.get_trials(deepcopy=False),
    )


def _float(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def _last(curves: dict[str, Any], key: str) -> float:
    values = curves.get(key)
    if isinstance(values, list) and values:
        return _float(values[-1])
    return math.nan


def _trial_row(t: FrozenTrial) -> dict[str, Any]:
    ua = t.user_attrs
    raw_curves = ua.get("curves")
    curves: dict[str, Any] = raw_curves if isinstance(raw_curves, dict) else {}
    reason = ua.get("stop_reason") or _STATE_REASON.get(t.state, t.state.name.lower())
    family = ua.get("family") or (ua.get("choices") or {}).get("regularizer")
    if family is None and isinstance(t.params.get("regularizer"), str):
        family = t.params["regularizer"]
    raw_hparams = ua.get("hparams")
    hparams: dict[str, Any] = raw_hparams if isinstance(raw_hparams, dict) else {}
    row: dict[str, Any] = {
        "trial": t.number,
        "state": t.state.name,
        "stop_reason": str(reason),
        "family": str(family) if family is not None else "unknown",
        "value": _float(t.values[0]) if t.values else math.nan,
    }
    row.update({k: _float(ua.get(k)) for k in TRIAL_FLOAT_ATTRS})
    row.update({k: _float(ua.get(k)) for k in TRIAL_INT_ATTRS})
    if math.isnan(row["epochs_run"]):
        row["epochs_run"] = float(len(curves.get("epoch") or t.intermediate_values))
    for split in ("val", "train"):
        for metric in ("acc", "loss"):
            row[f"final_{split}_{metric}"] = _last(curves, f"{split}_{metric}")
    row["duration_s"] = t.duration.total_seconds() if t.duration is not None else math.nan
    row["datetime_start"] = t.datetime_start
    row["counted"] = row["stop_reason"] not in NOT_BUDGETED
    row.update({f"hp_{k}": _float(hparams.get(k)) for k in HPARAM_KEYS})
    key = FAMILY_STRENGTH.get(row["family"])
    row["strength"] = row[f"hp_{key}"] if key else math.nan
    row.update({f"params_{k}": v for k, v in t.params.items()})
    return row


def trials_frame(trials: Sequence[FrozenTrial]) -> pd.DataFrame:
    """One row per trial: state, stop reason, family, metrics, gap, hparams and params.

    Missing attributes become NaN; plain Optuna studies give the state, ``value`` and
    ``params_*`` columns with NaN metrics. ``strength`` is the family's own λ (e.g. ``hp_l1``
    for family ``l1``); ``counted`` is False for ``interrupted``/``over_budget`` trials.
    """
    rows = [_trial_row(t) for t in trials]
    columns = [*_BASE_COLUMNS, *(f"hp_{k}" for k in HPARAM_KEYS)]
    frame = pd.DataFrame(rows)
    for col in columns:
        if col not in frame.columns:
            text = col in ("state", "stop_reason", "family")
            frame[col] = pd.Series(dtype=object if text else float)
    params = sorted(c for c in frame.columns if c.startswith("params_"))
    frame = frame[[*columns, *params]].astype({"trial": "int64"})
    return frame.sort_values("trial", kind="stable").reset_index(drop=True)


def _split_metric(key: str) -> tuple[str, str]:
    for split in ("train", "val", "test"):
        if key.startswith(f"{split}_"):
            return split, key[len(split) + 1 :]
    return "other", key


def curves_frame(trials: Sequence[FrozenTrial], *, objective: str = "objective") -> pd.DataFrame:
    """Long-format curves: columns ``trial, epoch, split, metric, value``.

    ``train_loss`` becomes split ``train``/metric ``loss``; per-model series (``lr``,
    ``weight_l1``, ``sparsity``, ...) get split ``other``. Each trial's intermediate values are
    added as split ``intermediate`` with metric ``objective``.
    """
    parts: list[tuple[np.ndarray, np.ndarray, str, str, np.ndarray]] = []
    for t in trials:
        curves = t.user_attrs.get("curves")
        if isinstance(curves, dict):
            epochs = np.asarray(curves.get("epoch") or [], dtype=float)
            for key in CURVE_KEYS[1:]:
                values = np.asarray([_float(v) for v in curves.get(key) or []], dtype=float)
                n = min(len(values), len(epochs)) if len(epochs) else len(values)
                ep = epochs[:n] if len(epochs) else np.arange(1, n + 1, dtype=float)
                if n:
                    parts.append((np.full(n, t.number), ep, *_split_metric(key), values[:n]))
        if t.intermediate_values:
            steps = np.fromiter(t.intermediate_values.keys(), dtype=float)
            vals = np.fromiter(t.intermediate_values.values(), dtype=float)
            parts.append((np.full(len(steps), t.number), steps, "intermediate", objective, vals))
    if not parts:
        return pd.DataFrame(
            {
                c: pd.Series(dtype=d)
                for c, d in zip(
                    CURVE_COLUMNS, ("int64", "int64", "object", "object", "float64"), strict=True
                )
            }
        )
    sizes = [len(p[1]) for p in parts]
    return pd.DataFrame({
        "trial": np.concatenate([p[0] for p in parts]).astype("int64"),
        "epoch": np.concatenate([p[1] for p in parts]).astype("int64"),
        "split": np.repeat([p[2] for p in parts], sizes).astype(object),
        "metric": np.repeat([p[3] for p in parts], sizes).astype(object),
        "value": np.concatenate([p[4] for p in parts]),
    })  # fmt: skip


def load_trials(
    storage: str | os.PathLike[str] | None = None, study: str | None = None
) -> pd.DataFrame:
    """Read a study and return :func:`trials_frame` of its trials.

    Example:
        >>> df = load_trials("outputs/studies.db")  # doctest: +SKIP
        >>> df.groupby("family")["gap_acc_best"].median()  # doctest: +SKIP
    """
    return trials_frame(read_study(storage, study).trials)


def load_curves(
    storage: str | os.PathLike[str] | None = None, study: str | None = None
) -> pd.DataFrame:
    """Read a study and return :func:`curves_frame` of its trials."""
    data = read_study(storage, study)
    return curves_frame(data.trials, objective=data.metric)
