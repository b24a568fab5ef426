"""The study's budget and this process's tally.

``n_trials`` is the study's total: every stored trial counts except those that ended for reasons
outside the experiment (interrupted by a killed sweep, or asked beyond the budget by a racing
worker). Re-running the same command after a crash therefore resumes to the same budget.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweep.record import NOT_BUDGETED
from sweep.study import light_trials, numbers_without

if TYPE_CHECKING:
    from ._launch import Settled

__all__ = ["Tally", "budget_count", "budgeted_numbers", "is_budgeted"]

MIN_TRIALS_FOR_FAILURE_RATE = 5


def is_budgeted(trial: FrozenTrial) -> bool:
    """Whether ``trial`` counts towards the study's ``n_trials``."""
    return counts(trial.user_attrs.get("stop_reason"))


def counts(stop_reason: str | None) -> bool:
    """Whether a trial that stopped for ``stop_reason`` counts towards the budget."""
    return stop_reason not in NOT_BUDGETED


def budgeted_numbers(study: optuna.Study) -> list[int]:
    """The numbers of the trials that count towards the budget, in order (one light query)."""
    return numbers_without(study._storage, study._study_id, "stop_reason", NOT_BUDGETED)


def budget_count(study: optuna.Study, *, before: int | None = None) -> int:
    """Trials that count towards the budget (only those numbered below ``before`` if given)."""
    numbers = budgeted_numbers(study)
    return len(numbers) if before is None else bisect.bisect_left(numbers, before)


@dataclass
class Tally:
    """What this process ran; decides when the failure rate stops the sweep."""

    n_trials: int
    max_failure_rate: float
    finished: int = 0
    complete: int = 0
    pruned: int = 0
    failed: int = 0

    def add(self, trial: FrozenTrial) -> None:
        self.ended(trial.state, trial.user_attrs.get("stop_reason"))

    def settled(self, ended: Settled) -> None:
        """Count a launched trial as it settled."""
        self.ended(ended.state, ended.stop_reason)

    def ended(self, state: TrialState, stop_reason: str | None) -> None:
        """Count a trial that ended in ``state`` for ``stop_reason``."""
        self.finished += 1
        if state == TrialState.COMPLETE:
            self.complete += 1
        elif state == TrialState.PRUNED:
            self.pruned += 1
        elif state == TrialState.FAIL and counts(stop_reason):
            self.failed += 1

    @property
    def failure_rate_exceeded(self) -> bool:
        """Checked once at least 5 trials finished here, so one early failure cannot end a sweep."""
        if self.finished < MIN_TRIALS_FOR_FAILURE_RATE:
            return False
        return self.failed / self.finished > self.max_failure_rate

    @property
    def all_failed(self) -> bool:
        return self.finished > 0 and self.failed == self.finished

    def as_dict(self) -> dict[str, Any]:
        return {
            "finished": self.finished,
            "complete": self.complete,
            "pruned": self.pruned,
            "failed": self.failed,
        }

    def progress_line(self, study: optuna.Study) -> str:
        # states, values and stop reasons only: a full read parses every trial's record, once
        # per launch (~0.5 ms a trial, more with each launch)
        trials = light_trials(study._storage, study._study_id, attrs=("stop_reason",))
        counted = [t for t in trials if is_budgeted(t)]
        done = sum(1 for t in counted if t.state.is_finished())
        pruned = sum(1 for t in counted if t.state == TrialState.PRUNED)
        failed = sum(1 for t in counted if t.state == TrialState.FAIL)
        best = "—"
        if any(t.state == TrialState.COMPLETE and t.values for t in trials):
            if len(study.directions) > 1:
                best = f"Pareto front of {len(study.best_trials)} trial(s)"
            else:
                b = study.best_trial
                if b.value is not None and math.isfinite(b.value):
                    best = f"{b.value:.4f} (trial {b.number})"
        return f"{done}/{self.n_trials} done, {pruned} pruned, {failed} failed, best {best}"
