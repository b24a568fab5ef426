"""Writers of small datasets in the exact on-disk formats torchvision reads.

Tests (and the benchmarks) write synthetic MNIST / Fashion-MNIST / CIFAR-10 files into a
temporary folder and load them through torchvision's real dataset classes, so nothing is
downloaded. Every writer is vectorized (one ``tobytes`` per array) and returns what it wrote.

Formats:
    MNIST, Fashion-MNIST: ``<root>/<Kind>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``,
    uncompressed IDX files (torchvision checks for the unzipped names and reads those). IDX: two
    zero bytes, a type code (0x08 = uint8), the number of dimensions, each dimension as a
    big-endian uint32, then the values in row-major order.

    CIFAR-10: ``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``, Python 2
    pickles of dicts with ``data`` (uint8 ``(n, 3072)``, each row the 1024 red, then green, then
    blue values of a 32x32 image in row-major order, i.e. CHW), ``labels`` (a list of ints),
    ``batch_label`` and ``filenames``. The keys are Python 2 ``str``: they load as ``'data'`` with
    ``encoding="latin1"`` (what torchvision uses) and as ``b'data'`` with ``encoding="bytes"``,
    as in the real files.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

__all__ = [
    "CIFAR10_LABEL_NAMES",
    "Written",
    "write_cifar10",
    "write_idx",
    "write_mnist",
]

CIFAR10_LABEL_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@dataclass(frozen=True)
class Written:
    """Arrays a writer put on disk, in file order.

    Attributes:
        x_train: Training images: ``(n, 28, 28)`` uint8 for MNIST, ``(n, 3072)`` uint8 CHW rows
            for CIFAR-10 (batches 1..5 concatenated).
        y_train: Training labels, int64 ``(n,)``.
        x_test: Test images, same layout.
        y_test: Test labels.
        folder: The folder the files were written to.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    folder: Path


def _random_uint8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform random bytes as a writable uint8 array (faster than ``rng.integers``)."""
    return np.frombuffer(rng.bytes(int(np.prod(shape))), dtype=np.uint8).reshape(shape).copy()


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write a uint8 array as an IDX (``ubyte``) file.

    Args:
        path: Output file.
        array: uint8 array with 1 to 3 dimensions.
    """
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 3:
        raise ValueError(f"IDX takes uint8 arrays with 1-3 dims, got {array.dtype} {array.shape}")
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    Path(path).write_bytes(header + np.ascontiguousarray(array).tobytes())


def write_mnist(
    root: str | os.PathLike[str],
    n_train: int,
    n_test: int,
    *,
    kind: str = "MNIST",
    seed: int = 0,
) -> Written:
    """Write random 28x28 uint8 images and labels 0..9 where torchvision's MNIST classes look.

    Args:
        root: The ``root`` to pass to torchvision (files go to ``root/<kind>/raw/``).
        n_train: Training examples.
        n_test: Test examples.
        kind: ``MNIST`` or ``FashionMNIST`` (torchvision's class name is the folder name).
        seed: Seed of the random pixels and labels.

    Returns:
        The arrays written.
    """
    if kind not in ("MNIST", "FashionMNIST"):
        raise ValueError(f"kind={kind!r}: allowed MNIST or FashionMNIST")
    rng = np.random.default_rng(seed)
    folder = Path(root) / kind / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = _random_uint8(rng, (n, 28, 28))
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(folder / f"{split}-images-idx3-ubyte", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels)
        arrays[split] = (images, labels.astype(np.int64))
    return Written(*arrays["train"], *arrays["t10k"], folder=folder)


class _Py2Str(bytes):
    """Bytes to pickle as a Python 2 ``str`` (opcode ``SHORT_BINSTRING``/``BINSTRING``)."""


# The pure-Python pickler: its per-type dispatch table can be extended (typeshed stubs omit it).
_PurePickler: Any = pickle._Pickler


class _Py2Pickler(_PurePickler):
    dispatch = _PurePickler.dispatch.copy()

    def save_py2str(self, obj: _Py2Str) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<I", n) + obj)
        self.memoize(obj)

    def save_ndarray(self, obj: np.ndarray) -> None:
        # numpy's own reduce, with the pixel bytes as one Python 2 string (as numpy under Python 2
        # wrote them) instead of protocol 2's slow latin1 round trip for ``bytes``.
        func, args, state = cast(Any, obj.__reduce__())
        version, shape, dtype, fortran, data = state
        self.save_reduce(func, args, (version, shape, dtype, fortran, _Py2Str(data)), obj=obj)

    dispatch[_Py2Str] = save_py2str
    dispatch[np.ndarray] = save_ndarray


def _py2(obj: Any) -> Any:
    """Turn ``str`` keys and values (recursively) into Python 2 strings; leave the rest."""
    if isinstance(obj, str):
        return _Py2Str(obj.encode("latin1"))
    if isinstance(obj, dict):
        return {_py2(k): _py2(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_py2(v) for v in obj]
    return obj


def _write_py2_pickle(path: Path, obj: dict[str, Any]) -> None:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(_py2(obj))
    path.write_bytes(buf.getvalue())


def write_cifar10(
    root: str | os.PathLike[str], n_per_batch: int, n_test: int, *, seed: int = 0
) -> Written:
    """Write random CIFAR-10 batches where torchvision's ``CIFAR10`` looks.

    The files parse exactly like the real ones, but their md5 checksums differ from the official
    ones, so torchvision's integrity check rejects them unless it is bypassed.

    Args:
        root: The ``root`` to pass to torchvision (files go to ``root/cifar-10-batches-py/``).
        n_per_batch: Examples in each of ``data_batch_1..5``.
        n_test: Examples in ``test_batch``.
        seed: Seed of the random pixels and labels.

    Returns:
        The arrays written; ``x_train``/``x_test`` are the ``(n, 3072)`` CHW rows of the files.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    rows, labels = [], []
    for i, name in enumerate(names):
        n = n_test if name == "test_batch" else n_per_batch
        x = _random_uint8(rng, (n, 3 * 32 * 32))
        y = rng.integers(0, 10, size=n, dtype=np.int64)
        title = "testing batch 1 of 1" if name == "test_batch" else f"training batch {i + 1} of 5"
        entry = {
            "batch_label": title,
            "labels": y.tolist(),
            "data": x,
            "filenames": [f"synthetic_{i}_{j:06d}.png" for j in range(n)],
        }
        _write_py2_pickle(folder / name, entry)
        rows.append(x)
        labels.append(y)
    meta = {
        "num_cases_per_batch": n_per_batch,
        "label_names": list(CIFAR10_LABEL_NAMES),
        "num_vis": 3 * 32 * 32,
    }
    _write_py2_pickle(folder / "batches.meta", meta)
    return Written(
        x_train=np.concatenate(rows[:5]),
        y_train=np.concatenate(labels[:5]),
        x_test=rows[5],
        y_test=labels[5],
        folder=folder,
    )
