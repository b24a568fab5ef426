"""The pruner a study stores as ``regsweep:pruner``, rebuilt identically by every job."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

__all__ = ["PRUNERS", "make_pruner", "reads_rungs"]

PRUNERS = (
    "none",
    "median",
    "percentile",
    "successive_halving",
    "hyperband",
    "threshold",
    "wilcoxon",
)


def reads_rungs(spec: Mapping[str, Any] | None) -> bool:
    """Whether the pruner keeps state in the trial's system attributes (successive halving and
    hyperband write rung records there), so a pruning decision needs the trial re-read."""
    return spec is not None and spec.get("name") in ("successive_halving", "hyperband")


def make_pruner(spec: Mapping[str, Any] | None) -> optuna.pruners.BasePruner:
    """Build the pruner of ``spec``; ``patience`` wraps it in :class:`~optuna.pruners.PatientPruner`.

    Example:
        >>> type(make_pruner({"name": "median", "patience": 2})).__name__
        'PatientPruner'
    """
    s = dict(spec or {"name": "none"})
    name = s.get("name", "none")
    p = optuna.pruners
    base: optuna.pruners.BasePruner
    if name == "none":
        base = p.NopPruner()
    elif name in ("median", "percentile"):
        common = {
            "n_startup_trials": int(s.get("n_startup_trials", 5)),
            "n_warmup_steps": int(s.get("n_warmup_steps", 0)),
            "interval_steps": int(s.get("interval_steps", 1)),
            "n_min_trials": int(s.get("n_min_trials", 1)),
        }
        pct = 50.0 if name == "median" else float(s.get("percentile", 25.0))
        base = p.PercentilePruner(pct, **common)
    elif name == "successive_halving":
        base = p.SuccessiveHalvingPruner(
            min_resource=s.get("min_resource", "auto"),
            reduction_factor=int(s.get("reduction_factor", 3)),
            min_early_stopping_rate=int(s.get("min_early_stopping_rate", 0)),
            bootstrap_count=int(s.get("bootstrap_count", 0)),
        )
    elif name == "hyperband":
        base = p.HyperbandPruner(
            min_resource=int(s.get("min_resource", 1)) if s.get("min_resource", 1) != "auto" else 1,
            max_resource=s.get("max_resource", "auto"),
            reduction_factor=int(s.get("reduction_factor", 3)),
            bootstrap_count=int(s.get("bootstrap_count", 0)),
        )
    elif name == "threshold":
        base = p.ThresholdPruner(
            lower=s.get("lower"),
            upper=s.get("upper"),
            n_warmup_steps=int(s.get("n_warmup_steps", 0)),
            interval_steps=int(s.get("interval_steps", 1)),
        )
    elif name == "wilcoxon":
        base = p.WilcoxonPruner(
            p_threshold=float(s.get("p_threshold", 0.1)),
            n_startup_steps=int(s.get("n_warmup_steps", 2)),
        )
    else:
        raise ValueError(f"pruner.name={name!r}: allowed " + ", ".join(PRUNERS))
    if s.get("patience") is not None:
        return p.PatientPruner(
            base, patience=int(s["patience"]), min_delta=float(s.get("min_delta", 0.0))
        )
    return base
