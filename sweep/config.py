"""Typed schemas for every config group, registered in Hydra's ConfigStore.

Types live here and values live in ``conf/``: a typo in a key or a wrong type fails when Hydra
composes the config. Range checks run in :func:`validate`, which collects every problem into one
:class:`ConfigError` naming the key, the value and what is allowed, before any data is loaded.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .data.names import DATASETS
from .optim import OPTIMIZERS, SCHEDULERS
from .record import OBJECTIVES
from .regularizers import STRENGTHS, value_at

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "GROUPS",
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
    "from_dict",
    "register_configs",
    "validate",
]

NORMALIZATIONS = ("none", "standard", "symmetric")
ACTIVATIONS = ("relu", "sigmoid", "tanh")
GROUPS = ("data", "model", "regularizer", "optimizer", "scheduler", "experiment")
"""The job's config groups (``conf/<group>/``), the one list of them: a trial records the
options chosen for these, and the sweeper composes a trial from them."""
MODEL_KINDS = ("mlp", "logreg", "cnn", "custom")
POOLS = ("max", "avg", "none")
GIVEN_TO_CUSTOM = ("n_features", "input_shape", "n_classes", "dropout", "p")
"""Constructor arguments of a custom model that regsweep fills in (never in model.kwargs)."""
PENALTY_SCALES = ("plain", "half_mean")
PENALTY_TARGETS = ("weights", "all")
MONITORS = ("val_loss", "val_acc")


class ConfigError(ValueError):
    """One or more config values are out of range; the message lists each key, value and rule."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")


def _h(text: str, *, only: str | None = None, internal: bool = False, **kw: Any) -> Any:
    """A field with the help text ``python -m sweep --help`` prints for it; ``only`` names the
    option it applies to (``data=noise``), and ``internal`` fields are not listed."""
    return field(metadata={"help": text, "only": only, "internal": internal}, **kw)


@dataclass
class DataConfig:
    """Which data, how it is split, and how inputs are prepared."""

    name: str = _h("the dataset (the data=... option sets it)", default="digits")
    root: str = _h(
        "folder holding torchvision datasets (mnist, fashion_mnist, cifar10)",
        default="~/.cache/regsweep/data",
    )
    download: bool = _h("let torchvision download a missing dataset", default=False)
    verify_checksums: bool = _h("require CIFAR-10's md5 checksums to match", default=True)
    val_fraction: float = _h(
        "fraction of the examples used for validation (the optimized "
        "split); drawn anew for each trainer.seed",
        default=0.15,
    )
    test_fraction: float = _h(
        "fraction held out as the test split (only reported); fixed by split_seed", default=0.15
    )
    split_seed: int = _h(
        "fixes the test split (and the noise data); never varies with trainer.seed", default=0
    )
    n_train: int | None = _h("train on this many training examples (null: all)", default=None)
    label_noise: float = _h("fraction of training labels replaced by a wrong class", default=0.0)
    normalize: str = _h(
        "standard (training mean/std per feature), symmetric ((x−0.5)/0.5) or none",
        default="standard",
    )
    n_samples: int = _h("examples of the noise data", only="data.name=noise", default=1000)
    n_features: int = _h("features of the noise data", only="data.name=noise", default=10)
    n_classes: int = _h("classes of the noise data", only="data.name=noise", default=2)
    path: str | None = _h(
        "your data: a .npz file (x, y; optional x_val/y_val, x_test/y_test), "
        "a .csv file (a header row) or an image folder (a subfolder per "
        "class)",
        only="data.name=files",
        default=None,
    )
    label: str = _h(
        "the label column of a .csv file; every other column is a feature",
        only="data.name=files",
        default="label",
    )


@dataclass
class ModelConfig:
    """``mlp`` (hidden layers), ``logreg`` (one linear layer), ``cnn`` (conv blocks, then dense
    layers) or ``custom`` (your own ``nn.Module``, ``model.target``)."""

    name: str = _h("mlp, logreg, cnn or custom (the model=... option sets it)", default="mlp")
    hidden: list[int] = _h(
        "hidden layer widths (cnn: dense layers after the conv blocks)",
        default_factory=lambda: [64, 64],
    )
    activation: str = _h("relu, sigmoid or tanh", default="relu")
    dropout: float = _h(
        "dropout p after each hidden activation (cnn: after each block and "
        "dense layer; custom: passed to the constructor)",
        default=0.0,
    )
    batch_norm: bool = _h(
        "batch norm after each hidden linear layer (cnn: after each convolution too)", default=False
    )
    channels: list[int] = _h(
        "output channels of each conv block (conv, [batch norm], activation, pool, [dropout])",
        only="model.name=cnn",
        default_factory=lambda: [16, 32],
    )
    kernel_size: int = _h(
        "convolution kernel size (odd; 'same' padding keeps the size)",
        only="model.name=cnn",
        default=3,
    )
    pool: str = _h(
        "pooling after each conv block: max, avg or none", only="model.name=cnn", default="max"
    )
    pool_size: int = _h(
        "pooling window and stride (divides height and width)", only="model.name=cnn", default=2
    )
    target: str | None = _h(
        "your nn.Module class as an import path (package.module.Class)",
        only="model.name=custom",
        default=None,
    )
    kwargs: dict[str, Any] = _h(
        "more constructor arguments of model.target", only="model.name=custom", default_factory=dict
    )


@dataclass
class EarlyStopConfig:
    """Stop when the monitored validation metric has not improved for ``patience`` epochs."""

    patience: int | None = _h(
        "epochs without improvement before stopping (null: off)", default=None
    )
    min_delta: float = _h("improvement that counts", default=0.0)
    monitor: str = _h("val_loss or val_acc", default="val_loss")
    restore_best: bool = _h("the final model gets the best monitored epoch's weights", default=True)


@dataclass
class RegularizerConfig:
    """Every regularizer of the course notes; an option of the group switches some of them on.

    Penalty on the loss: ``l1·Σ|w| + l2·Σw² + elastic·(l1_ratio·Σ|w| + (1−l1_ratio)·Σw²)``, over
    weight matrices only (``apply_to=weights``) or every parameter (``all``); with
    ``scale=half_mean`` each λ is divided by 2m (m = batch size) as in 004's notes.
    ``weight_decay`` (when not null) overrides the optimizer's; ``dropout`` (when not null) sets the
    model's dropout p, which must then be left at 0 or equal.
    """

    name: str = _h("the family (the regularizer=... option sets it)", default="none")
    l1: float = _h("L1 λ: loss + λ·Σ|w|", default=0.0)
    l2: float = _h("L2 λ: loss + λ·Σw²", default=0.0)
    elastic: float = _h("elastic-net λ: loss + λ·(ρ·Σ|w| + (1−ρ)·Σw²)", default=0.0)
    l1_ratio: float = _h("elastic-net ρ", default=0.5)
    scale: str = _h(
        "plain (λ as given) or half_mean (λ/(2m), m = batch size, as in 004)", default="plain"
    )
    apply_to: str = _h(
        "weights (weight matrices only) or all parameters; also for weight decay", default="weights"
    )
    dropout: float | None = _h("dropout p (null: model.dropout)", default=None)
    weight_decay: float | None = _h(
        "weight decay (null: optimizer.weight_decay); coupled in SGD/Adam, decoupled in AdamW",
        default=None,
    )
    clip: float | None = _h("clip the gradient's total norm to this (null: off)", default=None)
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)


@dataclass
class OptimizerConfig:
    """``sgd`` (momentum, nesterov), ``adam`` (coupled L2 decay), ``adamw`` (decoupled decay)."""

    name: str = _h("sgd, adam or adamw (the optimizer=... option sets it)", default="sgd")
    lr: float = _h("learning rate", default=0.1)
    momentum: float = _h("SGD momentum", only="optimizer.name=sgd", default=0.0)
    nesterov: bool = _h("SGD Nesterov momentum", only="optimizer.name=sgd", default=False)
    weight_decay: float = _h("weight decay (regularizer.weight_decay overrides it)", default=0.0)
    betas: list[float] = _h(
        "Adam/AdamW betas", only="optimizer.name=adam|adamw", default_factory=lambda: [0.9, 0.999]
    )
    eps: float = _h("Adam/AdamW epsilon", only="optimizer.name=adam|adamw", default=1e-8)


@dataclass
class SchedulerConfig:
    """Learning-rate schedule stepped once per epoch."""

    name: str = _h("none, step or cosine (the scheduler=... option sets it)", default="none")
    step_size: int = _h("step: epochs between decays", only="scheduler.name=step", default=10)
    gamma: float = _h("step: decay factor", only="scheduler.name=step", default=0.1)
    t_max: int | None = _h(
        "cosine: period in epochs (null: trainer.epochs)",
        only="scheduler.name=cosine",
        default=None,
    )
    eta_min: float = _h("cosine: lowest learning rate", only="scheduler.name=cosine", default=0.0)


@dataclass
class TrainerConfig:
    """How long and where to train."""

    epochs: int = _h("epochs to train", default=20)
    batch_size: int = _h("examples per step", default=64)
    eval_batch_size: int = _h("examples per evaluation block", default=4096)
    seed: int = _h("initialization, batch order, dropout masks and the validation split", default=0)
    device: str = _h("auto, cpu, cuda or cuda:N", default="auto")
    deterministic: bool = _h("ask torch for deterministic kernels (GPU)", default=False)
    progress: bool = _h("show a progress bar in a single run", default=True)
    threads: int | None = _h(
        "torch threads of a training process (null: a share of the cores "
        "per worker, 1 for small models)",
        default=None,
    )
    max_population: int | None = _h(
        "most members of a population trained at once; the others take the slots of members "
        "that end "
        "(null: as many as fit in a GPU's free memory, all of them on a CPU)",
        default=None,
    )


@dataclass
class TrialLink:
    """Set by the sweeper for each job (internal: ``--help`` hides it): where the job's trials
    live. Null in a single run.

    ``storage`` is the storage URL with its password masked: the job takes the full URL from
    the ``REGSWEEP_STORAGE`` environment variable the sweeper sets. ``members`` are the trials
    the job trains as one population (``number`` is the first of them and names the job's
    folder); ``slots`` is how many train at once (the sweeper's population: trials that join
    later, see :func:`sweep.job.refills`, take the places of those that ended); ``stage`` is
    ``search`` or ``confirm``.
    """

    storage: str | None = None
    study: str | None = None
    number: int | None = None
    members: list[int] = field(default_factory=list)
    slots: int | None = None
    stage: str = "search"
    heartbeat: int | None = None
    requeue: bool = False


@dataclass
class AppConfig:
    """The whole job config (``conf/config.yaml`` is composed onto this)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    trial: TrialLink = _h(
        "set by the sweeper for each job", internal=True, default_factory=TrialLink
    )
    metric: str = _h(
        "the optimized metric of the final model (hydra.sweeper.metric sets it in a sweep)",
        default="val_acc",
    )
    objectives: list[str] = _h(
        "objectives of a multi-objective study (set by the sweeper)", default_factory=list
    )


def from_dict(data: Any, schema: type[Any] = AppConfig, where: str = "") -> Any:
    """Build the typed config ``schema`` from plain data (a stored job config) without
    OmegaConf: type-checked like a composition (an int is accepted for a float), unknown keys
    refused, missing keys left at their defaults. About 100× faster than an OmegaConf merge,
    which matters when a population's members are read back one by one.

    Raises:
        ConfigError: A key is unknown or a value has the wrong type.

    Example:
        >>> from_dict({"trainer": {"epochs": 3}, "optimizer": {"lr": 1}}).optimizer.lr
        1.0
    """
    hint: Any = schema
    return _converter(hint)(data, where.rstrip("."))


Convert = typing.Callable[[Any, str], Any]
"""``convert(value, key)``: ``value`` as one annotation wants it; ``key`` names it in errors
(``"trainer.epochs"``; ``""`` for the whole config)."""


@functools.cache
def _converter(hint: Any) -> Convert:
    """How to type a value for the annotation ``hint``, worked out once per annotation: every
    trial's config is typed twice (when the sweeper asks it and when its job reads it back),
    and reading the annotations each time took most of that (135 → 37 µs a config)."""
    if dataclasses.is_dataclass(hint):
        return _record_converter(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            return _as_is
        one = _converter(inner[0])
        if type(None) not in args or one is _as_is:
            return one
        if one is _to_float:
            return _to_float  # None is left as it is
        return lambda value, key: None if value is None else one(value, key)
    if origin is list:
        return _list_converter(_converter(args[0]) if args else None)
    if origin is dict:
        return lambda value, key: dict(value) if isinstance(value, Mapping) else value
    if hint is float:
        return _to_float
    if hint in (int, bool, str):
        return _exact(hint)
    return _as_is


def _record_converter(schema: Any) -> Convert:
    hints, names = _schema_fields(schema)
    fields = {name: _converter(hints[name]) for name in names}

    def convert(data: Any, key: str) -> Any:
        if not isinstance(data, Mapping):
            raise ConfigError([f"{key or 'config'}={data!r}: allowed a mapping"])
        where = f"{key}." if key else ""
        unknown = data.keys() - names
        if unknown:
            raise ConfigError(
                [
                    f"{where}{k}: unknown key; allowed {', '.join(sorted(names))}"
                    for k in sorted(unknown)
                ]
            )
        return schema(**{k: fields[k](v, f"{where}{k}") for k, v in data.items()})

    return convert


def _list_converter(item: Convert | None) -> Convert:
    def convert(value: Any, key: str) -> Any:
        if not isinstance(value, list | tuple):
            raise ConfigError([f"{key}={value!r}: allowed a list"])
        if item is None:
            return list(value)
        return [item(v, f"{key}[{i}]") for i, v in enumerate(value)]

    return convert


def _exact(kind: type[Any]) -> Convert:
    def convert(value: Any, key: str) -> Any:
        if type(value) is not kind:
            raise ConfigError([f"{key}={value!r}: allowed a {kind.__name__}"])
        return value

    return convert


def _to_float(value: Any, key: str) -> Any:
    """An int is accepted for a float; anything else is left for :func:`validate` to judge."""
    kind = type(value)
    if kind is float:
        return value
    if kind is not bool and isinstance(value, int | float):
        return float(value)
    return value


def _as_is(value: Any, key: str) -> Any:
    return value


@functools.cache
def _schema_fields(schema: Any) -> tuple[dict[str, Any], frozenset[str]]:
    return typing.get_type_hints(schema), frozenset(f.name for f in dataclasses.fields(schema))


def sweep_dir(study: str | None, now: str) -> str:
    """``hydra.sweep.dir`` under ``outputs/sweeps``: the study's name with our sweeper (reruns
    add trials beside the earlier ones), ``basic_<time>`` with any other sweeper."""
    return str(study) if study else f"basic_{now}"


def job_dir(stage: str, number: int | None, members: Any, job_num: int) -> str:
    """``hydra.sweep.subdir``: ``trial_<n>`` (a search trial), ``population_<n>`` (a population
    whose first trial is n), ``confirm_<n>`` / ``confirm_population_<n>`` (the confirmation
    stage), or Hydra's job number with other sweepers."""
    if number is None:
        return str(job_num)
    prefix = "confirm_" if stage == "confirm" else ""
    kind = "population" if members is not None and len(members) > 1 else "trial"
    if prefix and kind == "trial":
        return f"confirm_{number}"
    return f"{prefix}{kind}_{number}"


def register_configs() -> None:
    """Register the typed root (``schema_app``) that ``conf/config.yaml`` composes onto (every
    group option merges into its typed node, so unknown keys and wrong types fail there), and
    the resolvers that name sweep folders."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    ConfigStore.instance().store(name="schema_app", node=AppConfig)
    for name, fn in (("regsweep.sweep_dir", sweep_dir), ("regsweep.job_dir", job_dir)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
    from .help import register_help

    register_help()


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
    if d.name == "files":
        if not d.path:
            c.fail(
                "data.path",
                d.path,
                "a .npz or .csv file or an image folder (data=files reads the file it names)",
            )
        if not d.label:
            c.fail("data.label", d.label, "the name of the .csv file's label column")
    elif d.path is not None:
        c.fail(
            "data.path",
            d.path,
            "null unless data=files (the bundled and torchvision data "
            "are found by data.name and data.root)",
        )


def _check_model(c: _Checker, m: ModelConfig) -> None:
    c.choice("model.name", m.name, MODEL_KINDS)
    c.choice("model.activation", m.activation, ACTIVATIONS)
    c.number("model.dropout", m.dropout, low=0.0, high=1.0, high_open=True)
    for i, width in enumerate(m.hidden):
        c.number(f"model.hidden[{i}]", width, low=1)
    if m.name == "cnn":
        if not m.channels:
            c.fail("model.channels", list(m.channels), "one width per conv block, e.g. [16, 32]")
        for i, width in enumerate(m.channels):
            c.number(f"model.channels[{i}]", width, low=1)
        if m.kernel_size < 1 or m.kernel_size % 2 == 0:
            c.fail(
                "model.kernel_size",
                m.kernel_size,
                "an odd integer >= 1 ('same' padding keeps height and width)",
            )
        c.choice("model.pool", m.pool, POOLS)
        c.number("model.pool_size", m.pool_size, low=2)
    if m.name == "custom":
        _check_custom(c, m)


def _check_custom(c: _Checker, m: ModelConfig) -> None:
    parts = (m.target or "").replace(":", ".").split(".")
    if len(parts) < 2 or not all(p.isidentifier() for p in parts):
        c.fail(
            "model.target",
            m.target,
            "an import path to your nn.Module class, package.module.Class (model=custom builds it)",
        )
    for key in sorted(set(m.kwargs) & set(GIVEN_TO_CUSTOM)):
        c.fail(
            f"model.kwargs.{key}",
            m.kwargs[key],
            "not set here: regsweep passes "
            "n_features, input_shape and n_classes from the data, and dropout p from "
            "model.dropout or regularizer.dropout",
        )
    if m.hidden:
        c.fail(
            "model.hidden",
            list(m.hidden),
            "[] with model=custom (your module defines its layers; pass sizes in model.kwargs)",
        )
    if m.batch_norm:
        c.fail(
            "model.batch_norm",
            m.batch_norm,
            "false with model=custom (your module defines its layers)",
        )


def _refuse_unused(c: _Checker, group: str, section: Any) -> None:
    """A key that only some options of ``group`` read (its ``only`` metadata:
    ``"<group>.name=a|b"``) must keep its default with the others, so a value set there is
    never silently ignored."""
    defaults = type(section)()
    if any(p.startswith(f"{group}.name=") for p in c.problems):
        return  # an unknown option: which keys it reads is unknown too
    for f in dataclasses.fields(section):
        only = f.metadata.get("only")
        key = f"{group}.{f.name}"
        if not only or any(p.startswith((f"{key}=", f"{key}[")) for p in c.problems):
            continue
        options = only.split("=", 1)[1].split("|")
        value, default = getattr(section, f.name), getattr(defaults, f.name)
        if section.name not in options and value != default:
            which = " or ".join(f"{group}={o}" for o in options)
            c.fail(
                f"{group}.{f.name}",
                value,
                f"its default ({default!r}) unless {which}; {group}={section.name} does not use it",
            )


def _refuse_strengths_of_none(c: _Checker, r: RegularizerConfig) -> None:
    """``regularizer=none`` is the unregularized baseline: a strength set there would make it
    regularized without a word."""
    if r.name != "none":
        return
    for s in STRENGTHS.values():
        value = value_at(r, s.path.split(".", 1)[1])
        if any(p.startswith(f"{s.path}=") for p in c.problems):
            continue  # out of range already: one problem per key
        if s.path.startswith("regularizer.") and s.acts(value):
            c.fail(
                s.path,
                value,
                f"its off value ({s.off!r}) with regularizer=none, the "
                f"unregularized baseline; choose its family (regularizer={s.family}) or "
                "regularizer=cocktail",
            )


def _check_regularizer(c: _Checker, r: RegularizerConfig, model: ModelConfig) -> None:
    for s in STRENGTHS.values():  # the loss penalties: off at 0, never negative
        if s.off == 0.0 and s.path.count(".") == 1:
            c.number(s.path, getattr(r, s.path.split(".")[1], 0.0), low=0.0)
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
    if p > 0.0 and (model.name == "logreg" or (model.name == "mlp" and not model.hidden)):
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
    c.number("trainer.threads", t.threads, low=1, optional=True)
    c.number("trainer.max_population", t.max_population, low=1, optional=True)
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
    # keys set where nothing reads them; one problem per key (an out-of-range value already has)
    for group in ("data", "model", "optimizer", "scheduler"):
        _refuse_unused(c, group, getattr(cfg, group))
    _refuse_strengths_of_none(c, cfg.regularizer)
    c.choice("metric", cfg.metric, tuple(OBJECTIVES))
    for i, objective in enumerate(cfg.objectives):
        c.choice(f"objectives[{i}]", objective, tuple(OBJECTIVES))
    if c.problems:
        raise ConfigError(c.problems)
    return cfg
