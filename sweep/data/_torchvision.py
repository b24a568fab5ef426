"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision's own dataset classes.

Each split is read whole from the dataset object's ``.data``/``.targets`` arrays; nothing goes
through ``__getitem__`` or a DataLoader. torchvision's ``RuntimeError`` for missing or corrupted
files becomes a :class:`DataError` that names the folder, the files and the fix.
"""

from __future__ import annotations

import os
import pickle
from typing import Any, ClassVar

import numpy as np
import torch
from torchvision import datasets

from ._types import DataError, RawData

__all__ = ["TORCHVISION_DATASETS", "load_torchvision"]

# config name -> (torchvision class, display name, input shape)
TORCHVISION_DATASETS: dict[str, tuple[type[Any], str, tuple[int, ...]]] = {
    "mnist": (datasets.MNIST, "MNIST", (1, 28, 28)),
    "fashion_mnist": (datasets.FashionMNIST, "Fashion-MNIST", (1, 28, 28)),
    "cifar10": (datasets.CIFAR10, "CIFAR-10", (3, 32, 32)),
}

# Parse errors from torchvision's readers when a file exists but is not what it should be.
_PARSE_ERRORS = (AssertionError, ValueError, TypeError, KeyError, EOFError, pickle.UnpicklingError)


class _CIFAR10ExistenceOnly(datasets.CIFAR10):
    """CIFAR-10 that accepts files whose md5 differs, as long as they exist.

    torchvision's ``check_integrity(path, None)`` checks existence only, so the file lists are
    torchvision's own with the checksums dropped; parsing is torchvision's, unchanged.
    """

    train_list: ClassVar[list[list[str | None]]] = [
        [name, None] for name, _ in datasets.CIFAR10.train_list
    ]
    test_list: ClassVar[list[list[str | None]]] = [
        [name, None] for name, _ in datasets.CIFAR10.test_list
    ]
    meta: ClassVar[dict[str, str | None]] = {**datasets.CIFAR10.meta, "md5": None}


def expected_files(name: str, root: str) -> tuple[str, list[str]]:
    """Return the folder torchvision reads ``name`` from under ``root`` and the files it needs."""
    cls, _, _ = TORCHVISION_DATASETS[name]
    if name == "cifar10":
        folder = os.path.join(root, cls.base_folder)
        files = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    else:
        folder = os.path.join(root, cls.__name__, "raw")
        files = [os.path.splitext(os.path.basename(f))[0] for f, _ in cls.resources]
    return folder, files


def _open(name: str, root: str, *, train: bool, download: bool, verify: bool) -> Any:
    cls, _, _ = TORCHVISION_DATASETS[name]
    if name == "cifar10" and not verify:
        cls = _CIFAR10ExistenceOnly
    return cls(root, train=train, download=download)


def _explain(name: str, root: str, *, download: bool, verify: bool, cause: Exception) -> DataError:
    _, title, _ = TORCHVISION_DATASETS[name]
    folder, files = expected_files(name, root)
    missing = [f for f in files if not os.path.isfile(os.path.join(folder, f))]
    if download and missing:
        return DataError(
            f"{title}: download into {root} failed ({cause}). Check the network, or put "
            f"{', '.join(files)} into {folder} by hand (or set data.root=<path> where they are)."
        )
    if missing:
        which = "none of them exist" if missing == files else f"missing: {', '.join(missing)}"
        return DataError(
            f"{title} not found: looked in {folder} (data.root resolved to {root}) for "
            f"{', '.join(files)}; {which}. "
            f"Fix: set data.download=true to fetch it, or data.root=<path> where it already is."
        )
    if name == "cifar10" and verify:
        return DataError(
            f"{title} files in {folder} failed torchvision's md5 checksum check: they are "
            f"corrupted or not the official release. Fix: delete them and set data.download=true "
            f"to fetch them again, or set data.verify_checksums=false to use them as they are."
        )
    return DataError(f"{title}: torchvision could not read {folder}: {cause}")


def _read_split(
    name: str, root: str, *, train: bool, download: bool, verify: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    _, title, _ = TORCHVISION_DATASETS[name]
    try:
        ds = _open(name, root, train=train, download=download, verify=verify)
    except (RuntimeError, OSError) as exc:
        raise _explain(name, root, download=download, verify=verify, cause=exc) from exc
    except _PARSE_ERRORS as exc:
        folder, _ = expected_files(name, root)
        raise DataError(
            f"{title}: files in {folder} exist but could not be parsed ({type(exc).__name__}: "
            f"{exc}); they are truncated or not in the expected format. Fix: delete them and set "
            f"data.download=true."
        ) from exc
    data = torch.as_tensor(np.asarray(ds.data))
    if data.dim() == 4:  # CIFAR: torchvision turns the files' CHW rows into HWC; turn them back
        data = data.permute(0, 3, 1, 2)
    x = data.reshape(data.shape[0], -1).contiguous()
    y = torch.as_tensor(np.asarray(ds.targets, dtype=np.int64))
    return x, y


def load_torchvision(name: str, *, root: str, download: bool, verify_checksums: bool) -> RawData:
    """Read a torchvision dataset's train and test splits whole, as uint8 rows.

    Args:
        name: ``mnist``, ``fashion_mnist`` or ``cifar10``.
        root: Absolute folder holding the dataset's folder (``MNIST/``, ``cifar-10-batches-py/``).
        download: Let torchvision download missing files.
        verify_checksums: For CIFAR-10, require torchvision's md5 checksums to match.

    Returns:
        Flattened uint8 pixels (CHW order for CIFAR-10) with scale 255, and int64 labels.

    Raises:
        DataError: Files are missing (and ``download`` is off), fail their checksum, or can't be
            parsed; the message names the folder, the files and the fix.
    """
    _, _, shape = TORCHVISION_DATASETS[name]
    kw: dict[str, Any] = {"download": download, "verify": verify_checksums}
    x, y = _read_split(name, root, train=True, **kw)
    x_test, y_test = _read_split(name, root, train=False, **kw)
    return RawData(
        x=x, y=y, x_test=x_test, y_test=y_test, scale=255.0, n_classes=10, input_shape=shape
    )
