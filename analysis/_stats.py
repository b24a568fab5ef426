"""Small statistics on a few seeds: t-intervals, the paired t-test, power, and multiplicity."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats

from sweep.power import min_detectable

__all__ = ["Interval", "bonferroni", "holm", "min_detectable", "paired_p", "t_interval", "wilson"]


class Interval(NamedTuple):
    """A mean with its two-sided confidence interval (NaN bounds below two values)."""

    mean: float
    low: float
    high: float
    n: int


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr[np.isfinite(arr)]


def t_interval(
    values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    *,
    within: tuple[float, float] = (-math.inf, math.inf),
) -> Interval:
    """Mean and Student-t confidence interval of the finite ``values``, its bounds cut to
    ``within``, the values the mean can take (an accuracy's 0 to 1): the cut interval holds the
    true mean whenever the uncut one does, so its coverage is the same or higher.

    Example:
        >>> t_interval([1.0, 2.0, 3.0]).mean
        2.0
    """
    x = _finite(values)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    low, high = within
    return Interval(mean, max(mean - half, low), min(mean + half, high), n)


def paired_p(differences: Sequence[float] | np.ndarray) -> float:
    """Two-sided p-value of a paired t-test: are the per-seed ``differences`` centred on 0?

    Identical differences have no spread: all zero gives 1, a constant nonzero one gives 0
    (identical up to float rounding counts as identical).
    Fewer than two differences give NaN.
    """
    d = _finite(differences)
    if len(d) < 2:
        return math.nan
    size = max(float(np.abs(d).max()), 1e-300)
    if np.ptp(d) <= 1e-9 * size:  # identical up to rounding (x + c − x is not always c)
        return 1.0 if size <= 1e-12 else 0.0
    return float(stats.ttest_1samp(d, 0.0).pvalue)


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (step-down, capped at 1); NaN entries stay NaN, uncounted.

    Example:
        >>> holm([0.01, 0.04, 0.03]).round(2).tolist()
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    scaled = np.minimum(1.0, p[order] * (m - np.arange(m)))
    out[order] = np.maximum.accumulate(scaled)
    return out


def bonferroni(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Bonferroni-adjusted p-values (``p · m``, capped at 1; m the finite entries); NaN stays.

    ``p_adjusted < α`` exactly when the ``1 − α/m`` t-interval excludes 0, so a verdict read off
    the adjusted p-value and one read off the simultaneous interval are the same verdict.

    Example:
        >>> bonferroni([0.01, 0.04, float("nan")]).round(2).tolist()[:2]
        [0.02, 0.08]
    """
    p = np.asarray(p_values, dtype=float)
    m = int(np.isfinite(p).sum())
    return np.minimum(1.0, p * m) if m else p.copy()


def wilson(k: int, n: int, confidence: float = 0.95) -> Interval:
    """A share ``k / n`` with its Wilson score interval (NaN bounds for n = 0).

    Example:
        >>> [round(v, 3) for v in wilson(1, 10)[:3]]
        [0.1, 0.018, 0.404]
    """
    if n <= 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    share = k / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(share, max(0.0, centre - half), min(1.0, centre + half), n)
