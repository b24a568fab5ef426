"""Asking a population of trials: created with their owner in one write, suggested against one
read of the study, their parameters stored in one more write.

``study.ask()`` then ``suggest_*`` costs one transaction for the trial, one per parameter and
one per sampler attribute, and every ask re-reads every running trial (the batch's own
included): for a population of 32 that is ~100 commits and a read quadratic in its size.
:func:`ask_owned` gives the sampler the same view of the study instead, with the trials of the
batch added as they are suggested (so TPE's constant liar sees them), and writes what the
batch suggested when the batch is complete.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, check_distribution_compatibility
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from ..record import TRIAL_OWNER
from ._owner import current_owner
from ._reads import light_trials
from ._writes import Write, create_trials, write_many

__all__ = ["Pending", "ask_owned", "ask_pending", "ask_suggested"]

Suggest = Callable[[optuna.trial.Trial], dict[str, Any]]


def ask_owned(study: optuna.Study, n: int = 1) -> list[optuna.trial.Trial]:
    """``study.ask()`` ``n`` times, each new trial created RUNNING *with* this process as its
    owner in the same write: a process killed right after asking leaves trials that a rerun
    can tell are its own dead trials (a separate owner write would leave a window with
    ownerless trials that nothing could ever prove dead). Re-queued (WAITING) trials are taken
    first, as Optuna does."""
    return [trial for trial, _ in ask_suggested(study, n, None)]


def ask_suggested(
    study: optuna.Study, n: int, suggest: Suggest | None
) -> list[tuple[optuna.trial.Trial, dict[str, Any]]]:
    """:func:`ask_owned`, and ``suggest(trial)`` on each trial as it is asked (the sampler sees
    the batch's earlier trials with their parameters); the parameters and the sampler's
    attributes of the whole batch are stored in one write at the end."""
    asked, pending = ask_pending(study, n, suggest)
    pending.store()
    return asked


class Pending:
    """What an asked batch gave its trials (parameters, sampler attributes), not yet stored:
    the asker stores it with what it adds (a job config, a heartbeat) in one transaction."""

    def __init__(self, storage: BaseStorage, writes: dict[int, Write]) -> None:
        self._storage, self._writes = storage, writes

    def store_one(self, trial_id: int) -> None:
        """Store one trial's share now (before that trial is ended, say)."""
        write = self._writes.pop(trial_id, None)
        if write is not None and not write.empty:
            write_many(self._storage, [write])

    def store(
        self, attrs: Mapping[int, Mapping[str, Any]] | None = None, *, heartbeat: bool = False
    ) -> None:
        """Store every trial's share, with user attributes ``attrs`` (by trial id) and a
        heartbeat each if asked, in one transaction."""
        writes = []
        for trial_id, w in self._writes.items():
            extra = (attrs or {}).get(trial_id, {})  # made JSON-safe by write_many
            writes.append(dataclasses.replace(w, attrs={**w.attrs, **extra}, heartbeat=heartbeat))
        self._writes = {}
        write_many(self._storage, [w for w in writes if not w.empty])


def ask_pending(
    study: optuna.Study, n: int, suggest: Suggest | None
) -> tuple[list[tuple[optuna.trial.Trial, dict[str, Any]]], Pending]:
    """:func:`ask_suggested` without its last write, which the caller makes (:class:`Pending`).
    The trials exist, RUNNING and owned, either way."""
    storage = study._storage
    view = _BatchView(storage, study._study_id)
    owner = current_owner()
    waiting = [t._trial_id for t in view.trials if t.state == TrialState.WAITING]
    taken = _take_waiting(storage, waiting, n)
    fresh = create_trials(storage, study._study_id, n - len(taken), {TRIAL_OWNER: owner})
    for trial_id in taken:
        view.refresh(storage.get_trial(trial_id))
    asked = []
    study._storage = view  # type: ignore[assignment]
    try:
        for ready in [*(view.get_trial(i) for i in taken), *fresh]:
            view.add(ready)
            study._thread_local.cached_all_trials = None
            trial = optuna.trial.Trial(study, ready._trial_id)
            asked.append((trial, suggest(trial) if suggest is not None else {}))
    finally:
        study._storage = storage
        pending = Pending(storage, view.close())
    return asked, pending


def _take_waiting(storage: BaseStorage, waiting: list[int], n: int) -> list[int]:
    """Move up to ``n`` re-queued trials to RUNNING, stamped with this process as owner."""
    from ._lifecycle import stamp_owner

    taken: list[int] = []
    for trial_id in waiting:
        if len(taken) == n:
            break
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                stamp_owner(storage, trial_id)
                taken.append(trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker took it
    return taken


class _BatchView:
    """The study's trials as the sampler sees them while one process asks a batch: read once,
    plus the batch's trials as they are suggested. Writes to the batch's trials (parameters,
    sampler and user attributes) are held until :meth:`close` hands them over to be written
    together; after that the view passes everything to the storage (the batch's ``Trial``
    objects keep it).
    Other workers' trials asked during the batch (well under a second) are not seen, as if
    they had asked a moment later."""

    def __init__(self, storage: BaseStorage, study_id: int) -> None:
        self._inner = storage
        self._study_id = study_id
        # a sampler reads no user attribute but the stop reason (what the budget counts)
        self.trials = light_trials(storage, study_id, attrs=("stop_reason",))
        self._by_id = {t._trial_id: t for t in self.trials}
        self._batch: dict[int, Write] = {}
        self._dists: dict[str, BaseDistribution] = {}
        for t in self.trials:
            for name, dist in t.distributions.items():
                self._dists.setdefault(name, dist)
        self._open = True

    def refresh(self, frozen: FrozenTrial) -> None:
        if frozen._trial_id in self._by_id:
            self.trials = [t for t in self.trials if t._trial_id != frozen._trial_id]
        self.trials.append(frozen)
        self._by_id[frozen._trial_id] = frozen

    def add(self, frozen: FrozenTrial) -> None:
        """Make ``frozen`` (created or taken by this batch) visible, and hold its writes."""
        self.refresh(frozen)
        self._batch[frozen._trial_id] = Write(
            frozen._trial_id, attrs={}, system_attrs={}, params={}
        )

    def close(self) -> dict[int, Write]:
        """Stop holding writes; what the batch's trials were given, by trial id, to be
        written."""
        self._open = False
        return self._batch

    def _held(self, trial_id: int) -> Write | None:
        return self._batch.get(trial_id) if self._open else None

    # --- reads -----------------------------------------------------------------------------

    def get_all_trials(
        self, study_id: int, deepcopy: bool = True, states: Any = None
    ) -> list[FrozenTrial]:
        if study_id != self._study_id or not self._open:
            return self._inner.get_all_trials(study_id, deepcopy=deepcopy, states=states)
        out = [t for t in self.trials if states is None or t.state in states]
        return copy.deepcopy(out) if deepcopy else out

    def get_trial(self, trial_id: int) -> FrozenTrial:
        if self._open and trial_id in self._batch:
            return self._by_id[trial_id]
        return self._inner.get_trial(trial_id)

    def get_trial_system_attrs(self, trial_id: int) -> dict[str, Any]:
        if self._held(trial_id) is not None:
            return dict(self._by_id[trial_id].system_attrs)
        return self._inner.get_trial_system_attrs(trial_id)

    def get_trial_user_attrs(self, trial_id: int) -> dict[str, Any]:
        if self._held(trial_id) is not None:
            return dict(self._by_id[trial_id].user_attrs)
        return self._inner.get_trial_user_attrs(trial_id)

    # --- writes ----------------------------------------------------------------------------

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        held = self._held(trial_id)
        if held is None:
            self._inner.set_trial_param(trial_id, param_name, param_value_internal, distribution)
            return
        known = self._dists.setdefault(param_name, distribution)
        check_distribution_compatibility(known, distribution)
        assert isinstance(held.params, dict)
        held.params[param_name] = (param_value_internal, distribution)
        frozen = self._by_id[trial_id]
        frozen.distributions[param_name] = distribution
        frozen.params[param_name] = distribution.to_external_repr(param_value_internal)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        held = self._held(trial_id)
        if held is None:
            self._inner.set_trial_system_attr(trial_id, key, value)
            if trial_id in self._by_id:
                self._by_id[trial_id].system_attrs[key] = value
            return
        assert isinstance(held.system_attrs, dict)
        held.system_attrs[key] = value
        self._by_id[trial_id].system_attrs[key] = value

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        held = self._held(trial_id)
        if held is None:
            self._inner.set_trial_user_attr(trial_id, key, value)
            return
        assert isinstance(held.attrs, dict)
        held.attrs[key] = value
        self._by_id[trial_id].user_attrs[key] = value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
