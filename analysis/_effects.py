"""Confirmation runs → each finalist's effect against its baseline, with its uncertainty.

A finalist and its baseline (the finalist's configuration with every regularizer off) train on
the same seeds, so their difference is taken seed by seed (paired), over the seeds where both
completed. Intervals of the differences are Student-t at the simultaneous level ``1 − α/m``
(Bonferroni over the m finalists compared with a baseline), and the verdict is read off that
interval: it "helps" when the whole interval is on the good side of zero, so the verdicts hold
for the whole table at the 5% level and the printed interval never contradicts its verdict.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis._confirm import ARM_COLUMNS, arms_frame, confirm_frame
from analysis._load import read_study, trials_frame
from analysis._schema import delta_range, metric_range
from analysis._stats import bonferroni, min_detectable, paired_p, t_interval
from sweep.record import OBJECTIVES, StopReason

__all__ = [
    "EFFECT_METRICS",
    "HELPS",
    "HURTS",
    "MIN_EXPLORED",
    "VERDICTS",
    "decision_metric",
    "diverged_of",
    "effect_columns",
    "effects",
    "effects_data",
    "explored_counts",
]

EFFECT_METRICS = ("val_acc", "val_loss", "gap_acc", "test_acc", "sparsity")
"""Metrics each finalist gets a mean, an interval and a paired delta for (``sparsity``: the
share of weights within 0.05 % of the largest |w|, 000's notes' count)."""
HELPS, HURTS, BASELINE = "helps", "hurts", "baseline"
NO_DIFFERENCE, SAME, NOT_EXPLORED = "no_difference", "same_as_baseline", "not_explored"
VERDICTS = (HELPS, HURTS, NO_DIFFERENCE, SAME, NOT_EXPLORED)
"""A finalist's verdict; the reference row (family ``none``'s own finalist) has ``baseline``."""
MIN_EXPLORED = 3
"""Completed search trials a family's search should have (the sweeper's
``family_startup_trials`` default): with fewer, its notes say so."""
POWER = 0.8
SAME_LOSS_RTOL = 1e-4
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
    cols = [
        "family",
        "arm",
        "label",
        "rank",
        "source_state",
        "n_search_completed",
        "baseline",
        "baseline_label",
        "decided_on",
        "n_seeds",
        "baseline_n_seeds",
        "n_pairs",
        "n_collapsed",
        "n_same",
        "n_restored",
        "n_diverged",
        "baseline_n_diverged",
    ]
    for m in EFFECT_METRICS:
        cols += [f"{m}_mean", f"{m}_ci_low", f"{m}_ci_high"]
    cols += [f"baseline_{m}_mean" for m in EFFECT_METRICS]
    for m in EFFECT_METRICS:
        cols += [f"delta_{m}", f"delta_{m}_ci_low", f"delta_{m}_ci_high"]
    return [
        *cols,
        "ci_level",
        "mde",
        "p_raw",
        "p_value",
        "p_sparsity_raw",
        "p_sparsity",
        "verdict",
        "notes",
    ]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _arm_row(
    arm: pd.Series,
    done: pd.DataFrame,
    labels: dict[str, str],
    decide: str,
    confidence: float,
    diverged: dict[str, int],
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A finalist's row without its delta intervals, and its per-seed differences by metric
    (the intervals wait for the number of comparisons)."""
    own = done[done["arm"] == arm["arm"]]
    base_arm = None if _missing(arm["baseline"]) else str(arm["baseline"])
    base = done[done["arm"] == base_arm] if base_arm is not None else done.iloc[:0]
    row: dict[str, Any] = {k: arm[k] for k in ("family", "arm", "label", "rank")}
    row["source_state"] = arm.get("source_state")
    row.update(
        baseline=base_arm,
        baseline_label=labels.get(base_arm or ""),
        decided_on=decide,
        n_seeds=int(own[decide].notna().sum()),
        baseline_n_seeds=int(base[decide].notna().sum()),
    )
    row["n_collapsed"] = int(own["collapsed"].astype("boolean").fillna(False).sum())
    paired = own.merge(base, on="seed", suffixes=("", "_base"))
    row["n_same"] = _n_same(paired)
    row["n_restored"] = _n_restored(own)
    row["n_diverged"] = diverged.get(str(arm["arm"]), 0)
    row["baseline_n_diverged"] = diverged.get(base_arm, 0) if base_arm is not None else 0
    diffs = {}
    for m in EFFECT_METRICS:
        ci = t_interval(own[m].to_numpy(dtype=float), confidence, within=metric_range(m))
        row.update({f"{m}_mean": ci.mean, f"{m}_ci_low": ci.low, f"{m}_ci_high": ci.high})
        row[f"baseline_{m}_mean"] = t_interval(base[m].to_numpy(dtype=float)).mean
        diffs[m] = (paired[m] - paired[f"{m}_base"]).to_numpy(dtype=float)
        if m == decide:
            row["n_pairs"] = int(np.isfinite(diffs[m]).sum())
            row["p_raw"] = paired_p(diffs[m]) if base_arm is not None else math.nan
        if m == "sparsity":
            row["p_sparsity_raw"] = paired_p(diffs[m]) if base_arm is not None else math.nan
    return row, diffs


def _with_intervals(
    row: dict[str, Any], diffs: dict[str, np.ndarray], level: float, alpha_each: float
) -> dict[str, Any]:
    """The row with each delta's interval at ``level`` and the decision metric's smallest
    detectable effect at ``alpha_each`` (80 % power)."""
    for m, diff in diffs.items():
        d = t_interval(diff, level, within=delta_range(m))
        row.update({f"delta_{m}": d.mean, f"delta_{m}_ci_low": d.low, f"delta_{m}_ci_high": d.high})
    row["ci_level"] = level
    row["mde"] = min_detectable(diffs[row["decided_on"]], alpha=alpha_each, power=POWER)
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


def _notes(row: pd.Series) -> list[str]:
    """What a reader must know beside the verdict: runs at chance, divergences."""
    notes = []
    collapsed = int(row["n_collapsed"])
    if collapsed:
        notes.append(f"collapsed to chance on {collapsed} of {int(row['n_seeds'])} seeds")
    (own, n_own), (base, n_base) = diverged_of(row)
    if own:
        notes.append(f"diverged on {own} of {n_own} seeds")
    if base:
        notes.append(f"its baseline diverged on {base} of {n_base} seeds")
    return notes


def _unexplored(row: pd.Series) -> str | None:
    """Why the search did not explore the finalist's family, or None when it did."""
    state = row.get("source_state")
    if state is not None and not _missing(state) and state != "COMPLETE":
        return "its search completed no trial: its finalist is a pruned trial, run to the end"
    seeds = int(row["n_seeds"])
    if seeds and 2 * int(row["n_collapsed"]) > seeds:
        return "most of its runs ended at chance: the search found no setting of it that learns"
    return None


def _thin(row: pd.Series) -> str | None:
    """A note when the family's search completed fewer than :data:`MIN_EXPLORED` trials."""
    searched = row.get("n_search_completed")
    if searched is None or _missing(searched) or int(searched) >= MIN_EXPLORED:
        return None
    k = int(searched)
    return f"its search completed {k} trial{'s' if k != 1 else ''}, fewer than {MIN_EXPLORED}"


def _verdict(row: pd.Series, *, higher_better: bool) -> tuple[str, str]:
    """``(verdict, notes)``: the category (:data:`VERDICTS`, or ``baseline`` for the reference)
    read off the simultaneous interval, and the notes in words, ``"; "``-separated."""
    notes = _notes(row)
    pairs = int(row["n_pairs"])
    if _missing(row["baseline"]):
        return (BASELINE if row["family"] == "none" else NOT_EXPLORED), "; ".join(
            notes if row["family"] == "none" else ["no baseline arm", *notes]
        )
    why = _unexplored(row)
    if why is not None:
        return NOT_EXPLORED, "; ".join([why, *notes])
    thin = _thin(row)
    notes = [thin, *notes] if thin else notes
    if pairs < 2:
        return NOT_EXPLORED, "; ".join([f"too few paired seeds (n={pairs})", *notes])
    if int(row["n_same"]) == pairs:
        return SAME, "; ".join(["same as its baseline on every seed", *notes])
    decide = row["decided_on"]
    lo, hi = float(row[f"delta_{decide}_ci_low"]), float(row[f"delta_{decide}_ci_high"])
    if lo > 0 or hi < 0:
        better = (lo > 0) == higher_better
        return (HELPS if better else HURTS), "; ".join(notes)
    return NO_DIFFERENCE, "; ".join(notes)


def explored_counts(search: pd.DataFrame) -> dict[str, int]:
    """Completed search trials per family, from :func:`analysis.trials_frame` rows."""
    if search.empty:
        return {}
    done = search[search["state"] == "COMPLETE"]
    return {str(k): int(v) for k, v in done.groupby("family").size().items()}


def effects_data(
    runs: pd.DataFrame,
    arms: pd.DataFrame | None = None,
    *,
    metric: str = "val_acc",
    alpha: float = 0.05,
    confidence: float = 0.95,
    searched: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """One row per finalist arm: its metrics, its paired effect against its baseline, a verdict.

    Args:
        runs: :func:`analysis.load_confirm` / :func:`analysis.confirm_frame` rows; completed,
            counted runs are used.
        arms: :func:`analysis.arms_frame` of the plan, so a finalist without runs still gets a
            row; by default the arms seen in ``runs``.
        metric: The study's metric; verdicts use :func:`decision_metric` of it.
        alpha: The family-wise level: each of the m finalists' delta intervals is at
            ``1 − alpha/m`` (Bonferroni) and the verdict is read off it.
        confidence: Level of the intervals of each arm's own mean.
        searched: Completed search trials per family (:func:`explored_counts`); a family with
            fewer than :data:`MIN_EXPLORED` says so in its notes. None: not checked.

    Returns:
        :func:`effect_columns`: ``<m>_mean/_ci_low/_ci_high`` per metric in
        :data:`EFFECT_METRICS`, ``n_collapsed`` (runs at chance), ``n_same`` (paired seeds on
        which it trained as its baseline did), ``n_restored`` (runs whose final model early
        stopping restored from an earlier epoch, chosen on validation), ``n_diverged`` and
        ``baseline_n_diverged`` (runs that diverged: no model, so unpaired), ``delta_<m>``
        (finalist − baseline, paired by seed) with its simultaneous interval at ``ci_level``,
        ``mde`` (the smallest change of the decision metric these seeds detect with 80 %
        power at that level), ``p_raw`` (paired t-test), ``p_value`` (Bonferroni-adjusted:
        below ``alpha`` exactly when the interval excludes 0), ``p_sparsity_raw`` and
        ``p_sparsity`` (the same for the weights' sparsity: reported, never part of the
        verdict), ``verdict`` (:data:`VERDICTS`; ``baseline`` for family ``none``'s own
        finalist, the reference) and ``notes`` (why, in words: runs at chance, divergences, why
        a family counts as not explored). Rows: finalists by effect, best first; the reference
        last.
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
    div = runs[(runs["stop_reason"] == StopReason.DIVERGED) & runs["counted"].astype(bool)]
    diverged = {str(k): int(v) for k, v in div.groupby("arm").size().items()}
    built = [
        _arm_row(a, done, labels, decide, confidence, diverged) for _, a in finalists.iterrows()
    ]
    # the comparisons: finalists with a baseline and two paired seeds or more
    m = max(1, sum(1 for row, _ in built if not _missing(row["p_raw"])))
    alpha_each = alpha / m
    rows = [_with_intervals(row, diffs, 1.0 - alpha_each, alpha_each) for row, diffs in built]
    for row in rows:
        done = math.nan if searched is None else searched.get(str(row["family"]), 0)
        row["n_search_completed"] = done
    out = pd.DataFrame(rows, columns=columns)
    out["p_value"] = bonferroni(out["p_raw"].to_numpy(dtype=float))
    out["p_sparsity"] = bonferroni(out["p_sparsity_raw"].to_numpy(dtype=float))
    higher = OBJECTIVES[decide].direction == "maximize"
    judged = [_verdict(r, higher_better=higher) for _, r in out.iterrows()]
    out["verdict"] = [v for v, _ in judged]
    out["notes"] = [n for _, n in judged]
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
    searched = explored_counts(trials_frame(data.trials)) if data.user_attrs else None
    return effects_data(runs, arms, metric=metric, alpha=alpha, searched=searched)
