"""Loss penalties (L1, L2, elastic net) and gradient clipping, per member of a population.

The penalty ``l1·Σ|w| + l2·Σw²`` never enters the autograd graph: its gradient
``l1·sign(w) + 2·l2·w`` is added to the data loss's gradient in place (sign(0) = 0, like the
subgradient autograd gives for ``abs``). Each member has its own strengths, as ``(K,)`` tensors,
separately for weight tensors and for the other parameters (biases, batch-norm scales), which
are penalized only with ``apply_to=all``. ``half_mean`` members divide by 2m, m = the step's
batch size (004's λ/(2m)·Σ‖W‖²).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["ClipNorms", "Penalty", "PenaltyStack", "penalty_value"]

Tensor = torch.Tensor


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


def _per_member(v: Tensor, like: Tensor) -> Tensor:
    return v.view((-1,) + (1,) * (like.dim() - 1))


class PenaltyStack:
    """The penalties of K members, applied to stacked gradients.

    Args:
        penalties: One :class:`Penalty` per member.
        penalize_all: Per member, whether biases and norm scales are penalized too.
        weight_mask: Which stacked parameters are weight tensors.
        device: Where the strength tensors live.
    """

    def __init__(
        self,
        penalties: Sequence[Penalty],
        penalize_all: Sequence[bool],
        weight_mask: Sequence[bool],
        device: torch.device,
    ) -> None:
        def vec(values: Sequence[float]) -> Tensor:
            return torch.tensor(values, dtype=torch.float64, device=device)

        self.weight_mask = list(weight_mask)
        self.l1 = vec([p.l1 for p in penalties])
        self.l2 = vec([p.l2 for p in penalties])
        self.all = torch.tensor(list(penalize_all), device=device)
        self.half = torch.tensor([p.half_mean for p in penalties], device=device)
        self._refresh()

    def _refresh(self) -> None:
        self.any_l1 = bool((self.l1 > 0).any())
        self.any_l2 = bool((self.l2 > 0).any())
        self.any_other = bool(self.all.any())
        self._coefficients: dict[int, tuple[Tensor, Tensor, Tensor, Tensor]] = {}
        self._signs: dict[int, Tensor] = {}  # reused: a fresh large temporary costs page faults

    def _for_batch(self, batch: int, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(l1, l2, l1 of other params, l2 of other params)`` per member for a step on
        ``batch`` examples, in ``dtype``: computed once per batch size (an epoch has at most
        two), not once per step."""
        found = self._coefficients.get(batch)
        if found is None:
            scale = torch.where(self.half, 1.0 / (2.0 * batch), 1.0)
            l1, l2 = self.l1 * scale, 2.0 * self.l2 * scale
            found = (l1.to(dtype), l2.to(dtype), (l1 * self.all).to(dtype),
                     (l2 * self.all).to(dtype))  # fmt: skip
            self._coefficients[batch] = found
        return found

    def keep(self, rows: Tensor) -> None:
        """Keep only the members at ``rows``."""
        self.l1, self.l2, self.all, self.half = (
            self.l1[rows],
            self.l2[rows],
            self.all[rows],
            self.half[rows],
        )
        self._refresh()

    def extend(self, other: PenaltyStack) -> None:
        """Append the members of ``other``."""
        self.l1, self.l2 = torch.cat([self.l1, other.l1]), torch.cat([self.l2, other.l2])
        self.all, self.half = torch.cat([self.all, other.all]), torch.cat([self.half, other.half])
        self._refresh()

    @torch.no_grad()
    def add_grads(self, params: Sequence[Tensor], grads: Sequence[Tensor], batch: int) -> None:
        """Add each member's penalty gradient to ``grads`` in place, for a step on ``batch``
        examples: ``(l1·sign(w) + 2·l2·w)``, divided by 2·batch for ``half_mean`` members."""
        if not (self.any_l1 or self.any_l2):
            return
        l1, l2, l1_other, l2_other = self._for_batch(batch, params[0].dtype)
        for i, (p, g, is_weight) in enumerate(zip(params, grads, self.weight_mask, strict=True)):
            if not is_weight and not self.any_other:
                continue
            a1, a2 = (l1, l2) if is_weight else (l1_other, l2_other)
            if self.any_l1:
                sign = self._signs.get(i)
                if sign is None or sign.shape != p.shape:
                    sign = self._signs[i] = torch.empty_like(p)
                g.addcmul_(_per_member(a1, p), torch.sign(p, out=sign))
            if self.any_l2:
                g.addcmul_(_per_member(a2, p), p)


class ClipNorms:
    """Per-member total gradient norm (before clipping) and clipping to a per-member maximum.

    ``limits`` holds each member's ``clip`` (``inf`` for none). Clipping scales a member's whole
    gradient by ``min(1, clip / (norm + 1e-6))``, as ``torch.nn.utils.clip_grad_norm_`` does.
    """

    def __init__(self, limits: Sequence[float | None], device: torch.device) -> None:
        values = [float("inf") if c is None else float(c) for c in limits]
        self.limits = torch.tensor(values, dtype=torch.float32, device=device)
        self.active = bool(torch.isfinite(self.limits).any())

    def keep(self, rows: Tensor) -> None:
        """Keep only the members at ``rows``."""
        self.limits = self.limits[rows]
        self.active = bool(torch.isfinite(self.limits).any())

    def extend(self, other: ClipNorms) -> None:
        """Append the members of ``other``."""
        self.limits = torch.cat([self.limits, other.limits])
        self.active = bool(torch.isfinite(self.limits).any())

    @torch.no_grad()
    def __call__(self, grads: Sequence[Tensor]) -> Tensor:
        """Return each member's total gradient norm ``(K,)`` and clip ``grads`` in place."""
        # vector_norm reduces without a temporary the size of the gradient
        squares = [torch.linalg.vector_norm(g.reshape(g.shape[0], -1), dim=1).square()
                   for g in grads]  # fmt: skip
        norms = torch.stack(squares).sum(dim=0).sqrt()
        if self.active:
            coef = (self.limits / (norms + 1e-6)).clamp(max=1.0)
            for g in grads:
                g.mul_(_per_member(coef, g))
        return norms
