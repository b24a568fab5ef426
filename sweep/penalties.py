"""Loss penalties (L1, L2, elastic net) and gradient clipping, per member of a population.

The penalty ``l1·Σ|w| + l2·Σw²`` never enters the autograd graph: its gradient
``l1·sign(w) + 2·l2·w`` is added to the data loss's gradient in place (sign(0) = 0, like the
subgradient autograd gives for ``abs``). Each member has its own strengths, as ``(K,)`` tensors,
separately for weight tensors and for the other parameters (biases, batch-norm scales), which
are penalized only with ``apply_to=all`` (the strengths are rows of :class:`sweep.stack.Hyper`). ``half_mean`` members divide by 2m, m = the step's
batch size (004's λ/(2m)·Σ‖W‖²).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .stack import Hyper, Penalty, per_member

__all__ = ["Penalty", "add_penalty_grads", "clip_grads", "penalty_value"]

Tensor = torch.Tensor


def penalty_value(
    params: Sequence[torch.Tensor], penalty: Penalty, batch_size: int
) -> torch.Tensor:
    """The penalty over ``params`` as a scalar tensor that autograd differentiates (the reference
    the in-place gradients are tested against).

    Example:
        >>> w = torch.tensor([[1.0, -2.0]])
        >>> round(float(penalty_value([w], Penalty(l1=0.1, l2=0.01), batch_size=1)), 6)
        0.35
    """
    scale = 1.0 / (2.0 * batch_size) if penalty.half_mean else 1.0
    total = params[0].new_zeros(()) if params else torch.zeros(())
    for p in params:
        if penalty.l1 > 0.0:
            total = total + (penalty.l1 * scale) * p.abs().sum()
        if penalty.l2 > 0.0:
            total = total + (penalty.l2 * scale) * p.square().sum()
    return total


def _coefficients(hp: Hyper, batch: int, dtype: torch.dtype) -> tuple[Tensor, ...]:
    """``(l1, 2·l2, l1 of other params, 2·l2 of other params)`` per member for a step on
    ``batch`` examples, in ``dtype``: computed once per batch size while ``hp``'s rows last (an
    epoch has at most two sizes), not once per step."""
    key = ("penalty", batch, dtype)
    found = hp.scratch.get(key)
    if found is None:
        scale = torch.where(hp.half_mean, 1.0 / (2.0 * batch), 1.0)
        l1, l2 = hp.l1 * scale, 2.0 * hp.l2 * scale
        other = hp.penalize_all
        found = torch.stack([l1, l2, l1 * other, l2 * other]).to(dtype)
        hp.scratch[key] = found
    return tuple(found)


@torch.no_grad()
def add_penalty_grads(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    hp: Hyper,
    weight_mask: Sequence[bool],
    batch: int,
) -> None:
    """Add each member's penalty gradient to ``grads`` in place, for a step on ``batch``
    examples: ``l1·sign(w) + 2·l2·w`` on weight tensors (and on the other parameters of members
    that penalize all), divided by 2·batch for ``half_mean`` members."""
    flags = hp.flags
    if not flags.penalized:
        return
    l1, l2, l1_other, l2_other = _coefficients(hp, batch, params[0].dtype)
    for i, (p, g, is_weight) in enumerate(zip(params, grads, weight_mask, strict=True)):
        if not is_weight and not flags.any_other:
            continue
        a1, a2 = (l1, l2) if is_weight else (l1_other, l2_other)
        if flags.any_l1:
            sign = hp.scratch.get(("sign", i))
            if sign is None or sign.shape != p.shape:
                sign = hp.scratch[("sign", i)] = torch.empty_like(p)
            g.addcmul_(per_member(a1, p), torch.sign(p, out=sign))
        if flags.any_l2:
            g.addcmul_(per_member(a2, p), p)


@torch.no_grad()
def clip_grads(grads: Sequence[Tensor], hp: Hyper) -> Tensor:
    """Each member's total gradient norm ``(K,)`` before clipping; ``grads`` are clipped in
    place to each member's ``hp.clip`` (``inf``: none), scaling a member's whole gradient by
    ``min(1, clip / (norm + 1e-6))`` as ``torch.nn.utils.clip_grad_norm_`` does."""
    # vector_norm reduces without a temporary the size of the gradient
    squares = [torch.linalg.vector_norm(g.reshape(g.shape[0], -1), dim=1).square() for g in grads]
    norms = torch.stack(squares).sum(dim=0).sqrt()
    if hp.flags.clips:
        coef = (hp.clip / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(per_member(coef, g))
    return norms
