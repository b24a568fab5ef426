"""Trial DataFrame → result tables (pure functions, no database)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

__all__ = [
    "family_summary",
    "gap_by_param",
    "pruning_summary",
    "result_trials",
    "state_summary",
    "top_trials",
]

_TOP_COLUMNS = [
    "trial", "family", "strength", "best_val_acc", "best_val_loss", "test_acc",
    "gap_acc_best", "gap_loss_best", "sparsity_best", "best_epoch", "epochs_run", "run_seconds",
]  # fmt: skip


def result_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials that enter result tables: state COMPLETE and not interrupted/over budget."""
    keep = (trials["state"] == "COMPLETE") & trials["counted"].astype(bool)
    return trials[keep]


def _rank_column(trials: pd.DataFrame, metric: str) -> tuple[str, bool]:
    """Column to rank by and whether higher is better."""
    if metric in ("val_acc", "val_loss") and f"best_{metric}" in trials:
        column = f"best_{metric}"
        if trials[column].notna().any():
            return column, metric.endswith("acc")
    if trials["best_val_acc"].notna().any():
        return "best_val_acc", True
    return "value", True


def top_trials(
    trials: pd.DataFrame, *, n: int = 10, metric: str = "val_acc", maximize: bool = True
) -> pd.DataFrame:
    """The ``n`` best result trials by validation metric (NaN metrics last).

    ``maximize`` is only used when ranking by the raw objective ``value`` (plain studies).
    """
    done = result_trials(trials)
    column, higher = _rank_column(done, metric)
    if column == "value":
        higher = maximize
    cols = [c for c in [*_TOP_COLUMNS, "value"] if c in done]
    cols += [c for c in done.columns if c.startswith("params_")]
    ranked = done.sort_values(column, ascending=not higher, na_position="last", kind="stable")
    return ranked[cols].head(n).reset_index(drop=True)


def family_summary(trials: pd.DataFrame) -> pd.DataFrame:
    """Per regularizer family: best validation accuracy, test accuracy at that trial, gap stats.

    Columns: ``family, n, best_trial, best_val_acc, test_acc_at_best, gap_at_best, gap_mean,
    gap_median, gap_iqr, sparsity_median``; rows sorted by ``best_val_acc`` descending.
    """
    done = result_trials(trials)
    rows = []
    for family, group in done.groupby("family", sort=True):
        gap = group["gap_acc_best"]
        val = group["best_val_acc"]
        best = group.loc[val.idxmax()] if val.notna().any() else None
        rows.append({
            "family": family,
            "n": len(group),
            "best_trial": int(best["trial"]) if best is not None else pd.NA,
            "best_val_acc": float(best["best_val_acc"]) if best is not None else np.nan,
            "test_acc_at_best": float(best["test_acc"]) if best is not None else np.nan,
            "gap_at_best": float(best["gap_acc_best"]) if best is not None else np.nan,
            "gap_mean": float(gap.mean()),
            "gap_median": float(gap.median()),
            "gap_iqr": float(gap.quantile(0.75) - gap.quantile(0.25)),
            "sparsity_median": float(group["sparsity_best"].median()),
        })  # fmt: skip
    out = pd.DataFrame(rows, columns=[
        "family", "n", "best_trial", "best_val_acc", "test_acc_at_best", "gap_at_best",
        "gap_mean", "gap_median", "gap_iqr", "sparsity_median",
    ])  # fmt: skip
    out["best_trial"] = out["best_trial"].astype("Int64")
    return out.sort_values("best_val_acc", ascending=False, na_position="last").reset_index(
        drop=True
    )


def _bins(values: pd.Series, n_bins: int) -> pd.Series:
    """Bin a parameter: its own values when few, else log- or linear-spaced intervals."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.isna().all() or numeric.nunique() <= n_bins:
        return values.astype(str).where(values.notna())
    lo, hi = float(numeric.min()), float(numeric.max())
    if lo > 0 and hi / lo >= 10:
        edges = np.geomspace(lo, hi, n_bins + 1)
    else:
        edges = np.linspace(lo, hi, n_bins + 1)
    edges[0] = np.nextafter(edges[0], -np.inf)
    labels = [f"{a:.3g}–{b:.3g}" for a, b in itertools.pairwise(edges)]
    labels[0] = f"{lo:.3g}–{edges[1]:.3g}"
    return pd.cut(numeric, edges, labels=labels).astype(str).where(numeric.notna())


def gap_by_param(trials: pd.DataFrame, *, n_bins: int = 5) -> pd.DataFrame:
    """Accuracy gap against each searched parameter, binned.

    Columns: ``param, bin, n, gap_mean, gap_median, val_acc_mean``. Numeric parameters with
    more than ``n_bins`` distinct values are cut into ``n_bins`` intervals (log-spaced when
    positive and spanning a decade or more); others are grouped by value.
    """
    done = result_trials(trials)
    rows = []
    for col in (c for c in done.columns if c.startswith("params_")):
        if done[col].notna().sum() == 0:
            continue
        bins = _bins(done[col], n_bins)
        order = pd.to_numeric(done[col], errors="coerce")
        frame = pd.DataFrame(
            {"bin": bins, "order": order, "gap": done["gap_acc_best"], "val": done["best_val_acc"]}
        ).dropna(subset=["bin"])
        for label, g in frame.groupby("bin", sort=False):
            rows.append(
                {
                    "param": col.removeprefix("params_"),
                    "bin": label,
                    "n": len(g),
                    "gap_mean": g["gap"].mean(),
                    "gap_median": g["gap"].median(),
                    "val_acc_mean": g["val"].mean(),
                    "_order": g["order"].min(),
                }
            )
    out = pd.DataFrame(
        rows, columns=["param", "bin", "n", "gap_mean", "gap_median", "val_acc_mean", "_order"]
    )
    out = out.sort_values(["param", "_order", "bin"], kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)


def pruning_summary(trials: pd.DataFrame) -> pd.DataFrame:
    """One row: trials, pruned fraction, epochs run and epochs saved by pruning.

    Epochs saved = Σ over pruned trials of (epochs_max − epochs_run); interrupted and
    over-budget trials are left out. ``epochs_max`` missing → the largest ``epochs_run`` seen.
    """
    counted = trials[trials["counted"].astype(bool)]
    fallback = counted["epochs_run"].max() if len(counted) else np.nan
    epochs_max = counted["epochs_max"].fillna(fallback)
    epochs_run = counted["epochs_run"].fillna(0)
    pruned = counted["state"] == "PRUNED"
    full = float(epochs_max.sum()) if len(counted) else 0.0
    saved = float((epochs_max - epochs_run)[pruned].clip(lower=0).sum())
    return pd.DataFrame([{
        "trials": len(counted),
        "complete": int((counted["state"] == "COMPLETE").sum()),
        "pruned": int(pruned.sum()),
        "failed": int((counted["state"] == "FAIL").sum()),
        "fraction_pruned": float(pruned.mean()) if len(counted) else np.nan,
        "epochs_run": float(epochs_run.sum()),
        "epochs_if_all_ran": full,
        "epochs_saved": saved,
        "fraction_saved": saved / full if full > 0 else np.nan,
    }])  # fmt: skip


def state_summary(trials: pd.DataFrame) -> pd.DataFrame:
    """Trial counts by state and stop reason (every trial, interrupted ones included)."""
    if trials.empty:
        return pd.DataFrame(columns=["state", "stop_reason", "n"])
    counts = trials.groupby(["state", "stop_reason"]).size().rename("n").reset_index()
    return counts.sort_values(["state", "stop_reason"]).reset_index(drop=True)
