"""The registry of regularization strengths: each one declared once.

A strength is a knob that regularizes: an L1 λ, a dropout p, a clip threshold. Its entry says
where it lives in the job config, what it is called, on which scale it is read, the range a
search and a dose-response path span by default, the value that turns it off, whether a larger
or a smaller value regularizes more, and the term it adds to the gradient. Everything that needs
one of those facts derives it from here: the config checks, the recorded ``hparams``, the
confirmation's unregularized baseline and the dose-response path. Nothing here imports torch,
Optuna or Hydra.

Adding a penalty of the form ``a·Σ|w| + b·Σw²``: one :class:`Strength` here (with its ``fold``),
its field in :class:`sweep.config.RegularizerConfig`, and its option in ``conf/regularizer/``;
the training step, the recorded ``hparams``, the checks, the baseline and the dose-response path
follow. A penalty of another form also needs its gradient in :mod:`sweep.penalties`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = [
    "OFF_PATHS",
    "STRENGTHS",
    "Strength",
    "family_strength",
    "loss_penalty",
    "registered",
    "set_at",
    "strength_path",
    "turn_off",
    "value_at",
]


@dataclass(frozen=True)
class Strength:
    """One regularization strength.

    Attributes:
        key: Its key in a trial's ``hparams`` (``"l1"``).
        path: Its path in the job config (``"regularizer.l1"``).
        family: The ``regularizer=`` option whose own strength it is (None: no family's own).
        label: What it is, in words (``"L1 λ"``).
        log: Read (and spanned by a dose-response path) on a log scale.
        low: The lowest value a default search and path span.
        high: The highest.
        off: The value that turns it off (the baseline's value, a path's strength 0).
        stronger: ``"higher"`` when a larger value regularizes more, ``"lower"`` when a smaller
            one does (a clip threshold, early stopping's patience).
        integer: Takes whole numbers only.
        gradient: The term it adds to the data loss's gradient, in words (None: it acts
            otherwise, through the model, the optimizer or the loop).
        fold: For a loss penalty, its ``(a, b)`` in ``a·Σ|w| + b·Σw²`` given the
            regularizer's settings (an object with the config's fields): the training step
            applies the sum over every strength, so a new penalty of that form needs no code
            in the step. None: not a loss penalty.
    """

    key: str
    path: str
    family: str | None
    label: str
    log: bool
    low: float
    high: float
    off: Any
    stronger: str = "higher"
    integer: bool = False
    gradient: str | None = None
    fold: Callable[[Any], tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        if self.stronger not in ("higher", "lower"):
            raise ValueError(
                f"Strength {self.key}: stronger={self.stronger!r}: allowed higher, lower"
            )
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(
                f"Strength {self.key}: low={self.low!r}, high={self.high!r}: allowed "
                "low < high (and low > 0 on a log scale)"
            )

    def acts(self, value: Any) -> bool:
        """Whether ``value`` regularizes: not the off value, and not 0 for a strength where
        larger regularizes more (a dropout p or weight decay of 0 is off too)."""
        if value is None or value == self.off:
            return False
        return not (self.stronger == "higher" and value == 0)

    def path_values(self, low: float, high: float, n: int) -> list[float]:
        """``n`` values spanning ``[low, high]`` on this strength's scale, weakest first
        (distinct whole numbers for an integer strength, so possibly fewer)."""
        if n < 2:
            raise ValueError(f"a dose-response path needs at least 2 values, got n={n}")
        if self.log:
            a, b = math.log(low), math.log(high)
            values = [math.exp(a + (b - a) * i / (n - 1)) for i in range(n)]
        else:
            values = [low + (high - low) * i / (n - 1) for i in range(n)]
        if self.integer:
            values = sorted({float(round(v)) for v in values})
        values = [float(f"{v:.3g}") for v in values]
        return values if self.stronger == "higher" else values[::-1]


STRENGTHS: dict[str, Strength] = {
    s.key: s
    for s in (
        Strength(
            "l1",
            "regularizer.l1",
            "l1",
            "L1 λ",
            True,
            1e-6,
            1e-2,
            0.0,
            gradient="λ·sign(w)",
            fold=lambda r: (r.l1, 0.0),
        ),
        Strength(
            "l2",
            "regularizer.l2",
            "l2",
            "L2 λ",
            True,
            1e-6,
            1e-1,
            0.0,
            gradient="2λ·w",
            fold=lambda r: (0.0, r.l2),
        ),
        Strength(
            "elastic",
            "regularizer.elastic",
            "elastic_net",
            "elastic-net λ",
            True,
            1e-6,
            1e-2,
            0.0,
            gradient="λ·(ρ·sign(w) + 2(1−ρ)·w)",
            fold=lambda r: (r.elastic * r.l1_ratio, r.elastic * (1.0 - r.l1_ratio)),
        ),
        Strength("dropout", "regularizer.dropout", "dropout", "dropout p", False, 0.05, 0.8, None),
        Strength(
            "weight_decay",
            "regularizer.weight_decay",
            "weight_decay",
            "weight decay",
            True,
            1e-6,
            1e-1,
            None,
        ),
        Strength(
            "clip",
            "regularizer.clip",
            "clip",
            "gradient clip norm",
            True,
            0.01,
            10.0,
            None,
            stronger="lower",
        ),
        Strength(
            "patience",
            "regularizer.early_stop.patience",
            "early_stop",
            "early-stopping patience",
            False,
            2,
            10,
            None,
            stronger="lower",
            integer=True,
        ),
    )
}
"""Every strength, by ``hparams`` key."""

OFF_PATHS = {"model.dropout": 0.0, "optimizer.weight_decay": 0.0, "regularizer.name": "none"}
"""Settings outside the strengths that a baseline also turns off: the model's own dropout p and
the optimizer's own weight decay (the regularizer's, when set, override them)."""


def loss_penalty(regularizer: Any) -> tuple[float, float]:
    """``(a, b)`` of the whole loss penalty ``a·Σ|w| + b·Σw²``: every registered penalty's
    :attr:`Strength.fold` of ``regularizer`` (the config's regularizer settings), summed.

    Example:
        >>> from types import SimpleNamespace as S
        >>> loss_penalty(S(l1=0.1, l2=0.0, elastic=0.2, l1_ratio=0.5))
        (0.2, 0.1)
    """
    a = b = 0.0
    for s in STRENGTHS.values():
        if s.fold is not None:
            da, db = s.fold(regularizer)
            a, b = a + float(da), b + float(db)
    return a, b


def value_at(cfg: Any, path: str) -> Any:
    """The value at dotted ``path`` of a config object or mapping (None where it is missing)."""
    node = cfg
    for name in path.split("."):
        node = node.get(name) if isinstance(node, Mapping) else getattr(node, name, None)
        if node is None:
            return None
    return node


def family_strength(family: str) -> Strength | None:
    """The strength that is ``family``'s own (``l2_dropout``: its L2 λ), or None (``none``,
    ``cocktail``).

    Example:
        >>> family_strength("elastic_net").path
        'regularizer.elastic'
    """
    for s in STRENGTHS.values():
        if s.family == family:
            return s
    if family == "l2_dropout":
        return STRENGTHS["l2"]
    return None


def strength_path(path: str) -> Strength | None:
    """The strength at config ``path`` (``"regularizer.clip"``), or None."""
    for s in STRENGTHS.values():
        if s.path == path:
            return s
    return None


def set_at(cfg: MutableMapping[str, Any], path: str, value: Any) -> None:
    """Set dotted ``path`` of the plain config ``cfg`` to ``value``, making missing parents."""
    *parents, leaf = path.split(".")
    node = cfg
    for name in parents:
        child = node.get(name)
        if not isinstance(child, MutableMapping):
            child = dict(child) if isinstance(child, Mapping) else {}
            node[name] = child
        node = child
    node[leaf] = value


def turn_off(cfg: MutableMapping[str, Any]) -> None:
    """Set every registered strength, and :data:`OFF_PATHS`, to its off value in the plain
    job config ``cfg`` (changed in place)."""
    for s in STRENGTHS.values():
        set_at(cfg, s.path, s.off)
    for path, value in OFF_PATHS.items():
        set_at(cfg, path, value)


@contextmanager
def registered(strength: Strength) -> Iterator[Strength]:
    """Register ``strength`` for the duration of a ``with`` block (tests, plugins' trials)."""
    if strength.key in STRENGTHS:
        raise ValueError(f"strength {strength.key!r} is registered already")
    STRENGTHS[strength.key] = strength
    try:
        yield strength
    finally:
        del STRENGTHS[strength.key]
