"""Weight statistics the notes compare by eye: L1/L2 norms and the fraction of near-zero weights,
per member of a population."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["ABS_SPARSITY_THRESHOLD", "REL_SPARSITY_THRESHOLD", "weight_stats"]

REL_SPARSITY_THRESHOLD = 0.0005  # 000's notes: |w| <= max|w| * 0.0005 counts as zero
ABS_SPARSITY_THRESHOLD = 1e-3


@torch.no_grad()
def weight_stats(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """``(K, 4)``: per member ``[Σ|w|, sqrt(Σw²), relative sparsity, absolute sparsity]`` over
    the stacked weight tensors ``weights`` (each ``(K, ...)``).

    Relative sparsity counts ``|w| ≤ 0.0005·max|w|`` (000's notes); a member whose weights are all
    zero counts as fully sparse. Absolute sparsity counts ``|w| ≤ 1e-3``.

    Example:
        >>> weight_stats([torch.tensor([[[0.0, 3.0], [4.0, 0.0]]])]).tolist()
        [[7.0, 5.0, 0.5, 0.5]]
    """
    if not weights:
        raise ValueError("no weight tensor to measure")
    k = weights[0].shape[0]
    flat = torch.cat([w.detach().reshape(k, -1).float() for w in weights], dim=1).abs()
    limit = flat.amax(dim=1, keepdim=True) * REL_SPARSITY_THRESHOLD
    return torch.stack(
        [
            flat.sum(dim=1),
            flat.square().sum(dim=1).sqrt(),
            (flat <= limit).float().mean(dim=1),
            (flat <= ABS_SPARSITY_THRESHOLD).float().mean(dim=1),
        ],
        dim=1,
    )
