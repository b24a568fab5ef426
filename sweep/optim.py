"""Optimizers and learning-rate schedules for a population, each member with its own settings.

SGD (momentum, Nesterov, coupled weight decay ``g + wd·w``), Adam (coupled: the decay is an L2
term in the gradient before the adaptive scaling) and AdamW (decoupled: ``w ← w·(1 − lr·wd)``
beside the adaptive step) update stacked parameters with one ``(K,)`` tensor per setting, so
every member has its own learning rate, momentum, betas and decay. The update rules are
torch.optim's, step for step; a test checks each against ``torch.optim`` and by hand.

The optimizer is built from the population it steps, in one place: the bug of 003's notes (a
"regularized" model stepped by the previous model's optimizer) cannot happen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["OPTIMIZERS", "SCHEDULERS", "Schedule", "StackedOptimizer", "scheduled_lr"]

Tensor = torch.Tensor
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "step", "cosine")


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


def scheduled_lr(base_lr: float, schedule: Schedule, epoch: int) -> float:
    """The learning rate of 0-based ``epoch`` (torch's schedulers stepped once per epoch).

    Example:
        >>> [scheduled_lr(0.8, Schedule("step", step_size=2, gamma=0.5), e) for e in range(5)]
        [0.8, 0.8, 0.4, 0.4, 0.2]
    """
    if schedule.name == "none":
        return base_lr
    if schedule.name == "step":
        return base_lr * schedule.gamma ** (epoch // schedule.step_size)
    if schedule.name == "cosine":
        t_max = schedule.t_max or schedule.epochs
        low = schedule.eta_min
        return low + (base_lr - low) * (1 + math.cos(math.pi * epoch / t_max)) / 2
    raise ValueError(f"scheduler.name={schedule.name!r}: allowed " + ", ".join(SCHEDULERS))


def _per_member(v: Tensor, like: Tensor) -> Tensor:
    """A ``(K,)`` setting shaped to broadcast over ``like`` ``(K, ...)``."""
    return v.view((-1,) + (1,) * (like.dim() - 1))


class StackedOptimizer:
    """One optimizer kind for a population, every setting a ``(K,)`` tensor.

    Args:
        kind: ``sgd``, ``adam`` or ``adamw`` (shared by the population).
        params: Stacked parameters (leading member dimension).
        weight_mask: Which params are weight tensors; ``decay`` applies to those and
            ``decay_other`` to the rest (zero unless weight decay applies to every parameter).
        momentum, nesterov, decay, decay_other, beta1, beta2, eps: ``(K,)`` settings.
    """

    def __init__(
        self,
        kind: str,
        params: Sequence[Tensor],
        weight_mask: Sequence[bool],
        *,
        momentum: Tensor,
        nesterov: Tensor,
        decay: Tensor,
        decay_other: Tensor,
        beta1: Tensor,
        beta2: Tensor,
        eps: Tensor,
    ) -> None:
        if kind not in OPTIMIZERS:
            raise ValueError(f"optimizer.name={kind!r}: allowed " + ", ".join(OPTIMIZERS))
        self.kind = kind
        self.weight_mask = list(weight_mask)
        self.momentum, self.nesterov = momentum, nesterov
        self.decay, self.decay_other = decay, decay_other
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.steps = torch.zeros_like(eps)  # each member's own count: members join later
        first = [torch.zeros_like(p, memory_format=torch.contiguous_format) for p in params]
        self.first = first  # SGD momentum buffers, or Adam's first moments
        self.second = [torch.zeros_like(p) for p in params] if kind in ("adam", "adamw") else []
        self._refresh()

    def extend(self, other: StackedOptimizer) -> None:
        """Append the members of ``other`` (the same kind) with their own state."""
        for name in ("momentum", "nesterov", "decay", "decay_other", "beta1", "beta2", "eps",
                     "steps"):  # fmt: skip
            setattr(self, name, torch.cat([getattr(self, name), getattr(other, name)]))
        self.first = [torch.cat([a, b]) for a, b in zip(self.first, other.first, strict=True)]
        self.second = [torch.cat([a, b]) for a, b in zip(self.second, other.second, strict=True)]
        self._refresh()

    def _refresh(self) -> None:
        """What holds for the whole population, read once (not a device sync per step)."""
        self.decays = [self.decay if w else self.decay_other for w in self.weight_mask]
        self.decaying = [bool(wd.any()) for wd in self.decays]
        self.any_nesterov = bool(self.nesterov.any())
        self.any_momentum = bool((self.momentum != 0).any())

    @torch.no_grad()
    def step(self, params: Sequence[Tensor], grads: Sequence[Tensor], lr: Tensor) -> None:
        """Update ``params`` in place from ``grads`` with per-member learning rates ``lr``."""
        self.steps += 1.0
        if self.kind == "sgd":
            self._sgd(params, grads, lr)
        else:
            self._adam(params, grads, lr)

    def _sgd(self, params: Sequence[Tensor], grads: Sequence[Tensor], lr: Tensor) -> None:
        for p, g, buf, wd, decaying in zip(params, grads, self.first, self.decays,
                                           self.decaying, strict=True):  # fmt: skip
            if decaying:
                g = g.addcmul(_per_member(wd, p), p)
            d = g
            if self.any_momentum:
                mom = _per_member(self.momentum, p)
                buf.mul_(mom).add_(g)
                d = buf
                if self.any_nesterov:
                    d = torch.where(_per_member(self.nesterov, p), g + mom * buf, buf)
            p.addcmul_(_per_member(lr, p), d, value=-1.0)

    def _adam(self, params: Sequence[Tensor], grads: Sequence[Tensor], lr: Tensor) -> None:
        t = self.steps
        correction1 = 1 - self.beta1**t
        step_size = lr / correction1
        correction2_sqrt = (1 - self.beta2**t).sqrt()
        decoupled = self.kind == "adamw"
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            wd = self.decays[i]
            if self.decaying[i]:
                if decoupled:
                    p.mul_(1 - _per_member(lr * wd, p))
                else:
                    g = g + _per_member(wd, p) * p
            m, v = self.first[i], self.second[i]
            m.lerp_(g, _per_member(1 - self.beta1, p))
            v.mul_(_per_member(self.beta2, p)).addcmul_(g, g * _per_member(1 - self.beta2, p))
            denom = (v.sqrt() / _per_member(correction2_sqrt, p)).add_(_per_member(self.eps, p))
            p.sub_(_per_member(step_size, p) * m / denom)

    def keep(self, rows: Tensor) -> None:
        """Keep only the members at ``rows`` (after the population dropped some)."""
        for name in ("momentum", "nesterov", "decay", "decay_other", "beta1", "beta2", "eps",
                     "steps"):  # fmt: skip
            setattr(self, name, getattr(self, name)[rows])
        self.first = [b[rows].contiguous() for b in self.first]
        self.second = [b[rows].contiguous() for b in self.second]
        self._refresh()
