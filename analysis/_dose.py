"""Dose-response: each family's effect as a curve over its strength, with its uncertainty.

The confirmation stage runs each family's finalist at a path of strengths (its other settings
kept) on the same seeds as its baseline, whose strength is off. Each point's effect is the
paired difference from that baseline, seed by seed. Its interval is Student-t at ``1 − α/m``,
m the points on the family's path (Bonferroni within the family), so the best strength, picked
after looking, is still covered; a point helps or hurts when its interval excludes 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analysis._schema import delta_range
from analysis._stats import paired_p, t_interval
from sweep.regularizers import STRENGTHS

__all__ = ["DOSE_COLUMNS", "dose_data", "dose_summary"]

DOSE_COLUMNS = (
    "family",
    "key",
    "label",
    "strength",
    "role",
    "n_seeds",
    "val_acc_mean",
    "gap_acc_mean",
    "test_acc_mean",
    "delta_val_acc",
    "delta_val_acc_ci_low",
    "delta_val_acc_ci_high",
    "delta_gap_acc",
    "delta_gap_acc_ci_low",
    "delta_gap_acc_ci_high",
    "delta_test_acc",
    "n_pairs",
    "ci_level",
    "p_raw",
    "verdict",
)
"""One row per family and strength; ``role`` is ``baseline`` (strength off: 0, or ∞ for a
strength where smaller regularizes more), ``finalist`` (the search's pick) or ``dose``."""


def _off(key: str) -> float:
    return math.inf if STRENGTHS[key].stronger == "lower" else 0.0


def _points(arms: pd.DataFrame) -> list[dict[str, Any]]:
    """Each family's path: its dose arms, its finalist and its baseline, with their strengths."""
    out = []
    doses = arms[arms["role"] == "dose"]
    for finalist_id, group in doses.groupby("dose_finalist", sort=False):
        finalist = arms[arms["arm"] == finalist_id]
        if finalist.empty:
            continue
        f = finalist.iloc[0]
        key = str(group["dose_key"].iloc[0])
        finalist_strength = float(f["strength"])
        common = {
            "family": str(f["family"]),
            "key": key,
            "label": STRENGTHS[key].label,
            "baseline_arm": f["baseline"],
        }
        out.append({**common, "arm": f["baseline"], "role": "baseline", "strength": _off(key)})
        out.append(
            {**common, "arm": finalist_id, "role": "finalist", "strength": finalist_strength}
        )
        out += [
            {**common, "arm": a, "role": "dose", "strength": float(v)}
            for a, v in zip(group["arm"], group["dose_strength"], strict=True)
        ]
    return out


def dose_data(
    runs: pd.DataFrame, arms: pd.DataFrame | None, *, alpha: float = 0.05
) -> pd.DataFrame:
    """The dose-response table of a confirmation study.

    Args:
        runs: :func:`analysis.confirm_frame` rows; completed, counted runs are used.
        arms: :func:`analysis.arms_frame` of the plan (its ``dose_*`` columns).
        alpha: The family-wise level of each family's path.

    Returns:
        :data:`DOSE_COLUMNS`, one row per family and strength, each family's rows from the
        weakest to the strongest (the baseline first). ``delta_*`` are paired differences from
        the family's baseline; ``verdict`` is ``helps`` / ``hurts`` / ``no_difference``
        (``baseline`` for the baseline row), read off the ``ci_level`` interval.
    """
    if arms is None or arms.empty or "dose_finalist" not in arms or runs.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in DOSE_COLUMNS})
    done = runs[(runs["state"] == "COMPLETE") & runs["counted"].astype(bool)]
    points = _points(arms)
    rows = []
    for _, path in pd.DataFrame(points).groupby("family", sort=False) if points else []:
        m = max(1, int((path["role"] != "baseline").sum()))
        level = 1.0 - alpha / m
        base = done[done["arm"] == path["baseline_arm"].iloc[0]]
        for _, p in path.iterrows():
            rows.append(_row(p, done[done["arm"] == p["arm"]], base, level))
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in DOSE_COLUMNS})
    out = pd.DataFrame(rows, columns=list(DOSE_COLUMNS))
    stronger = out["key"].map(lambda k: -1.0 if STRENGTHS[k].stronger == "lower" else 1.0)
    order = out.assign(_s=out["strength"] * stronger, _b=out["role"] != "baseline")
    order = order.sort_values(["_b", "_s"], kind="stable")
    order = order.sort_values(
        "family",
        kind="stable",
        key=lambda c: c.map({f: i for i, f in enumerate(dict.fromkeys(out["family"]))}),
    )
    return order.drop(columns=["_s", "_b"]).reset_index(drop=True)


def _row(p: pd.Series, own: pd.DataFrame, base: pd.DataFrame, level: float) -> dict[str, Any]:
    row: dict[str, Any] = {k: p[k] for k in ("family", "key", "label", "strength", "role")}
    row["n_seeds"] = int(own["val_acc"].notna().sum())
    for m in ("val_acc", "gap_acc", "test_acc"):
        row[f"{m}_mean"] = float(own[m].mean()) if len(own) else math.nan
    row["ci_level"] = level
    if p["role"] == "baseline":
        row.update(verdict="baseline", n_pairs=row["n_seeds"])
        return row
    paired = own.merge(base, on="seed", suffixes=("", "_base"))
    for m in ("val_acc", "gap_acc", "test_acc"):
        diff = (paired[m] - paired[f"{m}_base"]).to_numpy(dtype=float)
        d = t_interval(diff, level, within=delta_range(m))
        row[f"delta_{m}"] = d.mean
        if m != "test_acc":
            row[f"delta_{m}_ci_low"], row[f"delta_{m}_ci_high"] = d.low, d.high
        if m == "val_acc":
            row["n_pairs"], row["p_raw"] = d.n, paired_p(diff)
    lo, hi = row["delta_val_acc_ci_low"], row["delta_val_acc_ci_high"]
    row["verdict"] = (
        ("helps" if lo > 0 else "hurts" if hi < 0 else "no_difference")
        if np.isfinite(lo) and np.isfinite(hi)
        else "no_difference"
    )
    return row


def _strength_text(key: str, value: float) -> str:
    return f"{value:.0f}" if STRENGTHS[key].integer else f"{value:.3g}"


def _span(key: str, values: list[float]) -> str:
    shown = [_strength_text(key, v) for v in values]
    return shown[0] if len(shown) == 1 else f"{shown[0]} to {shown[-1]}"


def dose_summary(table: pd.DataFrame) -> str:
    """The answer's sentence on the paths: per family, the best strength with its effect and
    interval, and where along the path the family helps or hurts; "" without a path."""
    if table.empty:
        return ""
    parts = []
    for family, path in table.groupby("family", sort=False):
        points = path[path["role"] != "baseline"].dropna(subset=["delta_val_acc"])
        if points.empty:
            continue
        key = str(points["key"].iloc[0])
        label = STRENGTHS[key].label
        best = points.loc[points["delta_val_acc"].idxmax()]
        text = (
            f"{family} is best at {label}={_strength_text(key, float(best['strength']))} "
            f"({float(best['delta_val_acc']) * 100:+.1f} points, CI "
            f"{float(best['delta_val_acc_ci_low']) * 100:+.1f} to "
            f"{float(best['delta_val_acc_ci_high']) * 100:+.1f})"
        )
        helps = sorted(points.loc[points["verdict"] == "helps", "strength"].astype(float))
        hurts = sorted(points.loc[points["verdict"] == "hurts", "strength"].astype(float))
        where = []
        if helps:
            where.append(f"helps at {_span(key, helps)}")
        if hurts:
            where.append(f"hurts at {_span(key, hurts)}")
        text += (
            ("; it " + " and ".join(where))
            if where
            else "; no strength on its path differs detectably from off"
        )
        parts.append(text)
    if not parts:
        return ""
    n = int(table.loc[table["role"] != "baseline", "n_pairs"].max())
    return (
        f" Along each family's strength path (validation accuracy vs its baseline, n={n} "
        "seeds, intervals simultaneous over the path's strengths): " + "; ".join(parts) + "."
    )
