"""Optimizers and learning-rate schedules, built from the model they serve, in one place.

Building the optimizer from the model it serves is what makes 003's bug (a "regularized" run
stepping the previous model's optimizer) impossible: nothing else creates optimizers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["build_optimizer", "build_scheduler", "param_groups"]


def param_groups(
    model: nn.Module, weight_decay: float, *, weights_only: bool
) -> list[dict[str, Any]]:
    """Parameter groups with ``weight_decay`` on weight matrices only, or on every parameter."""
    if not weights_only or weight_decay == 0.0:
        return [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups: list[dict[str, Any]] = [{"params": decay, "weight_decay": weight_decay}]
    if rest:
        groups.append({"params": rest, "weight_decay": 0.0})
    return groups


def build_optimizer(
    model: nn.Module,
    *,
    name: str,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    nesterov: bool = False,
    betas: Sequence[float] = (0.9, 0.999),
    eps: float = 1e-8,
    decay_weights_only: bool = True,
) -> torch.optim.Optimizer:
    """SGD (coupled decay: ``g + wd·w``), Adam (coupled, as an L2 term in the gradient) or AdamW
    (decoupled: ``w ← w − lr·wd·w`` beside the adaptive step).

    Example:
        >>> m = nn.Linear(3, 2)
        >>> build_optimizer(m, name="adamw", lr=1e-3, weight_decay=0.01).defaults["weight_decay"]
        0.01
    """
    groups = param_groups(model, weight_decay, weights_only=decay_weights_only)
    beta_pair = (float(betas[0]), float(betas[1]))
    if name == "sgd":
        return torch.optim.SGD(
            groups, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
        )
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=beta_pair, eps=eps, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=beta_pair, eps=eps, weight_decay=weight_decay)
    raise ValueError(f"optimizer.name={name!r}: allowed sgd, adam, adamw")


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    name: str,
    epochs: int,
    step_size: int = 10,
    gamma: float = 0.1,
    t_max: int | None = None,
    eta_min: float = 0.0,
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-epoch schedule: ``none``, ``step`` (StepLR) or ``cosine`` (CosineAnnealingLR)."""
    if name == "none":
        return None
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=t_max or epochs, eta_min=eta_min
        )
    raise ValueError(f"scheduler.name={name!r}: allowed none, step, cosine")
