"""Trial and curve DataFrames → the data each figure draws (pure functions)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis._tables import _bins, result_trials

__all__ = [
    "best_curves_data",
    "dropout_data",
    "gap_vs_strength_data",
    "heatmap_data",
    "history_data",
    "intermediate_data",
    "sparsity_data",
]


def gap_vs_strength_data(trials: pd.DataFrame) -> pd.DataFrame:
    """Result trials with a positive family strength: ``trial, family, strength, gap, val_acc``."""
    done = result_trials(trials)
    keep = (done["strength"] > 0) & np.isfinite(done["gap_acc_best"])
    out = done.loc[keep, ["trial", "family", "strength", "gap_acc_best", "best_val_acc"]]
    return out.rename(columns={"gap_acc_best": "gap", "best_val_acc": "val_acc"}).reset_index(
        drop=True
    )


def dropout_data(trials: pd.DataFrame) -> pd.DataFrame:
    """Result trials that used dropout (p > 0): ``trial, family, dropout, gap, val_acc``."""
    done = result_trials(trials)
    keep = done["hp_dropout"] > 0
    out = done.loc[keep, ["trial", "family", "hp_dropout", "gap_acc_best", "best_val_acc"]]
    out = out.rename(columns={"hp_dropout": "dropout", "gap_acc_best": "gap",
                              "best_val_acc": "val_acc"})  # fmt: skip
    return out.reset_index(drop=True)


def sparsity_data(trials: pd.DataFrame, families: tuple[str, ...] = ("l1", "l2")) -> pd.DataFrame:
    """L1 vs L2: ``trial, family, strength, sparsity`` of result trials with a strength > 0."""
    done = result_trials(trials)
    keep = done["family"].isin(families) & (done["strength"] > 0) & done["sparsity_best"].notna()
    out = done.loc[keep, ["trial", "family", "strength", "sparsity_best"]]
    return out.rename(columns={"sparsity_best": "sparsity"}).reset_index(drop=True)


def _heatmap_params(done: pd.DataFrame) -> list[str]:
    cols = [c for c in done.columns if c.startswith("params_") and done[c].nunique() >= 2]
    return sorted(cols, key=lambda c: (-int(done[c].notna().sum()), c))[:2]


def heatmap_data(
    trials: pd.DataFrame, x: str | None = None, y: str | None = None, *, n_bins: int = 6
) -> pd.DataFrame:
    """Mean validation accuracy over two searched parameters (binned), as a pivot table.

    ``x``/``y`` are parameter names (without ``params_``); by default the two parameters set in
    the most trials. The pivot's ``attrs`` hold ``x`` and ``y``; empty when fewer than two vary.
    """
    done = result_trials(trials)
    if x is None or y is None:
        chosen = _heatmap_params(done)
        if len(chosen) < 2:
            return pd.DataFrame()
        x, y = (c.removeprefix("params_") for c in chosen)
    xs, ys = done[f"params_{x}"], done[f"params_{y}"]
    frame = pd.DataFrame({
        "x": _bins(xs, n_bins), "y": _bins(ys, n_bins), "val_acc": done["best_val_acc"],
        "xo": pd.to_numeric(xs, errors="coerce"), "yo": pd.to_numeric(ys, errors="coerce"),
    }).dropna(subset=["x", "y"])  # fmt: skip
    pivot = frame.pivot_table(index="y", columns="x", values="val_acc", aggfunc="mean")
    x_order = frame.groupby("x")["xo"].min().sort_values(kind="stable").index
    y_order = frame.groupby("y")["yo"].min().sort_values(kind="stable").index
    pivot = pivot.reindex(index=y_order, columns=x_order)
    pivot.attrs.update({"x": x, "y": y})
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
    """Objective per trial number with state and the best value so far (complete trials)."""
    rows = trials[trials["state"].isin(["COMPLETE", "PRUNED"]) & trials["counted"].astype(bool)]
    out = rows[["trial", "state", "value"]].dropna(subset=["value"]).reset_index(drop=True)
    complete = out["value"].where(out["state"] == "COMPLETE")
    running = complete.cummax() if maximize else complete.cummin()
    return out.assign(best_so_far=running)


def intermediate_data(trials: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """Intermediate values (``split == "intermediate"``) with the trial's state."""
    inter = curves.loc[curves["split"] == "intermediate", ["trial", "epoch", "value"]]
    states = trials.loc[trials["counted"].astype(bool), ["trial", "state"]]
    return inter.merge(states, on="trial").reset_index(drop=True)
