"""A population's settings as plain data: what its members share, and their per-member rows.

:class:`Shared` is what every member shares besides architecture and data; :class:`MemberSettings`
what one member trains with (its :class:`Penalty` and :class:`Schedule` among it). This module
imports nothing of the project's: the step's functions (``sweep.penalties``, ``sweep.optim``,
``sweep.population``) build on it.

A population of K members keeps everything that differs between members as rows of stacked
tensors. :class:`Hyper` holds one ``(K,)`` tensor per setting (strengths, clip threshold,
momentum, betas, decay, dropout p), :class:`OptimState` the optimizer's state (each member's
step count and moment buffers, ``(K, ...)`` per parameter). Both are :class:`Rows`, which
keeps, appends and inserts members once for every field: a setting added to :class:`Hyper`
cannot be forgotten by one of those operations, and a member that joins a running population
is one ``extend`` (or ``insert``), not one per object.

What holds for a whole population (does any member clip? use momentum? drop units?) is read
once per :class:`Hyper` (:attr:`Hyper.flags`), not as a device sync in every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any, TypeVar

import torch

__all__ = [
    "EarlyStop",
    "Flags",
    "Hyper",
    "MemberSettings",
    "OptimState",
    "Penalty",
    "Rows",
    "Schedule",
    "Shared",
    "per_member",
]

Tensor = torch.Tensor
R = TypeVar("R", bound="Rows")


@dataclass(frozen=True)
class Penalty:
    """Strengths of the penalty ``l1·Σ|w| + l2·Σw²`` of one member (every registered penalty
    folded in: :func:`sweep.regularizers.loss_penalty`).

    ``half_mean=True`` divides the strengths by 2m, m = batch size (004's λ/(2m)·Σ‖W‖²).
    """

    l1: float = 0.0
    l2: float = 0.0
    half_mean: bool = False

    @property
    def active(self) -> bool:
        return self.l1 > 0.0 or self.l2 > 0.0


@dataclass(frozen=True)
class Schedule:
    """A per-epoch learning-rate schedule: ``none``, ``step`` (StepLR) or ``cosine``
    (CosineAnnealingLR over ``t_max`` epochs, null meaning the run's ``epochs``)."""

    name: str = "none"
    step_size: int = 10
    gamma: float = 0.1
    t_max: int | None = None
    eta_min: float = 0.0
    epochs: int = 1


@dataclass(frozen=True)
class EarlyStop:
    """Stop after ``patience`` epochs without improving ``monitor`` by more than ``min_delta``;
    with ``restore_best`` the final model has the best monitored epoch's weights."""

    patience: int
    min_delta: float = 0.0
    monitor: str = "val_loss"
    restore_best: bool = True


@dataclass(frozen=True)
class MemberSettings:
    """What one member trains with, besides the architecture and data it shares."""

    seed: int = 0
    lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    decay_all: bool = False
    penalty: Penalty = field(default_factory=Penalty)
    penalize_all: bool = False
    dropout: float = 0.0
    clip: float | None = None
    early_stop: EarlyStop | None = None
    schedule: Schedule = field(default_factory=Schedule)


CPU_EVAL_BYTES = 1 << 20
"""On a CPU, an evaluation block's largest activation (all members together) stays within this
many bytes, so that each block's temporaries stay in cache and in memory already mapped. On
the digits MLP 64-64, measuring the members after an epoch took (ms per member, median of 5)
0.84 at K = 32 and 1.16 at K = 128 in blocks of 4096 examples (one block: 41 MB a layer at
K = 128), 0.48 and 0.55 within 1 MiB, 0.54 and 0.62 within 4 MiB."""

MIN_EVAL_BLOCK = 32
"""The fewest examples a CPU evaluation block holds, however large each example's activations
(a convolution's): below that, each block's operations cost more to dispatch than to compute."""


@dataclass(frozen=True)
class Shared:
    """What every member of a population shares besides architecture and data.

    ``eval_batch_size`` is the most examples an evaluation block holds; on a CPU, where
    ``example_bytes`` (one member's largest activation per example, :func:`sweep.sizing.
    activation_bytes`) is known, blocks are also kept within :data:`CPU_EVAL_BYTES`, down to
    :data:`MIN_EVAL_BLOCK` examples.
    """

    epochs: int
    batch_size: int
    optimizer: str = "sgd"
    metric: str = "val_acc"
    eval_batch_size: int = 4096
    example_bytes: float = 0.0

    def eval_block(self, members: int, device: torch.device) -> int:
        """Examples per evaluation block for ``members`` members on ``device``.

        Example:
            >>> Shared(1, 64, example_bytes=256.0).eval_block(128, torch.device("cpu"))
            32
        """
        if device.type != "cpu" or self.example_bytes <= 0:
            return self.eval_batch_size
        fits = int(CPU_EVAL_BYTES // (self.example_bytes * max(members, 1)))
        return min(self.eval_batch_size, max(MIN_EVAL_BLOCK, fits))


def per_member(v: Tensor, like: Tensor) -> Tensor:
    """A ``(K,)`` row shaped to broadcast over ``like`` ``(K, ...)``."""
    return v.view((-1,) + (1,) * (like.dim() - 1))


def _take(value: Any, rows: Tensor, listed: list[int]) -> Any:
    if isinstance(value, Tensor):
        return value[rows]
    if isinstance(value, Rows):
        return value.keep(rows)
    if not value:  # no buffers (SGD's second moments), or no members
        return []
    if isinstance(value[0], Tensor):  # one stacked tensor per parameter
        return [v[rows].contiguous() for v in value]
    return [value[i] for i in listed]  # one Python object per member


def _splice(a: Any, b: Any, at: int) -> Any:
    if isinstance(a, Tensor):
        return torch.cat([a[:at], b, a[at:]])
    if isinstance(a, Rows):
        return a.insert(at, b)
    if a and isinstance(a[0], Tensor):
        return [torch.cat([x[:at], y, x[at:]]) for x, y in zip(a, b, strict=True)]
    return [*a[:at], *b, *a[at:]]


class Rows:
    """A dataclass whose every field holds one row per member: a ``(K, ...)`` tensor, a list of
    ``(K, ...)`` tensors (one per parameter), a list of K Python objects, or another
    :class:`Rows`. Members are kept, appended and inserted for all fields at once; each
    operation returns a new object (derived values, like :attr:`Hyper.flags`, start afresh)."""

    @property
    def size(self) -> int:
        for name in self._fields():
            value = getattr(self, name)
            if isinstance(value, Tensor):
                return int(value.shape[0])
            if isinstance(value, Rows):
                return value.size
        raise TypeError(f"{type(self).__name__} has no tensor field to count its rows")

    def _fields(self) -> list[str]:
        return [f.name for f in fields(self)]  # type: ignore[arg-type]

    def keep(self: R, rows: Tensor) -> R:
        """Only the members at ``rows`` (a 1-D index tensor), in that order."""
        listed = rows.tolist()
        kept = {name: _take(getattr(self, name), rows, listed) for name in self._fields()}
        return replace(self, **kept)  # type: ignore[type-var]

    def insert(self: R, at: int, other: R) -> R:
        """``other``'s members inserted before row ``at`` (``at = size`` appends)."""
        if not 0 <= at <= self.size:
            raise IndexError(f"insert at row {at} of {self.size}")
        spliced = {
            name: _splice(getattr(self, name), getattr(other, name), at) for name in self._fields()
        }
        return replace(self, **spliced)  # type: ignore[type-var]

    def extend(self: R, other: R) -> R:
        """``other``'s members appended."""
        return self.insert(self.size, other)


@dataclass(frozen=True)
class Flags:
    """What holds for a whole population, read once per :class:`Hyper`: whether any member has
    an L1 or L2 penalty, penalizes biases and norm scales too, clips, decays weights or other
    parameters, uses momentum or Nesterov; and which rows drop units."""

    any_l1: bool
    any_l2: bool
    any_other: bool
    clips: bool
    decays: bool
    decays_other: bool
    any_momentum: bool
    any_nesterov: bool
    drop_rows: tuple[int, ...]
    all_drop: bool

    @property
    def penalized(self) -> bool:
        return self.any_l1 or self.any_l2


@dataclass
class Hyper(Rows):
    """Each member's hyperparameters, one ``(K,)`` tensor per setting.

    ``l1``/``l2`` are the penalty's strengths (float64: a λ of 1e-9 survives), ``penalize_all``
    whether biases and norm scales are penalized too, ``half_mean`` whether the strengths are
    divided by 2m (m = the step's batch size), ``clip`` the gradient-norm threshold (``inf``:
    none), ``decay``/``decay_other`` the optimizer's weight decay of weight tensors and of the
    other parameters (zero unless ``decay_all``).
    """

    l1: Tensor
    l2: Tensor
    penalize_all: Tensor
    half_mean: Tensor
    clip: Tensor
    momentum: Tensor
    nesterov: Tensor
    beta1: Tensor
    beta2: Tensor
    eps: Tensor
    decay: Tensor
    decay_other: Tensor
    dropout: Tensor

    @classmethod
    def of(cls, settings: Sequence[MemberSettings], device: torch.device) -> Hyper:
        """The rows of ``settings``, one member each, on ``device``."""

        def vec(values: Sequence[float], dtype: torch.dtype = torch.float32) -> Tensor:
            return torch.tensor(list(values), dtype=dtype, device=device)

        def flag(values: Sequence[bool]) -> Tensor:
            return torch.tensor(list(values), dtype=torch.bool, device=device)

        decay = vec([s.weight_decay for s in settings])
        return cls(
            l1=vec([s.penalty.l1 for s in settings], torch.float64),
            l2=vec([s.penalty.l2 for s in settings], torch.float64),
            penalize_all=flag([s.penalize_all for s in settings]),
            half_mean=flag([s.penalty.half_mean for s in settings]),
            clip=vec([float("inf") if s.clip is None else float(s.clip) for s in settings]),
            momentum=vec([s.momentum for s in settings]),
            nesterov=flag([s.nesterov for s in settings]),
            beta1=vec([s.betas[0] for s in settings]),
            beta2=vec([s.betas[1] for s in settings]),
            eps=vec([s.eps for s in settings]),
            decay=decay,
            decay_other=decay * flag([s.decay_all for s in settings]),
            dropout=vec([s.dropout for s in settings]),
        )

    @cached_property
    def flags(self) -> Flags:
        drop_rows = tuple((self.dropout > 0).nonzero().flatten().tolist())
        return Flags(
            any_l1=bool((self.l1 > 0).any()),
            any_l2=bool((self.l2 > 0).any()),
            any_other=bool(self.penalize_all.any()),
            clips=bool(torch.isfinite(self.clip).any()),
            decays=bool((self.decay != 0).any()),
            decays_other=bool((self.decay_other != 0).any()),
            any_momentum=bool((self.momentum != 0).any()),
            any_nesterov=bool(self.nesterov.any()),
            drop_rows=drop_rows,
            all_drop=len(drop_rows) == self.size,
        )

    @cached_property
    def scratch(self) -> dict[Any, Any]:
        """Buffers reused from step to step while these rows last (a fresh large temporary
        costs page faults on every step) and what is derived from them once: per-batch-size
        penalty coefficients, sign buffers, each parameter's decay row."""
        return {}


@dataclass
class OptimState(Rows):
    """The optimizer's state of each member: its step count ``(K,)`` (members that join later
    count their own steps, for Adam's bias correction), its first moments (SGD's momentum
    buffers, Adam's first moments) and Adam's second moments, one ``(K, ...)`` per parameter."""

    steps: Tensor
    first: list[Tensor]
    second: list[Tensor]

    @classmethod
    def zeros(cls, params: Sequence[Tensor], *, second: bool) -> OptimState:
        """Fresh state for ``params``; ``second``: keep second moments (Adam's)."""
        k = int(params[0].shape[0]) if params else 0
        device = params[0].device if params else torch.device("cpu")
        first = [torch.zeros_like(p, memory_format=torch.contiguous_format) for p in params]
        moments = [torch.zeros_like(p) for p in params] if second else []
        return cls(torch.zeros(k, device=device), first, moments)
