"""The one place a trial ends, and how a rerun finishes the trials of processes that died.

:func:`end_trial` writes a trial's record, its reports and its final state together: in one
transaction on database storages; elsewhere the record first, with the intended ending
(``regsweep:end``), then the state. So a stored record is never thrown away: :func:`reap`
finishes a trial whose process died after storing its record as that record says, and fails
(or re-queues) only a trial that died before.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

from ..record import TRIAL_END, TRIAL_OWNER, StopReason
from ._owner import current_owner, owner_is_dead, owner_text
from ._reads import light_trials, remember_ended
from ._writes import Write, write_many

__all__ = [
    "Ending",
    "end_trial",
    "end_trials",
    "reap",
    "requeue",
    "stamp_owner",
    "supports_heartbeat",
    "write_attrs",
    "write_attrs_many",
    "write_reports",
]

log = logging.getLogger("regsweep.study")


@dataclass(frozen=True)
class Ending:
    """How a trial ends: its state, its values (one per objective; None for FAIL), the stop
    reason of docs/trial-record.md and a message in words."""

    state: TrialState
    values: Sequence[float] | None = None
    reason: str = StopReason.COMPLETED
    message: str = ""
    record: Mapping[str, Any] = field(default_factory=dict)


def supports_heartbeat(storage: BaseStorage) -> bool:
    """Whether ``storage`` (an RDB storage, possibly wrapped in Optuna's cache) has heartbeats."""
    return isinstance(storage, BaseHeartbeat) and storage.get_heartbeat_interval() is not None


def write_attrs(storage: BaseStorage, trial_id: int, attrs: Mapping[str, Any]) -> None:
    """Store user attributes of a running trial, in one transaction on database storages."""
    write_attrs_many(storage, {trial_id: attrs})


def write_attrs_many(storage: BaseStorage, attrs: Mapping[int, Mapping[str, Any]]) -> None:
    """Store user attributes of many running trials (``{trial_id: attrs}``) in one transaction."""
    write_many(storage, [Write(tid, a) for tid, a in attrs.items()])  # stored JSON-safe


def write_reports(storage: BaseStorage, reports: Mapping[int, Mapping[int, float]]) -> None:
    """Store intermediate values ``{trial_id: {step: value}}`` of running trials, all in one
    transaction on database storages (a commit per epoch is most of a short trial's storage
    time). A trial that another process already finished is skipped."""
    write_many(storage, [Write(tid, reports=steps) for tid, steps in reports.items()])


def _final(
    ending: Ending, reports: Mapping[int, float], stored: Mapping[int, float], n_objectives: int
) -> tuple[TrialState, list[float] | None, str, str]:
    """Normalize an ending: a COMPLETE trial needs finite values (else FAIL); a PRUNED
    single-objective trial's value is its last report (as Optuna's ``tell`` does)."""
    state, reason, message = ending.state, ending.reason, ending.message
    values = [float(v) for v in ending.values] if ending.values is not None else None
    if state == TrialState.COMPLETE:
        if not values or len(values) != n_objectives or not all(map(math.isfinite, values)):
            return (
                TrialState.FAIL,
                None,
                StopReason.FAILED,
                (message or f"its objective value is not a finite number: {values}"),
            )
        return state, values, reason, message
    if state == TrialState.PRUNED:
        seen = {**stored, **reports}
        if n_objectives == 1 and seen:
            last = seen[max(seen)]
            return state, ([last] if math.isfinite(last) else None), reason, message
        return state, None, reason, message
    return state, None, reason, message


def end_trials(
    storage: BaseStorage,
    endings: Sequence[tuple[FrozenTrial, Ending, Mapping[int, float]]],
    *,
    n_objectives: int = 1,
    whole_study: int | None = None,
) -> list[bool]:
    """End trials (snapshots; only their ids, numbers and reports are read), each as its
    :class:`Ending` says, with its last ``reports``: the record, the reports, the stop reason,
    the intended ending (``regsweep:end``), then the state and values; all trials in one
    transaction on database storages (a population ends its members together).

    ``whole_study``: the id of the trials' study, given when each snapshot holds everything
    stored for its trial (a job's own members, with every value they reported): the trials as
    ended are then kept for the sampler's next read (:func:`~sweep.study._reads.remember_ended`)
    instead of being read back.

    This is the only function that moves a regsweep trial out of RUNNING. It returns, per
    trial, False when another process finished that trial first (nothing is written for it).
    """
    writes, ended = [], []
    for trial, ending, reports in endings:
        state, values, reason, message = _final(
            ending, reports, trial.intermediate_values, n_objectives
        )
        attrs = {
            **ending.record,
            "stop_reason": reason,
            "message": message,
            TRIAL_END: {"state": state.name, "values": values},
        }
        # stored as json_safe makes them (by write_many: one pass over the record, not two)
        writes.append(Write(trial._trial_id, attrs, dict(reports), (state, values)))
        ended.append((trial, state, values, attrs, reports))
    done = write_many(storage, writes)
    if whole_study is not None:
        now = datetime.now()
        kept = [_as_ended(*e, now) for e in ended if e[0]._trial_id in done]
        remember_ended(storage, whole_study, kept)
    return [w.trial_id in done for w in writes]


def _as_ended(
    trial: FrozenTrial,
    state: TrialState,
    values: list[float] | None,
    attrs: Mapping[str, Any],
    reports: Mapping[int, float],
    now: datetime,
) -> FrozenTrial:
    """``trial`` as :func:`end_trials` has just stored it (its completion time within
    milliseconds)."""
    out = copy.copy(trial)
    out.state, out._values, out.datetime_complete = state, values, now
    out.intermediate_values = {**trial.intermediate_values, **reports}
    out._user_attrs = {**trial.user_attrs, **attrs}
    return out


def end_trial(
    storage: BaseStorage,
    trial: FrozenTrial,
    ending: Ending,
    *,
    n_objectives: int = 1,
    reports: Mapping[int, float] | None = None,
) -> bool:
    """:func:`end_trials` for one trial."""
    return end_trials(storage, [(trial, ending, reports or {})], n_objectives=n_objectives)[0]


def stamp_owner(
    storage: BaseStorage, trial_id: int, extra: Mapping[str, Any] | None = None
) -> None:
    """Mark this process as the owner of a running trial (with ``extra`` attributes, in the
    same transaction)."""
    write_attrs(storage, trial_id, {**(extra or {}), TRIAL_OWNER: current_owner()})


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Enqueue ``trial``'s parameters again (a trial of a confirmation study, which has none,
    is re-run by the plan instead)."""
    if trial.params:
        study.enqueue_trial(
            dict(trial.params), user_attrs={"requeued_from": trial.number}, skip_if_exists=False
        )


def _stale_ids(storage: BaseStorage, study_id: int) -> set[int]:
    if not supports_heartbeat(storage):
        return set()
    try:
        return set(storage._get_stale_trial_ids(study_id))  # type: ignore[attr-defined]
    except Exception as exc:  # a busy database: try again at the next ask
        log.debug("stale-trial check failed: %s", exc)
        return set()


_REAP_ATTRS = (TRIAL_OWNER, TRIAL_END, "stop_reason", "message")


def reap(
    study: optuna.Study, *, requeue_interrupted: bool = False, spare: Iterable[int] = ()
) -> list[str]:
    """Finish the RUNNING trials whose process is provably gone; return one line per trial.

    A trial's process is gone when its owner ran on this machine and no longer exists, or when
    its heartbeat went stale (database storages). Such a trial whose record was stored
    (``regsweep:end``) is finished as the record says; any other is failed as ``interrupted``
    (and its parameters re-queued with ``requeue_interrupted``). ``spare`` are trial ids this
    process itself is running.
    """
    storage = study._storage
    # only what deciding and ending needs: the cached storage's read would parse the whole
    # record of every trial that ended since the last reap (~1 ms each, once per launch)
    trials = light_trials(storage, study._study_id, attrs=_REAP_ATTRS)
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if not running:
        return []
    spared = set(spare)
    stale = _stale_ids(storage, study._study_id)
    here = current_owner()
    lines = []
    for t in running:
        if t._trial_id in spared:
            continue
        owner = t.user_attrs.get(TRIAL_OWNER)
        local = isinstance(owner, Mapping) and owner.get("host") == here["host"]
        alive_here = local and not owner_is_dead(owner)
        if alive_here or not (owner_is_dead(owner) or t._trial_id in stale):
            continue
        why = "its process is gone" if owner_is_dead(owner) else "its heartbeat stopped"
        lines.append(_finish_orphan(study, t, why, owner, requeue_interrupted))
    return [line for line in lines if line]


def _finish_orphan(
    study: optuna.Study, t: FrozenTrial, why: str, owner: Any, requeue_it: bool
) -> str:
    end = t.user_attrs.get(TRIAL_END)
    n = len(study.directions)
    if isinstance(end, Mapping) and end.get("state") in TrialState.__members__:
        state = TrialState[end["state"]]
        ending = Ending(
            state,
            end.get("values"),
            str(t.user_attrs.get("stop_reason", "")),
            str(t.user_attrs.get("message", "")),
        )
        if end_trial(study._storage, t, ending, n_objectives=n):
            return (
                f"trial {t.number}: {why} ({owner_text(owner)}) after storing its record: "
                f"finished as {state.name}"
            )
        return ""
    message = f"its process ({owner_text(owner)}) stopped before the trial ended ({why})"
    ending = Ending(TrialState.FAIL, None, StopReason.INTERRUPTED, message)
    if not end_trial(study._storage, t, ending, n_objectives=n):
        return ""
    if requeue_it:
        requeue(study, t)
        return f"trial {t.number}: {why} ({owner_text(owner)}): failed as interrupted, re-queued"
    return f"trial {t.number}: {why} ({owner_text(owner)}): failed as interrupted"
