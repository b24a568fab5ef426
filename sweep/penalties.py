"""Loss penalties: L1, L2 and elastic net, as one function of tensors and strengths."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["Penalty", "add_penalty_grad", "penalty_value"]


@dataclass(frozen=True)
class Penalty:
    """Strengths of the penalty ``l1·Σ|w| + l2·Σw²`` (elastic net folded into both).

    ``half_mean=True`` divides the strengths by 2m, m = batch size (004's λ/(2m)·Σ‖W‖²).
    """

    l1: float = 0.0
    l2: float = 0.0
    half_mean: bool = False

    @classmethod
    def combine(
        cls, *, l1: float, l2: float, elastic: float, l1_ratio: float, half_mean: bool
    ) -> Penalty:
        """Fold an elastic-net term ``elastic·(ρΣ|w| + (1−ρ)Σw²)`` into plain L1 and L2 strengths."""
        return cls(
            l1=l1 + elastic * l1_ratio,
            l2=l2 + elastic * (1.0 - l1_ratio),
            half_mean=half_mean,
        )

    @property
    def active(self) -> bool:
        return self.l1 > 0.0 or self.l2 > 0.0


def penalty_value(
    params: Sequence[torch.Tensor], penalty: Penalty, batch_size: int
) -> torch.Tensor:
    """The penalty over ``params`` as a scalar tensor that autograd differentiates.

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


@torch.no_grad()
def add_penalty_grad(params: Sequence[torch.Tensor], penalty: Penalty, batch_size: int) -> None:
    """Add the penalty's gradient to ``p.grad`` in place: ``l1·sign(w) + 2·l2·w`` (scaled).

    The same gradient autograd would give for :func:`penalty_value` (sign(0) = 0 like abs's
    subgradient), without building the penalty into the graph: a few fused ``foreach`` ops per
    step instead of several small ops and their backward per parameter.

    Example:
        >>> w = torch.tensor([[1.0, -2.0]]); w.grad = torch.zeros_like(w)
        >>> add_penalty_grad([w], Penalty(l1=0.1, l2=0.01), batch_size=1)
        >>> [round(g, 6) for g in w.grad.flatten().tolist()]
        [0.12, -0.14]
    """
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad or not penalty.active:
        return
    scale = 1.0 / (2.0 * batch_size) if penalty.half_mean else 1.0
    grads: list[torch.Tensor] = [p.grad for p in with_grad if p.grad is not None]
    if penalty.l1 > 0.0:
        torch._foreach_add_(grads, torch._foreach_sign(with_grad), alpha=penalty.l1 * scale)
    if penalty.l2 > 0.0:
        torch._foreach_add_(grads, with_grad, alpha=2.0 * penalty.l2 * scale)
