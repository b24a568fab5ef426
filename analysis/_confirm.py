"""The confirmation study → its arms and one row per run (arm × seed)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from optuna.trial import FrozenTrial

from analysis._chance import mark_collapse
from analysis._load import read_study
from analysis._record import as_float, trial_row
from analysis._schema import BEST_EPOCH_COLUMNS, METRIC_COLUMNS
from sweep.record import TRIAL_CONFIRM
from sweep.regularizers import family_strength, value_at

__all__ = [
    "ARM_COLUMNS",
    "PLAN_COLUMNS",
    "RUN_COLUMNS",
    "arms_frame",
    "confirm_frame",
    "load_confirm",
]

ARM_COLUMNS = ("arm", "label", "family", "role", "rank", "source_trial", "baseline")
PLAN_COLUMNS = (
    *ARM_COLUMNS,
    "source_state",
    "strength",
    "dose_key",
    "dose_strength",
    "dose_finalist",
)
"""An arm's columns in :func:`arms_frame`: how its source trial ended in the search, and for a
dose-response arm, which strength it sets (``dose_key``), to what, on whose path; ``strength``:
the value of the arm's family's own strength in its config (NaN for a family without one)."""
RUN_COLUMNS = (
    "trial",
    *ARM_COLUMNS,
    "seed",
    "state",
    "stop_reason",
    "counted",
    *METRIC_COLUMNS,
    "at_chance",
    "collapsed",
    "final_epoch",
    "best_epoch",
    *BEST_EPOCH_COLUMNS,
    "epochs_run",
)
_TEXT = (
    "arm",
    "label",
    "family",
    "role",
    "baseline",
    "state",
    "stop_reason",
    "source_state",
    "dose_key",
    "dose_finalist",
)


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c in _TEXT else float) for c in columns})


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def arms_frame(plan: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per arm of ``regsweep:confirm_plan``: :data:`PLAN_COLUMNS` (``baseline``: the
    baseline arm a finalist or a dose-response arm is compared with; None otherwise)."""
    rows = [
        {
            "arm": _text(a.get("arm")),
            "label": _text(a.get("label")),
            "family": _text(a.get("family")),
            "role": _text(a.get("role")),
            "rank": as_float(a.get("rank")),
            "source_trial": as_float(a.get("source_trial")),
            "baseline": _text(a.get("baseline")),
            "source_state": _text(a.get("source_state", "COMPLETE")),
            "strength": _own_strength(a),
            "dose_key": _text(_mapping(a.get("dose")).get("key")),
            "dose_strength": as_float(_mapping(a.get("dose")).get("strength")),
            "dose_finalist": _text(_mapping(a.get("dose")).get("finalist")),
        }
        for a in plan
        if a.get("arm") is not None
    ]
    return pd.DataFrame(rows, columns=list(PLAN_COLUMNS)) if rows else _empty(PLAN_COLUMNS)


def _own_strength(arm: Mapping[str, Any]) -> float:
    """The arm's family's own strength as its config sets it."""
    strength = family_strength(str(arm.get("family")))
    if strength is None:
        return math.nan
    return as_float(value_at(arm.get("config"), strength.path))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def confirm_frame(
    trials: Sequence[FrozenTrial], plan: Sequence[Mapping[str, Any]] = ()
) -> pd.DataFrame:
    """One row per confirmation run: its arm (from the trial's ``confirm`` attribute, completed
    by the plan: ``rank``, ``baseline``), ``seed``, ``state``, ``stop_reason``, ``counted`` and the
    final model's metrics (the columns of :func:`analysis.trials_frame` with the same names).

    Trials without a ``confirm`` attribute are left out.
    """
    arms = {a["arm"]: a for a in arms_frame(plan).to_dict("records")}
    rows = []
    for t in trials:
        confirm = t.user_attrs.get(TRIAL_CONFIRM)
        if not isinstance(confirm, Mapping) or confirm.get("arm") is None:
            continue
        row = trial_row(t)
        planned = arms.get(str(confirm["arm"]), {})
        for key in ARM_COLUMNS:
            value = confirm.get(key, planned.get(key))
            if key in ("rank", "source_trial"):
                row[key] = as_float(value)
            else:
                row[key] = _text(value)
        seed = as_float(confirm.get("seed"))
        row["seed"] = seed if not math.isnan(seed) else row["seed"]
        rows.append(row)
    if not rows:
        return _empty(RUN_COLUMNS)
    frame = mark_collapse(pd.DataFrame(rows))[list(RUN_COLUMNS)]
    return frame.sort_values(["arm", "seed", "trial"], kind="stable").reset_index(drop=True)


def load_confirm(
    storage: str | os.PathLike[str] | None = None, study: str | None = None
) -> pd.DataFrame:
    """Read the confirmation runs of a study (``S`` or ``S.confirm``): :func:`confirm_frame`.

    Empty (with its columns) when the study has no confirmation study.

    Example:
        >>> runs = load_confirm("outputs/studies.db", "mnist")  # doctest: +SKIP
        >>> runs.groupby("label")["val_acc"].mean()  # doctest: +SKIP
    """
    confirm = read_study(storage, study).confirm
    if confirm is None:
        return confirm_frame([])
    return confirm_frame(confirm.trials, confirm.confirm_plan)
