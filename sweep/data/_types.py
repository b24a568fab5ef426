"""The value :func:`~sweep.data.load_splits` returns, the raw arrays behind it, and its error."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

__all__ = ["DataError", "RawData", "Splits", "StackedSplits"]


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
        x_val: The source's own validation examples, or None when validation is carved from
            ``x`` by the run's seed.
        y_val: Labels of ``x_val``, or None.
        classes: The name of each class (label ``i`` is ``classes[i]``), where the source has
            names; empty otherwise.
    """

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    scale: float
    n_classes: int
    input_shape: tuple[int, ...]
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class StackedSplits:
    """The splits of a population's members: one :class:`Splits` per distinct seed, stacked.

    Members of one population share the data's settings but each has its own seed, so its own
    validation split (and training subset and label noise); members with the same seed share one
    copy. ``split_of[k]`` is the stacked split member ``k`` trains on.

    Attributes:
        x_train: ``(S, N_train, D)``; ``y_train``: ``(S, N_train)``.
        x_val: ``(S, N_val, D)``; ``y_val``: ``(S, N_val)``.
        x_test: ``(S, N_test, D)`` (the same examples for every seed, normalized with each seed's
            training statistics); ``y_test``: ``(S, N_test)``.
        split_of: ``(K,)`` int64, the split of each member.
        n_classes, input_shape, name: As in :class:`Splits`.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    split_of: torch.Tensor
    n_classes: int
    input_shape: tuple[int, ...]
    name: str

    @classmethod
    def of(cls, splits: list[Splits], split_of: list[int]) -> StackedSplits:
        """Stack ``splits`` (same shapes) for members that use ``splits[split_of[k]]``."""
        first = splits[0]
        shapes = {(s.x_train.shape, s.x_val.shape, s.x_test.shape) for s in splits}
        if len(shapes) != 1:
            raise ValueError(f"the members' splits differ in shape: {sorted(map(str, shapes))}")

        def stack(name: str) -> torch.Tensor:
            return torch.stack([getattr(s, name) for s in splits])

        return cls(
            x_train=stack("x_train"),
            y_train=stack("y_train"),
            x_val=stack("x_val"),
            y_val=stack("y_val"),
            x_test=stack("x_test"),
            y_test=stack("y_test"),
            split_of=torch.tensor(split_of, dtype=torch.int64, device=first.x_train.device),
            n_classes=first.n_classes,
            input_shape=first.input_shape,
            name=first.name,
        )

    @property
    def shared(self) -> bool:
        """Every member trains on the same split (one stacked copy)."""
        return self.x_train.shape[0] == 1

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[2])

    def keep(self, rows: torch.Tensor) -> StackedSplits:
        """The same data for the members at ``rows``."""
        return dataclasses.replace(self, split_of=self.split_of[rows])

    def extend(self, other: StackedSplits) -> StackedSplits:
        """These members followed by ``other``'s, whose stacked splits must begin with these
        (the run layer only ever appends splits: :func:`sweep.run.run_population`)."""
        if other.x_train.shape[0] < self.x_train.shape[0]:
            raise ValueError("the joining members' data must hold every split of these members")
        return dataclasses.replace(other, split_of=torch.cat([self.split_of, other.split_of]))

    def rows(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Each member's examples ``idx[k]`` of the stacked ``x`` (``(S, N, ...)``) → ``(K, B, ...)``.

        One ``index_select`` on the flattened splits: advanced indexing with a ``(K, B)`` index
        took 6× as long on a CPU (200 vs 33 µs a batch at K = 128)."""
        flat = idx if self.shared else idx + (self.split_of * x.shape[1]).unsqueeze(1)
        rows = x.reshape(-1, *x.shape[2:]).index_select(0, flat.reshape(-1))
        return rows.view(*idx.shape, *x.shape[2:])

    def block(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Examples ``start:stop`` of each member's own split → ``(K, stop − start, ...)``."""
        k = self.split_of.shape[0]
        if self.shared:
            part = x[0, start:stop]
            return part.unsqueeze(0).expand(k, *part.shape)
        return x[self.split_of, start:stop]
