"""Trial and curve DataFrames → the data each figure draws (pure functions)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pandas as pd

from analysis._tables import result_trials

__all__ = [
    "PENALTY_KEYS",
    "STRENGTH_KEYS",
    "best_curves_data",
    "compact",
    "dropout_data",
    "gap_vs_strength_data",
    "heatmap_data",
    "history_data",
    "intermediate_data",
    "sparsity_data",
    "varying_strengths",
]

# ``hparams`` strengths drawn against λ (dropout has its own figure; l1_ratio is not a λ).
STRENGTH_KEYS = ("l1", "l2", "elastic", "weight_decay", "clip")
PENALTY_KEYS = ("l1", "l2")


def varying_strengths(done: pd.DataFrame, keys: tuple[str, ...] = STRENGTH_KEYS) -> list[str]:
    """The ``hparams`` keys among ``keys`` that take two or more values over ``done``."""
    return [k for k in keys if f"hp_{k}" in done and done[f"hp_{k}"].nunique() >= 2]


def _by_strength(done: pd.DataFrame, keys: list[str], value: str, name: str) -> pd.DataFrame:
    """Long format: one row per (trial, key) with ``hp_<key> > 0`` and a finite ``value``."""
    parts = []
    for key in keys:
        keep = (done[f"hp_{key}"] > 0) & np.isfinite(done[value])
        part = done.loc[keep, ["trial", "family", f"hp_{key}", value]]
        parts.append(part.rename(columns={f"hp_{key}": "strength", value: name})
                     .assign(param=key))  # fmt: skip
    columns = ["trial", "family", "param", "strength", name]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("family", "param") else float)
                             for c in columns})  # fmt: skip
    return pd.concat(parts, ignore_index=True)[columns]


def gap_vs_strength_data(trials: pd.DataFrame) -> pd.DataFrame:
    """Gap against every λ that varies: ``trial, family, param, strength, gap, val_acc``.

    One row per result trial and strength hyperparameter (``hparams`` key in
    :data:`STRENGTH_KEYS`) that takes two or more values over the result trials, where the
    trial's value is > 0. A cocktail trial appears once per strength it searched.
    """
    done = result_trials(trials)
    keys = varying_strengths(done)
    gap = _by_strength(done, keys, "gap_acc_best", "gap")
    val = done.set_index("trial")["best_val_acc"]
    out = gap.assign(val_acc=gap["trial"].map(val).astype(float))
    return out.astype({"trial": "int64"}).reset_index(drop=True)


def dropout_data(trials: pd.DataFrame) -> pd.DataFrame:
    """Result trials that used dropout (p > 0): ``trial, family, dropout, gap, val_acc``."""
    done = result_trials(trials)
    keep = done["hp_dropout"] > 0
    out = done.loc[keep, ["trial", "family", "hp_dropout", "gap_acc_best", "best_val_acc"]]
    out = out.rename(columns={"hp_dropout": "dropout", "gap_acc_best": "gap",
                              "best_val_acc": "val_acc"})  # fmt: skip
    return out.reset_index(drop=True)


def sparsity_data(trials: pd.DataFrame, keys: tuple[str, ...] = PENALTY_KEYS) -> pd.DataFrame:
    """Sparsity against the L1 and L2 λ: ``trial, family, param, strength, sparsity``.

    Like :func:`gap_vs_strength_data` for the penalties in ``keys`` that vary over the
    result trials, so separate ``l1``/``l2`` families and a cocktail searching both work.
    """
    done = result_trials(trials)
    out = _by_strength(done, varying_strengths(done, keys), "sparsity_best", "sparsity")
    return out.astype({"trial": "int64"}).reset_index(drop=True)


def compact(value: float) -> str:
    """3 significant digits, exponent form below 1e-3 and from 1e5: ``1e-05``, ``0.25``."""
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"
    return f"{value:.3g}"


def _param_bins(values: pd.Series, n_bins: int) -> tuple[pd.Series, pd.Series]:
    """Labels (3 significant digits) and sort keys of a parameter's bins.

    Few distinct numbers keep one bin each; more are cut into ``n_bins`` intervals,
    log-spaced when positive and spanning more than a decade. Non-numbers stay as they are.
    """
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.isna().all() or numeric.notna().sum() < values.notna().sum():
        labels = values.astype(str).where(values.notna())
        return labels, labels
    if numeric.nunique() <= n_bins:
        return numeric.map(compact, na_action="ignore"), numeric
    lo, hi = float(numeric.min()), float(numeric.max())
    log = lo > 0 and hi / lo > 10
    edges = np.geomspace(lo, hi, n_bins + 1) if log else np.linspace(lo, hi, n_bins + 1)
    edges[0] = np.nextafter(edges[0], -np.inf)
    names = [f"{compact(a)}–{compact(b)}" for a, b in itertools.pairwise(edges)]
    names[0] = f"{compact(lo)}–{compact(edges[1])}"
    codes = pd.cut(numeric, edges, labels=False)
    labels = codes.map(lambda c: names[int(c)], na_action="ignore")
    return labels, codes


def _heatmap_params(
    done: pd.DataFrame, importance: Mapping[str, float] | None
) -> tuple[str, str] | None:
    """The best-ranked pair of parameters that both vary over the trials that set both."""
    cols = [c for c in done.columns if c.startswith("params_") and done[c].nunique() >= 2]
    imp = importance or {}

    def rank(c: str) -> tuple[float, int, str]:
        return (-float(imp.get(c.removeprefix("params_"), 0.0)), -int(done[c].nunique()), c)

    ranked = sorted(cols, key=rank)
    for first, second in itertools.combinations(ranked, 2):
        both = done.loc[done[first].notna() & done[second].notna(), [first, second]]
        if len(both) >= 2 and both[first].nunique() >= 2 and both[second].nunique() >= 2:
            return first, second
    return None


def heatmap_data(
    trials: pd.DataFrame,
    x: str | None = None,
    y: str | None = None,
    *,
    n_bins: int = 5,
    importance: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Mean validation accuracy over two searched parameters (binned), as a pivot table.

    ``x``/``y`` are parameter names (without ``params_``). By default the two varying
    parameters ranked highest by ``importance`` (param → importance), then by their number of
    distinct values, among pairs set together in two or more trials. The pivot's ``attrs``
    hold ``x``, ``y`` and ``chosen_by``; the frame is empty when no such pair exists.
    """
    done = result_trials(trials)
    chosen_by = "given"
    if x is None or y is None:
        pair = _heatmap_params(done, importance)
        if pair is None:
            return pd.DataFrame()
        x, y = (c.removeprefix("params_") for c in pair)
        chosen_by = "importance" if importance else "distinct values"
    xl, xo = _param_bins(done[f"params_{x}"], n_bins)
    yl, yo = _param_bins(done[f"params_{y}"], n_bins)
    frame = pd.DataFrame({"x": xl, "y": yl, "val_acc": done["best_val_acc"], "xo": xo,
                          "yo": yo}).dropna(subset=["x", "y"])  # fmt: skip
    pivot = frame.pivot_table(index="y", columns="x", values="val_acc", aggfunc="mean")
    x_order = frame.groupby("x")["xo"].min().sort_values(kind="stable").index
    y_order = frame.groupby("y")["yo"].min().sort_values(kind="stable").index
    pivot = pivot.reindex(index=y_order, columns=x_order)
    pivot.attrs.update({"x": x, "y": y, "chosen_by": chosen_by})
    return pivot


def best_curves_data(trials: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """Train and val loss per epoch of each family's best trial and of the baseline.

    Columns: ``family, role, trial, epoch, split, loss``. ``role`` is ``best`` for the family's
    trial with the highest validation accuracy and ``baseline`` for the best trial of family
    ``none`` (repeated in every family's panel).
    """
    done = result_trials(trials).dropna(subset=["best_val_acc"])
    if done.empty or curves.empty:
        return pd.DataFrame(columns=["family", "role", "trial", "epoch", "split", "loss"])
    best = done.loc[done.groupby("family")["best_val_acc"].idxmax(), ["family", "trial"]]
    picks = best.assign(role="best")
    base = best[best["family"] == "none"]
    if not base.empty:
        others = best.loc[best["family"] != "none", ["family"]]
        picks = pd.concat([picks, others.assign(trial=int(base["trial"].iloc[0]),
                                                role="baseline")])  # fmt: skip
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
