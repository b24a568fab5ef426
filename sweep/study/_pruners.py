"""The pruner a study stores as ``regsweep:pruner``, rebuilt identically by every job."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from ..record import TRIAL_AUDIT, TRIAL_FAMILY

__all__ = ["PRUNED_ON_ATTRS", "PRUNERS", "FamilyStartupPruner", "PeerPercentilePruner",
           "make_pruner", "reads_rungs"]  # fmt: skip

PRUNERS = (
    "none",
    "median",
    "percentile",
    "successive_halving",
    "hyperband",
    "threshold",
    "wilcoxon",
)

PRUNED_ON_ATTRS = (TRIAL_FAMILY, TRIAL_AUDIT)
"""The user attributes of other trials that a pruning decision reads (the family, and whether a
trial was audited): a job's view of the study loads these and no others
(:func:`~sweep.study._reads.light_trials`)."""


def reads_rungs(spec: Mapping[str, Any] | None) -> bool:
    """Whether the pruner keeps state in the trial's system attributes (successive halving and
    hyperband write rung records there), so a pruning decision needs the trial re-read."""
    return spec is not None and spec.get("name") in ("successive_halving", "hyperband")


class PeerPercentilePruner(optuna.pruners.BasePruner):
    """Optuna's percentile rule, judged against every trial that reached the epoch, running ones
    included.

    Optuna's :class:`~optuna.pruners.PercentilePruner` compares a trial with *finished* trials
    only. In a population every member starts together, none has finished when the others are
    judged, so the first population (8 of the default study's 40 trials) could never be pruned.
    Here the reference at epoch ``s`` is the value at ``s`` of every other trial that is
    COMPLETE or RUNNING and has reported ``s`` (pruned trials are left out, as Optuna leaves them
    out): the members of a population are each other's reference. As in Optuna, a trial is
    kept at ``s`` while its best value so far is within the best ``percentile`` % of those
    values (50: the median), and pruned otherwise, once at least ``n_startup_trials`` (and
    ``n_min_trials``) of them exist; epochs below ``n_warmup_steps`` are never pruned, and it
    checks every ``interval_steps`` epochs. With one trial at a time it is Optuna's rule.
    With ``by_family``, the reference holds only the trials of the trial's own regularizer
    family (its ``family`` user attribute): a regularized run that learns slowly at first is
    judged against its peers, not against unregularized runs that learn fast and overfit later.

    Example:
        >>> pruner = PeerPercentilePruner(50.0, n_startup_trials=5, n_warmup_steps=4)
        >>> pruner.percentile
        50.0
    """

    def __init__(
        self,
        percentile: float,
        *,
        n_startup_trials: int = 5,
        n_warmup_steps: int = 0,
        interval_steps: int = 1,
        n_min_trials: int = 1,
        by_family: bool = False,
    ) -> None:
        checks = {"percentile": (percentile, 0 <= percentile <= 100, "0 to 100"),
                  "n_startup_trials": (n_startup_trials, n_startup_trials >= 0, ">= 0"),
                  "n_warmup_steps": (n_warmup_steps, n_warmup_steps >= 0, ">= 0"),
                  "interval_steps": (interval_steps, interval_steps >= 1, ">= 1"),
                  "n_min_trials": (n_min_trials, n_min_trials >= 1, ">= 1")}  # fmt: skip
        bad = [f"{k}={v!r}: allowed {allowed}" for k, (v, ok, allowed) in checks.items() if not ok]
        if bad:
            raise ValueError("; ".join(bad))
        self.percentile = float(percentile)
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps
        self.interval_steps = interval_steps
        self.n_min_trials = n_min_trials
        self.by_family = by_family

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.n_warmup_steps or not self._checks_at(trial, step):
            return False
        sign = _sign(study)
        best = max((_score(v, sign) for v in trial.intermediate_values.values()), default=-math.inf)
        if best == -math.inf:
            return True  # Optuna's rule: a trial with only NaN so far is pruned
        others = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
        if self.by_family:
            family = trial.user_attrs.get(TRIAL_FAMILY)
            others = [t for t in others if t.user_attrs.get(TRIAL_FAMILY) == family]
        peers = [_score(t.intermediate_values.get(step), sign) for t in others
                 if t.number != trial.number]  # fmt: skip
        peers = [v for v in peers if v > -math.inf]
        if len(peers) < max(self.n_startup_trials, self.n_min_trials, 1):
            return False
        # kept: within the best ``percentile`` % (scores: higher is better in either direction)
        return best < float(np.percentile(peers, 100.0 - self.percentile))

    def _checks_at(self, trial: FrozenTrial, step: int) -> bool:
        """Whether ``step`` is the first reported epoch of its interval after the warm-up."""
        if self.interval_steps == 1:
            return True
        earlier = [s for s in trial.intermediate_values if s < step]
        if not earlier or max(earlier) < self.n_warmup_steps:
            return True
        w, i = self.n_warmup_steps, self.interval_steps
        return (step - w) // i > (max(earlier) - w) // i


class FamilyStartupPruner(optuna.pruners.BasePruner):
    """Each regularizer family's first trials run to the end: a trial is never pruned while
    fewer than ``n_per_family`` trials of its family (the ``family`` user attribute) numbered
    below it are COMPLETE or RUNNING; every other decision is ``base``'s.

    A trial of the family that failed, diverged or was pruned before this rule applied passes
    its place on to the next one, so every family ends the search with ``n_per_family``
    completed runs unless its runs diverge. A family that starts slowly (dropout, a strong
    penalty) is then never judged on its early epochs alone before it has a reference of its
    own: with pruning among peers, a family's first trials are the peers.

    Example:
        >>> pruner = FamilyStartupPruner(optuna.pruners.NopPruner(), n_per_family=3)
        >>> pruner.n_per_family
        3
    """

    def __init__(self, base: optuna.pruners.BasePruner, *, n_per_family: int) -> None:
        if n_per_family < 0:
            raise ValueError(f"family_startup_trials={n_per_family!r}: allowed >= 0")
        self.base = base
        self.n_per_family = n_per_family

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        family = trial.user_attrs.get(TRIAL_FAMILY)
        if family is None:
            return bool(self.base.prune(study, trial))
        states = (TrialState.COMPLETE, TrialState.RUNNING)
        before = sum(1 for t in study.get_trials(deepcopy=False, states=states)
                     if t.user_attrs.get(TRIAL_FAMILY) == family and t.number < trial.number)  # fmt: skip
        if before < self.n_per_family:
            return False
        return bool(self.base.prune(study, trial))


def _sign(study: optuna.Study) -> float:
    """+1 when the study maximizes, -1 when it minimizes: ``sign * value`` is a score."""
    return 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0


def _score(value: float | None, sign: float) -> float:
    """Higher is better; no value or a non-finite one is the worst."""
    return sign * value if value is not None and math.isfinite(value) else -math.inf


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
        # a spec stored before ``peers`` existed keeps Optuna's finished-trials-only rule, and
        # one stored before ``by_family`` compares with every family
        if s.get("peers", False):
            base = PeerPercentilePruner(pct, **common, by_family=bool(s.get("by_family", False)))
        else:
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
        base = p.PatientPruner(
            base, patience=int(s["patience"]), min_delta=float(s.get("min_delta", 0.0))
        )
    # a spec stored before ``family_startup_trials`` existed spares no family
    per_family = int(s.get("family_startup_trials", 0))
    if per_family > 0 and name != "none":
        return FamilyStartupPruner(base, n_per_family=per_family)
    return base
