"""Independent, seeded random streams derived from ``data.split_seed``."""

from __future__ import annotations

import numpy as np

__all__ = ["LABEL_NOISE_STREAM", "NOISE_STREAM", "SPLIT_STREAM", "VAL_STREAM", "rng_for"]

NOISE_STREAM = 0
SPLIT_STREAM = 1
LABEL_NOISE_STREAM = 2
VAL_STREAM = 3


def rng_for(stream: int, *seeds: int) -> np.random.Generator:
    """Return a generator for one purpose, so the purposes' draws are independent of each other.

    Args:
        stream: Which purpose (one of the ``*_STREAM`` constants).
        *seeds: The seeds it depends on (``data.split_seed``, then ``trainer.seed`` if any).

    Example:
        >>> int(rng_for(SPLIT_STREAM, 0).integers(10)) == int(rng_for(SPLIT_STREAM, 0).integers(10))
        True
    """
    return np.random.default_rng([stream, *(s % (1 << 64) for s in seeds)])  # SeedSequence: >= 0
