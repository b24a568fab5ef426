"""Study database → tidy DataFrames (one row per trial; long-format curves).

A search study ``S`` is read together with its confirmation study ``S.confirm`` when one exists;
naming either one reads both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from optuna.trial import FrozenTrial

from analysis._chance import mark_collapse
from analysis._record import ROW_COLUMNS, as_float, trial_row
from analysis._schema import HPARAM_KEYS
from analysis._storage import (
    list_studies,
    load_study,
    open_storage,
    resolve_storage,
    resolve_study_name,
)
from sweep.record import (
    CURVE_KEYS,
    STUDY_CONFIRM_PLAN,
    STUDY_CONFIRM_SEEDS,
    STUDY_METRIC,
    STUDY_OBJECTIVES,
    confirm_study_name,
    search_study_name,
)

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
_TEXT_COLUMNS = ("state", "stop_reason", "family")


@dataclass
class StudyData:
    """What one read of a study gives: its name, metadata, frozen trials and its companion.

    Attributes:
        name: The study's name.
        directions: ``maximize``/``minimize`` per objective.
        user_attrs: The study's user attributes (``regsweep:*``).
        trials: Its trials.
        confirm: The confirmation study (``<name>.confirm``) when the storage holds one.
        storage: The storage as the analysis opened it (absolute URL or journal path).
        metric_names: Optuna's own metric names, when the study set them.
    """

    name: str
    directions: list[str]
    user_attrs: dict[str, Any]
    trials: list[FrozenTrial] = field(default_factory=list)
    confirm: StudyData | None = None
    storage: str = ""
    metric_names: list[str] | None = None

    @property
    def metric(self) -> str:
        """The optimized metric (``regsweep:metric``), ``value`` for plain Optuna studies."""
        return str(self.user_attrs.get(STUDY_METRIC, "value"))

    @property
    def objectives(self) -> list[str]:
        """Every objective in the order of the trial values (one name per direction)."""
        stored = self.user_attrs.get(STUDY_OBJECTIVES)
        if isinstance(stored, list) and len(stored) == len(self.directions):
            return [str(o) for o in stored]
        if self.metric_names and len(self.metric_names) == len(self.directions):
            return list(self.metric_names)
        if len(self.directions) <= 1:
            return [self.metric]
        return [f"objective {i}" for i in range(len(self.directions))]

    @property
    def confirm_plan(self) -> list[dict[str, Any]]:
        """The arms of a confirmation study (``regsweep:confirm_plan``); [] otherwise."""
        plan = self.user_attrs.get(STUDY_CONFIRM_PLAN)
        return [dict(a) for a in plan if isinstance(a, dict)] if isinstance(plan, list) else []

    @property
    def confirm_seeds(self) -> list[int]:
        """The seeds every arm of a confirmation study runs on; [] otherwise."""
        seeds = self.user_attrs.get(STUDY_CONFIRM_SEEDS)
        return [int(s) for s in seeds] if isinstance(seeds, list) else []


def _read_one(opened: Any, name: str, storage: str) -> StudyData:
    loaded = load_study(opened, name)
    return StudyData(
        name=name,
        directions=[d.name.lower() for d in loaded.directions],
        user_attrs=dict(loaded.user_attrs),
        trials=loaded.get_trials(deepcopy=False),
        storage=storage,
        metric_names=loaded.metric_names,
    )


def read_study(
    storage: str | os.PathLike[str] | None = None, study: str | None = None
) -> StudyData:
    """Read a search study and its confirmation study, once.

    ``study`` may name the search study ``S`` or its companion ``S.confirm``; both read ``S``
    with ``S.confirm`` attached as :attr:`StudyData.confirm`. ``None`` picks the most recent
    study, and a confirmation study stands for its search study.

    Raises:
        StorageNotFoundError: the storage does not exist or is not a study database.
        StudyNotFoundError: the name is not in the storage (the message lists those that are).
    """
    resolved = resolve_storage(storage)
    opened = open_storage(storage)
    name = resolve_study_name(opened, study)
    names = set(list_studies(opened))
    search = search_study_name(name)
    companion = confirm_study_name(search)
    confirm = _read_one(opened, companion, resolved) if companion in names else None
    if search in names:
        data = _read_one(opened, search, resolved)
    else:  # only the companion is stored: no search trials to show
        data = StudyData(
            name=search,
            directions=confirm.directions if confirm else [],
            user_attrs={},
            storage=resolved,
        )
    data.confirm = confirm
    return data


def trials_frame(
    trials: Sequence[FrozenTrial], *, objectives: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per trial: state, stop reason, family, the final model's metrics and more.

    Columns: ``trial, state, stop_reason, family, value, strength, record_version``; the final
    model's ``val_acc, val_loss, train_acc, train_loss, gap_acc, gap_loss, test_acc, test_loss,
    sparsity, sparsity_abs, dead_units, weight_l1, weight_l2, chance_acc``; ``at_chance``
    (boolean: the validation accuracy is at chance level) and ``collapsed`` (at chance where
    some completed run of the study learned: :func:`analysis._chance.mark_collapse`);
    ``final_epoch``; the secondary, hindsight ``best_epoch`` and
    ``best_epoch_*``; ``epochs_run, epochs_max, seed, run_seconds, duration_s, datetime_start,
    counted`` (False for interrupted/over-budget trials); ``hp_*`` (``hparams``) and ``params_*``.

    Version-1 records load too (see :mod:`analysis._record`). Missing attributes become NaN; plain
    Optuna studies give the state, ``value`` and ``params_*`` with NaN metrics. With two or more
    ``objectives``, ``objective_<name>`` columns hold the trial's values in that order.
    """
    rows = [trial_row(t) for t in trials]
    multi = list(objectives or []) if len(objectives or []) >= 2 else []
    for row, t in zip(rows, trials, strict=True):
        values = list(t.values or [])
        for i, name in enumerate(multi):
            row[f"objective_{name}"] = as_float(values[i]) if i < len(values) else np.nan
    columns = [*ROW_COLUMNS, *(f"hp_{k}" for k in HPARAM_KEYS), *(f"objective_{o}" for o in multi)]
    frame = pd.DataFrame(rows)
    for col in columns:
        if col not in frame.columns:
            frame[col] = pd.Series(dtype=object if col in _TEXT_COLUMNS else float)
    params = sorted(c for c in frame.columns if c.startswith("params_"))
    frame = frame[[*columns, *params]]
    frame = mark_collapse(frame)
    frame = frame.astype({"trial": "int64", "record_version": "Int64"})
    return frame.sort_values("trial", kind="stable").reset_index(drop=True)


def _split_metric(key: str) -> tuple[str, str]:
    for split in ("train", "val", "test"):
        if key.startswith(f"{split}_"):
            return split, key[len(split) + 1 :]
    return "other", key


def curves_frame(trials: Sequence[FrozenTrial], *, objective: str = "objective") -> pd.DataFrame:
    """Long-format curves: columns ``trial, epoch, split, metric, value``.

    ``train_loss`` becomes split ``train``/metric ``loss``; per-model series (``lr``,
    ``weight_l1``, ``sparsity``, ``dead_units``, ...) get split ``other``. Each trial's
    intermediate values are added as split ``intermediate`` with metric ``objective``.
    """
    parts: list[tuple[np.ndarray, np.ndarray, str, str, np.ndarray]] = []
    for t in trials:
        curves = t.user_attrs.get("curves")
        if isinstance(curves, dict):
            epochs = np.asarray(curves.get("epoch") or [], dtype=float)
            for key in CURVE_KEYS[1:]:
                values = np.asarray([as_float(v) for v in curves.get(key) or []], dtype=float)
                n = min(len(values), len(epochs)) if len(epochs) else len(values)
                ep = epochs[:n] if len(epochs) else np.arange(1, n + 1, dtype=float)
                if n:
                    parts.append((np.full(n, t.number), ep, *_split_metric(key), values[:n]))
        if t.intermediate_values:
            steps = np.fromiter(t.intermediate_values.keys(), dtype=float)
            vals = np.fromiter(t.intermediate_values.values(), dtype=float)
            parts.append((np.full(len(steps), t.number), steps, "intermediate", objective, vals))
    if not parts:
        dtypes = ("int64", "int64", "object", "object", "float64")
        return pd.DataFrame(
            {c: pd.Series(dtype=d) for c, d in zip(CURVE_COLUMNS, dtypes, strict=True)}
        )
    sizes = [len(p[1]) for p in parts]
    return pd.DataFrame(
        {
            "trial": np.concatenate([p[0] for p in parts]).astype("int64"),
            "epoch": np.concatenate([p[1] for p in parts]).astype("int64"),
            "split": np.repeat([p[2] for p in parts], sizes).astype(object),
            "metric": np.repeat([p[3] for p in parts], sizes).astype(object),
            "value": np.concatenate([p[4] for p in parts]),
        }
    )


def load_trials(
    storage: str | os.PathLike[str] | None = None, study: str | None = None
) -> pd.DataFrame:
    """Read a search study and return :func:`trials_frame` of its trials.

    Example:
        >>> df = load_trials("outputs/studies.db")  # doctest: +SKIP
        >>> df.groupby("family")["gap_acc"].median()  # doctest: +SKIP
    """
    data = read_study(storage, study)
    return trials_frame(data.trials, objectives=data.objectives)


def load_curves(
    storage: str | os.PathLike[str] | None = None, study: str | None = None
) -> pd.DataFrame:
    """Read a search study and return :func:`curves_frame` of its trials."""
    data = read_study(storage, study)
    return curves_frame(data.trials, objective=data.metric)
