"""The sweeper's schema (``hydra.sweeper.*``), registered as ``hydra/sweeper=regsweep``."""
# Underscore modules are skipped by Hydra's plugin scan and imported only by sweeper.py.
# No `from __future__ import annotations` here: the schema's field types must be real types.

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

__all__ = ["PrunerConfig", "SamplerConfig", "SweeperConfig"]


@dataclass
class SamplerConfig:
    """``tpe``, ``random``, ``grid``, ``cmaes``, ``gp``, ``qmc`` or ``nsga2`` (multi-objective);
    ``seed`` makes it repeatable."""

    name: str = "tpe"
    seed: int | None = None
    n_startup_trials: int = 10
    multivariate: bool = True
    constant_liar: bool = True


@dataclass
class PrunerConfig:
    """How weak trials are stopped early. ``patience`` (not null) wraps the pruner in Optuna's
    PatientPruner. Unused parameters of other pruners are ignored."""

    name: str = "median"
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    n_min_trials: int = 1
    percentile: float = 25.0
    min_resource: Any = "auto"
    max_resource: Any = "auto"
    reduction_factor: int = 3
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0
    lower: float | None = None
    upper: float | None = None
    p_threshold: float = 0.1
    patience: int | None = None
    min_delta: float = 0.0


@dataclass
class SweeperConfig:
    """Everything ``python -m sweep -m`` needs besides the job config."""

    _target_: str = "hydra_plugins.regsweep_sweeper.sweeper.RegsweepSweeper"
    storage: str = "sqlite:///outputs/studies.db"
    study_name: str = "regsweep-default"
    direction: Any = "auto"  # auto, maximize, minimize, or one per objective
    metric: str = "val_acc"
    objectives: list[str] = field(default_factory=list)  # two or more: a multi-objective study
    n_trials: int = 40
    n_jobs: int = 1
    max_failure_rate: float = 0.5
    heartbeat_interval: int = 10
    grace_period: int | None = None
    requeue_interrupted: bool = False
    dry_run: bool = False
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    params: dict[str, Any] = field(default_factory=dict)
    conditional: dict[str, Any] = field(default_factory=dict)


ConfigStore.instance().store(
    group="hydra/sweeper", name="regsweep", node=SweeperConfig, provider="regsweep"
)
