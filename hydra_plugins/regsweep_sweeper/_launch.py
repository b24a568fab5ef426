"""From asked trials to Hydra jobs: compose each trial's config, stamp it into the trial, group
the trials that share a network into populations, launch one job per population, and settle
what a job left unfinished.

Each trial's job config is composed here (from a cached composition plus its values) and
stored in the trial with its owner, in one transaction, before any job starts: the job trains
exactly that config, and a rerun can always tell whose trial it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.trial import FrozenTrial, TrialState

from sweep.config import AppConfig, validate
from sweep.run import structure_key
from sweep.study import Ending, Keeper, StorageSpec, end_trial, stamp_owner

from ._space import quote

__all__ = ["Launch", "Unit", "compose_member", "fail_unit", "population_chunks"]

log = logging.getLogger("regsweep.sweeper")
GROUPS = ("data", "model", "regularizer", "optimizer", "scheduler", "experiment")


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


def compose_member(loader: Any, master: DictConfig, overrides: list[str]) -> tuple[AppConfig, dict[str, Any], dict[str, str]]:
    """A trial's job config from ``overrides``: typed and range-checked, as stored (a plain
    dict without the trial link) and its config-group choices.

    Raises:
        ConfigError: A value is out of range.
    """
    job = loader.load_sweep_config(master, list(overrides))
    choices = {g: str(job.hydra.runtime.choices[g]) for g in GROUPS
               if job.hydra.runtime.choices.get(g) is not None}  # fmt: skip
    with open_dict(job):
        job.pop("hydra", None)
    app = OmegaConf.to_object(job)
    assert isinstance(app, AppConfig)
    validate(app)
    container = OmegaConf.to_container(job, resolve=True)
    assert isinstance(container, dict)
    plain = {str(k): v for k, v in container.items() if k != "trial"}
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

    def stamp(self, unit: Unit, plain: dict[str, Any], choices: dict[str, str],
              extra: dict[str, Any] | None = None) -> None:  # fmt: skip
        """Store the unit's config, choices and owner in its trial; start its heartbeats."""
        attrs = {"config": plain, "choices": choices,
                 "family": choices.get("regularizer", "none"), "overrides": unit.overrides,
                 **(extra or {})}  # fmt: skip
        stamp_owner(unit.study._storage, unit.trial._trial_id, attrs)
        self.keeper.hold([unit.trial._trial_id])
        self.in_flight[unit.trial._trial_id] = unit

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
        ]

    def run(self, chunks: list[list[Unit]], *, stage: str,
            on_settled: Callable[[FrozenTrial], None]) -> None:  # fmt: skip
        """Launch one job per chunk (the launcher may run them in parallel), then settle."""
        if not chunks:
            return
        overrides = [self._job_overrides(c, stage) for c in chunks]
        returns: Sequence[JobReturn] | None = None
        error: BaseException | None = None
        try:
            returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # a launcher that failed as a whole: every trial failed
            error = exc
        self.job_idx += len(chunks)
        for i, chunk in enumerate(chunks):
            ret = returns[i] if returns is not None and i < len(returns) else None
            for unit in chunk:
                on_settled(self.settle(unit, ret, error))

    def settle(self, unit: Unit, ret: JobReturn | None, error: BaseException | None) -> FrozenTrial:
        """End the unit's trial if its job returned without ending it; release it."""
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
            end_trial(storage, frozen, Ending(TrialState.FAIL, None, "failed", reason),
                      n_objectives=len(unit.study.directions))  # fmt: skip
            frozen = storage.get_trial(unit.trial._trial_id)
        self.keeper.release([unit.trial._trial_id])
        self.in_flight.pop(unit.trial._trial_id, None)
        return frozen

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
                ended = end_trial(storage, frozen, Ending(TrialState.FAIL, None, "interrupted", why),
                                  n_objectives=len(unit.study.directions))  # fmt: skip
                if ended and self.requeue:
                    requeue(unit.study, frozen)
            except Exception as exc:  # best effort while shutting down
                log.warning("could not end trial %d: %s", unit.trial.number, exc)
        self.in_flight.clear()


def fail_unit(study: optuna.Study, trial: FrozenTrial, reason: str, message: str) -> None:
    """End an asked trial that will not run (a bad config, asked over the budget)."""
    end_trial(study._storage, trial, Ending(TrialState.FAIL, None, reason, message),
              n_objectives=len(study.directions))  # fmt: skip

