"""``data=files``: the user's own data from a ``.npz`` file, a ``.csv`` file or an image folder.

Every check runs here, when the file is read, so a bad file is a :class:`DataError` naming the
file and the problem before any trial exists (the sweeper's pre-flight loads each dataset once).

Labels: any integer values (a float column of whole numbers counts). The distinct values of all
splits together, sorted, become classes ``0..C-1`` (labels ``3, 5, 9`` train as ``0, 1, 2``);
their original values are kept as the class names (``RawData.classes``). Digits saved with
labels ``0..9`` keep their labels.

Features: any real numbers, finite. ``uint8`` arrays are 8-bit pixels and are divided by 255,
like the image datasets; every other type is used as stored (``data.normalize`` then applies).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._types import DataError, RawData

__all__ = ["FILE_KINDS", "NPZ_ARRAYS", "encode_labels", "file_signature", "load_file"]

FILE_KINDS = "a .npz file, a .csv file or an image folder (one subfolder of images per class)"
NPZ_ARRAYS = ("x", "y", "x_val", "y_val", "x_test", "y_test")
"""Arrays a ``.npz`` may hold: ``x`` and ``y`` always; each predefined split as a pair."""


def file_signature(path: str) -> tuple[Hashable, ...]:
    """What identifies the file's contents for the cache: its absolute path, size and
    modification time (for a folder: the count, total size and latest modification time of
    everything under it), so an edited file is read again.

    Raises:
        DataError: Nothing exists at ``path``.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(
            f"data.path={str(p)!r}: no such file or folder. Allowed: {FILE_KINDS}; a relative "
            f"path is resolved against the working directory ({os.getcwd()})."
        )
    if p.is_file():
        st = p.stat()
        return (str(p), st.st_size, st.st_mtime_ns)
    count, size, latest = 0, 0, p.stat().st_mtime_ns
    for folder, _, files in os.walk(p):
        latest = max(latest, os.stat(folder).st_mtime_ns)
        for name in files:
            st = os.stat(os.path.join(folder, name))
            count, size, latest = count + 1, size + st.st_size, max(latest, st.st_mtime_ns)
    return (str(p), count, size, latest)


def load_file(path: str, *, label: str) -> RawData:
    """Read the user's data at the absolute ``path``.

    Args:
        path: A ``.npz`` file (arrays ``x``, ``y`` and optionally ``x_val``/``y_val`` and
            ``x_test``/``y_test``), a ``.csv`` file with a header row, or a folder of class
            subfolders of images (torchvision's ``ImageFolder``).
        label: The CSV's label column (``data.label``); every other column is a feature.

    Raises:
        DataError: The file is missing or of an unknown kind, cannot be parsed, or its contents
            break a rule (see the module docstring); the message names the file.
    """
    p = Path(path)
    file_signature(path)  # the same "no such file" message as the cache key gives
    if p.is_dir():
        from ._images import load_image_folder

        return load_image_folder(path)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix == ".csv":
        return _load_csv(path, label)
    raise DataError(
        f"data.path={path!r}: unknown kind of file ({suffix or 'no suffix'}); allowed {FILE_KINDS}."
    )


def _load_npz(path: str) -> RawData:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: could not be read as a .npz file ({exc}).") from exc
    unknown = sorted(set(arrays) - set(NPZ_ARRAYS))
    missing = [k for k in ("x", "y") if k not in arrays]
    unpaired = [
        f"{x} without {y}"
        for x, y in (
            ("x_val", "y_val"),
            ("y_val", "x_val"),
            ("x_test", "y_test"),
            ("y_test", "x_test"),
        )
        if x in arrays and y not in arrays
    ]
    if unknown or missing or unpaired:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"unknown array(s) {', '.join(unknown)}"] if unknown else []
        problems += unpaired
        raise DataError(
            f"{path}: {'; '.join(problems)}. It holds {', '.join(sorted(arrays))}; "
            f"allowed: x and y, plus x_val/y_val and x_test/y_test as pairs."
        )
    splits = [s for s in ("", "_val", "_test") if f"x{s}" in arrays]
    xs = {s: arrays[f"x{s}"] for s in splits}
    ys = {s: arrays[f"y{s}"] for s in splits}
    return _raw(path, xs, ys, {s: f"y{s}" for s in splits})


def _load_csv(path: str, label: str) -> RawData:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: could not be read as a .csv file with a header row ({exc})."
        ) from exc
    columns = [str(c) for c in frame.columns]
    if label not in columns:
        raise DataError(
            f"{path}: no label column {label!r} (data.label={label!r}); its columns "
            f"are {', '.join(columns[:20])}{' …' if len(columns) > 20 else ''}. "
            f"Set data.label=<column>."
        )
    features = frame.drop(columns=[label])
    if features.shape[1] == 0:
        raise DataError(f"{path}: the label column {label!r} is its only column; no features.")
    real = pd.api.types.is_numeric_dtype
    text = [
        str(c)
        for c, t in features.dtypes.items()
        if not real(t) or pd.api.types.is_complex_dtype(t)
    ]
    if text:
        raise DataError(
            f"{path}: feature column(s) {', '.join(text[:10])} are not numeric; every "
            f"column but the label ({label!r}) must be a number."
        )
    x = features.to_numpy(dtype=np.float64 if _any_float(features) else np.int64)
    y = frame[label].to_numpy()
    return _raw(path, {"": x}, {"": y}, {"": f"column {label!r}"})


def _any_float(frame: Any) -> bool:
    return any(t.kind == "f" for t in frame.dtypes)


def _raw(
    path: str, xs: dict[str, np.ndarray], ys: dict[str, np.ndarray], y_names: dict[str, str]
) -> RawData:
    """Check the arrays of each split ("" is the training pool) and build the raw data."""
    pixels = xs[""].dtype == np.uint8
    shape: tuple[int, ...] | None = None
    features: dict[str, torch.Tensor] = {}
    for split, x in xs.items():
        name = f"x{split}"
        if (x.dtype == np.uint8) != pixels:
            raise DataError(
                f"{path}: x is {xs[''].dtype} but {name} is {x.dtype}; uint8 means "
                f"8-bit pixels (divided by 255), so save every x with one dtype."
            )
        t, one = _features(path, name, x)
        if shape is not None and one != shape:
            raise DataError(f"{path}: {name} examples have shape {one} but x's have {shape}.")
        shape = shape or one
        if len(ys[split].shape) == 0 or ys[split].shape[0] != t.shape[0]:
            raise DataError(
                f"{path}: {name} has {t.shape[0]} rows but {y_names[split]} has "
                f"{ys[split].shape[0] if ys[split].ndim else 0} labels; they must "
                f"have one label per row."
            )
        features[split] = t
    labels, classes = encode_labels(path, {y_names[s]: ys[s] for s in xs})
    by_split = dict(zip(xs, labels, strict=True))
    assert shape is not None
    return RawData(
        x=features[""],
        y=by_split[""],
        x_test=features.get("_test"),
        y_test=by_split.get("_test"),
        x_val=features.get("_val"),
        y_val=by_split.get("_val"),
        scale=255.0 if pixels else 1.0,
        n_classes=len(classes),
        input_shape=shape,
        classes=classes,
    )


def _features(path: str, name: str, x: np.ndarray) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Flattened features of one split and the shape of one example (``(N, H, W)`` images get
    one channel: ``(1, H, W)``)."""
    if x.ndim < 2 or x.shape[0] == 0:
        raise DataError(
            f"{path}: {name} has shape {x.shape}; allowed one row per example: "
            f"(N, D) features or (N, H, W) / (N, C, H, W) images, N >= 1."
        )
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: {name} holds {x.dtype} values; features must be real numbers.")
    one = (1, *x.shape[1:]) if x.ndim == 3 else tuple(int(d) for d in x.shape[1:])
    flat = x.reshape(x.shape[0], -1)
    if x.dtype != np.uint8:
        flat = flat.astype(np.float32)
        bad = ~np.isfinite(flat)
        if bad.any():
            rows = np.flatnonzero(bad.any(axis=1))
            raise DataError(
                f"{path}: {name} has {int(bad.sum())} NaN or infinite value(s) "
                f"(or values beyond float32) in {len(rows)} row(s), the first at row "
                f"{int(rows[0])} (counting from 0); remove or impute them."
            )
    return torch.from_numpy(np.ascontiguousarray(flat)), one


def encode_labels(
    path: str, labels: dict[str, np.ndarray]
) -> tuple[list[torch.Tensor], tuple[str, ...]]:
    """Map the integer labels of every split (``{what: array}``) to ``0..C-1`` by their sorted
    distinct values; return the mapped labels (int64, in the given order) and the class names.

    Example:
        >>> ys, names = encode_labels("f.npz", {"y": np.array([9, 3, 5, 3])})
        >>> ys[0].tolist(), names
        ([2, 0, 1, 0], ('3', '5', '9'))

    Raises:
        DataError: A label is not an integer, or there is only one class.
    """
    ints: list[np.ndarray] = []
    for what, y in labels.items():
        y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
        if y.ndim != 1:
            raise DataError(
                f"{path}: {what} has shape {y.shape}; labels must be one integer per row."
            )
        ints.append(_integers(path, what, y))
    classes = np.unique(np.concatenate(ints))
    if len(classes) < 2:
        raise DataError(
            f"{path}: every label is {classes[0] if len(classes) else 'missing'}: a "
            f"single class; a classifier needs at least 2 classes."
        )
    mapped = [torch.from_numpy(np.searchsorted(classes, y).astype(np.int64)) for y in ints]
    return mapped, tuple(str(int(c)) for c in classes)


def _integers(path: str, what: str, y: np.ndarray) -> np.ndarray:
    if y.dtype.kind in "biu":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        whole = np.isfinite(y) & (y == np.round(y))
        if whole.all():
            return y.astype(np.int64)
        first = int(np.flatnonzero(~whole)[0])
        raise DataError(
            f"{path}: {what} holds {_plain(y[first])!r} at row {first} (counting "
            f"from 0); labels must be integers (class numbers), with none "
            f"missing."
        )
    example = _plain(y.reshape(-1)[0]) if y.size else None
    raise DataError(
        f"{path}: {what} holds {y.dtype} values (e.g. {example!r}); labels must be "
        f"integers (class numbers). Map names to numbers before saving."
    )


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (for messages)."""
    return value.item() if isinstance(value, np.generic) else value
