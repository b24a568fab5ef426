"""Numbers in words for figures and sentences."""

from __future__ import annotations

import math

from analysis._schema import metric_range
from sweep.record import OBJECTIVES

__all__ = [
    "compact",
    "delta_text",
    "in_points",
    "log_binned",
    "metric_label",
    "p_text",
    "signed_text",
]


def log_binned(low: float, high: float) -> bool:
    """The binning policy of every table and figure: values from ``low`` to ``high`` are cut
    into log-spaced bins when they are positive and span a decade or more, else linear ones.

    Example:
        >>> log_binned(0.01, 0.1), log_binned(0.01, 0.09), log_binned(0.0, 1.0)
        (True, False, False)
    """
    return low > 0 and high / low >= 10


def compact(value: float) -> str:
    """3 significant digits, exponent form below 1e-3 and from 1e5: ``1e-05``, ``0.25``."""
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"
    return f"{value:.3g}"


def metric_label(name: str) -> str:
    """An objective or record metric in words: ``val_acc`` → ``validation accuracy``."""
    known = OBJECTIVES.get(name)
    if known is not None:
        return known.label
    words = {
        "test_acc": "test accuracy",
        "test_loss": "test loss",
        "train_acc": "train accuracy",
        "train_loss": "train loss",
        "dead_units": "fraction of dead hidden units",
    }
    return words.get(name, name)


def p_text(p: float) -> str:
    """``p=0.004``, ``p<0.001``, ``p=0.31``: two significant digits, never a bare 0."""
    if math.isnan(p):
        return "p n/a"
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.2g}" if p < 0.1 else f"p={p:.2f}"


def in_points(metric: str) -> bool:
    """Whether ``metric`` is a share (an accuracy, a sparsity, dead units: a range of [0, 1] in
    :func:`analysis._schema.metric_range`), whose differences read in percentage points."""
    return metric.endswith("_acc") or metric_range(metric) == (0.0, 1.0)


def delta_text(value: float, metric: str) -> str:
    """A difference of ``metric``: shares in percentage points, others to 3 digits."""
    if in_points(metric):
        return f"{abs(value) * 100:.1f} points"
    return compact(abs(value))


def signed_text(value: float, metric: str) -> str:
    """A signed difference of ``metric``, as an interval's end: accuracies in percentage points
    (``+1.2``, ``-0.4``; ``-0.0`` just below zero), others to 3 digits (``-0.0123``); exactly
    zero unsigned (``0.0``)."""
    text = f"{value * 100:+.1f}" if in_points(metric) else f"{value:+.3g}"
    return text[1:] if value == 0 else text
