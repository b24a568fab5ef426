"""Trial DataFrame → result tables (pure functions, no database)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from analysis._format import log_binned
from sweep.record import StopReason

__all__ = [
    "family_summary",
    "gap_by_param",
    "pruning_summary",
    "result_trials",
    "state_summary",
    "top_trials",
    "unjudged_families",
]

_TOP_COLUMNS = [
    "trial",
    "family",
    "strength",
    "val_acc",
    "val_loss",
    "test_acc",
    "gap_acc",
    "gap_loss",
    "sparsity",
    "dead_units",
    "collapsed",
    "final_epoch",
    "best_epoch",
    "best_epoch_val_acc",
    "epochs_run",
    "seed",
    "run_seconds",
]
_FAMILY_COLUMNS = [
    "family",
    "n",
    "top_trial",
    "top_val_acc",
    "top_test_acc",
    "top_gap_acc",
    "val_acc_median",
    "val_acc_q25",
    "val_acc_q75",
    "gap_acc_median",
    "gap_acc_iqr",
    "sparsity_median",
    "dead_units_median",
    "n_collapsed",
    "evidence",
]
SINGLE_RUNS = "single runs"


def result_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials that enter result tables: state COMPLETE and not interrupted/over budget."""
    keep = (trials["state"] == "COMPLETE") & trials["counted"].astype(bool)
    return trials[keep]


def _rank_column(trials: pd.DataFrame, metric: str) -> tuple[str, bool]:
    """Column to rank by (a final-model metric) and whether higher is better."""
    column = "val_loss" if metric == "val_loss" else "val_acc"
    if trials[column].notna().any():
        return column, column == "val_acc"
    return "value", True


def top_trials(
    trials: pd.DataFrame, *, n: int = 10, metric: str = "val_acc", maximize: bool = True
) -> pd.DataFrame:
    """The ``n`` best result trials by the final model's validation metric (NaN last).

    ``val_loss`` ranks by validation loss, every other metric by validation accuracy.
    ``maximize`` is only used when ranking by the raw objective ``value`` (plain studies).
    These are single runs: the order between close values is noise.
    """
    done = result_trials(trials)
    column, higher = _rank_column(done, metric)
    if column == "value":
        higher = maximize
    cols = [c for c in [*_TOP_COLUMNS, "value"] if c in done]
    cols += [c for c in done.columns if c.startswith("params_")]
    ranked = done.sort_values(column, ascending=not higher, na_position="last", kind="stable")
    return ranked[cols].head(n).reset_index(drop=True)


def _family_row(family: str, group: pd.DataFrame) -> dict[str, object]:
    val, gap = group["val_acc"], group["gap_acc"]
    top = group.loc[val.idxmax()] if val.notna().any() else None
    alive = group[~group["collapsed"].fillna(False).astype(bool)]
    return {
        "family": family,
        "n": len(group),
        "top_trial": int(top["trial"]) if top is not None else pd.NA,
        "top_val_acc": float(top["val_acc"]) if top is not None else np.nan,
        "top_test_acc": float(top["test_acc"]) if top is not None else np.nan,
        "top_gap_acc": float(top["gap_acc"]) if top is not None else np.nan,
        "val_acc_median": float(val.median()),
        "val_acc_q25": float(val.quantile(0.25)),
        "val_acc_q75": float(val.quantile(0.75)),
        "gap_acc_median": float(gap.median()),
        "gap_acc_iqr": float(gap.quantile(0.75) - gap.quantile(0.25)),
        "sparsity_median": float(alive["sparsity"].median()),
        "dead_units_median": float(alive["dead_units"].median()),
        "n_collapsed": len(group) - len(alive),
        "evidence": SINGLE_RUNS if len(group) else "",
    }


def family_summary(trials: pd.DataFrame) -> pd.DataFrame:
    """Per regularizer family, the search's single runs: the top run and the spread.

    Final-model metrics: ``top_trial`` (the family's highest validation accuracy, the one a
    confirmation re-trains), its ``top_val_acc``, ``top_test_acc`` and ``top_gap_acc``; the
    median and quartiles of validation accuracy and the median and IQR of the gap over the
    family's completed trials; the median weight sparsity and dead-unit fraction over the trials
    that did not collapse to chance level (``n_collapsed`` left out); ``evidence`` says these
    are single runs (one seed, one validation split): the order of close families is noise.
    Rows by ``top_val_acc``, highest first.
    """
    done = result_trials(trials)
    rows = [_family_row(str(f), g) for f, g in done.groupby("family", sort=True)]
    out = pd.DataFrame(rows, columns=_FAMILY_COLUMNS)
    out["top_trial"] = out["top_trial"].astype("Int64")
    out["n_collapsed"] = out["n_collapsed"].astype("int64")
    return out.sort_values("top_val_acc", ascending=False, na_position="last").reset_index(
        drop=True
    )


def _bins(values: pd.Series, n_bins: int) -> pd.Series:
    """Bin a parameter: its own values when few, else log- or linear-spaced intervals."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.isna().all():
        return values.astype(str).where(values.notna())
    if numeric.nunique() <= n_bins:  # a bin per value, named as the edges are (3 digits)
        return numeric.map(lambda v: f"{v:.3g}", na_action="ignore")
    lo, hi = float(numeric.min()), float(numeric.max())
    if log_binned(lo, hi):
        edges = np.geomspace(lo, hi, n_bins + 1)
    else:
        edges = np.linspace(lo, hi, n_bins + 1)
    edges[0] = np.nextafter(edges[0], -np.inf)
    labels = [f"{a:.3g}–{b:.3g}" for a, b in itertools.pairwise(edges)]
    labels[0] = f"{lo:.3g}–{edges[1]:.3g}"
    return pd.cut(numeric, edges, labels=labels).astype(str).where(numeric.notna())


def gap_by_param(trials: pd.DataFrame, *, n_bins: int = 5) -> pd.DataFrame:
    """Final-model accuracy gap against each searched parameter, binned.

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
            {"bin": bins, "order": order, "gap": done["gap_acc"], "val": done["val_acc"]}
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
    return pd.DataFrame(
        [
            {
                "trials": len(counted),
                "complete": int((counted["state"] == "COMPLETE").sum()),
                "pruned": int(pruned.sum()),
                "failed": int((counted["state"] == "FAIL").sum()),
                "fraction_pruned": float(pruned.mean()) if len(counted) else np.nan,
                "epochs_run": float(epochs_run.sum()),
                "epochs_if_all_ran": full,
                "epochs_saved": saved,
                "fraction_saved": saved / full if full > 0 else np.nan,
            }
        ]
    )


def state_summary(trials: pd.DataFrame) -> pd.DataFrame:
    """Trial counts by state and stop reason (every trial, interrupted ones included)."""
    if trials.empty:
        return pd.DataFrame(columns=["state", "stop_reason", "n"])
    counts = trials.groupby(["state", "stop_reason"]).size().rename("n").reset_index()
    return counts.sort_values(["state", "stop_reason"]).reset_index(drop=True)


def unjudged_families(trials: pd.DataFrame) -> dict[str, str]:
    """Families the search tried but never completed (every trial pruned or failed), with how
    their trials ended (``"3 pruned"``, ``"2 diverged, 1 fail"``): they have no top run, so the
    report must name them, or it would leave them out without a word. The confirmation judges those with a pruned
    trial (its finalist is the one that trained furthest); a family whose trials all failed
    has no finalist."""
    if "family" not in trials or trials.empty:
        return {}
    counted = trials[trials["counted"].astype(bool)] if "counted" in trials else trials
    out = {}
    for name, rows in counted.groupby("family", sort=True):
        if (rows["state"] == "COMPLETE").any():
            continue
        ends = (
            rows["state"]
            .astype(str)
            .str.lower()
            .where(rows["stop_reason"] != StopReason.DIVERGED, StopReason.DIVERGED.value)
        )
        out[str(name)] = ", ".join(f"{int(n)} {end}" for end, n in ends.value_counts().items())
    return out
