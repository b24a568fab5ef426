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

__all__ = ["ARM_COLUMNS", "RUN_COLUMNS", "arms_frame", "confirm_frame", "load_confirm"]

ARM_COLUMNS = ("arm", "label", "family", "role", "rank", "source_trial", "baseline")
RUN_COLUMNS = (
    "trial", *ARM_COLUMNS, "seed", "state", "stop_reason", "counted", *METRIC_COLUMNS,
    "at_chance", "collapsed", "final_epoch", "best_epoch", *BEST_EPOCH_COLUMNS, "epochs_run",
)  # fmt: skip
_TEXT = ("arm", "label", "family", "role", "baseline", "state", "stop_reason")


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c in _TEXT else float) for c in columns})


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def arms_frame(plan: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per arm of ``regsweep:confirm_plan``: ``arm, label, family, role, rank,
    source_trial, baseline`` (the baseline arm a finalist is compared with; None otherwise)."""
    rows = [{"arm": _text(a.get("arm")), "label": _text(a.get("label")),
             "family": _text(a.get("family")), "role": _text(a.get("role")),
             "rank": as_float(a.get("rank")), "source_trial": as_float(a.get("source_trial")),
             "baseline": _text(a.get("baseline"))}
            for a in plan if a.get("arm") is not None]  # fmt: skip
    return pd.DataFrame(rows, columns=list(ARM_COLUMNS)) if rows else _empty(ARM_COLUMNS)


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
