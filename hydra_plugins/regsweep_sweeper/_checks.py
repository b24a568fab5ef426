"""Checks that run before anything is stored: settings, names, the search space, the data.

Every bound of the search space is put into a composed job config and run through the same
range checks a single run uses, so ``regularizer.dropout=interval(0, 1.5)`` fails here, naming
the path, the expression and the allowed range, instead of failing trial after trial. Then the
data of every configuration the space can reach is loaded once and the device checked once, so
missing files or a missing GPU are refused before a single trial exists.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, cast

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException
from optuna.distributions import CategoricalDistribution

from sweep.config import AppConfig, ConfigError, validate
from sweep.record import OBJECTIVES, confirm_study_name
from sweep.study import PRUNERS, pruner_settings

from ._config import SweeperConfig
from ._samplers import SAMPLERS
from ._space import Param, SearchSpace, quote

__all__ = [
    "Composed",
    "SweepConfigError",
    "check_names",
    "check_settings",
    "check_space",
    "preflight",
]


class SweepConfigError(ValueError):
    """The sweep cannot start; the message lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        body = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"the sweep was not started ({len(problems)} problem(s)):\n{body}")


def pruner_given(s: SweeperConfig) -> dict[str, Any]:
    """The ``hydra.sweeper.pruner`` fields the user set (null: the chosen pruner's default)."""
    given: dict[str, Any] = OmegaConf.to_container(OmegaConf.structured(s.pruner))  # type: ignore[assignment]
    given.pop("name", None)
    return given


def resolved_pruner(s: SweeperConfig) -> tuple[Any, list[str]]:
    """The chosen pruner's settings (its defaults where nothing was set), and a problem line for
    each field set that it does not read."""
    return pruner_settings(s.pruner.name, pruner_given(s))


def check_settings(s: SweeperConfig) -> list[str]:
    """Validate ``hydra.sweeper.*``; return the study's directions (one per objective)."""
    problems: list[str] = []
    objectives = list(s.objectives or [])
    key = "hydra.sweeper.objectives" if objectives else "hydra.sweeper.metric"
    metrics = objectives or [s.metric]
    if len(objectives) == 1:
        problems.append(
            f"hydra.sweeper.objectives={objectives}: allowed two or more objectives "
            "(for one, set hydra.sweeper.metric)"
        )
    for m in metrics:
        if m not in OBJECTIVES:
            problems.append(f"{key}={m!r}: allowed " + ", ".join(OBJECTIVES))
    directions = _directions(s.direction, metrics, problems)
    for name in ("n_trials", "n_jobs", "population", "heartbeat_interval"):
        if int(getattr(s, name)) < 1:
            problems.append(f"hydra.sweeper.{name}={getattr(s, name)!r}: allowed an integer >= 1")
    if s.grace_period is not None and s.grace_period < 1:
        problems.append(
            f"hydra.sweeper.grace_period={s.grace_period!r}: allowed an integer >= 1 or null"
        )
    if not 0.0 <= float(s.max_failure_rate) <= 1.0:
        problems.append(f"hydra.sweeper.max_failure_rate={s.max_failure_rate!r}: allowed [0, 1]")
    if s.confirm.seeds < 0:
        problems.append(
            f"hydra.sweeper.confirm.seeds={s.confirm.seeds!r}: allowed an integer "
            ">= 0 (0 turns the confirmation stage off)"
        )
    if s.confirm.top_k is not None and s.confirm.top_k < 1:
        problems.append(
            f"hydra.sweeper.confirm.top_k={s.confirm.top_k!r}: allowed an integer "
            ">= 1, or null for every configuration"
        )
    if s.confirm.only and s.confirm.seeds == 0:
        problems.append("hydra.sweeper.confirm.only=true: needs hydra.sweeper.confirm.seeds >= 1")
    sampler = s.sampler.name
    if sampler not in SAMPLERS:
        problems.append(f"hydra.sweeper.sampler.name={sampler!r}: allowed " + ", ".join(SAMPLERS))
    elif sampler == "cmaes" and len(metrics) > 1:
        problems.append(
            "hydra.sweeper.sampler.name='cmaes': allowed for one objective only; "
            "a multi-objective study needs tpe, nsga2, random, gp, grid or qmc"
        )
    pruner = None
    if s.pruner.name not in PRUNERS:
        problems.append(
            f"hydra.sweeper.pruner.name={s.pruner.name!r}: allowed " + ", ".join(PRUNERS)
        )
    else:
        pruner, unread = resolved_pruner(s)
        problems += unread
    startup = getattr(pruner, "family_startup_trials", 0)
    if startup < 0:
        problems.append(
            f"hydra.sweeper.pruner.family_startup_trials={startup!r}: allowed an "
            "integer >= 0 (0: a family's trials may all be pruned)"
        )
    if s.confirm.dose_points != 0 and s.confirm.dose_points < 2:
        problems.append(
            f"hydra.sweeper.confirm.dose_points={s.confirm.dose_points!r}: allowed 0 "
            "(no dose-response stage) or 2 and more (6 by default)"
        )
    target = s.confirm.target_mde
    if target is not None and not target > 0:
        problems.append(
            f"hydra.sweeper.confirm.target_mde={target!r}: allowed a number > 0 "
            "(0.01: one point of accuracy) or null"
        )
    if target is not None and s.confirm.max_seeds < max(s.confirm.seeds, 2):
        problems.append(
            f"hydra.sweeper.confirm.max_seeds={s.confirm.max_seeds!r}: allowed at "
            f"least confirm.seeds ({s.confirm.seeds}) and 2"
        )
    if s.confirm.population is not None and s.confirm.population < 1:
        problems.append(
            f"hydra.sweeper.confirm.population={s.confirm.population!r}: allowed an "
            "integer >= 1, or null (the search's population)"
        )
    audit = getattr(pruner, "audit", 0.0)
    if not 0.0 <= audit <= 1.0:
        problems.append(
            f"hydra.sweeper.pruner.audit={audit!r}: allowed a share from 0 "
            "to 1 (0: no audit; 0.2: a fifth of the would-be-pruned trials run on)"
        )
    if problems:
        raise SweepConfigError(problems)
    return directions


def _directions(direction: Any, metrics: list[str], problems: list[str]) -> list[str]:
    allowed = ("maximize", "minimize")

    def natural(m: str) -> str:
        return OBJECTIVES[m].direction if m in OBJECTIVES else "maximize"

    if isinstance(direction, str):
        if direction != "auto" and direction not in allowed:
            problems.append(
                f"hydra.sweeper.direction={direction!r}: allowed auto, maximize, minimize"
            )
        if direction == "auto" or direction not in allowed:
            return [natural(m) for m in metrics]
        return [direction] * len(metrics)
    given = [str(d) for d in direction]
    if len(given) != len(metrics) or any(d not in (*allowed, "auto") for d in given):
        problems.append(
            f"hydra.sweeper.direction={given}: allowed one of auto, maximize, minimize per "
            f"objective ({len(metrics)}: {metrics})"
        )
        return [natural(m) for m in metrics]
    return [natural(m) if d == "auto" else d for d, m in zip(given, metrics, strict=True)]


_BAD_NAME_CHARS = ("/", "\\", "\x00")


def check_names(study_name: str, storage_value: str) -> None:
    """Refuse a study name or storage that could not work end to end, before anything exists.

    A study name becomes a folder (``outputs/sweeps/<study>``) and, like the storage, is handed
    to each job as an override, so it must round-trip through Hydra's override grammar and must
    not contain OmegaConf's interpolation syntax.
    """
    problems = []
    name = study_name
    if not name or name != name.strip():
        problems.append(
            f"hydra.sweeper.study_name={name!r}: allowed a non-empty name without "
            "leading or trailing spaces"
        )
    elif name in (".", "..") or any(c in name for c in _BAD_NAME_CHARS):
        problems.append(
            f"hydra.sweeper.study_name={name!r}: allowed a name without '/', '\\' "
            "or NUL that is not '.' or '..' (it names the folder "
            "outputs/sweeps/<study_name>)"
        )
    elif any(ord(c) < 32 for c in name) or len(name) > 200:
        problems.append(
            f"hydra.sweeper.study_name={name!r}: allowed up to 200 printable characters"
        )
    for key, value in (
        ("hydra.sweeper.study_name", confirm_study_name(name)),
        ("hydra.sweeper.storage", storage_value),
    ):
        if "${" in value:
            problems.append(
                f"{key}={value!r}: '${{' starts an OmegaConf interpolation; "
                "allowed a value without it"
            )
        elif not _round_trips(value):
            problems.append(
                f"{key}={value!r}: cannot be passed to a job as a Hydra override; "
                "allowed a value that Hydra can quote"
            )
    if problems:
        raise SweepConfigError(problems)


def _round_trips(value: str) -> bool:
    try:
        parsed = OverridesParser.create().parse_overrides([f"trial.study={quote(value)}"])[0]
    except HydraException:
        return False
    return bool(parsed.value() == value)


# --------------------------------------------------------------------------- the space


class Composed:
    """The job configs the space can reach: the base (fixed overrides only) and one per option
    of each searched config group, as composed by Hydra (``label → config``)."""

    def __init__(self) -> None:
        self.configs: dict[str, DictConfig] = {}
        self.groups: set[str] = set()

    def apps(self) -> dict[str, AppConfig]:
        out = {}
        for label, cfg in self.configs.items():
            app = OmegaConf.to_object(cfg)
            assert isinstance(app, AppConfig)
            out[label] = app
        return out


def _compose(loader: Any, config: DictConfig, overrides: list[str]) -> DictConfig:
    return cast(DictConfig, loader.load_sweep_config(config, overrides))


def _job_part(job: DictConfig) -> DictConfig:
    cfg = copy.deepcopy(job)
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


def _range_problems(cfg: DictConfig) -> list[str]:
    try:
        app = OmegaConf.to_object(cfg)
        assert isinstance(app, AppConfig)
        validate(app)
    except ConfigError as exc:
        return exc.problems
    return []


def _check_values(
    base: DictConfig,
    params: Iterable[Param],
    bounds: Mapping[str, list[Any]],
    known: set[str],
    problems: list[str],
) -> None:
    """Each bound of each param in a copy of ``base``; a problem already in ``known`` (the
    base's own) is not repeated once per bound."""
    for p in params:
        if OmegaConf.select(base, p.path, default=_MISSING) is _MISSING:
            problems.append(
                f"{p.path}={p.expr!r}: unknown parameter path (no such key in the job config)"
            )
            continue
        for value in bounds.get(p.path, []):
            cfg = copy.deepcopy(base)
            try:
                OmegaConf.update(cfg, p.path, value, merge=False)
            except (OmegaConfBaseException, ValueError) as exc:
                problems.append(
                    f"{p.path}={p.expr!r}: value {value!r} is not allowed: {exc}".splitlines()[0]
                )
                continue
            for issue in _range_problems(cfg):
                if issue not in known:
                    problems.append(f"{p.path}={p.expr!r} reaches {value!r}: {issue}")


_MISSING = object()


def check_space(space: SearchSpace, *, config: DictConfig, loader: Any) -> Composed:
    """Compose the job config for every group option the space can pick, and check every bound.
    ``loader`` is Hydra's config loader (the sweep's caching one: the trials it composes later
    reuse these compositions).

    Returns the composed configs (for the pre-flight) and the job config's groups."""
    problems: list[str] = []
    fixed = list(space.fixed)
    composed = Composed()
    try:
        base_job = _compose(loader, config, fixed)
    except (HydraException, OmegaConfBaseException) as exc:
        raise SweepConfigError([f"composing the job config failed: {exc}"]) from exc
    composed.groups = set(base_job.hydra.runtime.choices.keys())
    base = _job_part(base_job)
    composed.configs["base"] = base
    base_problems = _range_problems(base)
    problems += base_problems
    known = set(base_problems)
    bounds = space.bounds()
    plain = [p for p in space.params if p.path not in composed.groups]
    _check_values(base, plain, bounds, known, problems)
    for p in space.params:
        if p.path not in composed.groups:
            continue
        for option in bounds.get(p.path, []):
            try:
                job = _job_part(_compose(loader, config, [*fixed, f"{p.path}={option}"]))
            except (HydraException, OmegaConfBaseException) as exc:
                text = str(exc).split("Config search path")[0]
                detail = " ".join(line.strip() for line in text.splitlines() if line.strip())
                problems.append(f"{p.path}={p.expr!r}: option {option!r}: {detail}")
                continue
            mine = [
                c for c in space.conditionals if c.parent == p.path and str(c.option) == str(option)
            ]
            for cond in mine:  # the option's pinned values are part of every trial it picks
                for q in cond.params:
                    if q.pinned and isinstance(q.distribution, CategoricalDistribution):
                        with open_dict(job):
                            OmegaConf.update(job, q.path, q.distribution.choices[0], merge=False)
            composed.configs[f"{p.path}={option}"] = job
            problems += [f"{p.path}={option}: {i}" for i in _range_problems(job) if i not in known]
            for cond in mine:  # each with its own bounds under this option, not every option's
                own = SearchSpace(cond.params, (), ()).bounds()
                _check_values(job, cond.params, own, known, problems)
    for cond in space.conditionals:
        if cond.parent not in composed.groups:
            _check_values(base, cond.params, bounds, known, problems)
    if problems:
        raise SweepConfigError(sorted(set(problems), key=problems.index))
    return composed


def preflight(apps: Mapping[str, AppConfig]) -> list[str]:
    """Load each distinct dataset once, check each device once, and build each distinct model
    once on its data; return what was checked (a model that cannot train as a population says
    so here, once).

    Raises:
        SweepConfigError: A dataset cannot be loaded, a device does not exist, or a model cannot
            be built for its data.
    """
    from sweep.data import DataError, load_splits
    from sweep.run import batchable, resolve_device

    problems: list[str] = []
    checked: list[str] = []
    seen: set[Any] = set()
    models: set[Any] = set()
    for label, app in apps.items():
        where = "" if label == "base" else f" (with {label})"
        try:
            device = resolve_device(app.trainer.device)
        except ConfigError as exc:
            problems += [f"{p}{where}" for p in exc.problems]
            continue
        key = (repr(app.data), str(device))
        if key in seen:
            continue
        seen.add(key)
        try:
            splits = load_splits(app.data, seed=app.trainer.seed, device=device)
        except DataError as exc:
            problems.append(f"data={app.data.name}{where}: {exc}")
            continue
        checked.append(
            f"{app.data.name} on {device}: {splits.x_train.shape[0]} train, "
            f"{splits.x_val.shape[0]} val, {splits.x_test.shape[0]} test"
        )
    for label, app in apps.items():
        key = (repr(app.model), repr(app.data))
        if key in models:
            continue
        models.add(key)
        where = "" if label == "base" else f" (with {label})"
        try:
            together, why = batchable(app)
        except (ConfigError, DataError) as exc:
            problems.append(f"model={app.model.name}{where}: {exc}")
            continue
        if not together:
            checked.append(
                f"model {app.model.target or app.model.name}{where}: trained one "
                f"trial at a time ({why})"
            )
    if problems:
        raise SweepConfigError(sorted(set(problems), key=problems.index))
    return checked
