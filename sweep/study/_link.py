"""A job's link to its trials: it reports each member's epochs, asks the study's pruner, and ends
each trial through :func:`~sweep.study.end_trial`.

The sweeper hands a job only (storage, study name, trial numbers). The job reopens the storage,
rebuilds the pruner the study stores, and works with those trials: in-process, across processes
and across machines, as long as the storage is shared. Optuna documents constructing ``Trial``
objects directly as not recommended, so this module uses only the storage and the pruner's
public ``prune(study, trial)``; ``tests/test_study_link.py`` pins the behaviour.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from ..record import STUDY_PRUNER, TRIAL_AUDIT, plain_copy
from ._lifecycle import Ending, end_trials, write_reports
from ._pruners import PRUNED_ON_ATTRS, make_pruner, reads_rungs
from ._reads import light_trials

__all__ = ["MemberLink", "StudyLink", "TrialGone", "audited"]


def audited(k: int, share: float) -> bool:
    """Whether the pruning decision that would be the study's ``k``-th (counting from 0: the
    trials pruned or audited before it) is audited instead: a ``share`` of them, evenly spaced
    (at 0.2 the 5th, 10th, 15th …), so even a short study audits some.

    Example:
        >>> [k for k in range(12) if audited(k, 0.2)]
        [4, 9]
    """
    return share > 0.0 and math.floor((k + 1) * share + 1e-9) > math.floor(k * share + 1e-9)


FLUSH_EVERY_S = 2.0
SNAPSHOT_S = 1.0


class TrialGone(RuntimeError):
    """The trial a job was given is not RUNNING any more (another process finished it)."""


class _Snapshot:
    """The study as the pruner sees it during one epoch of a population: its trials are read
    once for all members, not once per member. The job renews it at each epoch of its population
    (members that joined later report other epoch numbers than the rest, so the number cannot
    mark the epoch) and when it ends trials.

    The job's own running trials are shown with every value they reported, stored or not (reports
    are written every few seconds), so a pruner that compares running trials with each other
    (:class:`~sweep.study.PeerPercentilePruner`) sees the whole population's epoch."""

    def __init__(self, study: optuna.Study, own: Callable[[], Sequence[MemberLink]]) -> None:
        self._study = study
        self._own = own
        self._trials: list[FrozenTrial] | None = None
        self._view: list[FrozenTrial] | None = None
        self._read_at = 0.0

    def renew(self) -> None:
        self._trials = None

    def touch(self) -> None:
        """One of the job's members reported a value: the view must show it."""
        self._view = None

    def epoch(self, *, rungs: bool) -> None:
        """A new epoch of the population. A pruner that reads rung records of running trials
        (``rungs``) needs a fresh read; one that compares with finished trials only needs it
        when trials ended (:meth:`renew`, at this job's own ends) or, for other workers' ends,
        at most every ``SNAPSHOT_S`` seconds: reading the study costs more than an epoch."""
        if rungs or time.monotonic() - self._read_at >= SNAPSHOT_S:
            self._trials = None

    def get_trials(
        self, deepcopy: bool = True, states: Sequence[TrialState] | None = None
    ) -> list[FrozenTrial]:
        if self._trials is None:
            self._trials = light_trials(
                self._study._storage, self._study._study_id, PRUNED_ON_ATTRS
            )
            self._read_at = time.monotonic()
            self._view = None
        if self._view is None:
            self._view = self._with_own(self._trials)
        out = [t for t in self._view if states is None or t.state in states]
        return copy.deepcopy(out) if deepcopy else out

    def _with_own(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        own = {m.number: m for m in self._own() if not m.ended or m.ending is not None}
        view = []
        for t in trials:
            m = own.pop(t.number, None)
            view.append(m.as_frozen() if m is not None and t.state == TrialState.RUNNING else t)
        return view + [m.as_frozen() for m in own.values()]  # asked after the last read

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


class StudyLink:
    """A job's view of its study: storage, the stored pruner, and batched report writes."""

    def __init__(self, storage: BaseStorage, study_name: str) -> None:
        self.storage = storage
        self.study = optuna.load_study(study_name=study_name, storage=storage)
        spec = self.study.user_attrs.get(STUDY_PRUNER)
        self.study.pruner = make_pruner(spec)
        self.rungs = reads_rungs(spec)
        self.prunes = not isinstance(self.study.pruner, optuna.pruners.NopPruner)
        self.audit = float((spec or {}).get("audit") or 0.0)
        self.n_objectives = len(self.study.directions)
        self.links: list[MemberLink] = []
        self.snapshot = _Snapshot(self.study, lambda: self.links)
        self._last_flush = time.monotonic()

    def members(self, numbers: Sequence[int]) -> list[MemberLink | TrialGone]:
        """Reconnect to the running trials ``numbers`` (read together); a trial that is not
        RUNNING comes back as a :class:`TrialGone` error, not raised."""
        running = self.storage.get_all_trials(
            self.study._study_id, deepcopy=False, states=(TrialState.RUNNING,)
        )
        by_number = {t.number: t for t in running}
        out: list[MemberLink | TrialGone] = []
        for number in numbers:
            frozen = by_number.get(number)
            if frozen is None:
                out.append(
                    TrialGone(
                        f"trial {number} of study {self.study.study_name!r} is not RUNNING: another "
                        "process finished it (a rerun found its sweep dead, or it was told twice)"
                    )
                )
                continue
            out += self.adopt([frozen])
        return out

    def adopt(self, trials: Sequence[FrozenTrial]) -> list[MemberLink]:
        """Links to running trials as read, or as this process has just asked and stored them
        (then without a read)."""
        links = [MemberLink(self, _own_copy(t)) for t in trials]
        self.links += links
        return links

    def member(self, number: int) -> MemberLink:
        """Reconnect to trial ``number``; raises :class:`TrialGone` unless it is RUNNING."""
        study_id = self.study._study_id
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, number)
        frozen = self.storage.get_trial(trial_id)
        if frozen.state != TrialState.RUNNING:
            raise TrialGone(
                f"trial {number} of study {self.study.study_name!r} is {frozen.state.name}, "
                "not RUNNING: another process finished it (a rerun found its sweep dead, or "
                "it was told twice)"
            )
        return self.adopt([frozen])[0]

    def end_many(self, endings: Sequence[tuple[MemberLink, Ending]]) -> list[bool]:
        """End members together, in one transaction (members already ended are skipped)."""
        todo = [(m, e) for m, e in endings if not m.ended]
        for m, _ in todo:
            m.ended = True
        # each trial with every value it reported, stored or not (a pruned one's value is its
        # last report, even when its reports were all written before it was pruned); unless
        # the pruner writes rung records into running trials, that is everything stored for
        # it, and the sampler's next read in this process need not read it back
        done = end_trials(
            self.storage,
            [(m.as_frozen(), e, m.take_unwritten()) for m, e in todo],
            n_objectives=self.n_objectives,
            whole_study=None if self.rungs else self.study._study_id,
        )
        for (m, e), ok in zip(todo, done, strict=True):
            m.ending = e if ok else None
        if self.rungs or not all(done):  # another process ended one of them: read it
            self.snapshot.renew()
        else:  # the snapshot shows our own trials as they ended, without a read
            self.snapshot.touch()
        result = dict(zip((id(m) for m, _ in todo), done, strict=True))
        return [result.get(id(m), False) for m, _ in endings]

    def epoch(self) -> None:
        """Called before each epoch of the job's population (see :class:`_Snapshot`)."""
        self.snapshot.epoch(rungs=self.rungs)

    def maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        """Write every member's reports not yet stored, in one transaction."""
        pending = {m.trial_id: m.take_unwritten() for m in self.links if m.unwritten}
        if pending:
            write_reports(self.storage, pending)
        self._last_flush = time.monotonic()


def _own_copy(trial: FrozenTrial) -> FrozenTrial:
    """A copy of ``trial`` that shares nothing its source may change (Optuna's storages set
    attributes and parameters in their own trial objects): ``copy.deepcopy``'s result, in a
    fifth of its time (74 → 15 µs a trial with its config)."""
    out = copy.copy(trial)
    out._params = dict(trial._params)
    out._distributions = dict(trial._distributions)
    out._user_attrs = plain_copy(trial._user_attrs)
    out._system_attrs = plain_copy(trial._system_attrs)
    out.intermediate_values = dict(trial.intermediate_values)
    out._values = None if trial._values is None else list(trial._values)
    return out


class MemberLink:
    """One trial of a job: a :class:`~sweep.reporting.Reporter` that also ends the trial.

    Reports are kept here and written at most every 2 s (for all members at once) and when the
    trial ends. Pruning decisions use every value reported so far: the default peer pruner
    (:class:`~sweep.study.PeerPercentilePruner`) compares the running trial with the COMPLETE
    and RUNNING trials of its family that reached its epoch, this job's members with their
    unwritten reports included (:class:`_Snapshot`); Optuna's own median and percentile rules
    read finished trials only, successive halving and hyperband their own rung records. So
    nothing they read is held back.
    """

    def __init__(self, study: StudyLink, frozen: FrozenTrial) -> None:
        self.study = study
        self.frozen = frozen
        self.values: dict[int, float] = dict(frozen.intermediate_values)
        self.unwritten: dict[int, float] = {}
        self.ended = False
        self.ending: Ending | None = None  # how this job ended it (None: running, or not ours)
        # the epoch at which the pruner would have stopped this trial, had it not been audited
        self.audit_step: int | None = None

    @property
    def number(self) -> int:
        return self.frozen.number

    @property
    def trial_id(self) -> int:
        return self.frozen._trial_id

    @property
    def user_attrs(self) -> Mapping[str, Any]:
        return self.frozen.user_attrs

    def stored(self, attrs: Mapping[str, Any]) -> None:
        """User attributes just stored in the trial: this link's copy of the trial shows them
        too, so that it holds everything stored for the trial when the trial ends."""
        self.frozen.user_attrs = {**self.frozen.user_attrs, **attrs}

    def take_unwritten(self) -> dict[int, float]:
        out, self.unwritten = self.unwritten, {}
        return out

    def report(self, value: float, step: int) -> None:
        """Report the metric of epoch ``step``; NaN is skipped (the pruner cannot rank it), and
        so is everything in a multi-objective study (Optuna cannot report there)."""
        if not math.isfinite(value) or self.study.n_objectives > 1:
            return
        self.values[step] = float(value)
        self.unwritten[step] = float(value)
        self.study.snapshot.touch()
        self.study.maybe_flush()

    def should_prune(self) -> bool:
        if not self.study.prunes or self.study.n_objectives > 1 or not self.values:
            return False
        if self.audit_step is not None:
            return False  # audited: it runs to the end
        if self.study.rungs:  # the pruner's own rung records live in the stored trial
            trial = self.as_frozen(self.study.storage.get_trial(self.trial_id))
        else:
            trial = self.as_frozen()
        prune = bool(self.study.study.pruner.prune(self.study.snapshot, trial))  # type: ignore[arg-type]
        if prune and audited(self._decisions(), self.study.audit):
            self.audit_step = trial.last_step
            return False
        return prune

    def _decisions(self) -> int:
        """Pruning decisions the study made before this one: trials pruned or audited (this
        job's audited members still running hold theirs here, not yet in their records)."""
        trials = self.study.snapshot.get_trials(deepcopy=False)
        done = sum(1 for t in trials if t.state == TrialState.PRUNED or TRIAL_AUDIT in t.user_attrs)
        return done + sum(1 for m in self.study.links if m.audit_step is not None and not m.ended)

    def as_frozen(self, stored: FrozenTrial | None = None) -> FrozenTrial:
        """The trial (``stored``, or as it was given) with every value reported so far, and its
        state and values once this job ended it."""
        trial = copy.copy(stored or self.frozen)
        trial.intermediate_values = dict(self.values)
        if self.ending is not None:
            trial.state = self.ending.state
            trial.values = list(self.ending.values) if self.ending.values else None
        return trial

    def end(self, ending: Ending) -> bool:
        """End the trial (once); False when another process finished it first."""
        return self.study.end_many([(self, ending)])[0]
