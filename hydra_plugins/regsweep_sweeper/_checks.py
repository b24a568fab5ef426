"""Checks that run before any trial exists: sweeper settings, parameter paths and bounds.

Every bound of the search space is put into a composed job config and run through the same
range checks a single run uses, so ``regularizer.dropout=interval(0, 1.5)`` fails here, naming
the path, the expression and the allowed range, instead of failing trial after trial.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from hydra.errors import HydraException
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from sweep.config import AppConfig, ConfigError, validate
from sweep.optuna_link import PRUNERS

from ._samplers import SAMPLERS
from ._space import Param, SearchSpace

__all__ = ["SweepConfigError", "check_settings", "check_space"]

METRICS = {
    "val_acc": "maximize",
    "val_loss": "minimize",
    "gap_acc": "minimize",
    "gap_loss": "minimize",
    "sparsity": "maximize",
}


class SweepConfigError(ValueError):
    """The sweep cannot start; the message lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        body = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"the sweep was not started ({len(problems)} problem(s)):\n{body}")


def check_settings(s: Mapping[str, Any]) -> list[str]:
    """Validate ``hydra.sweeper.*``; return the study's directions (one per objective)."""
    problems: list[str] = []
    objectives = list(s.get("objectives") or [])
    key = "hydra.sweeper.objectives" if objectives else "hydra.sweeper.metric"
    metrics = objectives or [s["metric"]]
    if len(objectives) == 1:
        problems.append(
            f"hydra.sweeper.objectives={objectives}: allowed two or more objectives "
            "(for one, set hydra.sweeper.metric)"
        )
    for m in metrics:
        if m not in METRICS:
            problems.append(f"{key}={m!r}: allowed " + ", ".join(METRICS))
    directions = _directions(s["direction"], metrics, problems)
    for name, rule in (("n_trials", 1), ("n_jobs", 1), ("heartbeat_interval", 1)):
        if int(s[name]) < rule:
            problems.append(f"hydra.sweeper.{name}={s[name]!r}: allowed an integer >= {rule}")
    if not 0.0 <= float(s["max_failure_rate"]) <= 1.0:
        problems.append(f"hydra.sweeper.max_failure_rate={s['max_failure_rate']!r}: allowed [0, 1]")
    sampler = s["sampler"].get("name")
    if sampler not in SAMPLERS:
        problems.append(f"hydra.sweeper.sampler.name={sampler!r}: allowed " + ", ".join(SAMPLERS))
    elif sampler == "cmaes" and len(metrics) > 1:
        problems.append(
            "hydra.sweeper.sampler.name='cmaes': allowed for one objective only; "
            "a multi-objective study needs tpe, nsga2, random, gp, grid or qmc"
        )
    pruner = s["pruner"].get("name")
    if pruner not in PRUNERS:
        problems.append(f"hydra.sweeper.pruner.name={pruner!r}: allowed " + ", ".join(PRUNERS))
    if problems:
        raise SweepConfigError(problems)
    return directions


def _directions(direction: Any, metrics: list[str], problems: list[str]) -> list[str]:
    allowed = ("maximize", "minimize")
    if isinstance(direction, str):
        if direction != "auto" and direction not in allowed:
            problems.append(
                f"hydra.sweeper.direction={direction!r}: allowed auto, maximize, minimize"
            )
        if direction == "auto" or direction not in allowed:
            return [METRICS.get(m, "maximize") for m in metrics]
        return [direction] * len(metrics)
    given = [str(d) for d in direction]
    if len(given) != len(metrics) or any(d not in (*allowed, "auto") for d in given):
        problems.append(
            f"hydra.sweeper.direction={given}: allowed one of auto, maximize, minimize per "
            f"objective ({len(metrics)}: {metrics})"
        )
        return [METRICS.get(m, "maximize") for m in metrics]
    return [
        METRICS.get(m, "maximize") if d == "auto" else d
        for d, m in zip(given, metrics, strict=True)
    ]


def _compose(hydra_context: HydraContext, config: DictConfig, overrides: list[str]) -> DictConfig:
    job = hydra_context.config_loader.load_sweep_config(config, overrides)
    return job


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
    base: DictConfig, params: Iterable[Param], bounds: Mapping[str, list[Any]], problems: list[str]
) -> None:
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
                problems.append(f"{p.path}={p.expr!r} reaches {value!r}: {issue}")


_MISSING = object()


def check_space(space: SearchSpace, *, config: DictConfig, hydra_context: HydraContext) -> set[str]:
    """Compose the job config for every group option the space can pick, and check every bound.

    Returns the config groups of the job config (``regularizer``, ``data``, ...)."""
    problems: list[str] = []
    fixed = list(space.fixed)
    try:
        base_job = _compose(hydra_context, config, fixed)
    except (HydraException, OmegaConfBaseException) as exc:
        raise SweepConfigError([f"composing the job config failed: {exc}"]) from exc
    groups = set(base_job.hydra.runtime.choices.keys())
    base = _job_part(base_job)
    problems += [f"(base config) {p}" for p in _range_problems(base)]
    bounds = space.bounds()
    plain = [p for p in space.params if p.path not in groups]
    _check_values(base, plain, bounds, problems)
    for p in space.params:
        if p.path not in groups:
            continue
        for option in bounds.get(p.path, []):
            try:
                job = _job_part(_compose(hydra_context, config, [*fixed, f"{p.path}={option}"]))
            except (HydraException, OmegaConfBaseException) as exc:
                text = str(exc).split("Config search path")[0]
                detail = " ".join(line.strip() for line in text.splitlines() if line.strip())
                problems.append(f"{p.path}={p.expr!r}: option {option!r}: {detail}")
                continue
            problems += [f"{p.path}={option}: {i}" for i in _range_problems(job)]
            for cond in space.conditionals:
                if cond.parent == p.path and str(cond.option) == str(option):
                    _check_values(job, cond.params, bounds, problems)
    for cond in space.conditionals:
        if cond.parent not in groups:
            _check_values(base, cond.params, bounds, problems)
    if problems:
        raise SweepConfigError(sorted(set(problems), key=problems.index))
    return groups
