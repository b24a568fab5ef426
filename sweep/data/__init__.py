"""Datasets as device-resident tensors: digits, noise, MNIST, Fashion-MNIST, CIFAR-10 and your
own files (``data=files``: a .npz or .csv file or an image folder).

:func:`load_splits` turns a :class:`~sweep.config.DataConfig` into :class:`Splits` (flattened
float32 features and int64 labels for train, validation and test) on a device, ready to batch by
index with no DataLoader. Results are cached per process; :func:`clear_cache` empties the cache.

Example:
    >>> import torch
    >>> from sweep.config import DataConfig
    >>> s = load_splits(DataConfig(name="noise", n_samples=100), device=torch.device("cpu"))
    >>> s.x_train.shape[0] + s.x_val.shape[0] + s.x_test.shape[0]
    100
"""

from __future__ import annotations

from ._cache import clear_cache
from ._load import load_splits
from ._types import DataError, Splits, StackedSplits

__all__ = ["DataError", "Splits", "StackedSplits", "clear_cache", "load_splits"]
