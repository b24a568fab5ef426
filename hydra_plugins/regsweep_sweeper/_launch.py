"""From asked trials to Hydra jobs: compose each trial's config, stamp it into the trial, group
the trials that share a network into populations, launch one job per population, and settle
what a job left unfinished.

Each trial's job config is composed here (from a cached composition plus its values) and
stored in the trial with its owner, in one transaction, before any job starts: the job trains
exactly that config, and a rerun can always tell whose trial it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig
from optuna.trial import FrozenTrial, TrialState

from sweep.config import GROUPS, AppConfig, from_dict, validate
from sweep.record import TRIAL_FAMILY, TRIAL_OWNER, StopReason
from sweep.run import structure_key
from sweep.study import (
    Ending,
    Keeper,
    Pending,
    StorageSpec,
    current_owner,
    end_trial,
    ended_among,
)

from ._space import quote

__all__ = ["Launch", "Settled", "Unit", "compose_member", "fail_unit", "population_chunks"]

log = logging.getLogger("regsweep.sweeper")


@dataclass
class Unit:
    """An asked trial, ready to train: its study, its trial, its config and how it was made."""

    study: optuna.Study
    trial: FrozenTrial
    config: AppConfig
    overrides: list[str]

    @property
    def key(self) -> tuple[Any, ...]:
        return structure_key(self.config)


def compose_member(
    loader: Any, master: DictConfig, overrides: list[str], values: dict[str, Any] | None = None
) -> tuple[AppConfig, dict[str, Any], dict[str, str]]:
    """A trial's job config from ``overrides`` and searched ``values`` (path → value): typed
    and range-checked, as stored (a plain dict without the trial link), and its config-group
    choices.

    Raises:
        ConfigError: A value is out of range.
    """
    plain, choices = loader.compose_plain(master, list(overrides), GROUPS, values)
    app = from_dict(plain)
    assert isinstance(app, AppConfig)
    validate(app)
    return app, plain, choices


def population_chunks(units: Sequence[Unit], size: int) -> list[list[Unit]]:
    """Units that share a network, in chunks of at most ``size``, in asking order.

    Example: two architectures asked alternately become two populations.
    """
    groups: dict[tuple[Any, ...], list[Unit]] = {}
    for unit in units:
        groups.setdefault(unit.key, []).append(unit)
    chunks = []
    for members in groups.values():
        chunks += [members[i : i + size] for i in range(0, len(members), size)]
    return chunks


@dataclass(frozen=True)
class Settled:
    """How a launched trial ended: its number, state and stop reason."""

    number: int
    state: TrialState
    stop_reason: str | None


class Launch:
    """Launches populations through Hydra's launcher and settles what jobs left running."""

    def __init__(
        self,
        launcher: Launcher,
        spec: StorageSpec,
        keeper: Keeper,
        *,
        heartbeat: int,
        requeue: bool,
        app_overrides: list[str],
    ) -> None:
        self.launcher = launcher
        self.spec = spec
        self.keeper = keeper
        self.heartbeat = heartbeat
        self.requeue = requeue
        self.app_overrides = app_overrides
        self.job_idx = 0
        self.in_flight: dict[int, Unit] = {}
        self.slots = 1
        self.launched: list[Unit] = []  # the current launch's units, with those that joined

    def stamp(
        self,
        units: Sequence[Unit],
        stamps: Sequence[tuple[dict[str, Any], dict[str, str], dict[str, Any] | None]],
        pending: Pending,
    ) -> None:
        """Store each unit's config, choices and owner in its trial (``stamps[i]`` is unit i's
        plain config, choices and extra attributes), with what asking them left ``pending``
        (their parameters) and a first heartbeat each, all in one transaction; keep beating
        for them."""
        if not units:
            pending.store()
            return
        owner = current_owner()
        attrs = {
            u.trial._trial_id: {
                "config": plain,
                "choices": choices,
                "overrides": u.overrides,
                TRIAL_FAMILY: choices.get("regularizer", "none"),
                TRIAL_OWNER: owner,
                **(extra or {}),
            }
            for u, (plain, choices, extra) in zip(units, stamps, strict=True)
        }
        pending.store(attrs, heartbeat=self.keeper.enabled)
        self.keeper.hold(attrs, beat=False)  # beaten in that transaction
        for u in units:
            u.trial.user_attrs = {**u.trial.user_attrs, **attrs[u.trial._trial_id]}  # as stored
            self.in_flight[u.trial._trial_id] = u

    def _job_overrides(self, chunk: list[Unit], stage: str) -> list[str]:
        first = chunk[0]
        numbers = [u.trial.number for u in chunk]
        return [
            *first.overrides,
            *(o for o in self.app_overrides if o not in first.overrides),
            f"trial.storage={quote(self.spec.masked)}",
            f"trial.study={quote(first.study.study_name)}",
            f"trial.stage={stage}",
            f"trial.heartbeat={self.heartbeat}",
            f"trial.requeue={str(self.requeue).lower()}",
            f"trial.number={numbers[0]}",
            f"trial.members=[{','.join(map(str, numbers))}]",
            f"trial.slots={max(self.slots, len(chunk))}",
        ]

    def run(
        self,
        chunks: list[list[Unit]],
        *,
        stage: str,
        on_settled: Callable[[Settled], None],
        slots: int = 1,
    ) -> None:
        """Launch one job per chunk (the launcher may run them in parallel), then settle. A job
        trains ``slots`` trials at once (trials that :meth:`join` it fill the free places)."""
        if not chunks:
            return
        self.slots = slots
        overrides = [self._job_overrides(c, stage) for c in chunks]
        self.launched = [u for c in chunks for u in c]
        returns: Sequence[JobReturn] | None = None
        error: BaseException | None = None
        try:
            returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a launcher that failed as a whole: every trial failed
            error = exc
        self.job_idx += len(chunks)
        study = chunks[0][0].study
        ret_of = {
            u.trial._trial_id: (returns[i] if returns is not None and i < len(returns) else None)
            for i, c in enumerate(chunks)
            for u in c
        }
        left = [u for u in self.launched if u.trial._trial_id in self.in_flight]
        # One read of how the jobs ended the launched trials (state and stop reason), not a
        # read of each trial's whole record
        ended = ended_among(study._storage, [u.trial._trial_id for u in left], "stop_reason")
        for unit in left:
            tid = unit.trial._trial_id
            found = ended.get(tid)
            if found is None:  # the job left it running
                found = self._fail_left(unit, ret_of.get(tid), error)
            self._release([tid])
            on_settled(Settled(unit.trial.number, found[0], found[1]))
        self.launched = []

    def join(self, units: Sequence[Unit]) -> None:
        """Units asked while a job runs, handed to it to join its population."""
        self.launched += units

    def settle_ended(self, on_ended: Callable[[TrialState, str | None], None]) -> None:
        """Release the trials of the current launch that their jobs have already ended, and
        hand each one's state and stop reason to ``on_ended`` (one query), so the failure rate
        is current while a job is still running."""
        ids = [u.trial._trial_id for u in self.launched if u.trial._trial_id in self.in_flight]
        if not ids:
            return
        ended = ended_among(self.launched[0].study._storage, ids, "stop_reason")
        self._release(ended)
        for state, reason in ended.values():
            on_ended(state, reason)

    def _release(self, trial_ids: Iterable[int]) -> None:
        """Stop the heartbeats of these settled trials and forget them."""
        ids = list(trial_ids)
        self.keeper.release(ids)
        for tid in ids:
            self.in_flight.pop(tid, None)

    def _fail_left(
        self, unit: Unit, ret: JobReturn | None, error: BaseException | None
    ) -> tuple[TrialState, str | None]:
        """End as failed a trial its job returned without ending; its state and stop reason
        (as another process left it, if one ended it first)."""
        storage = unit.study._storage
        frozen = storage.get_trial(unit.trial._trial_id)
        if frozen.state == TrialState.RUNNING:
            reason = "the job returned without ending its trial"
            if error is not None:
                reason = f"the launcher failed: {type(error).__name__}: {error}"
            elif ret is not None and ret.status == JobStatus.FAILED:
                exc = ret._return_value
                reason = f"{type(exc).__name__}: {exc}"
            log.error("trial %d failed: %s", frozen.number, reason)
            if end_trial(
                storage,
                frozen,
                Ending(TrialState.FAIL, None, StopReason.FAILED, reason),
                n_objectives=len(unit.study.directions),
            ):
                return TrialState.FAIL, StopReason.FAILED
        return ended_among(storage, [frozen._trial_id], "stop_reason")[frozen._trial_id]

    def release(self, unit: Unit) -> None:
        """Forget a unit that was asked but not run (it is already ended)."""
        self._release([unit.trial._trial_id])

    def interrupt(self, why: str) -> None:
        """Ctrl-C or SIGTERM: end every trial still in flight as interrupted (re-queued if
        asked); the jobs have already ended the ones they were training."""
        from sweep.study import requeue

        for unit in list(self.in_flight.values()):
            try:
                storage = unit.study._storage
                frozen = storage.get_trial(unit.trial._trial_id)
                if frozen.state != TrialState.RUNNING:
                    continue
                ended = end_trial(
                    storage,
                    frozen,
                    Ending(TrialState.FAIL, None, StopReason.INTERRUPTED, why),
                    n_objectives=len(unit.study.directions),
                )
                if ended and self.requeue:
                    requeue(unit.study, frozen)
            except Exception as exc:  # best effort while shutting down
                log.warning("could not end trial %d: %s", unit.trial.number, exc)
        self.in_flight.clear()


def fail_unit(study: optuna.Study, trial: FrozenTrial, reason: str, message: str) -> None:
    """End an asked trial that will not run (a bad config, asked over the budget)."""
    end_trial(
        study._storage,
        trial,
        Ending(TrialState.FAIL, None, reason, message),
        n_objectives=len(study.directions),
    )
