"""Confirmation runs → each finalist's effect against its baseline, with its uncertainty.

A finalist and its baseline (the finalist's configuration with every regularizer off) train on
the same seeds, so their difference is taken seed by seed (paired), over the seeds where both
completed. Intervals are Student-t; p-values come from the paired t-test and are Holm-adjusted
across the finalists, so "helps" holds for the whole table at the 5% level, not per row.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd

from analysis._confirm import ARM_COLUMNS, arms_frame, confirm_frame
from analysis._load import read_study
from analysis._schema import delta_range, metric_range
from analysis._stats import holm, paired_p, t_interval
from sweep.record import OBJECTIVES

__all__ = [
    "EFFECT_METRICS",
    "HELPS",
    "HURTS",
    "SAME_NOTE",
    "decision_metric",
    "diverged_of",
    "effect_columns",
    "effects",
    "effects_data",
]

EFFECT_METRICS = ("val_acc", "val_loss", "gap_acc", "test_acc", "sparsity")
"""Metrics each finalist gets a mean, an interval and a paired delta for (``sparsity``: the
share of weights within 0.05 % of the largest |w|, 000's notes' count)."""
HELPS, HURTS, BASELINE = "helps", "hurts", "baseline"
SAME_LOSS_RTOL = 1e-4
SAME_NOTE = "same as its baseline on every seed"
"""A finalist's run is the *same* as its baseline's on a seed when their validation accuracy is
equal and their validation losses differ by at most this fraction: a regularizer too weak to
change the model (an L1 λ of 1e-6, a clip threshold the gradients never reach) differs by
float rounding only."""


def decision_metric(metric: str) -> str:
    """The validation metric verdicts are decided on: ``val_loss`` for a study that optimizes
    it, ``val_acc`` for every other metric (the gap and sparsity are not "better" by themselves)."""
    return "val_loss" if metric == "val_loss" else "val_acc"


def effect_columns() -> list[str]:
    """The columns of :func:`effects_data`, in order."""
    cols = ["family", "arm", "label", "rank", "baseline", "baseline_label", "decided_on",
            "n_seeds", "baseline_n_seeds", "n_pairs", "n_collapsed", "n_same",
            "n_restored", "n_diverged", "baseline_n_diverged"]  # fmt: skip
    for m in EFFECT_METRICS:
        cols += [f"{m}_mean", f"{m}_ci_low", f"{m}_ci_high"]
    cols += [f"baseline_{m}_mean" for m in EFFECT_METRICS]
    for m in EFFECT_METRICS:
        cols += [f"delta_{m}", f"delta_{m}_ci_low", f"delta_{m}_ci_high"]
    return [*cols, "p_raw", "p_value", "p_sparsity_raw", "p_sparsity", "verdict"]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _arm_row(arm: pd.Series, done: pd.DataFrame, labels: dict[str, str], decide: str,
             confidence: float, diverged: dict[str, int]) -> dict[str, Any]:  # fmt: skip
    own = done[done["arm"] == arm["arm"]]
    base_arm = None if _missing(arm["baseline"]) else str(arm["baseline"])
    base = done[done["arm"] == base_arm] if base_arm is not None else done.iloc[:0]
    row: dict[str, Any] = {k: arm[k] for k in ("family", "arm", "label", "rank")}
    row.update(baseline=base_arm, baseline_label=labels.get(base_arm or ""),
               decided_on=decide, n_seeds=int(own[decide].notna().sum()),
               baseline_n_seeds=int(base[decide].notna().sum()))  # fmt: skip
    row["n_collapsed"] = int(own["collapsed"].astype("boolean").fillna(False).sum())
    paired = own.merge(base, on="seed", suffixes=("", "_base"))
    row["n_same"] = _n_same(paired)
    row["n_restored"] = _n_restored(own)
    row["n_diverged"] = diverged.get(str(arm["arm"]), 0)
    row["baseline_n_diverged"] = diverged.get(base_arm, 0) if base_arm is not None else 0
    for m in EFFECT_METRICS:
        ci = t_interval(own[m].to_numpy(dtype=float), confidence, within=metric_range(m))
        row.update({f"{m}_mean": ci.mean, f"{m}_ci_low": ci.low, f"{m}_ci_high": ci.high})
        row[f"baseline_{m}_mean"] = t_interval(base[m].to_numpy(dtype=float)).mean
        diff = (paired[m] - paired[f"{m}_base"]).to_numpy(dtype=float)
        d = t_interval(diff, confidence, within=delta_range(m))
        row.update({f"delta_{m}": d.mean, f"delta_{m}_ci_low": d.low,
                    f"delta_{m}_ci_high": d.high})  # fmt: skip
        if m == decide:
            row["n_pairs"] = d.n
            row["p_raw"] = paired_p(diff) if base_arm is not None else math.nan
        if m == "sparsity":
            row["p_sparsity_raw"] = paired_p(diff) if base_arm is not None else math.nan
    return row


def _n_same(paired: pd.DataFrame) -> int:
    """Paired seeds on which the finalist's run is the same as its baseline's
    (:data:`SAME_LOSS_RTOL`)."""
    acc = paired["val_acc"].to_numpy(dtype=float), paired["val_acc_base"].to_numpy(dtype=float)
    loss = paired["val_loss"].to_numpy(dtype=float), paired["val_loss_base"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        same_loss = np.abs(loss[0] - loss[1]) <= SAME_LOSS_RTOL * np.abs(loss[1])
    return int(np.sum((acc[0] == acc[1]) & same_loss))


def _n_restored(runs: pd.DataFrame) -> int:
    """Runs whose final model is an earlier epoch's, restored by early stopping: picked on the
    validation split that then scores it."""
    final = runs["final_epoch"].to_numpy(dtype=float)
    run = runs["epochs_run"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        return int(np.sum(final < run))


def diverged_of(row: pd.Series) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(k, n)`` for an :func:`effects_data` row's runs and its baseline's: ``k`` diverged of
    the ``n`` seeds that completed or diverged (a crash is neither)."""
    own, base = int(row["n_diverged"]), int(row["baseline_n_diverged"])
    return (own, int(row["n_seeds"]) + own), (base, int(row["baseline_n_seeds"]) + base)


def _verdict(row: pd.Series, *, alpha: float, higher_better: bool) -> str:
    """The verdict in words; an arm whose runs collapsed to chance on some seeds says so, since
    its mean hides an unstable configuration rather than a small effect, and so does an arm that
    trained as its baseline on every paired seed: at its strength the regularizer did nothing,
    which "no detectable difference" alone would not tell."""
    collapsed, pairs = int(row["n_collapsed"]), int(row["n_pairs"])
    notes = (
        f"; collapsed to chance on {collapsed} of {int(row['n_seeds'])} seeds" if collapsed else ""
    )
    if pairs >= 2 and int(row["n_same"]) == pairs:
        notes += f"; {SAME_NOTE}"
    (own, n_own), (base, n_base) = diverged_of(row)
    if own:
        notes += f"; diverged on {own} of {n_own} seeds"
    if base:
        notes += f"; its baseline diverged on {base} of {n_base} seeds"
    if _missing(row["baseline"]):
        return (BASELINE if row["family"] == "none" else "no baseline arm") + notes
    p, n = row["p_value"], int(row["n_pairs"])
    if _missing(p):
        return f"too few paired seeds (n={n})" + notes
    if p >= alpha:
        return f"no detectable difference at n={n}" + notes
    better = (row[f"delta_{row['decided_on']}"] > 0) == higher_better
    return (HELPS if better else HURTS) + notes


def effects_data(
    runs: pd.DataFrame,
    arms: pd.DataFrame | None = None,
    *,
    metric: str = "val_acc",
    alpha: float = 0.05,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per finalist arm: its metrics, its paired effect against its baseline, a verdict.

    Args:
        runs: :func:`analysis.load_confirm` / :func:`analysis.confirm_frame` rows; completed,
            counted runs are used.
        arms: :func:`analysis.arms_frame` of the plan, so a finalist without runs still gets a
            row; by default the arms seen in ``runs``.
        metric: The study's metric; verdicts use :func:`decision_metric` of it.
        alpha: Significance level of the Holm-adjusted p-value.
        confidence: Level of the t-intervals.

    Returns:
        :func:`effect_columns`: ``<m>_mean/_ci_low/_ci_high`` per metric in
        :data:`EFFECT_METRICS`, ``n_collapsed`` (runs at chance), ``n_same`` (paired seeds on
        which it trained as its baseline did), ``n_restored`` (runs whose final model early
        stopping restored from an earlier epoch, chosen on validation), ``n_diverged`` and
        ``baseline_n_diverged`` (its and its baseline's runs that diverged: no model, so
        unpaired), ``delta_<m>``
        (finalist − baseline, paired by seed) with its interval, ``p_raw`` (paired t-test on
        the decision metric), ``p_value`` (Holm-adjusted across finalists), ``p_sparsity_raw``
        and ``p_sparsity`` (the same for the weights' sparsity: reported, never part of the
        verdict) and ``verdict``:
        ``helps``/``hurts`` (``p_value < alpha``, sign by the decision metric's direction),
        ``no detectable difference at n=<pairs>``,
        ``too few paired seeds (n=<pairs>)``, or ``baseline`` for family ``none``'s own finalist
        (the reference: no baseline, delta NaN), each followed by its notes (``; collapsed to
        chance on k of n seeds``, ``; same as its baseline on every seed``, ``; diverged on k
        of n seeds``, ``; its baseline diverged on k of n seeds``). Rows: finalists by
        effect, best first; the reference last.
    """
    decide = decision_metric(metric)
    if arms is None:
        arms = runs.drop_duplicates("arm")[list(ARM_COLUMNS)] if len(runs) else None
    columns = effect_columns()
    if arms is None or arms.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    done = runs[(runs["state"] == "COMPLETE") & runs["counted"].astype(bool)]
    labels = dict(zip(arms["arm"], arms["label"], strict=True))
    finalists = arms[arms["role"] == "finalist"]
    # a diverged run ends without a model (FAIL): no pair, but a result the verdict names
    div = runs[(runs["stop_reason"] == "diverged") & runs["counted"].astype(bool)]
    diverged = {str(k): int(v) for k, v in div.groupby("arm").size().items()}
    rows = [_arm_row(a, done, labels, decide, confidence, diverged)
            for _, a in finalists.iterrows()]  # fmt: skip
    out = pd.DataFrame(rows, columns=columns)
    out["p_value"] = holm(out["p_raw"].to_numpy(dtype=float))
    out["p_sparsity"] = holm(out["p_sparsity_raw"].to_numpy(dtype=float))
    higher = OBJECTIVES[decide].direction == "maximize"
    out["verdict"] = [_verdict(r, alpha=alpha, higher_better=higher) for _, r in out.iterrows()]
    reference = out["verdict"] == BASELINE
    key = out[f"delta_{decide}"] * (-1.0 if higher else 1.0)
    out = out.assign(_ref=reference, _key=key.fillna(np.inf))
    out = out.sort_values(["_ref", "_key", "rank", "family"], kind="stable")
    return out.drop(columns=["_ref", "_key"]).astype({"n_seeds": "int64"}).reset_index(drop=True)


def effects(
    storage: str | os.PathLike[str] | None = None,
    study: str | None = None,
    *,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Read a study's confirmation study and return :func:`effects_data` of it.

    Empty (with its columns) when the study has no confirmation study.

    Example:
        >>> table = effects("outputs/studies.db", "mnist")  # doctest: +SKIP
        >>> table[["family", "delta_val_acc", "p_value", "verdict"]]  # doctest: +SKIP
    """
    data = read_study(storage, study)
    confirm = data.confirm
    runs = confirm_frame(confirm.trials if confirm else [], confirm.confirm_plan if confirm else [])
    arms = arms_frame(confirm.confirm_plan) if confirm else None
    metric = data.metric if data.user_attrs or confirm is None else confirm.metric
    return effects_data(runs, arms, metric=metric, alpha=alpha)
