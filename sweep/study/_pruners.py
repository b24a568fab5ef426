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
from ._pruner_configs import (
    PRUNER_SETTINGS,
    HyperbandSettings,
    MedianSettings,
    PercentileSettings,
    SuccessiveHalvingSettings,
    ThresholdSettings,
    WilcoxonSettings,
    stored_settings,
)

__all__ = [
    "PRUNED_ON_ATTRS",
    "PRUNERS",
    "FamilyStartupPruner",
    "PeerPercentilePruner",
    "make_pruner",
    "reads_rungs",
]

PRUNERS = tuple(PRUNER_SETTINGS)

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
        checks = {
            "percentile": (percentile, 0 <= percentile <= 100, "0 to 100"),
            "n_startup_trials": (n_startup_trials, n_startup_trials >= 0, ">= 0"),
            "n_warmup_steps": (n_warmup_steps, n_warmup_steps >= 0, ">= 0"),
            "interval_steps": (interval_steps, interval_steps >= 1, ">= 1"),
            "n_min_trials": (n_min_trials, n_min_trials >= 1, ">= 1"),
        }
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
        peers = [
            _score(t.intermediate_values.get(step), sign)
            for t in others
            if t.number != trial.number
        ]
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
        before = sum(
            1
            for t in study.get_trials(deepcopy=False, states=states)
            if t.user_attrs.get(TRIAL_FAMILY) == family and t.number < trial.number
        )
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
    """Build the pruner of a stored ``spec`` (:func:`stored_settings`); ``patience`` wraps it in
    :class:`~optuna.pruners.PatientPruner`, ``family_startup_trials`` in
    :class:`FamilyStartupPruner`.

    Example:
        >>> type(make_pruner({"name": "median", "patience": 2})).__name__
        'PatientPruner'
    """
    name, s = stored_settings(spec)
    p = optuna.pruners
    base: optuna.pruners.BasePruner
    if name == "none":
        return p.NopPruner()
    if isinstance(s, MedianSettings):
        pct = s.percentile if isinstance(s, PercentileSettings) else 50.0
        common = {
            "n_startup_trials": int(s.n_startup_trials),
            "n_warmup_steps": int(s.n_warmup_steps),
            "interval_steps": int(s.interval_steps),
            "n_min_trials": int(s.n_min_trials),
        }
        if s.peers:
            base = PeerPercentilePruner(float(pct), **common, by_family=bool(s.by_family))
        else:
            base = p.PercentilePruner(float(pct), **common)
    elif isinstance(s, SuccessiveHalvingSettings):
        base = p.SuccessiveHalvingPruner(
            min_resource=s.min_resource,
            reduction_factor=int(s.reduction_factor),
            min_early_stopping_rate=int(s.min_early_stopping_rate),
            bootstrap_count=int(s.bootstrap_count),
        )
    elif isinstance(s, HyperbandSettings):
        base = p.HyperbandPruner(
            min_resource=1 if s.min_resource == "auto" else int(s.min_resource),
            max_resource=s.max_resource,
            reduction_factor=int(s.reduction_factor),
            bootstrap_count=int(s.bootstrap_count),
        )
    elif isinstance(s, ThresholdSettings):
        base = p.ThresholdPruner(
            lower=s.lower,
            upper=s.upper,
            n_warmup_steps=int(s.n_warmup_steps),
            interval_steps=int(s.interval_steps),
        )
    else:
        assert isinstance(s, WilcoxonSettings), s
        base = p.WilcoxonPruner(
            p_threshold=float(s.p_threshold), n_startup_steps=int(s.n_warmup_steps)
        )
    if s.patience is not None:
        base = p.PatientPruner(base, patience=int(s.patience), min_delta=float(s.min_delta))
    if s.family_startup_trials > 0:
        return FamilyStartupPruner(base, n_per_family=int(s.family_startup_trials))
    return base
