"""Datasets that need no files: scikit-learn's bundled digits and the synthetic noise set."""

from __future__ import annotations

import numpy as np
import torch

from ._rng import NOISE_STREAM, rng_for
from ._types import RawData

__all__ = ["load_digits", "make_noise"]


def load_digits() -> RawData:
    """Read scikit-learn's bundled 8x8 digits (1797 images, values 0..16, 10 classes).

    Returns:
        Raw float32 features (scale 16) and int64 labels; the test split is carved later.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    x = torch.from_numpy(np.ascontiguousarray(bunch.data, dtype=np.float32))
    y = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    return RawData(
        x=x, y=y, x_test=None, y_test=None, scale=16.0, n_classes=10, input_shape=(1, 8, 8)
    )


def make_noise(*, n_samples: int, n_features: int, n_classes: int, seed: int) -> RawData:
    """Make the notes' pure-noise set: ``X ~ N(0, 1)``, labels uniform over the classes.

    There is nothing to learn, so any accuracy above chance on held-out data is luck, and the
    train accuracy measures memorization alone.

    Args:
        n_samples: Number of examples.
        n_features: Features per example.
        n_classes: Number of classes.
        seed: Seed of the generator (``data.split_seed``); the same seed gives the same data.

    Returns:
        Raw float32 features (scale 1) and int64 labels.

    Example:
        >>> raw = make_noise(n_samples=5, n_features=3, n_classes=2, seed=0)
        >>> tuple(raw.x.shape), raw.input_shape
        ((5, 3), (3,))
    """
    rng = rng_for(NOISE_STREAM, seed)
    x = rng.standard_normal((n_samples, n_features), dtype=np.float32)
    y = rng.integers(0, n_classes, size=n_samples, dtype=np.int64)
    return RawData(
        x=torch.from_numpy(x),
        y=torch.from_numpy(y),
        x_test=None,
        y_test=None,
        scale=1.0,
        n_classes=n_classes,
        input_shape=(n_features,),
    )
