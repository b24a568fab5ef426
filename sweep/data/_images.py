"""An image folder (one subfolder of images per class) read once through torchvision's
``ImageFolder`` into one uint8 tensor.

Classes are the subfolders' names, sorted (torchvision's rule): label ``i`` is ``classes[i]``.
Every image must have the same width and height. Grayscale images (modes ``1``, ``L``, ``LA``)
give one channel and anything else three (RGB, alpha dropped); a folder that mixes both is read
as RGB. Examples keep their shape ``(C, H, W)`` in ``input_shape``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._types import DataError, RawData

__all__ = ["load_image_folder"]

_GRAY = ("1", "L", "LA")


def _read(path: str) -> np.ndarray:
    """One image as a uint8 ``(C, H, W)`` array (C = 1 for grayscale, else 3)."""
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        mode = "L" if img.mode in _GRAY else "RGB"
        array = np.asarray(img.convert(mode) if img.mode != mode else img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def load_image_folder(path: str) -> RawData:
    """Read every image under ``path`` once; the test and validation splits are carved later.

    Raises:
        DataError: No class subfolders or no images, an image that cannot be read, images of
            different sizes, or a single class; the message names the folder (and the file).
    """
    from torchvision.datasets import ImageFolder

    try:
        folder: Any = ImageFolder(path, loader=_read)
    except (FileNotFoundError, OSError) as exc:
        raise DataError(
            f"{path}: not an image folder ({exc}). Allowed: one subfolder per class "
            f"holding .png/.jpg/... images."
        ) from exc
    if len(folder.classes) < 2:
        raise DataError(
            f"{path}: one class subfolder ({folder.classes[0]!r}); a classifier "
            f"needs at least 2 classes."
        )
    images: list[np.ndarray] = []
    for i, (file, _) in enumerate(folder.samples):
        try:
            image, _ = folder[i]
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: could not read image {file} ({exc}).") from exc
        if images and image.shape[1:] != images[0].shape[1:]:
            first = folder.samples[0][0]
            raise DataError(
                f"{path}: images differ in size: {file} is {image.shape[2]}x"
                f"{image.shape[1]} but {first} is {images[0].shape[2]}x"
                f"{images[0].shape[1]} (width x height); resize them to one size."
            )
        images.append(image)
    channels = max(a.shape[0] for a in images)
    stacked = np.stack([np.repeat(a, channels // a.shape[0], axis=0) for a in images])
    x = torch.from_numpy(stacked.reshape(len(images), -1))
    y = torch.tensor(folder.targets, dtype=torch.int64)
    return RawData(
        x=x,
        y=y,
        x_test=None,
        y_test=None,
        scale=255.0,
        n_classes=len(folder.classes),
        input_shape=tuple(int(d) for d in stacked.shape[1:]),
        classes=tuple(folder.classes),
    )
