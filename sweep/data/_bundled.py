"""Datasets that need no files: scikit-learn's bundled digits and the synthetic noise set."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from ._rng import NOISE_STREAM, rng_for
from ._types import RawData

__all__ = ["load_digits", "make_noise"]


def load_digits() -> RawData:
    """Read scikit-learn's bundled 8x8 digits (1797 images, values 0..16, 10 classes).

    The file is read where scikit-learn keeps it (:func:`_digits_file`), as its
    ``load_digits`` reads it, without importing ``sklearn.datasets``: that import took 1.1 s of
    every sweep's, job's and worker's start, against 20 ms for the file. A scikit-learn that
    keeps it elsewhere is asked through its own loader.

    Returns:
        Raw float32 features (scale 16) and int64 labels; the test split is carved later.
    """
    path = _digits_file()
    if path is not None:
        table = np.loadtxt(path, delimiter=",")
        data, target = table[:, :-1], table[:, -1]
    else:
        from sklearn.datasets import load_digits as _sk_load_digits

        bunch = _sk_load_digits()
        data, target = bunch.data, bunch.target
    x = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    y = torch.from_numpy(np.asarray(target, dtype=np.int64))
    return RawData(
        x=x, y=y, x_test=None, y_test=None, scale=16.0, n_classes=10, input_shape=(1, 8, 8)
    )


def _digits_file(package: str = "sklearn") -> Path | None:
    """``datasets/data/digits.csv.gz`` of the installed ``package`` (found, not imported), or
    None where it is not: 1797 rows of 64 pixel values and the label, comma-separated."""
    spec = importlib.util.find_spec(package)
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


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
