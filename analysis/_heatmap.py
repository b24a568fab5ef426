"""Trials → mean validation accuracy over two searched parameters, binned on the search scale.

Bins follow the scale each parameter was searched on, as Optuna stored it with the trials
(``FrozenTrial.distributions``): a log distribution gives log-spaced bins over [low, high], any
other numeric one linear bins, a categorical one a bin per option. Without a stored distribution
the data decides (few values: one bin each; else log-spaced when positive and spanning a decade
or more). Every bin is kept, empty ones included, so a region nobody tried is visible.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial

from analysis._format import compact, log_binned
from analysis._tables import result_trials

__all__ = ["Scale", "heatmap_data", "param_scales", "scale_of"]


@dataclass(frozen=True)
class Scale:
    """How a parameter was searched: ``log``/``linear`` over [low, high], or ``values``."""

    kind: Literal["log", "linear", "values"]
    low: float = math.nan
    high: float = math.nan
    options: tuple[str, ...] = ()


def scale_of(distribution: BaseDistribution) -> Scale | None:
    """The :class:`Scale` of one Optuna distribution (None for one it cannot bin).

    Example:
        >>> scale_of(FloatDistribution(1e-3, 0.1, log=True))
        Scale(kind='log', low=0.001, high=0.1, options=())
    """
    if isinstance(distribution, (FloatDistribution, IntDistribution)):
        kind: Literal["log", "linear"] = "log" if distribution.log else "linear"
        return Scale(kind, float(distribution.low), float(distribution.high))
    if isinstance(distribution, CategoricalDistribution):
        return Scale("values", options=tuple(str(c) for c in distribution.choices))
    return None


def _merge(a: Scale, b: Scale) -> Scale:
    if a.kind == "values" or b.kind == "values":
        return Scale("values", options=tuple(dict.fromkeys((*a.options, *b.options))))
    kind: Literal["log", "linear"] = "log" if a.kind == b.kind == "log" else "linear"
    return Scale(kind, min(a.low, b.low), max(a.high, b.high))


def param_scales(trials: Iterable[FrozenTrial]) -> dict[str, Scale]:
    """Each searched parameter's :class:`Scale`, from the distributions the trials were drawn
    from. A parameter drawn from several (one per conditional option) gets the union of their
    ranges (log only when every one is log)."""
    out: dict[str, Scale] = {}
    for t in trials:
        for path, distribution in t.distributions.items():
            scale = scale_of(distribution)
            if scale is not None:
                out[path] = _merge(out[path], scale) if path in out else scale
    return out


def _data_scale(numeric: pd.Series, n_bins: int) -> Scale:
    if numeric.nunique() <= n_bins:
        return Scale("values")
    lo, hi = float(numeric.min()), float(numeric.max())
    return Scale("log" if log_binned(lo, hi) else "linear", lo, hi)


def _bins(values: pd.Series, scale: Scale | None, n_bins: int) -> tuple[pd.Series, list[str], str]:
    """Bin label per trial, every bin label in order, and the scale's kind."""
    numeric = pd.to_numeric(values, errors="coerce")
    is_numeric = numeric.notna().sum() == values.notna().sum() and numeric.notna().any()
    if scale is None:
        scale = _data_scale(numeric, n_bins) if is_numeric else Scale("values")
    if scale.kind == "values" or not is_numeric:
        if is_numeric:
            present = sorted(numeric.dropna().unique())
            labels = numeric.map(compact, na_action="ignore")
            return labels, [compact(v) for v in present], "values"
        present = [str(v) for v in values.dropna().unique()]
        order = list(dict.fromkeys([*scale.options, *sorted(present)]))
        return values.astype(str).where(values.notna()), order, "values"
    lo = min(scale.low, float(numeric.min())) if math.isfinite(scale.low) else numeric.min()
    hi = max(scale.high, float(numeric.max())) if math.isfinite(scale.high) else numeric.max()
    log = scale.kind == "log" and lo > 0
    edges = np.geomspace(lo, hi, n_bins + 1) if log else np.linspace(lo, hi, n_bins + 1)
    names = [f"{compact(a)}–{compact(b)}" for a, b in itertools.pairwise(edges)]
    cut_edges = edges.copy()
    cut_edges[0] = np.nextafter(cut_edges[0], -np.inf)
    codes = pd.cut(numeric, cut_edges, labels=False)
    return codes.map(lambda c: names[int(c)], na_action="ignore"), names, scale.kind


def _heatmap_params(
    done: pd.DataFrame, importance: Mapping[str, float] | None
) -> tuple[str, str] | None:
    """The best-ranked pair of parameters that both vary over the trials that set both."""
    cols = [c for c in done.columns if c.startswith("params_") and done[c].nunique() >= 2]
    imp = importance or {}

    def rank(c: str) -> tuple[float, int, str]:
        return (-float(imp.get(c.removeprefix("params_"), 0.0)), -int(done[c].nunique()), c)

    for first, second in itertools.combinations(sorted(cols, key=rank), 2):
        both = done.loc[done[first].notna() & done[second].notna(), [first, second]]
        if len(both) >= 2 and both[first].nunique() >= 2 and both[second].nunique() >= 2:
            return first, second
    return None


def heatmap_data(
    trials: pd.DataFrame,
    x: str | None = None,
    y: str | None = None,
    *,
    n_bins: int = 5,
    importance: Mapping[str, float] | None = None,
    scales: Mapping[str, Scale] | None = None,
) -> pd.DataFrame:
    """Mean final validation accuracy and trial count in each cell of two binned parameters.

    Args:
        trials: :func:`analysis.trials_frame`; completed trials are used.
        x, y: Parameter names (without ``params_``). By default the two varying parameters
            ranked highest by ``importance`` (param → importance), then by their number of
            distinct values, among pairs set together in two or more trials.
        n_bins: Bins of a numeric parameter.
        importance: Ranks the parameters when ``x``/``y`` are not given.
        scales: Each parameter's search scale (:func:`param_scales` of the study's trials):
            bins follow it; a parameter without one is binned on its data.

    Returns:
        Long format, one row per cell (empty cells included): ``x``, ``y`` (ordered
        categoricals of bin labels), ``n`` and ``val_acc`` (NaN when ``n`` is 0). ``attrs``
        hold ``x``, ``y``, ``chosen_by``, ``x_scale`` and ``y_scale``. Empty without such a pair.
    """
    done = result_trials(trials)
    chosen_by = "given"
    if x is None or y is None:
        pair = _heatmap_params(done, importance)
        if pair is None:
            return pd.DataFrame({"x": [], "y": [], "n": [], "val_acc": []})
        x, y = (c.removeprefix("params_") for c in pair)
        chosen_by = "importance" if importance else "distinct values"
    scales = dict(scales or {})
    both = done[done[f"params_{x}"].notna() & done[f"params_{y}"].notna()]
    xl, x_order, x_kind = _bins(both[f"params_{x}"], scales.get(x), n_bins)
    yl, y_order, y_kind = _bins(both[f"params_{y}"], scales.get(y), n_bins)
    cells = pd.DataFrame({"x": xl, "y": yl, "v": both["val_acc"]}).dropna(subset=["x", "y"])
    stats = cells.groupby(["y", "x"])["v"].agg(["size", "mean"])
    grid = pd.MultiIndex.from_product([y_order, x_order], names=["y", "x"])
    stats = stats.reindex(grid)
    out = pd.DataFrame(
        {
            "x": pd.Categorical(grid.get_level_values("x"), categories=x_order, ordered=True),
            "y": pd.Categorical(grid.get_level_values("y"), categories=y_order, ordered=True),
            "n": stats["size"].fillna(0).astype("int64").to_numpy(),
            "val_acc": stats["mean"].to_numpy(dtype=float),
        }
    )
    out.attrs.update({"x": x, "y": y, "chosen_by": chosen_by, "x_scale": x_kind, "y_scale": y_kind})
    return out
