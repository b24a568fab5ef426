"""The sweep: check everything, open the study, search in populations, then confirm.

Order of events (nothing is stored before step 4):

1. settings, study name and storage checked; the search space parsed and every bound
   range-checked in a composed job config;
2. pre-flight: every dataset the space can reach loaded once, every device checked once;
3. the storage opened (one line naming ``hydra.sweeper.storage`` if it cannot be);
4. the study created, or resumed only if its fingerprint matches;
5. search: at every ask, trials of dead processes are finished or failed; up to
   ``population × n_jobs`` trials are asked, composed, stamped with their config and owner, and
   launched as populations; what a job left unfinished is settled;
6. confirmation: each family's finalists and their unregularized baselines on several seeds.

Ctrl-C and SIGTERM end the trials in flight as interrupted, write the results and exit with
130 / 143.
"""

from __future__ import annotations

import bisect
import copy
import logging
import os
import sys
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any, cast

import optuna
from hydra.core.config_loader import ConfigLoader
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, TrialState

from sweep.config import ConfigError
from sweep.heap import freeze_heap
from sweep.job import refills, share_storage
from sweep.record import STUDY_ROLE, StopReason
from sweep.signals import exit_code, terminate_as_interrupt
from sweep.study import (
    STORAGE_ENV,
    Keeper,
    Pending,
    StorageError,
    ask_pending,
    open_storage,
    reap,
    resolve_storage,
)

from ._budget import Tally, budget_count, budgeted_numbers
from ._checks import (
    SweepConfigError,
    check_names,
    check_settings,
    check_space,
    preflight,
    resolved_pruner,
)
from ._compose_cache import CachingConfigLoader
from ._config import SweeperConfig
from ._confirm import (
    ConfirmPlan,
    confirm_seeds,
    open_confirm_study,
    plan_arms,
    plan_dose,
    run_confirmation,
    seeds_wanted,
)
from ._launch import Launch, Settled, Unit, compose_member, fail_unit, population_chunks
from ._results import print_space, print_summary, say_budget, say_shares, write_results
from ._samplers import family_choices
from ._space import SearchSpace, SearchSpaceError, parse_search_space
from ._study import fingerprint, open_search_study, scrub_config

__all__ = ["SweepRunner"]

log = logging.getLogger("regsweep.sweeper")
# Config groups that configure the sweeper itself (selected inside hydra/sweeper=regsweep):
# Hydra hands their overrides to the sweeper too, but they are not part of a job's config.
SWEEPER_GROUPS = ("search",)


def typed_settings(settings: dict[str, Any]) -> SweeperConfig:
    given = {k: v for k, v in settings.items() if k != "_target_"}
    merged = OmegaConf.merge(OmegaConf.structured(SweeperConfig), given)
    typed = OmegaConf.to_object(merged)
    assert isinstance(typed, SweeperConfig)
    return typed


class SweepRunner:
    """One ``python -m sweep -m`` process (one worker of a possibly shared study)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.s = typed_settings(settings)
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        # Trials' configs are composed from a cached composition plus their searched values
        # (see _compose_cache); the pre-flight checks use Hydra's own loader.
        self.loader = CachingConfigLoader(hydra_context.config_loader)
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=HydraContext(
                config_loader=cast(ConfigLoader, self.loader), callbacks=hydra_context.callbacks
            ),
            task_function=task_function,
            config=config,
        )

    # ------------------------------------------------------------------ preparation

    @property
    def metrics(self) -> list[str]:
        return list(self.s.objectives or []) or [self.s.metric]

    def _app_overrides(self) -> list[str]:
        out = [f"metric={self.metrics[0]}"]
        if len(self.metrics) > 1:
            out.append(f"objectives=[{','.join(self.metrics)}]")
        return out

    def _prepare(self, arguments: list[str]) -> tuple[Any, SearchSpace | None, list[str]]:
        """Steps 1–4 of the module docstring; exits with 2 on any problem."""
        assert self.config is not None
        s = self.s
        try:
            directions = check_settings(s)
            check_names(s.study_name, s.storage)
            spec = resolve_storage(s.storage)
            scrub_config(self.config, spec)
            space = None
            if not s.confirm.only:
                args = [
                    a for a in arguments if a.split("=", 1)[0].lstrip("+~") not in SWEEPER_GROUPS
                ]
                space = parse_search_space(s.params or {}, s.conditional or {}, args)
                composed = check_space(space, config=self.config, loader=self.loader)
                self.loader.value_keys = _value_keys(space, composed.groups)
                checked = preflight(composed.apps())
                for line in checked:
                    if "one trial at a time" in line:
                        print(f"[regsweep] {line}")
                if s.dry_run:
                    print_space(space, directions, checked)
                    sys.exit(0)
                fp = fingerprint(space, self.metrics, directions, composed.configs["base"])
            storage = open_storage(
                spec, heartbeat_interval=int(s.heartbeat_interval), grace_period=s.grace_period
            )
            if s.confirm.only:
                study = _existing_search(storage, s.study_name)
            else:
                assert space is not None
                study = open_search_study(storage, s, space, self.metrics, directions, fp)
        except (SweepConfigError, SearchSpaceError, StorageError, ConfigError) as exc:
            print(f"[regsweep] {exc}", file=sys.stderr)
            sys.exit(2)
        os.environ[STORAGE_ENV] = spec.url  # the jobs' only way to the password, if any
        share_storage(spec.url, storage)  # jobs in this process need not open it again
        self.spec = spec
        return study, space, directions

    # ------------------------------------------------------------------ the sweep

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        s = self.s
        study, space, directions = self._prepare(arguments)
        freeze_heap()  # what the checks built lives as long as the sweep: see sweep.heap
        tally = Tally(n_trials=int(s.n_trials), max_failure_rate=float(s.max_failure_rate))
        keeper = Keeper(study._storage, float(s.heartbeat_interval))
        launch = Launch(
            self.launcher,
            self.spec,
            keeper,
            heartbeat=int(s.heartbeat_interval),
            requeue=bool(s.requeue_interrupted),
            app_overrides=self._app_overrides(),
        )
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        confirm_study: optuna.Study | None = None
        try:
            with terminate_as_interrupt(), keeper:
                if space is not None:
                    say_budget(study, tally.n_trials)
                    if s.sampler.balance_families:
                        say_shares(
                            family_choices(space),
                            tally.n_trials,
                            max(int(getattr(resolved_pruner(s)[0], "family_startup_trials", 0)), 3),
                        )
                    self._search(study, space, tally, launch)
                if self._should_confirm(study, tally):
                    confirm_study = self._confirm(study, launch, directions, tally)
        except KeyboardInterrupt as exc:
            launch.interrupt("the sweep was interrupted (Ctrl-C or SIGTERM)")
            write_results(study, sweep_dir, tally, confirm_study)
            print(
                f"\n[regsweep] interrupted: running trials ended as interrupted; study "
                f"{study.study_name!r} kept (rerun the command to resume)"
            )
            sys.exit(exit_code(exc))
        results = write_results(study, sweep_dir, tally, confirm_study)
        print_summary(study, tally, results)
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

    def _reap(self, study: optuna.Study, launch: Launch) -> int:
        lines = reap(
            study, requeue_interrupted=bool(self.s.requeue_interrupted), spare=launch.in_flight
        )
        for line in lines:
            print(f"[regsweep] {line}")
        return len(lines)

    def _search(
        self, study: optuna.Study, space: SearchSpace, tally: Tally, launch: Launch
    ) -> None:
        s = self.s
        waiting: list[Unit] = []  # asked for a job, but of another structure than its own
        full = False  # the budget was reached: no more asks while this job runs

        def refill(key: tuple[Any, ...], n: int, attrs: Mapping[str, Any]) -> list[FrozenTrial]:
            """Trials for a running job's free places (see ``sweep.job.refills``)."""
            nonlocal full
            if full:
                return []
            launch.settle_ended(tally.ended)
            if tally.failure_rate_exceeded or len(waiting) >= s.population:
                return []
            units = self._ask(study, space, tally, launch, n, joining=(key, attrs))
            full = not units
            fits = [u for u in units if u.key == key]
            waiting.extend(u for u in units if u.key != key)
            launch.join(fits)
            return [u.trial for u in fits]

        # population 1 is one trial per job, as Hydra's own sweepers run them
        with refills(study.study_name, "search", refill) if s.population > 1 else nullcontext():
            while not tally.failure_rate_exceeded:
                self._reap(study, launch)
                want = s.population * s.n_jobs - len(waiting)
                units = [*waiting, *self._ask(study, space, tally, launch, want)]
                waiting.clear()
                if units:
                    full = False
                    launch.run(
                        population_chunks(units, s.population),
                        stage="search",
                        on_settled=tally.settled,
                        slots=s.population,
                    )
                    log.info(tally.progress_line(study))
                    continue
                if self._reap(study, launch):  # a trial died meanwhile: its slot is free again
                    continue
                break
        for unit in waiting:  # asked during the last job, not run: the failure rate stopped it
            fail_unit(
                study,
                unit.trial,
                StopReason.INTERRUPTED,
                "asked for a running job but not run: the sweep stopped",
            )
            launch.release(unit)

    def _ask(
        self,
        study: optuna.Study,
        space: SearchSpace,
        tally: Tally,
        launch: Launch,
        n: int,
        *,
        joining: tuple[tuple[Any, ...], Mapping[str, Any]] | None = None,
    ) -> list[Unit]:
        """Ask up to ``n`` trials (within the budget), compose each one's config, and store the
        parameters, configs, owners and first heartbeats of all of them in one transaction; with
        ``joining`` (a running job's structure key and attributes), the trials of that structure
        get those attributes too."""
        assert self.config is not None
        room = min(n, tally.n_trials - budget_count(study))
        if room <= 0:
            return []
        asked, pending = ask_pending(study, room, space.suggest)
        try:
            return self._compose(study, space, tally, launch, asked, pending, joining)
        except BaseException:
            pending.store()  # the parameters, at least
            raise

    def _compose(
        self,
        study: optuna.Study,
        space: SearchSpace,
        tally: Tally,
        launch: Launch,
        asked: list[tuple[optuna.trial.Trial, dict[str, Any]]],
        pending: Pending,
        joining: tuple[tuple[Any, ...], Mapping[str, Any]] | None,
    ) -> list[Unit]:
        """:meth:`_ask`'s asked trials composed and stamped: their parameters (``pending``),
        configs, owners and heartbeats stored in one transaction."""
        assert self.config is not None
        # Another worker may have taken slots between our count and our asks: a trial with a
        # full budget of trials before it is over the budget.
        budgeted = budgeted_numbers(study)
        units, stamps = [], []
        for trial, values in asked:
            frozen = copy.copy(trial._cached_frozen_trial)  # as asked and suggested: no re-read
            if bisect.bisect_left(budgeted, trial.number) >= tally.n_trials:
                pending.store_one(trial._trial_id)  # stored, then ended
                fail_unit(
                    study,
                    frozen,
                    StopReason.OVER_BUDGET,
                    "asked after the study's budget was reached",
                )
                continue
            overrides = space.to_overrides(values) + self._app_overrides()
            direct = {p: v for p, v in values.items() if p in self.loader.value_keys}
            structural = space.to_overrides({p: v for p, v in values.items() if p not in direct})
            try:
                app, plain, choices = compose_member(
                    self.loader, self.config, structural + self._app_overrides(), direct
                )
            except ConfigError as exc:
                pending.store_one(trial._trial_id)
                fail_unit(study, frozen, StopReason.FAILED, str(exc))
                tally.add(study._storage.get_trial(trial._trial_id))
                continue
            unit = Unit(study, frozen, app, overrides)
            units.append(unit)
            extra = dict(joining[1]) if joining is not None and unit.key == joining[0] else None
            stamps.append((plain, choices, extra))
        launch.stamp(units, stamps, pending)
        return units

    # ------------------------------------------------------------------ confirmation

    def _should_confirm(self, study: optuna.Study, tally: Tally) -> bool:
        s = self.s
        if s.confirm.seeds <= 0 or tally.failure_rate_exceeded:
            return False
        if len(study.directions) > 1:
            print(
                "[regsweep] confirmation skipped: a multi-objective study's answer is its "
                "Pareto front (set hydra.sweeper.metric to compare families on one metric)"
            )
            return False
        trials = study.get_trials(deepcopy=False)
        running = [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        if running and not s.confirm.only:
            print(
                f"[regsweep] confirmation waits: {len(running)} search trial(s) still running "
                "in other workers; the worker that ends the search runs it (or rerun this "
                "command)"
            )
            return False
        return s.confirm.only or budget_count(study) >= tally.n_trials

    def _confirm(
        self, study: optuna.Study, launch: Launch, directions: list[str], tally: Tally
    ) -> optuna.Study | None:
        s = self.s
        arms = plan_arms(
            study.get_trials(deepcopy=False),
            maximize=directions[0] == "maximize",
            top_k=s.confirm.top_k,
        )
        if not arms:
            print("[regsweep] confirmation skipped: the search has no completed or pruned trial")
            return None
        arms += plan_dose(arms, study.get_trials(deepcopy=False), points=s.confirm.dose_points)
        plan = ConfirmPlan(arms, confirm_seeds(arms, s.confirm.seeds))
        cstudy = open_confirm_study(study._storage, study, plan, self.metrics)

        def settled(ended: Settled) -> None:
            log.info("confirmation trial %d: %s", ended.number, ended.state.name)

        def run(plan: ConfirmPlan) -> None:
            size = int(s.confirm.population or s.population)
            run_confirmation(
                cstudy,
                plan,
                launch,
                population=size,
                batch=size * s.n_jobs,
                requeue_interrupted=bool(s.requeue_interrupted),
                on_settled=settled,
            )

        run(plan)
        target = s.confirm.target_mde
        decide = "val_loss" if self.metrics[0] == "val_loss" else "val_acc"
        while target is not None:
            have, want = seeds_wanted(
                cstudy, plan, target=float(target), metric=decide, cap=int(s.confirm.max_seeds)
            )
            if want <= have:
                break
            last = max([*plan.seeds, *plan.more])
            more = [*plan.more, *range(last + 1, last + 1 + want - have)]
            print(
                f"[regsweep] confirmation: the finalists' smallest detectable effect needs "
                f"{want} paired seeds for confirm.target_mde={target} (at most "
                f"confirm.max_seeds={s.confirm.max_seeds}); adding {want - have} to the "
                "finalists and their baselines"
            )
            plan = ConfirmPlan(plan.arms, plan.seeds, more)
            cstudy = open_confirm_study(study._storage, study, plan, self.metrics)
            run(plan)
        return cstudy


def _existing_search(storage: Any, name: str) -> optuna.Study:
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        names = [st.study_name for st in storage.get_all_studies()]
        raise SweepConfigError(
            [
                f"hydra.sweeper.study_name={name!r}: hydra.sweeper.confirm.only=true needs an existing "
                f"search study; studies in this storage: {', '.join(names) or 'none'}"
            ]
        ) from None
    study = optuna.load_study(study_name=name, storage=storage)
    if study.user_attrs.get(STUDY_ROLE, "search") != "search":
        raise SweepConfigError(
            [f"hydra.sweeper.study_name={name!r} is a confirmation study; name its search study"]
        )
    return study


def _value_keys(space: SearchSpace, groups: set[str]) -> set[str]:
    """Per-trial overrides applied onto a cached composition: searched values, the metric and
    the job's link to its trials."""
    searched = [*space.params, *(p for c in space.conditionals for p in c.params)]
    keys = {p.path for p in searched if not p.prefix and p.path not in groups and "@" not in p.path}
    link = {
        f"trial.{k}"
        for k in ("storage", "study", "number", "members", "slots", "stage", "heartbeat", "requeue")
    }
    return keys | {"metric"} | link
