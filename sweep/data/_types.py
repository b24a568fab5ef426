"""The value :func:`~sweep.data.load_splits` returns, the raw arrays behind it, and its error."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["DataError", "RawData", "Splits"]


class DataError(RuntimeError):
    """Data could not be loaded: files missing or corrupted, or a setting the data cannot meet.

    The message names the dataset, the path or setting involved and the fix.
    """


@dataclass(frozen=True)
class Splits:
    """Train, validation and test tensors of one dataset, ready to batch by index.

    Features are float32 and flattened to ``(N, D)``; labels are int64 ``(N,)``. All six tensors
    live on the device :func:`~sweep.data.load_splits` was given. On CPU they are shared with the
    per-process cache, so treat them as read-only (no in-place ops).

    Attributes:
        x_train: Training features, ``(N_train, D)``.
        y_train: Training labels (possibly with label noise), ``(N_train,)``.
        x_val: Validation features, ``(N_val, D)``.
        y_val: Validation labels, always clean.
        x_test: Test features, ``(N_test, D)``; empty when ``test_fraction`` is 0.
        y_test: Test labels, always clean.
        n_classes: Number of classes; labels lie in ``0..n_classes-1``.
        input_shape: Shape of one example before flattening, e.g. ``(1, 28, 28)``.
        name: The dataset's config name (``data.name``).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    input_shape: tuple[int, ...]
    name: str

    @property
    def n_features(self) -> int:
        """Length of one flattened example (the product of ``input_shape``)."""
        return int(self.x_train.shape[1])

    def to(self, device: torch.device) -> Splits:
        """Return these splits with every tensor on ``device`` (no copy where already there)."""
        return Splits(
            x_train=self.x_train.to(device),
            y_train=self.y_train.to(device),
            x_val=self.x_val.to(device),
            y_val=self.y_val.to(device),
            x_test=self.x_test.to(device),
            y_test=self.y_test.to(device),
            n_classes=self.n_classes,
            input_shape=self.input_shape,
            name=self.name,
        )


@dataclass(frozen=True)
class RawData:
    """A dataset as read from its source, before splitting, scaling and normalization.

    Attributes:
        x: Flattened examples ``(N, D)`` (uint8 for image files, float32 otherwise), CPU.
        y: int64 labels ``(N,)``.
        x_test: The source's own test examples, or None when the test split is carved from ``x``.
        y_test: Labels of ``x_test``, or None.
        scale: Divide ``x`` by this to get values in [0, 1] (255 for 8-bit pixels, 1 for none).
        n_classes: Number of classes.
        input_shape: Shape of one example before flattening.
    """

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    scale: float
    n_classes: int
    input_shape: tuple[int, ...]
