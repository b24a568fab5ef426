"""regsweep's trial side: config schemas, data, models, regularizers and the training loop."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
