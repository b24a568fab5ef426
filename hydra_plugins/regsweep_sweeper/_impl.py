"""The sweep loop: validate the space, open the study, ask → launch one job per trial → account.

The job finishes its own trial (it reports, gets pruned, stores its results); this loop only
asks, launches, keeps heartbeats, and fails trials whose job died before telling.
"""

from __future__ import annotations

import logging
import math
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import optuna
from hydra.core.config_loader import ConfigLoader
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.study import StudyDirection
from optuna.trial import TrialState

from sweep import record
from sweep.optuna_link import (
    fail_stale_trials,
    heartbeat,
    make_pruner,
    open_storage,
    resolve_storage_url,
    supports_heartbeat,
)

from ._budget import Tally, budget_count, is_budgeted
from ._checks import SweepConfigError, check_settings, check_space
from ._compose_cache import CachingConfigLoader
from ._samplers import make_sampler
from ._space import SearchSpace, SearchSpaceError, parse_search_space

log = logging.getLogger("regsweep.sweeper")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("regsweep")
    except PackageNotFoundError:
        return "unknown"


def _command_line() -> str:
    """The command as typed, with passwords in URLs masked (it is stored in the study)."""
    argv = [re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", a) for a in sys.argv]
    if argv and argv[0].endswith("__main__.py"):
        argv[0:1] = ["python", "-m", Path(argv[0]).parent.name]
    return shlex.join(argv)


class SweepRunner:
    """State of one ``python -m sweep -m`` process (one worker of a possibly shared study)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings: dict[str, Any] = {
            k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
            for k, v in settings.items()
        }
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None
        self.job_idx = 0

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        # Jobs are composed from a cached composition plus their searched values (see
        # _compose_cache); the pre-flight checks use Hydra's own loader.
        self.loader = CachingConfigLoader(hydra_context.config_loader)
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=HydraContext(
                config_loader=cast(ConfigLoader, self.loader), callbacks=hydra_context.callbacks
            ),
            task_function=task_function,
            config=config,
        )

    # ------------------------------------------------------------------ preparation

    def _space(self, arguments: Sequence[str]) -> SearchSpace:
        s = self.settings
        return parse_search_space(
            s.get("params") or {}, s.get("conditional") or {}, list(arguments)
        )

    def _open_study(self, space: SearchSpace, directions: list[str]) -> optuna.Study:
        s = self.settings
        url = resolve_storage_url(str(s["storage"]))
        self.storage_url = url
        storage = open_storage(
            url, heartbeat_interval=int(s["heartbeat_interval"]), grace_period=s.get("grace_period")
        )
        pruner_spec = dict(s["pruner"])
        if len(directions) > 1 and pruner_spec.get("name") != "none":
            print(
                f"[regsweep] multi-objective study ({', '.join(self.metrics)}): pruning is off — "
                "Optuna cannot prune trials with several objectives; every trial runs to its end"
            )
            pruner_spec = {"name": "none", "why": "multi-objective"}
        study = optuna.create_study(
            study_name=str(s["study_name"]),
            storage=storage,
            sampler=make_sampler(dict(s["sampler"]), space),
            pruner=make_pruner(pruner_spec),
            directions=[StudyDirection[d.upper()] for d in directions],
            load_if_exists=True,
        )
        stored = [d.name.lower() for d in study.directions]
        if stored != directions:
            raise SweepConfigError(
                [
                    f"hydra.sweeper.direction: the objectives {self.metrics} need {directions}, "
                    f"but study {study.study_name!r} already exists with {stored}; "
                    "use another study_name"
                ]
            )
        attrs = study.user_attrs
        if record.STUDY_COMMAND not in attrs:
            study.set_user_attr(record.STUDY_COMMAND, _command_line())
        study.set_user_attr(record.STUDY_VERSION, _version())
        study.set_user_attr(record.STUDY_SEARCH_SPACE, space.as_dict())
        study.set_user_attr(record.STUDY_METRIC, self.metrics[0])
        study.set_user_attr(record.STUDY_OBJECTIVES, self.metrics)
        study.set_user_attr(record.STUDY_PRUNER, pruner_spec)
        study.set_user_attr(record.STUDY_N_TRIALS, int(s["n_trials"]))
        return study

    # ------------------------------------------------------------------ the loop

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        s = self.settings
        try:
            directions = check_settings(s)
            self.metrics = list(s.get("objectives") or []) or [str(s["metric"])]
            space = self._space(arguments)
            groups = check_space(space, config=self.config, hydra_context=self.hydra_context)
            self.loader.value_keys = _value_keys(space, groups)
            if s["dry_run"]:
                _print_space(space, directions)
                return None
            study = self._open_study(space, directions)
        except (SweepConfigError, SearchSpaceError) as exc:
            print(f"[regsweep] {exc}", file=sys.stderr)
            sys.exit(2)
        stale = fail_stale_trials(study, requeue=bool(s["requeue_interrupted"]))
        if stale:
            verb = "re-queued" if s["requeue_interrupted"] else "marked failed"
            log.warning("trials %s were left running by a stopped sweep: %s", stale, verb)
        tally = Tally(n_trials=int(s["n_trials"]), max_failure_rate=float(s["max_failure_rate"]))
        _say_budget(study, tally.n_trials)
        in_flight: dict[int, optuna.trial.Trial] = {}
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        try:
            with heartbeat(study._storage, _Ids(in_flight), float(s["heartbeat_interval"])):
                self._loop(study, space, tally, in_flight)
        except KeyboardInterrupt:
            self._interrupt(study, in_flight)
            _write_results(study, sweep_dir, tally)
            print(
                f"\n[regsweep] interrupted: running trials marked failed; study {study.study_name!r} kept"
            )
            sys.exit(130)
        results = _write_results(study, sweep_dir, tally)
        _print_summary(study, tally, results)
        if tally.failure_rate_exceeded or tally.all_failed:
            why = (
                f"all {tally.finished} trials failed"
                if tally.all_failed
                else f"{tally.failed} of {tally.finished} trials failed, above "
                f"hydra.sweeper.max_failure_rate={tally.max_failure_rate}"
            )
            print(
                f"[regsweep] stopped: {why}; reasons are in the job logs under {sweep_dir}",
                file=sys.stderr,
            )
            sys.exit(1)
        return results

    def _loop(
        self,
        study: optuna.Study,
        space: SearchSpace,
        tally: Tally,
        in_flight: dict[int, optuna.trial.Trial],
    ) -> None:
        s = self.settings
        n_jobs = max(1, int(s["n_jobs"]))
        common = [
            f"trial.storage={self.storage_url}",
            f"trial.study={study.study_name}",
            f"metric={self.metrics[0]}",
        ]
        if len(self.metrics) > 1:
            common.append(f"objectives=[{','.join(self.metrics)}]")
        while not tally.failure_rate_exceeded:
            batch = self._ask_batch(study, space, tally, n_jobs)
            if not batch:
                break
            overrides = []
            for trial, values in batch:
                in_flight[trial.number] = trial
                _beat(study, trial)
                overrides.append(
                    [*space.to_overrides(values), *common, f"trial.number={trial.number}"]
                )
            assert self.launcher is not None
            returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(batch)
            for (trial, _), ret in zip(batch, returns, strict=True):
                self._settle(study, trial, ret)
                in_flight.pop(trial.number, None)
                tally.add(study._storage.get_trial(trial._trial_id))
            log.info(tally.progress_line(study))

    def _ask_batch(
        self, study: optuna.Study, space: SearchSpace, tally: Tally, n_jobs: int
    ) -> list[tuple[optuna.trial.Trial, dict[str, Any]]]:
        batch: list[tuple[optuna.trial.Trial, dict[str, Any]]] = []
        for _ in range(n_jobs):
            if budget_count(study) >= tally.n_trials:
                break
            trial = study.ask()
            if budget_count(study, before=trial.number) >= tally.n_trials:
                # Another worker took the last slot between our count and our ask.
                _fail(study, trial, "over_budget", "asked after the study's budget was reached")
                break
            batch.append((trial, space.suggest(trial)))
        return batch

    def _settle(self, study: optuna.Study, trial: optuna.trial.Trial, ret: JobReturn) -> None:
        """Fail the trial if its job ended without telling (it raised before reaching its trial)."""
        frozen = study._storage.get_trial(trial._trial_id)
        if frozen.state != TrialState.RUNNING:
            return
        reason = "the job returned without finishing its trial"
        if ret.status == JobStatus.FAILED:
            exc = ret._return_value
            reason = f"{type(exc).__name__}: {exc}"
        log.error("trial %d failed: %s", trial.number, reason)
        _fail(study, trial, "failed", reason)

    def _interrupt(self, study: optuna.Study, in_flight: dict[int, optuna.trial.Trial]) -> None:
        for trial in in_flight.values():
            try:
                if study._storage.get_trial(trial._trial_id).state != TrialState.RUNNING:
                    continue
                _fail(study, trial, "interrupted", "sweep interrupted (Ctrl-C)")
            except Exception as exc:  # best effort while shutting down
                log.warning("could not mark trial %d failed: %s", trial.number, exc)


def _value_keys(space: SearchSpace, groups: set[str]) -> set[str]:
    """Per-trial overrides applied onto a cached composition: searched values and the link."""
    searched = [p for p in space.params] + [p for c in space.conditionals for p in c.params]
    keys = {p.path for p in searched if not p.prefix and p.path not in groups and "@" not in p.path}
    return keys | {"trial.storage", "trial.study", "trial.number", "metric"}


def _fail(study: optuna.Study, trial: optuna.trial.Trial, reason: str, message: str) -> None:
    """Mark a trial FAIL with its reason through the storage. Unlike ``study.tell`` this skips
    the sampler's ``after_trial``, which for the grid sampler calls ``study.stop()`` and raises
    outside ``optimize``; no sampler learns from a failure anyway."""
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, "stop_reason", reason)
        storage.set_trial_user_attr(trial._trial_id, "message", message)
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # the job (or another worker) finished it first


def _beat(study: optuna.Study, trial: optuna.trial.Trial) -> None:
    """First heartbeat at once, so a sweep killed before its job starts leaves a stale trial."""
    storage = study._storage
    if supports_heartbeat(storage):
        storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]


class _Ids:
    """Live view of the trial ids in flight, for the heartbeat thread."""

    def __init__(self, in_flight: dict[int, optuna.trial.Trial]) -> None:
        self._in_flight = in_flight

    def __iter__(self) -> Any:
        return iter([t._trial_id for t in list(self._in_flight.values())])


def _write_results(study: optuna.Study, sweep_dir: Path, tally: Tally) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    results: dict[str, Any] = {
        "name": study.study_name,
        "directions": [d.name.lower() for d in study.directions],
        "n_trials": tally.n_trials,
        "counts": counts,
        "this_run": tally.as_dict(),
    }
    if not any(t.state == TrialState.COMPLETE and t.values for t in trials):
        pass
    elif len(study.directions) > 1:
        results["pareto_front"] = [
            {"trial": t.number, "values": [float(v) for v in t.values], "params": dict(t.params)}
            for t in study.best_trials
        ]
    else:
        best = study.best_trial
        results["best_trial"] = best.number
        results["best_value"] = float(best.value) if best.value is not None else math.nan
        results["best_params"] = dict(best.params)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
    return results


def _say_budget(study: optuna.Study, n_trials: int) -> None:
    """Tell a rerun what it will do: resume, or nothing because the budget is spent."""
    stored = budget_count(study)
    name = study.study_name
    if stored >= n_trials:
        print(
            f"[regsweep] study {name!r} already has {stored} of its {n_trials} trials: nothing to "
            "run (raise hydra.sweeper.n_trials to run more, or choose another study_name)"
        )
    elif stored:
        print(f"[regsweep] resuming study {name!r}: {stored} of {n_trials} trials stored")


def _print_space(space: SearchSpace, directions: list[str]) -> None:
    """What a sweep would search (``hydra.sweeper.dry_run=true``): nothing is stored."""
    s = space.as_dict()
    print(f"[regsweep] search space checked ({', '.join(directions)}); no study was opened")
    for path, expr in s["params"].items():
        print(f"[regsweep]   {path}: {expr}")
    for parent, options in s["conditional"].items():
        for option, block in options.items():
            for path, expr in block.items():
                print(f"[regsweep]   {path}: {expr}   (when {parent}={option})")
    for line in s["cli_overrides"]:
        print(f"[regsweep]   fixed: {line}")


def _print_summary(study: optuna.Study, tally: Tally, results: dict[str, Any]) -> None:
    print(f"[regsweep] study {study.study_name!r}: {tally.progress_line(study)}")
    if "best_trial" in results:
        print(f"[regsweep] best trial {results['best_trial']}: value {results['best_value']:.6g}")
        for key, value in results["best_params"].items():
            print(f"[regsweep]   {key} = {value}")
    for entry in results.get("pareto_front", []):
        values = ", ".join(f"{v:.4g}" for v in entry["values"])
        print(f"[regsweep] Pareto front: trial {entry['trial']} ({values})")


__all__ = ["SweepRunner", "is_budgeted"]
