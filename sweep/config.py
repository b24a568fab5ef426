"""Typed schemas for every config group, registered in Hydra's ConfigStore.

Types live here and values live in ``conf/``: a typo in a key or a wrong type fails when Hydra
composes the config. Range checks run in :func:`validate`, which collects every problem into one
:class:`ConfigError` naming the key, the value and what is allowed, before any data is loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "NORMALIZATIONS",
    "OBJECTIVES",
    "OPTIMIZERS",
    "PENALTY_SCALES",
    "SCHEDULERS",
    "AppConfig",
    "ConfigError",
    "DataConfig",
    "EarlyStopConfig",
    "ModelConfig",
    "OptimizerConfig",
    "RegularizerConfig",
    "SchedulerConfig",
    "TrainerConfig",
    "TrialLink",
    "register_configs",
    "validate",
]

DATASETS = ("digits", "noise", "mnist", "fashion_mnist", "cifar10")
NORMALIZATIONS = ("none", "standard", "symmetric")
ACTIVATIONS = ("relu", "sigmoid", "tanh")
MODEL_KINDS = ("mlp", "logreg")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "step", "cosine")
PENALTY_SCALES = ("plain", "half_mean")
PENALTY_TARGETS = ("weights", "all")
MONITORS = ("val_loss", "val_acc")
# What a study can optimize; each is read at the best epoch.
OBJECTIVES = ("val_acc", "val_loss", "gap_acc", "gap_loss", "sparsity")


class ConfigError(ValueError):
    """One or more config values are out of range; the message lists each key, value and rule."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")


@dataclass
class DataConfig:
    """Which data, how it is split, and how inputs are prepared."""

    name: str = "digits"
    root: str = "~/.cache/regsweep/data"
    download: bool = False
    verify_checksums: bool = True
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = 0
    n_train: int | None = None
    label_noise: float = 0.0
    normalize: str = "standard"
    # Only for ``noise`` (000's notes: X ~ N(0, 1), random binary labels).
    n_samples: int = 1000
    n_features: int = 10
    n_classes: int = 2


@dataclass
class ModelConfig:
    """``mlp`` (hidden layers) or ``logreg`` (one linear layer)."""

    name: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "relu"
    dropout: float = 0.0
    batch_norm: bool = False


@dataclass
class EarlyStopConfig:
    """Stop when the monitored validation metric has not improved for ``patience`` epochs."""

    patience: int | None = None
    min_delta: float = 0.0
    monitor: str = "val_loss"
    restore_best: bool = True


@dataclass
class RegularizerConfig:
    """Every regularizer of the course notes; an option of the group switches some of them on.

    Penalty on the loss: ``l1·Σ|w| + l2·Σw² + elastic·(l1_ratio·Σ|w| + (1−l1_ratio)·Σw²)``, over
    weight matrices only (``apply_to=weights``) or every parameter (``all``); with
    ``scale=half_mean`` each λ is divided by 2m (m = batch size) as in 004's notes.
    ``weight_decay`` (when not null) overrides the optimizer's; ``dropout`` (when not null) sets the
    model's dropout p, which must then be left at 0 or equal.
    """

    name: str = "none"
    l1: float = 0.0
    l2: float = 0.0
    elastic: float = 0.0
    l1_ratio: float = 0.5
    scale: str = "plain"
    apply_to: str = "weights"
    dropout: float | None = None
    weight_decay: float | None = None
    clip: float | None = None
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)


@dataclass
class OptimizerConfig:
    """``sgd`` (momentum, nesterov), ``adam`` (coupled L2 decay), ``adamw`` (decoupled decay)."""

    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8


@dataclass
class SchedulerConfig:
    """Learning-rate schedule stepped once per epoch."""

    name: str = "none"
    step_size: int = 10
    gamma: float = 0.1
    t_max: int | None = None
    eta_min: float = 0.0


@dataclass
class TrainerConfig:
    """How long and where to train."""

    epochs: int = 20
    batch_size: int = 64
    eval_batch_size: int = 4096
    seed: int = 0
    device: str = "auto"
    deterministic: bool = False
    progress: bool = True


@dataclass
class TrialLink:
    """Set by the sweeper for each job: where the job's Optuna trial lives. Null in a single run."""

    storage: str | None = None
    study: str | None = None
    number: int | None = None


@dataclass
class AppConfig:
    """The whole job config (``conf/config.yaml`` is composed onto this)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    trial: TrialLink = field(default_factory=TrialLink)
    metric: str = "val_acc"
    objectives: list[str] = field(default_factory=list)


def register_configs() -> None:
    """Register the typed root (``schema_app``) that ``conf/config.yaml`` composes onto; every
    group option merges into its typed node, so unknown keys and wrong types fail there."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="schema_app", node=AppConfig)


# --------------------------------------------------------------------------- range checks


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, key: str, value: Any, allowed: str) -> None:
        self.problems.append(f"{key}={value!r}: allowed {allowed}")

    def number(
        self,
        key: str,
        value: float | int | None,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
        optional: bool = False,
    ) -> None:
        if value is None:
            if not optional:
                self.fail(key, value, "a number")
            return
        lo = "-inf" if low is None else repr(low)
        hi = "inf" if high is None else repr(high)
        rule = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        if optional:
            rule += " or null"
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(key, value, f"a finite number in {rule}")
            return
        if (low is not None and (value < low or (low_open and value == low))) or (
            high is not None and (value > high or (high_open and value == high))
        ):
            self.fail(key, value, rule)

    def choice(self, key: str, value: str, options: tuple[str, ...]) -> None:
        if value not in options:
            self.fail(key, value, "one of " + ", ".join(options))


def _check_data(c: _Checker, d: DataConfig) -> None:
    c.choice("data.name", d.name, DATASETS)
    c.choice("data.normalize", d.normalize, NORMALIZATIONS)
    c.number("data.val_fraction", d.val_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
    c.number("data.test_fraction", d.test_fraction, low=0.0, high=1.0, high_open=True)
    if d.val_fraction + d.test_fraction >= 1.0:
        c.fail(
            "data.val_fraction+data.test_fraction",
            round(d.val_fraction + d.test_fraction, 6),
            "a sum below 1 (something must be left to train on)",
        )
    c.number("data.n_train", d.n_train, low=1, optional=True)
    c.number("data.label_noise", d.label_noise, low=0.0, high=1.0, high_open=True)
    c.number("data.n_samples", d.n_samples, low=10)
    c.number("data.n_features", d.n_features, low=1)
    c.number("data.n_classes", d.n_classes, low=2)


def _check_model(c: _Checker, m: ModelConfig) -> None:
    c.choice("model.name", m.name, MODEL_KINDS)
    c.choice("model.activation", m.activation, ACTIVATIONS)
    c.number("model.dropout", m.dropout, low=0.0, high=1.0, high_open=True)
    for i, width in enumerate(m.hidden):
        c.number(f"model.hidden[{i}]", width, low=1)


def _check_regularizer(c: _Checker, r: RegularizerConfig, model: ModelConfig) -> None:
    for key in ("l1", "l2", "elastic"):
        c.number(f"regularizer.{key}", getattr(r, key), low=0.0)
    c.number("regularizer.l1_ratio", r.l1_ratio, low=0.0, high=1.0)
    c.choice("regularizer.scale", r.scale, PENALTY_SCALES)
    c.choice("regularizer.apply_to", r.apply_to, PENALTY_TARGETS)
    c.number("regularizer.dropout", r.dropout, low=0.0, high=1.0, high_open=True, optional=True)
    c.number("regularizer.weight_decay", r.weight_decay, low=0.0, optional=True)
    c.number("regularizer.clip", r.clip, low=0.0, low_open=True, optional=True)
    es = r.early_stop
    c.number("regularizer.early_stop.patience", es.patience, low=1, optional=True)
    c.number("regularizer.early_stop.min_delta", es.min_delta, low=0.0)
    c.choice("regularizer.early_stop.monitor", es.monitor, MONITORS)
    if r.dropout is not None and model.dropout not in (0.0, r.dropout):
        c.fail(
            "regularizer.dropout",
            r.dropout,
            f"null when model.dropout is set ({model.dropout!r}); set dropout p in one place",
        )
    p = r.dropout if r.dropout is not None else model.dropout
    if p > 0.0 and (model.name == "logreg" or not model.hidden):
        c.fail(
            "regularizer.dropout" if r.dropout else "model.dropout",
            p,
            "0 for a model without hidden layers (dropout acts after hidden activations)",
        )


def _check_optimizer(c: _Checker, o: OptimizerConfig) -> None:
    c.choice("optimizer.name", o.name, OPTIMIZERS)
    c.number("optimizer.lr", o.lr, low=0.0, low_open=True)
    c.number("optimizer.momentum", o.momentum, low=0.0, high=1.0, high_open=True)
    c.number("optimizer.weight_decay", o.weight_decay, low=0.0)
    c.number("optimizer.eps", o.eps, low=0.0, low_open=True)
    if len(o.betas) != 2:
        c.fail("optimizer.betas", list(o.betas), "two numbers in [0, 1)")
    for i, b in enumerate(o.betas):
        c.number(f"optimizer.betas[{i}]", b, low=0.0, high=1.0, high_open=True)
    if o.nesterov and (o.name != "sgd" or o.momentum <= 0.0):
        c.fail("optimizer.nesterov", o.nesterov, "true only with optimizer=sgd and momentum > 0")


def _check_scheduler(c: _Checker, s: SchedulerConfig) -> None:
    c.choice("scheduler.name", s.name, SCHEDULERS)
    c.number("scheduler.step_size", s.step_size, low=1)
    c.number("scheduler.gamma", s.gamma, low=0.0, high=1.0, low_open=True)
    c.number("scheduler.t_max", s.t_max, low=1, optional=True)
    c.number("scheduler.eta_min", s.eta_min, low=0.0)


def _check_trainer(c: _Checker, t: TrainerConfig) -> None:
    c.number("trainer.epochs", t.epochs, low=1)
    c.number("trainer.batch_size", t.batch_size, low=1)
    c.number("trainer.eval_batch_size", t.eval_batch_size, low=1)
    dev = t.device
    ok = dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())
    if not ok:
        c.fail("trainer.device", dev, "auto, cpu, cuda or cuda:N")


def validate(cfg: AppConfig) -> AppConfig:
    """Check every range; raise one :class:`ConfigError` listing all problems.

    Example:
        >>> validate(AppConfig()).trainer.epochs
        20
    """
    c = _Checker()
    _check_data(c, cfg.data)
    _check_model(c, cfg.model)
    _check_regularizer(c, cfg.regularizer, cfg.model)
    _check_optimizer(c, cfg.optimizer)
    _check_scheduler(c, cfg.scheduler)
    _check_trainer(c, cfg.trainer)
    c.choice("metric", cfg.metric, OBJECTIVES)
    for i, objective in enumerate(cfg.objectives):
        c.choice(f"objectives[{i}]", objective, OBJECTIVES)
    if c.problems:
        raise ConfigError(c.problems)
    return cfg
