"""The pruning audit: how often the pruner stopped a trial that would have won its family.

A share of the search trials the pruner would have stopped ran to the end instead
(``hydra.sweeper.pruner.audit``); their records hold the epoch of the would-be prune. An audited
trial was *wrongly* pruned when its final model beats the best completed, unaudited trial of
its own family: the trial that pruning would have crowned instead.
"""

from __future__ import annotations

import math

import pandas as pd

from analysis._stats import wilson

__all__ = ["AUDIT_COLUMNS", "audit_data", "audit_sentence"]

AUDIT_COLUMNS = (
    "family",
    "n_audited",
    "n_wrong",
    "wrong_rate",
    "wrong_ci_low",
    "wrong_ci_high",
    "n_pruned",
)
"""Per family, and an ``all`` row: audited trials, how many beat the family's best unaudited
completed trial, that share with its 95% Wilson interval, and the trials that were pruned."""


def audit_data(trials: pd.DataFrame, *, maximize: bool = True) -> pd.DataFrame:
    """The audit table of a search (:func:`analysis.trials_frame` rows); empty when no trial
    was audited."""
    counted = trials[trials["counted"].astype(bool)] if len(trials) else trials
    if counted.empty or "audit_pruned_at" not in counted:
        return pd.DataFrame(columns=list(AUDIT_COLUMNS))
    audited = counted["audit_pruned_at"].notna()
    done = counted[(counted["state"] == "COMPLETE") & counted["value"].notna()]
    sign = 1.0 if maximize else -1.0
    rows = []
    for family, group in counted[audited].groupby("family", sort=True):
        rivals = done[(done["family"] == family) & done["audit_pruned_at"].isna()]
        best = (sign * rivals["value"]).max() if len(rivals) else -math.inf
        finished = group[group["value"].notna()]
        wrong = int((sign * finished["value"] > best).sum())
        pruned = int(((counted["family"] == family) & (counted["state"] == "PRUNED")).sum())
        rows.append(_row(str(family), len(finished), wrong, pruned))
    if not rows:
        return pd.DataFrame(columns=list(AUDIT_COLUMNS))
    total = _row(
        "all",
        *(
            sum(int(r[k]) for r in rows)  # type: ignore[call-overload]
            for k in ("n_audited", "n_wrong", "n_pruned")
        ),
    )
    return pd.DataFrame([*rows, total], columns=list(AUDIT_COLUMNS))


def _row(family: str, n: int, wrong: int, pruned: int) -> dict[str, object]:
    share = wilson(wrong, n)
    return {
        "family": family,
        "n_audited": n,
        "n_wrong": wrong,
        "wrong_rate": share.mean,
        "wrong_ci_low": share.low,
        "wrong_ci_high": share.high,
        "n_pruned": pruned,
    }


def audit_sentence(table: pd.DataFrame) -> str:
    """The report's sentence on the audit; "" when nothing was audited."""
    if table.empty:
        return ""
    total = table[table["family"] == "all"].iloc[0]
    n, wrong = int(total["n_audited"]), int(total["n_wrong"])
    if n == 0:
        return ""
    lo, hi = float(total["wrong_ci_low"]) * 100, float(total["wrong_ci_high"]) * 100
    which = ""
    if wrong:
        names = table[(table["family"] != "all") & (table["n_wrong"] > 0)]["family"].tolist()
        which = f" ({', '.join(names)})"
    return (
        f" Pruning audit: of {n} trial{'s' if n != 1 else ''} the pruner would have stopped "
        f"but let run to the end, {wrong} beat their family's best completed trial{which}: "
        f"pruning was wrong for {wrong / n:.0%} of them (95% CI {lo:.0f} to {hi:.0f} %)."
    )
