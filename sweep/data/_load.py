"""``load_splits``: a :class:`DataConfig` in, device-resident :class:`Splits` out."""

from __future__ import annotations

import os
from collections.abc import Hashable
from typing import TYPE_CHECKING

import torch

from ._bundled import load_digits, make_noise
from ._cache import prepared_cache, raw_cache
from ._files import file_signature, load_file
from ._prepare import prepare
from ._types import DataError, RawData, Splits
from .names import DATASETS, FILES, TORCHVISION

if TYPE_CHECKING:
    from ..config import DataConfig

__all__ = ["load_splits"]


def _root(cfg: DataConfig) -> str:
    return os.path.abspath(os.path.expanduser(cfg.root))


def _path(cfg: DataConfig) -> str:
    if not cfg.path:
        raise DataError(
            "data.path=None: allowed a .npz or .csv file or an image folder "
            "(data=files reads the file data.path names)"
        )
    return os.path.abspath(os.path.expanduser(cfg.path))


def _raw_key(cfg: DataConfig) -> tuple[Hashable, ...]:
    """What identifies the source: the files (and how strictly they are checked), the user's
    file as it is now (path, size, modification time) or the generator."""
    if cfg.name in FILES:
        return ("files", *file_signature(_path(cfg)), cfg.label)
    if cfg.name == "noise":
        return ("noise", cfg.n_samples, cfg.n_features, cfg.n_classes, cfg.split_seed)
    if cfg.name in TORCHVISION:
        checked = cfg.verify_checksums if cfg.name == "cifar10" else None
        return (cfg.name, _root(cfg), checked)
    return (cfg.name,)


def _prepared_key(cfg: DataConfig, seed: int) -> tuple[Hashable, ...]:
    """Every setting that changes the prepared tensors (``download`` does not)."""
    test_fraction = None if cfg.name in TORCHVISION else cfg.test_fraction
    return (
        *_raw_key(cfg),
        cfg.val_fraction,
        test_fraction,
        cfg.split_seed,
        seed,
        cfg.n_train,
        cfg.label_noise,
        cfg.normalize,
    )


def _read_raw(cfg: DataConfig) -> RawData:
    if cfg.name == "digits":
        return load_digits()
    if cfg.name == "noise":
        return make_noise(
            n_samples=cfg.n_samples,
            n_features=cfg.n_features,
            n_classes=cfg.n_classes,
            seed=cfg.split_seed,
        )
    if cfg.name in FILES:
        return load_file(_path(cfg), label=cfg.label)
    from ._torchvision import load_torchvision  # torchvision is imported only when needed

    return load_torchvision(
        cfg.name, root=_root(cfg), download=cfg.download, verify_checksums=cfg.verify_checksums
    )


def _prepare_cpu(cfg: DataConfig, seed: int) -> Splits:
    raw = raw_cache.get_or_make(_raw_key(cfg), lambda: _read_raw(cfg))
    x_train, y_train, x_val, y_val, x_test, y_test = prepare(
        raw,
        name=cfg.name,
        val_fraction=cfg.val_fraction,
        test_fraction=cfg.test_fraction,
        split_seed=cfg.split_seed,
        seed=seed,
        n_train=cfg.n_train,
        label_noise=cfg.label_noise,
        normalization=cfg.normalize,
    )
    return Splits(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        n_classes=raw.n_classes,
        input_shape=raw.input_shape,
        name=cfg.name,
    )


def load_splits(cfg: DataConfig, *, seed: int = 0, device: torch.device) -> Splits:
    """Load, split and prepare the dataset ``cfg`` describes for a run seeded ``seed``, and put
    it on ``device``.

    ``digits`` and ``noise`` are split into ``val_fraction`` and ``test_fraction``: the test
    split is fixed by ``data.split_seed``, the validation split is drawn from the rest by
    ``seed`` (``trainer.seed``); ``mnist``, ``fashion_mnist`` and ``cifar10`` keep their own test
    split and carve ``val_fraction`` from their training split by ``seed``. ``files`` reads
    ``data.path`` (see :mod:`sweep.data._files`): a split the file defines is used as given,
    the others are carved as for digits. Pixels are scaled to [0, 1] and flattened
    (CHW order for CIFAR-10), then ``n_train``, ``label_noise`` (training labels only) and
    ``normalize`` (training statistics only) are applied. The prepared CPU tensors are cached per
    process: a second call with the same settings reads no files and repeats no work.

    Args:
        cfg: The data config (``data.*``).
        seed: The run's seed (``trainer.seed``): the validation split, the training subset
            (``n_train``) and which labels ``label_noise`` corrupts.
        device: Where the returned tensors live.

    Returns:
        The six tensors and their metadata.

    Raises:
        DataError: Unknown ``data.name``; files missing (with ``data.download=false``), corrupted
            or failing their checksum; the user's file missing, of an unknown kind or breaking
            a rule (lengths, integer labels, finite features, two classes or more); a split that
            would be empty; ``data.n_train`` larger than the training split.

    Example:
        >>> s = load_splits(DataConfig(name="digits"), device=torch.device("cpu"))
        >>> s.input_shape, s.n_features, s.n_classes
        ((1, 8, 8), 64, 10)
    """
    if cfg.name not in DATASETS:
        raise DataError(f"data.name={cfg.name!r}: allowed one of {', '.join(DATASETS)}")
    splits = prepared_cache.get_or_make(_prepared_key(cfg, seed), lambda: _prepare_cpu(cfg, seed))
    return splits.to(device)
