"""Optimizers and learning-rate schedules for a population, each member with its own settings.

SGD (momentum, Nesterov, coupled weight decay ``g + wd·w``), Adam (coupled: the decay is an L2
term in the gradient before the adaptive scaling) and AdamW (decoupled: ``w ← w·(1 − lr·wd)``
beside the adaptive step) update stacked parameters with one ``(K,)`` tensor per setting
(:class:`sweep.stack.Hyper`) and the state of :class:`sweep.stack.OptimState`, so every member
has its own learning rate, momentum, betas and decay. The update rules are torch.optim's, step
for step; a test checks each against ``torch.optim`` and by hand.

The optimizer's state is made from the parameters it steps (:func:`optimizer_state`), in one
place: the bug of 003's notes (a "regularized" model stepped by the previous model's
optimizer) cannot happen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .stack import Hyper, OptimState, Schedule, per_member

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "Schedule",
    "optimizer_state",
    "optimizer_step",
    "scheduled_lr",
]

Tensor = torch.Tensor
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "step", "cosine")


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


def optimizer_state(kind: str, params: Sequence[Tensor]) -> OptimState:
    """Fresh state of optimizer ``kind`` for ``params``: Adam and AdamW keep second moments."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer.name={kind!r}: allowed " + ", ".join(OPTIMIZERS))
    return OptimState.zeros(params, second=kind in ("adam", "adamw"))


@torch.no_grad()
def optimizer_step(
    kind: str,
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    state: OptimState,
    hp: Hyper,
    lr: Tensor,
    weight_mask: Sequence[bool],
) -> None:
    """One step of optimizer ``kind`` for every member: ``params`` and ``state`` are updated in
    place from ``grads`` with per-member learning rates ``lr`` ``(K,)`` and the settings of
    ``hp``; ``hp.decay`` applies to the weight tensors (``weight_mask``), ``hp.decay_other`` to
    the other parameters."""
    state.steps += 1.0
    decays, decaying = _decays(hp, weight_mask)
    if kind == "sgd":
        _sgd(params, grads, state, hp, lr, decays, decaying)
    elif kind in ("adam", "adamw"):
        _adam(params, grads, state, hp, lr, decays, decaying, decoupled=kind == "adamw")
    else:
        raise ValueError(f"optimizer.name={kind!r}: allowed " + ", ".join(OPTIMIZERS))


def _decays(hp: Hyper, weight_mask: Sequence[bool]) -> tuple[list[Tensor], list[bool]]:
    """Each parameter's decay row and whether any member decays it, once while ``hp``'s rows
    last (not every step)."""
    key = ("decays", tuple(weight_mask))
    if key not in hp.scratch:
        flags = hp.flags
        hp.scratch[key] = (
            [hp.decay if w else hp.decay_other for w in weight_mask],
            [flags.decays if w else flags.decays_other for w in weight_mask],
        )
    return hp.scratch[key]


def _sgd(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    state: OptimState,
    hp: Hyper,
    lr: Tensor,
    decays: list[Tensor],
    decaying: list[bool],
) -> None:
    flags = hp.flags
    for p, g, buf, wd, decay in zip(params, grads, state.first, decays, decaying, strict=True):
        if decay:
            g = g.addcmul(per_member(wd, p), p)
        d = g
        if flags.any_momentum:
            mom = per_member(hp.momentum, p)
            buf.mul_(mom).add_(g)
            d = buf
            if flags.any_nesterov:
                d = torch.where(per_member(hp.nesterov, p), g + mom * buf, buf)
        p.addcmul_(per_member(lr, p), d, value=-1.0)


def _adam(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    state: OptimState,
    hp: Hyper,
    lr: Tensor,
    decays: list[Tensor],
    decaying: list[bool],
    *,
    decoupled: bool,
) -> None:
    t = state.steps
    step_size = lr / (1 - hp.beta1**t)
    correction2_sqrt = (1 - hp.beta2**t).sqrt()
    for p, g, m, v, wd, decay in zip(
        params, grads, state.first, state.second, decays, decaying, strict=True
    ):
        if decay:
            if decoupled:
                p.mul_(1 - per_member(lr * wd, p))
            else:
                g = g + per_member(wd, p) * p
        m.lerp_(g, per_member(1 - hp.beta1, p))
        v.mul_(per_member(hp.beta2, p)).addcmul_(g, g * per_member(1 - hp.beta2, p))
        denom = (v.sqrt() / per_member(correction2_sqrt, p)).add_(per_member(hp.eps, p))
        p.sub_(per_member(step_size, p) * m / denom)
