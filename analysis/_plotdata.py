"""Trial and curve DataFrames → the data each figure draws (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis._format import compact
from analysis._heatmap import heatmap_data
from analysis._tables import result_trials, unjudged_families
from sweep.hparams import STRENGTH_KEYS

__all__ = [
    "PENALTY_KEYS",
    "best_curves_data",
    "compact",
    "dropout_data",
    "gap_vs_strength_data",
    "heatmap_data",
    "history_data",
    "intermediate_data",
    "pareto_data",
    "sparsity_data",
    "strength_families_unshown",
    "varying_strengths",
]

# The penalties whose sparsity the L1-vs-L2 figure compares (``hparams`` keys).
PENALTY_KEYS = ("l1", "l2")


def varying_strengths(done: pd.DataFrame, keys: tuple[str, ...] = STRENGTH_KEYS) -> list[str]:
    """The ``hparams`` keys among ``keys`` that take two or more values over ``done``."""
    return [k for k in keys if f"hp_{k}" in done and done[f"hp_{k}"].nunique() >= 2]


def _by_strength(done: pd.DataFrame, keys: list[str], values: dict[str, str]) -> pd.DataFrame:
    """Long format: one row per (trial, key) with ``hp_<key> > 0``; ``values`` renames columns.

    Rows whose first value is not finite are left out.
    """
    first = next(iter(values))
    parts = []
    for key in keys:
        keep = (done[f"hp_{key}"] > 0) & np.isfinite(done[first])
        part = done.loc[keep, ["trial", "family", f"hp_{key}", *values]]
        parts.append(part.rename(columns={f"hp_{key}": "strength", **values}).assign(param=key))
    columns = ["trial", "family", "param", "strength", *values.values()]
    if not parts:
        return pd.DataFrame(
            {c: pd.Series(dtype=object if c in ("family", "param") else float) for c in columns}
        )
    return pd.concat(parts, ignore_index=True)[columns]


def gap_vs_strength_data(trials: pd.DataFrame) -> pd.DataFrame:
    """Final gap against every λ that varies: ``trial, family, param, strength, gap, val_acc,
    collapsed``.

    One row per result trial and strength hyperparameter (``sweep.hparams.STRENGTH_KEYS``) that
    takes two or more values over the result trials, where the trial's value is > 0. A cocktail
    trial appears once per strength it searched. ``gap`` is the final model's ``gap_acc``;
    ``collapsed`` marks a model at chance level (its gap near 0 means it learned nothing).
    """
    done = result_trials(trials)
    out = _by_strength(done, varying_strengths(done), {"gap_acc": "gap", "val_acc": "val_acc"})
    flags = done.set_index("trial")["collapsed"].fillna(False).astype(bool)
    out["collapsed"] = out["trial"].map(flags).fillna(False).astype(bool)
    return out.astype({"trial": "int64"}).reset_index(drop=True)


def strength_families_unshown(trials: pd.DataFrame) -> list[str]:
    """Families that searched a λ (``STRENGTH_KEYS``) but completed no trial: the gap-vs-λ
    figure, drawn from final models, cannot show them (a pruned trial has none)."""
    out = []
    for family in unjudged_families(trials):
        rows = trials[trials["family"] == family]
        if any(f"hp_{k}" in rows and (rows[f"hp_{k}"] > 0).any() for k in STRENGTH_KEYS):
            out.append(family)
    return out


def dropout_data(trials: pd.DataFrame) -> pd.DataFrame:
    """Result trials that used dropout (p > 0): ``trial, family, dropout, gap, val_acc`` (final)
    and ``collapsed`` (the model is at chance level: its gap near 0 means it learned nothing)."""
    done = result_trials(trials)
    keep = done["hp_dropout"] > 0
    out = done.loc[keep, ["trial", "family", "hp_dropout", "gap_acc", "val_acc", "collapsed"]]
    out = out.rename(columns={"hp_dropout": "dropout", "gap_acc": "gap"})
    out["collapsed"] = out["collapsed"].astype("boolean").fillna(False).astype(bool)
    return out.reset_index(drop=True)


def sparsity_data(trials: pd.DataFrame, keys: tuple[str, ...] = PENALTY_KEYS) -> pd.DataFrame:
    """Weight sparsity and dead units against the L1 and L2 λ, collapsed trials left out.

    Columns ``trial, family, param, strength, sparsity, dead_units`` (final model), like
    :func:`gap_vs_strength_data` for the penalties in ``keys`` that vary over the result trials.
    A trial whose model collapsed to chance level says nothing about a regularizer's sparsity:
    it is left out and counted in ``attrs["collapsed_left_out"]``.
    """
    done = result_trials(trials)
    keys_varying = varying_strengths(done, keys)
    dead = done["collapsed"].fillna(False).astype(bool)
    values = {"sparsity": "sparsity", "dead_units": "dead_units"}
    out = _by_strength(done[~dead], keys_varying, values)
    left_out = _by_strength(done[dead], keys_varying, values)
    out = out.astype({"trial": "int64"}).reset_index(drop=True)
    out.attrs["collapsed_left_out"] = int(left_out["trial"].nunique())
    return out


def best_curves_data(trials: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """Train and val loss per epoch of each family's top run and of the baseline.

    Columns: ``family, role, trial, epoch, split, loss``. ``role`` is ``top`` for the family's
    trial whose final model has the highest validation accuracy (a single run) and
    ``baseline`` for the top run of family ``none`` (repeated in every family's panel).
    """
    done = result_trials(trials).dropna(subset=["val_acc"])
    if done.empty or curves.empty:
        return pd.DataFrame(columns=["family", "role", "trial", "epoch", "split", "loss"])
    top = done.loc[done.groupby("family")["val_acc"].idxmax(), ["family", "trial"]]
    picks = top.assign(role="top")
    base = top[top["family"] == "none"]
    if not base.empty:
        others = top.loc[top["family"] != "none", ["family"]]
        picks = pd.concat([picks, others.assign(trial=int(base["trial"].iloc[0]), role="baseline")])
    loss = curves[(curves["metric"] == "loss") & curves["split"].isin(["train", "val"])]
    out = picks.merge(loss, on="trial").rename(columns={"value": "loss"})
    cols = ["family", "role", "trial", "epoch", "split", "loss"]
    return out[cols].sort_values(cols[:5]).reset_index(drop=True)


def history_data(trials: pd.DataFrame, *, maximize: bool = True) -> pd.DataFrame:
    """Objective per trial number with state and the best value so far (complete trials).

    Complete and pruned trials with a value, and failed trials (value NaN) so the figure can
    mark them; interrupted / over-budget trials are left out.
    """
    counted = trials[trials["counted"].astype(bool)]
    valued = counted["state"].isin(["COMPLETE", "PRUNED"]) & counted["value"].notna()
    rows = counted[valued | (counted["state"] == "FAIL")]
    out = rows[["trial", "state", "value"]].astype({"value": float}).reset_index(drop=True)
    complete = out["value"].where(out["state"] == "COMPLETE")
    running = complete.cummax() if maximize else complete.cummin()
    return out.assign(best_so_far=running)


def intermediate_data(trials: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """Intermediate values (``split == "intermediate"``) with the trial's state."""
    inter = curves.loc[curves["split"] == "intermediate", ["trial", "epoch", "value"]]
    states = trials.loc[trials["counted"].astype(bool), ["trial", "state"]]
    return inter.merge(states, on="trial").reset_index(drop=True)


def _objective_column(trials: pd.DataFrame, name: str) -> str:
    return f"objective_{name}" if f"objective_{name}" in trials else name


def pareto_data(
    trials: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]
) -> pd.DataFrame:
    """Completed trials of a multi-objective study with their objectives and ``on_front``.

    Columns ``trial, family``, one per objective (named by the objective: the trial's stored
    values from ``objective_<name>``, else the record's column of that name) and ``on_front``:
    no other trial is at least as good in every objective and better in one. Trials with a
    non-finite objective are left out. Front first, then by the first objective.
    """
    done = result_trials(trials)
    names = list(objectives)
    columns = ["trial", "family", *names, "on_front"]
    cols = [_objective_column(done, n) for n in names]
    if len(names) < 2 or not all(c in done for c in cols):
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    values = done[cols].to_numpy(dtype=float)
    keep = np.isfinite(values).all(axis=1)
    values, rows = values[keep], done[keep]
    signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions])
    better = values * signs  # higher is better in every column
    geq = (better[:, None, :] >= better[None, :, :]).all(axis=2)
    gt = (better[:, None, :] > better[None, :, :]).any(axis=2)
    dominated = (geq & gt).any(axis=0)
    out = pd.DataFrame({"trial": rows["trial"].to_numpy(), "family": rows["family"].to_numpy()})
    for name, j in zip(names, range(len(names)), strict=True):
        out[name] = values[:, j]
    out["on_front"] = ~dominated
    first = -out[names[0]] * signs[0]
    out = out.assign(_k=first).sort_values(["on_front", "_k"], ascending=[False, True])
    return out.drop(columns="_k").reset_index(drop=True)
