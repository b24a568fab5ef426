"""Small ``nn.Module`` classes for ``model=custom`` tests, importable as ``tests.custom_nets``."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

__all__ = ["BatchNormNet", "ItemNet", "NoDropoutNet", "RaisingNet", "TinyNet", "WrongShapeNet"]


class TinyNet(nn.Module):
    """Linear → ReLU → Dropout(p) → Linear; records the arguments it was built with."""

    built_with: ClassVar[list[dict[str, object]]] = []

    def __init__(
        self, n_features: int, n_classes: int, dropout: float = 0.0, width: int = 32
    ) -> None:
        super().__init__()
        TinyNet.built_with.append(
            {"n_features": n_features, "n_classes": n_classes, "dropout": dropout, "width": width}
        )
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n_features, width),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(width, n_classes),
        )
        self.scale = nn.Parameter(torch.ones(n_classes))  # rank 1: never penalized

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) * self.scale


class BatchNormNet(nn.Module):
    """Takes images ``(B, C, H, W)``: a convolution, batch norm, pooling and a linear head."""

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, p: float = 0.0) -> None:
        super().__init__()
        c = input_shape[0]
        self.net = nn.Sequential(
            nn.Conv2d(c, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Dropout(p),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(16, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ItemNet(TinyNet):
    """Data-dependent Python control flow: vmap cannot batch it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out if float(out.mean().item()) < 1e9 else -out


class NoDropoutNet(nn.Module):
    def __init__(self, n_features: int, n_classes: int) -> None:
        super().__init__()
        self.head = nn.Linear(n_features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(1))


class WrongShapeNet(NoDropoutNet):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(1))[:, :3]


class RaisingNet(nn.Module):
    def __init__(self, n_classes: int) -> None:
        super().__init__()
        raise RuntimeError(f"no network for {n_classes} classes today")
