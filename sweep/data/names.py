"""The dataset names ``data.name`` accepts, by where the data comes from: the only list of them."""

from __future__ import annotations

__all__ = ["BUNDLED", "DATASETS", "TORCHVISION"]

BUNDLED = ("digits", "noise")
"""Need no files: scikit-learn's bundled digits and 000's synthetic noise."""
TORCHVISION = ("mnist", "fashion_mnist", "cifar10")
"""Read from ``data.root`` through torchvision's own dataset classes."""
DATASETS = BUNDLED + TORCHVISION
