"""The dataset names ``data.name`` accepts, by where the data comes from: the only list of them."""

from __future__ import annotations

__all__ = ["BUNDLED", "DATASETS", "FILES", "TORCHVISION"]

BUNDLED = ("digits", "noise")
"""Need no files: scikit-learn's bundled digits and 000's synthetic noise."""
TORCHVISION = ("mnist", "fashion_mnist", "cifar10")
"""Read from ``data.root`` through torchvision's own dataset classes."""
FILES = ("files",)
"""The user's own data at ``data.path``: a .npz or .csv file, or an image folder."""
DATASETS = BUNDLED + TORCHVISION + FILES
