"""Weight statistics the notes compare by eye: L1/L2 norms and the fraction of near-zero weights."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["ABS_SPARSITY_THRESHOLD", "REL_SPARSITY_THRESHOLD", "weight_stats"]

REL_SPARSITY_THRESHOLD = 0.0005  # 000's notes: |w| <= max|w| * 0.0005 counts as zero
ABS_SPARSITY_THRESHOLD = 1e-3


@torch.no_grad()
def weight_stats(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """[Σ|w|, sqrt(Σw²), relative sparsity, absolute sparsity] over ``weights``, as one tensor.

    Example:
        >>> weight_stats([torch.tensor([[0.0, 3.0], [4.0, 0.0]])]).tolist()
        [7.0, 5.0, 0.5, 0.5]
    """
    if not weights:
        return torch.zeros(4)
    flat = torch.cat([w.detach().reshape(-1).float() for w in weights]).abs()
    limit = flat.max() * REL_SPARSITY_THRESHOLD
    return torch.stack(
        [
            flat.sum(),
            flat.square().sum().sqrt(),
            (flat <= limit).float().mean(),
            (flat <= ABS_SPARSITY_THRESHOLD).float().mean(),
        ]
    )
