"""Independent, seeded random streams derived from ``data.split_seed``."""

from __future__ import annotations

import numpy as np

__all__ = ["LABEL_NOISE_STREAM", "NOISE_STREAM", "SPLIT_STREAM", "rng_for"]

NOISE_STREAM = 0
SPLIT_STREAM = 1
LABEL_NOISE_STREAM = 2


def rng_for(seed: int, stream: int) -> np.random.Generator:
    """Return a generator for one purpose, so the purposes' draws are independent of each other.

    Args:
        seed: The user's seed (``data.split_seed``).
        stream: Which purpose (one of the ``*_STREAM`` constants).

    Example:
        >>> int(rng_for(0, SPLIT_STREAM).integers(10)) == int(rng_for(0, SPLIT_STREAM).integers(10))
        True
    """
    return np.random.default_rng([stream, seed % (1 << 64)])  # SeedSequence wants seeds >= 0
