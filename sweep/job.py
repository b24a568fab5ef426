"""A sweep's job: train the trials the sweeper handed it, as one population, and end each one.

The job reconnects to its trials through the storage (``sweep.study``), reads each member's
config from its trial (stored by the sweeper when it asked), trains the members that share a
network as one population, reports every epoch to each member's trial and ends each trial,
as soon as it stops training, through the one function that ends trials. When the job runs in
the sweeper's process (:func:`refills`), the places of members that ended go to new trials the
sweeper asks, so the population stays full until the study's budget is reached. A SIGTERM or
Ctrl-C flushes the reports and ends the running trials as interrupted before the job stops.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from .config import AppConfig, ConfigError, TrialLink, from_dict, validate
from .console import EpochTable
from .record import TRIAL_AUDIT, TRIAL_OWNER, StopReason
from .run import Entrant, RunOutcome, objective_values, run_population, structure_key
from .signals import terminate_as_interrupt
from .study import (
    STORAGE_ENV,
    Ending,
    Keeper,
    MemberLink,
    StorageError,
    StudyLink,
    TrialGone,
    current_owner,
    mask_url,
    open_storage,
    record_json,
    requeue,
    resolve_storage,
    write_attrs_many,
)

__all__ = ["JobError", "Refill", "app_config", "refills", "run_trials", "share_storage"]

log = logging.getLogger("sweep")

_STATES: dict[str, TrialState] = {
    StopReason.COMPLETED: TrialState.COMPLETE,
    StopReason.EARLY_STOPPED: TrialState.COMPLETE,
    StopReason.PRUNED: TrialState.PRUNED,
}


Refill = Callable[[tuple[Any, ...], int, Mapping[str, Any]], list[FrozenTrial]]
"""``refill(key, n, attrs)``: up to ``n`` more trials whose configs have the structure ``key``
(:func:`sweep.run.structure_key`), RUNNING, with their config, owner and the user attributes
``attrs`` stored; each comes back as stored, so the job need not read it."""

_REFILLS: dict[tuple[str, str], tuple[int, Refill]] = {}


@contextmanager
def refills(study: str, stage: str, refill: Refill) -> Iterator[None]:
    """While this lasts, a job of ``study``'s ``stage`` that runs in this thread (Hydra's basic
    launcher runs jobs in the sweeper's process, one after another) asks ``refill`` for trials
    to fill the places of members that ended, so its population stays full: pruning then saves
    wall time, not only epochs, and the study needs fewer jobs. A job in another process (the
    joblib and submitit launchers) trains the trials it was given."""
    _REFILLS[(study, stage)] = (threading.get_ident(), refill)
    try:
        yield
    finally:
        _REFILLS.pop((study, stage), None)


def _refill_for(link: TrialLink) -> Refill | None:
    found = _REFILLS.get((link.study or "", link.stage))
    if found is None or found[0] != threading.get_ident():
        return None
    return found[1]


class JobError(RuntimeError):
    """The job cannot reach its trials (storage or study); the sweeper fails them."""


def app_config(stored: Any) -> AppConfig:
    """A stored job config (a plain dict) as the typed, range-checked config."""
    app = from_dict(stored)
    assert isinstance(app, AppConfig), type(app)
    return validate(app)


def storage_url(link: TrialLink) -> str:
    """The full storage URL: from ``$REGSWEEP_STORAGE`` when it is the one the link names
    (whose password the override masks), else the link's own."""
    given = link.storage or ""
    secret = os.environ.get(STORAGE_ENV, "")
    if secret and mask_url(secret) == given:
        return secret
    if "***" in given:
        raise JobError(
            f"trial.storage={given!r} has its password masked and ${STORAGE_ENV} does not hold "
            f"it: start workers with {STORAGE_ENV} set, or give the password through "
            "PGPASSWORD or ~/.pgpass"
        )
    return given


@dataclass
class _Member:
    link: MemberLink
    config: AppConfig


_STORAGES: dict[str, BaseStorage] = {}


def share_storage(url: str, storage: BaseStorage) -> None:
    """Jobs of this process that name ``url`` use ``storage``: the sweeper shares the storage
    it opened with the jobs Hydra's basic launcher runs in its process (opening a second
    engine on the same database, with Optuna's schema check, took 0.3–0.5 s of the first job)."""
    _STORAGES[url] = storage


def _storage(url: str) -> BaseStorage:
    """One opened storage (one connection pool) per URL per process: an in-process launcher
    runs many jobs one after another, and opening a database costs more than a small job."""
    if url not in _STORAGES:
        try:
            _STORAGES[url] = open_storage(resolve_storage(url, key="trial.storage"), create=False)
        except StorageError as exc:
            raise JobError(str(exc)) from None
    return _STORAGES[url]


def _connect(link: TrialLink) -> tuple[StudyLink, list[MemberLink]]:
    assert link.study is not None and link.number is not None
    study = StudyLink(_storage(storage_url(link)), link.study)
    numbers = list(link.members) or [link.number]
    members = []
    for member in study.members(numbers):
        if isinstance(member, TrialGone):
            log.error("%s", member)
        else:
            members.append(member)
    return study, members


def _configs(study: StudyLink, links: list[MemberLink]) -> list[_Member]:
    """Each member's stored config, range-checked; a member whose config is bad ends FAIL."""
    members = []
    for m in links:
        try:
            members.append(_Member(m, app_config(m.user_attrs.get("config"))))
        except (ConfigError, ValueError, TypeError) as exc:
            message = f"its stored config is not valid: {exc}"
            log.error("trial %d: %s", m.number, message)
            m.end(Ending(TrialState.FAIL, None, StopReason.FAILED, message))
    return members


def run_trials(link: TrialLink, out_dir: Path, *, workers: int = 1) -> float | None:
    """Train the trials of ``link`` and end each; returns the first member's objective."""
    study, links = _connect(link)
    members = _configs(study, links)
    if not members:
        return None
    owner = current_owner()
    mine = {"job_dir": str(out_dir), TRIAL_OWNER: owner}
    write_attrs_many(study.storage, {m.link.trial_id: mine for m in members})
    for m in members:
        m.link.stored(mine)
    keeper = Keeper(study.storage, link.heartbeat)
    groups: dict[Any, list[_Member]] = {}
    for m in members:
        groups.setdefault(structure_key(m.config), []).append(m)
    first: float | None = None
    refill = _refill_for(link)
    files = _Files()
    try:
        with terminate_as_interrupt(), keeper, keeper.holding(m.link.trial_id for m in members):
            for group in groups.values():
                job = _Job(study, group, out_dir, link, keeper, refill, files)
                objective = job.train(workers)
                first = objective if first is None else first
    finally:
        files.wait()  # every JSON file is on disk when the job returns, or stops
    return first


class _Files:
    """The job's JSON files, written on one background thread: creating a file waits ~0.4 ms on
    the disk, time the population's training can use instead. A file that cannot be written is
    logged (the trial's record is in the study all the same) and fails nothing."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[tuple[Path, Future[int]]] = []

    def write(self, path: Path, text: str) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="regsweep-files")
        self._settle(done_only=True)
        self._pending.append((path, self._pool.submit(path.write_text, text)))

    def _settle(self, *, done_only: bool) -> None:
        left = []
        for path, future in self._pending:
            if done_only and not future.done():
                left.append((path, future))
                continue
            exc = future.exception()
            if exc is not None:
                log.error("could not write %s: %s", path, exc)
        self._pending = left

    def wait(self) -> None:
        """Wait for every file handed over (and report those that failed)."""
        self._settle(done_only=False)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class _Job:
    """One population of a job: its members (the trials it was given, then those that joined),
    each ended as soon as it stops training."""

    def __init__(
        self,
        study: StudyLink,
        members: list[_Member],
        out_dir: Path,
        link: TrialLink,
        keeper: Keeper,
        refill: Refill | None,
        files: _Files,
    ) -> None:
        self.study, self.members, self.out_dir, self.link = study, list(members), out_dir, link
        self.keeper, self.refill, self.files = keeper, refill, files
        self.key = structure_key(members[0].config)
        self.alone = len(members) == 1 and refill is None
        self.slots = max(link.slots or 0, len(members))

    @property
    def numbers(self) -> list[int]:
        return [m.link.number for m in self.members]

    def train(self, workers: int) -> float | None:
        given = list(self.members)
        log.info(
            "training trial(s) %s as one population of %d%s",
            self.numbers,
            self.slots,
            ", refilled as members end" if self.refill else "",
        )
        try:
            outcomes = run_population(
                [m.config for m in given],
                reporters=[m.link for m in given],
                on_epoch=[self._hook(m) for m in given],
                workers=workers,
                on_end=self._ended,
                more=self._more if self.refill else None,
                slots=self.slots,
                each_epoch=self.study.epoch,
            )
        except KeyboardInterrupt:
            _interrupted(self.study, self.members, self.link)
            raise
        except Exception as exc:  # a failing population must not stop the sweep
            text = traceback.format_exc()
            log.error("trial(s) %s failed:\n%s", self.numbers, text)
            message = f"{type(exc).__name__}: {exc}"
            left = [m for m in self.members if not m.link.ended]
            self.study.end_many(
                [(m.link, Ending(TrialState.FAIL, None, StopReason.FAILED, message)) for m in left]
            )
            self._write([(m, {"stop_reason": StopReason.FAILED, "message": message}) for m in left])
            return None
        return outcomes[0].objective if outcomes else None

    def _hook(self, m: _Member) -> Callable[[dict[str, float]], None] | None:
        return _epoch_logger(m.link.number, m.config.trainer.epochs, self.alone)

    def _ended(self, done: list[tuple[int, RunOutcome]]) -> None:
        """End the members that stopped this epoch, together, at once: a pruner and a sampler
        see them before the next epoch's decisions and asks."""
        numbers = self.numbers
        ended = [
            (self.members[i], _ending(self.members[i], outcome, numbers, self.slots))
            for i, outcome in done
        ]
        self.study.end_many([(m.link, e) for m, e in ended])
        self.keeper.release(m.link.trial_id for m, _ in ended)
        self._write([(m, {**e.record, "trial": m.link.number}) for m, e in ended])

    def _more(self, n: int) -> list[Entrant]:
        """Up to ``n`` trials that join in the places of members that ended."""
        assert self.refill is not None
        given = self.refill(self.key, n, {"job_dir": str(self.out_dir)})
        if not given:
            return []
        # the sweeper hands over this key's trials only, stamped with this process as owner
        members = _configs(self.study, self.study.adopt(given))
        # the sweeper beat for them when it stamped them, a moment ago, in this process
        self.keeper.hold((m.link.trial_id for m in members), beat=False)
        self.members += members
        log.info("trial(s) %s join the population", [m.link.number for m in members])
        return [Entrant(m.config, m.link, self._hook(m)) for m in members]

    def _write(self, records: list[tuple[_Member, dict[str, Any]]]) -> None:
        """``metrics.json`` for a job of one trial, ``trial_<n>.json`` per member otherwise."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for m, record in records:
            name = "metrics.json" if self.alone else f"trial_{m.link.number}.json"
            payload = {**record, "choices": m.link.user_attrs.get("choices")}
            # one line: json's C encoder (an indent takes the pure-Python one, 0.6 ms a record)
            text = record_json(payload)
            self.files.write(self.out_dir / name, text)


def _ending(m: _Member, outcome: RunOutcome, numbers: Sequence[int], slots: int) -> Ending:
    summary = {k: v for k, v in outcome.summary.items() if k != "objective"}
    summary["population"] = {"size": slots, "members": list(numbers)}
    if m.link.audit_step is not None:
        summary[TRIAL_AUDIT] = {"would_prune_at": m.link.audit_step}
    reason = outcome.fit.stop_reason
    state = _STATES.get(reason, TrialState.FAIL)
    objectives = m.config.objectives or [m.config.metric]
    values = objective_values(outcome.summary, objectives) if state == TrialState.COMPLETE else None
    log.info("trial %d: %s", m.link.number, _outcome_words(outcome, reason, objectives, values))
    return Ending(state, values, reason, outcome.fit.message, record=summary)


def _outcome_words(
    outcome: RunOutcome, reason: str, objectives: Sequence[str], values: Sequence[float] | None
) -> str:
    """How a trial ended, for the log: ``completed, val_acc 0.9407``; ``pruned after epoch 4
    (val_acc 0.3556 there)``; ``diverged at epoch 3: <message>``."""
    fit = outcome.fit
    if values is not None:
        shown = ", ".join(f"{o} {v:.4g}" for o, v in zip(objectives, values, strict=True))
        return f"{reason}, {shown}"
    words = f"{reason} after epoch {fit.epochs_run}"
    last = fit.curves.get(objectives[0], [])
    if reason == StopReason.PRUNED and last:
        words += f" ({objectives[0]} {last[-1]:.4g} there)"
    return words + (f": {fit.message}" if fit.message and reason != StopReason.PRUNED else "")


def _interrupted(study: StudyLink, members: list[_Member], link: TrialLink) -> None:
    """Ctrl-C or SIGTERM: flush every report, then end the members still running."""
    try:
        study.flush()
    except Exception as exc:  # best effort while stopping
        log.warning("could not write the last reports: %s", exc)
    for m in members:
        if m.link.ended:
            continue
        why = "the job was interrupted (Ctrl-C or SIGTERM)"
        try:
            if (
                m.link.end(Ending(TrialState.FAIL, None, StopReason.INTERRUPTED, why))
                and link.requeue
            ):
                requeue(study.study, m.link.frozen)
        except Exception as exc:
            log.warning("could not end trial %d: %s", m.link.number, exc)


def _epoch_logger(
    number: int, epochs: int, alone: bool
) -> Callable[[dict[str, float]], None] | None:
    """Each member's epoch table in the job's log: at INFO for a single trial, at DEBUG for a
    population; None when the log would drop those lines (no line formatted per member-epoch)."""
    level = logging.INFO if alone else logging.DEBUG
    if not log.isEnabledFor(level):
        return None
    table = EpochTable(
        epochs, progress=False, emit=lambda line: log.log(level, "[trial %d] %s", number, line)
    )
    return table.row
