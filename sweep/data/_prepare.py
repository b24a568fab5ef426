"""From raw arrays to train/val/test tensors: split, subsample, corrupt labels, scale, normalize.

Every step is a vectorized tensor operation; all randomness comes from ``data.split_seed``.
"""

from __future__ import annotations

import numpy as np
import torch

from ._rng import LABEL_NOISE_STREAM, SPLIT_STREAM, VAL_STREAM, rng_for
from ._types import DataError, RawData

__all__ = ["STD_CONSTANT", "corrupt_labels", "normalize", "prepare", "split_indices"]

STD_CONSTANT = 1e-6
"""A feature whose training-split std is below this is constant there: ``standard``
normalization divides it by 1 instead (as scikit-learn's StandardScaler does), so it stays
finite and bounded in every split instead of being multiplied by ~1e6 in validation and test."""


def split_indices(
    n: int, *, val_fraction: float, test_fraction: float, split_seed: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut ``range(n)`` into train, val and test indices.

    The test split is fixed by ``split_seed`` alone, so no run's seed ever changes what is
    reported on it; the validation split is drawn from the rest by ``seed`` (the run's
    ``trainer.seed``), so repeating a configuration over seeds also repeats it over validation
    splits. Sizes are ``round(fraction * n)`` for val and test; train gets the rest, in an order
    shuffled by ``seed``, so its first ``k`` examples are a random subset for every ``k``.

    Args:
        n: Number of examples.
        val_fraction: Fraction for validation.
        test_fraction: Fraction for test (0 gives an empty test split).
        split_seed: ``data.split_seed``: fixes the test split.
        seed: ``trainer.seed``: draws validation from the non-test examples.

    Returns:
        ``(train, val, test)`` int64 index tensors, disjoint and together covering ``range(n)``.

    Example:
        >>> tr, va, te = split_indices(10, val_fraction=0.2, test_fraction=0.3, split_seed=0, seed=1)
        >>> len(tr), len(va), len(te)
        (5, 2, 3)
    """
    n_val = round(val_fraction * n)
    n_test = round(test_fraction * n)
    fixed = torch.from_numpy(rng_for(SPLIT_STREAM, split_seed).permutation(n))
    test, rest = fixed[:n_test], fixed[n_test:]
    rest = rest[torch.from_numpy(rng_for(VAL_STREAM, split_seed, seed).permutation(len(rest)))]
    return rest[n_val:], rest[:n_val], test


def corrupt_labels(
    y: torch.Tensor, *, p: float, n_classes: int, seeds: tuple[int, ...]
) -> torch.Tensor:
    """Give ``round(p * len(y))`` seeded examples a random label different from their own.

    Args:
        y: int64 labels (not modified).
        p: Fraction of examples to corrupt.
        n_classes: Number of classes; the new label is uniform over the other ``n_classes - 1``.
        seeds: ``(data.split_seed, trainer.seed)``.

    Returns:
        A new label tensor.

    Example:
        >>> y = torch.zeros(10, dtype=torch.int64)
        >>> int((corrupt_labels(y, p=0.3, n_classes=4, seeds=(0, 0)) != y).sum())
        3
    """
    y = y.clone()
    n_flip = round(p * y.numel())
    if n_flip == 0:
        return y
    rng = rng_for(LABEL_NOISE_STREAM, *seeds)
    idx = torch.from_numpy(rng.choice(y.numel(), size=n_flip, replace=False))
    shift = torch.from_numpy(rng.integers(1, n_classes, size=n_flip, dtype=np.int64))
    y[idx] = (y[idx] + shift) % n_classes
    return y


def normalize(mode: str, x_train: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Normalize features in place; statistics, where any, come from ``x_train`` alone.

    Args:
        mode: ``none``; ``standard`` (per-feature mean and std of ``x_train``; a feature that is
            constant in ``x_train`` is only centred, see :data:`STD_CONSTANT`); or
            ``symmetric`` (``(x - 0.5) / 0.5``, [0, 1] -> [-1, 1]).
        x_train: Training features ``(N, D)``, float.
        *others: Validation/test features, transformed with the training statistics.

    Returns:
        ``(x_train, *others)``, the same tensor objects, modified in place.

    Raises:
        DataError: ``mode`` is not one of the three.
    """
    tensors = (x_train, *others)
    if mode == "none":
        return tensors
    if mode == "symmetric":
        shift: torch.Tensor | float = 0.5
        scale: torch.Tensor | float = 0.5
    elif mode == "standard":
        shift = x_train.mean(dim=0)
        std = x_train.std(dim=0, correction=0)
        scale = torch.where(std < STD_CONSTANT, torch.ones_like(std), std)
    else:
        raise DataError(f"data.normalize={mode!r}: allowed none, standard, symmetric")
    for t in tensors:
        t.sub_(shift).div_(scale)
    return tensors


def _features(raw: RawData, x: torch.Tensor) -> torch.Tensor:
    # Out of place: ``x`` may be the cached raw tensor itself.
    return x.to(torch.float32, copy=True).div_(raw.scale)


def _subsample(train: torch.Tensor, n_train: int | None) -> torch.Tensor:
    if n_train is None:
        return train
    if n_train > train.numel():
        raise DataError(
            f"data.n_train={n_train}: only {train.numel()} training examples are available after "
            f"the validation/test split; set data.n_train to at most {train.numel()} or null."
        )
    return train[:n_train]


def prepare(
    raw: RawData,
    *,
    name: str,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
    seed: int,
    n_train: int | None,
    label_noise: float,
    normalization: str,
) -> tuple[torch.Tensor, ...]:
    """Turn raw data into ``(x_train, y_train, x_val, y_val, x_test, y_test)`` CPU tensors.

    A split the source defines (``raw.x_test``, ``raw.x_val``) is used as given and its fraction
    is ignored; a split it does not define is carved from ``raw.x``: test by ``split_seed``,
    validation by ``seed`` (see :func:`split_indices`). Then ``n_train`` keeps the first
    examples of the shuffled training split, ``label_noise`` corrupts training labels only, and
    ``normalization`` is applied with training statistics.

    Raises:
        DataError: A split would be empty, or ``n_train`` exceeds the training examples.
    """
    n = raw.y.numel()
    carve_test = raw.x_test is None or raw.y_test is None
    carve_val = raw.x_val is None or raw.y_val is None
    train, val, test = split_indices(
        n,
        val_fraction=val_fraction if carve_val else 0.0,
        test_fraction=test_fraction if carve_test else 0.0,
        split_seed=split_seed,
        seed=seed,
    )
    if carve_test:
        x_test, y_test = _features(raw, raw.x[test]), raw.y[test]
    else:
        assert raw.x_test is not None and raw.y_test is not None
        x_test, y_test = _features(raw, raw.x_test), raw.y_test.clone()
    if carve_val:
        x_val, y_val = _features(raw, raw.x[val]), raw.y[val]
    else:
        assert raw.x_val is not None and raw.y_val is not None
        x_val, y_val = _features(raw, raw.x_val), raw.y_val.clone()
    if train.numel() == 0 or y_val.numel() == 0:
        raise DataError(
            f"{name}: {n} examples with data.val_fraction={val_fraction} and "
            f"data.test_fraction={test_fraction} leave {train.numel()} for training and "
            f"{y_val.numel()} for validation; both must be at least 1."
        )
    train = _subsample(train, n_train)
    y_train = corrupt_labels(
        raw.y[train], p=label_noise, n_classes=raw.n_classes, seeds=(split_seed, seed)
    )
    x_train, x_val, x_test = normalize(normalization, _features(raw, raw.x[train]), x_val, x_test)
    return x_train, y_train, x_val, y_val, x_test, y_test
