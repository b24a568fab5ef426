"""How small an effect a few paired seeds can detect: the power of the paired t-test.

Used by the confirmation stage (``confirm.target_mde`` adds seeds until it is reached) and by
the analysis (each finalist's ``mde``). Nothing here imports torch, Optuna or Hydra.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

__all__ = ["min_detectable", "seeds_for"]


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr[np.isfinite(arr)]


def _quantiles(n: int, alpha: float, power: float) -> float:
    return float(stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1))


def min_detectable(
    values: Sequence[float] | np.ndarray, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest true mean difference a two-sided paired t-test at level ``alpha`` detects
    with probability ``power``, given the spread and number of the per-seed ``differences``:
    ``(t₁₋α/₂ + t_power) · sd / √n`` with n − 1 degrees of freedom (NaN below two values; 0
    when they do not vary).

    Example:
        >>> round(min_detectable([0.01, -0.01, 0.02, 0.0, -0.02]), 4)
        0.0263
    """
    d = _finite(values)
    n = len(d)
    if n < 2:
        return math.nan
    sd = float(d.std(ddof=1))
    if sd <= 1e-12:
        return 0.0
    return _quantiles(n, alpha, power) * sd / math.sqrt(n)


def seeds_for(
    values: Sequence[float] | np.ndarray,
    target: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    cap: int = 20,
) -> int:
    """The fewest seeds (at most ``cap``) at which the spread of ``values`` would give a smallest
    detectable effect of ``target`` or less; ``len(values)`` when it already does, ``cap`` when
    even ``cap`` seeds would not.

    Example:
        >>> seeds_for([0.01, -0.01, 0.02, 0.0, -0.02], 0.02)
        8
    """
    d = _finite(values)
    n = len(d)
    if n < 2:
        return min(max(n, 2), cap)
    sd = float(d.std(ddof=1))
    for k in range(max(n, 2), cap + 1):
        if sd <= 1e-12 or _quantiles(k, alpha, power) * sd / math.sqrt(k) <= target:
            return k
    return cap
