"""The unregularized baseline as a reference band: its mean ± 95% CI per metric."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analysis._schema import metric_range
from analysis._stats import t_interval
from analysis._tables import result_trials

__all__ = ["REFERENCE_COLUMNS", "baseline_reference", "reference_arm"]

REFERENCE_COLUMNS = ("metric", "mean", "ci_low", "ci_high", "n", "source", "same_split")


def reference_arm(runs: pd.DataFrame) -> str | None:
    """The confirmation arm that stands for "unregularized": family ``none``'s finalist, else
    the baseline arm most finalists are compared with (then the one with more runs)."""
    if runs.empty:
        return None
    done = runs[(runs["state"] == "COMPLETE") & runs["counted"].astype(bool)]
    own = done[(done["family"] == "none") & (done["role"] == "finalist")]
    if not own.empty:
        return str(own["arm"].iloc[0])
    bases = done[done["role"] == "baseline"]
    if bases.empty:
        return None
    finalists = runs.loc[runs["role"] == "finalist"].drop_duplicates("arm")
    votes = finalists["baseline"].value_counts()
    counts = bases.groupby("arm").size()
    ranked = sorted(counts.index, key=lambda a: (-int(votes.get(a, 0)), -int(counts[a]), a))
    return str(ranked[0])


def baseline_reference(
    trials: pd.DataFrame,
    runs: pd.DataFrame | None = None,
    *,
    metrics: Sequence[str] = ("gap_acc", "val_acc"),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Mean and t-interval of each metric for the unregularized baseline.

    From the search's completed trials of family ``none`` when there are two or more: they
    share the search trials' seed and validation split, which the band is compared with;
    otherwise from the confirmation study's :func:`reference_arm` (its completed seeds, other
    splits: its source says so); otherwise empty (no band is drawn; the figure says why).

    Returns:
        Columns ``metric, mean, ci_low, ci_high, n, source`` (``source`` in words) and
        ``same_split``: whether the search figures can draw it as their band (from the search).
    """
    # The search's own none trials first: every search trial shares one seed, so one validation
    # split, and another split shifts every gap alike (the default study: 3.7-4.4 points on the
    # search's split, 2.4 on the confirmation's five others).
    search = result_trials(trials)
    sources: list[tuple[pd.DataFrame, str, bool]] = [
        (
            search[search["family"] == "none"],
            "search trials of family none (single runs, on the search's seed and validation split)",
            True,
        )
    ]
    arm = reference_arm(runs) if runs is not None else None
    if arm is not None and runs is not None:
        done = runs[
            (runs["arm"] == arm) & (runs["state"] == "COMPLETE") & runs["counted"].astype(bool)
        ]
        sources.append(
            (
                done,
                f"confirmation arm {done['label'].iloc[0]}, on other seeds, so "
                "other validation splits, than the search's",
                False,
            )
        )
    rows: list[dict[str, object]] = []
    for done, source, same_split in sources:
        for m in metrics:
            ci = (
                t_interval(done[m].to_numpy(dtype=float), confidence, within=metric_range(m))
                if m in done
                else None
            )
            if ci is not None and ci.n >= 2:
                rows.append(
                    {
                        "metric": m,
                        "mean": ci.mean,
                        "ci_low": ci.low,
                        "ci_high": ci.high,
                        "n": ci.n,
                        "source": source,
                        "same_split": same_split,
                    }
                )
        if rows:
            break
    if not rows:
        return pd.DataFrame(
            {
                c: pd.Series(
                    dtype={"metric": object, "source": object, "same_split": bool}.get(c, float)
                )
                for c in REFERENCE_COLUMNS
            }
        )
    return pd.DataFrame(rows, columns=list(REFERENCE_COLUMNS))
