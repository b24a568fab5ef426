"""One settings class per pruner, each with its defaults declared once.

``hydra.sweeper.pruner`` names a pruner and sets any of its fields; a field the chosen pruner
does not read is refused (:func:`pruner_settings`), and a field left unset takes the pruner's
default here. The study stores the resolved settings (``regsweep:pruner``: the name and every
field of that pruner), which every job rebuilds the pruner from (:func:`stored_settings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = [
    "PRUNER_SETTINGS",
    "PrunerSettings",
    "as_spec",
    "own_fields",
    "pruner_fields",
    "pruner_settings",
    "readers_of",
    "stored_settings",
]


@dataclass(frozen=True)
class PrunerSettings:
    """What every pruner shares. ``family_startup_trials``: each family's first this-many trials
    are never pruned; ``audit``: the share of would-be-pruned trials that run on, flagged;
    ``patience``/``min_delta``: wrap the pruner in Optuna's PatientPruner."""

    family_startup_trials: int = 3
    audit: float = 0.2
    patience: int | None = None
    min_delta: float = 0.0


@dataclass(frozen=True)
class NoPruning:
    """``none``: every trial runs to its end (nothing to set)."""


@dataclass(frozen=True)
class MedianSettings(PrunerSettings):
    """``median``: prune a trial below the median of the others at an epoch. ``peers``: the
    others include running trials (a population's members judge each other); ``by_family``:
    only trials of its own regularizer family count."""

    n_startup_trials: int = 3
    n_warmup_steps: int = 4
    interval_steps: int = 1
    n_min_trials: int = 1
    peers: bool = True
    by_family: bool = True


@dataclass(frozen=True)
class PercentileSettings(MedianSettings):
    """``percentile``: keep the trials in the best ``percentile`` percent at an epoch."""

    percentile: float = 25.0


@dataclass(frozen=True)
class SuccessiveHalvingSettings(PrunerSettings):
    """``successive_halving``: Optuna's asynchronous successive halving."""

    min_resource: Any = "auto"
    reduction_factor: int = 3
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0


@dataclass(frozen=True)
class HyperbandSettings(PrunerSettings):
    """``hyperband``: brackets of successive halving."""

    min_resource: Any = 1
    max_resource: Any = "auto"
    reduction_factor: int = 3
    bootstrap_count: int = 0


@dataclass(frozen=True)
class ThresholdSettings(PrunerSettings):
    """``threshold``: prune a trial whose value leaves [lower, upper]."""

    lower: float | None = None
    upper: float | None = None
    n_warmup_steps: int = 0
    interval_steps: int = 1


@dataclass(frozen=True)
class WilcoxonSettings(PrunerSettings):
    """``wilcoxon``: prune when a trial's curve is worse than the best trial's by a Wilcoxon
    signed-rank test; it waits ``n_warmup_steps`` epochs first."""

    p_threshold: float = 0.1
    n_warmup_steps: int = 2


PRUNER_SETTINGS: dict[str, type] = {
    "none": NoPruning,
    "median": MedianSettings,
    "percentile": PercentileSettings,
    "successive_halving": SuccessiveHalvingSettings,
    "hyperband": HyperbandSettings,
    "threshold": ThresholdSettings,
    "wilcoxon": WilcoxonSettings,
}

_STORED_BEFORE = {"peers": False, "by_family": False, "family_startup_trials": 0}
"""What a stored spec that lacks these fields meant: studies stored before they existed judged
against finished trials only, compared every family, and spared none."""


def pruner_fields(name: str) -> tuple[str, ...]:
    """The fields pruner ``name`` reads, its own first."""
    cls = PRUNER_SETTINGS[name]
    own = [f.name for f in fields(cls)]
    shared = [f.name for f in fields(PrunerSettings)]
    return tuple([k for k in own if k not in shared] + [k for k in own if k in shared])


def own_fields(name: str) -> tuple[str, ...]:
    """The fields of pruner ``name`` that not every pruner shares.

    Example:
        >>> own_fields("wilcoxon")
        ('p_threshold', 'n_warmup_steps')
    """
    shared = {f.name for f in fields(PrunerSettings)}
    return tuple(k for k in pruner_fields(name) if k not in shared)


def readers_of(key: str) -> list[str]:
    """The pruners that read ``key``."""
    return [name for name in PRUNER_SETTINGS if key in pruner_fields(name)]


def pruner_settings(name: str, given: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """Pruner ``name``'s settings from the fields a user set (``given``: every field not None),
    the rest at the pruner's defaults; and one problem line for each field it does not read.

    Example:
        >>> s, problems = pruner_settings("wilcoxon", {"p_threshold": 0.05, "percentile": 10.0})
        >>> s.n_warmup_steps, problems[0].split(":")[0]
        (2, 'hydra.sweeper.pruner.percentile=10.0')
    """
    cls = PRUNER_SETTINGS[name]
    own = set(pruner_fields(name))
    problems = [
        f"hydra.sweeper.pruner.{key}={value!r}: not read by pruner.name={name}; read by "
        f"pruner.name=" + ("|".join(readers_of(key)) or "none")
        for key, value in given.items()
        if value is not None and key not in own
    ]
    return cls(**{k: v for k, v in given.items() if v is not None and k in own}), problems


def stored_settings(spec: Mapping[str, Any] | None) -> tuple[str, Any]:
    """The pruner name and settings a study stored (a spec of any version: fields of other
    pruners are ignored, fields it lacks take what they meant before they existed, then the
    defaults)."""
    s = dict(spec or {"name": "none"})
    name = str(s.get("name", "none"))
    if name not in PRUNER_SETTINGS:
        raise ValueError(f"pruner.name={name!r}: allowed " + ", ".join(PRUNER_SETTINGS))
    own = pruner_fields(name)
    values = {
        k: s[k] if k in s else _STORED_BEFORE[k] for k in own if k in s or k in _STORED_BEFORE
    }
    return name, PRUNER_SETTINGS[name](**values)


def as_spec(name: str, settings: Any) -> dict[str, Any]:
    """What a study stores: the name and every field of the pruner's settings."""
    return {"name": name, **asdict(settings)}
