"""Sampler factory: ``hydra.sweeper.sampler`` → an Optuna sampler."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution

from ._space import SearchSpace

__all__ = ["SAMPLERS", "make_sampler"]

SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "qmc")


def _grid(space: SearchSpace) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    params = list(space.params) + [p for c in space.conditionals for p in c.params]
    for p in params:
        d = p.distribution
        if isinstance(d, CategoricalDistribution):
            grid[p.path] = list(d.choices)
        elif isinstance(d, IntDistribution) and not d.log:
            grid[p.path] = list(range(d.low, d.high + 1, d.step))
        else:
            raise ValueError(
                f"hydra.sweeper.sampler.name='grid': parameter {p.path}={p.expr!r} is continuous; "
                "the grid sampler needs choice(...) or range(...)"
            )
    return grid


def make_sampler(spec: Mapping[str, Any], space: SearchSpace) -> optuna.samplers.BaseSampler:
    """Build the sampler named in ``spec`` (seeded when ``spec['seed']`` is set)."""
    name = spec.get("name", "tpe")
    seed = spec.get("seed")
    s = optuna.samplers
    if name == "tpe":
        return s.TPESampler(
            seed=seed,
            n_startup_trials=int(spec.get("n_startup_trials", 10)),
            multivariate=bool(spec.get("multivariate", True)),
            group=bool(spec.get("multivariate", True)) and bool(space.conditionals),
            constant_liar=bool(spec.get("constant_liar", True)),
        )
    if name == "random":
        return s.RandomSampler(seed=seed)
    if name == "grid":
        return s.GridSampler(_grid(space), seed=seed)
    if name == "cmaes":
        return s.CmaEsSampler(seed=seed, n_startup_trials=int(spec.get("n_startup_trials", 1)))
    if name == "gp":
        return s.GPSampler(seed=seed, n_startup_trials=int(spec.get("n_startup_trials", 10)))
    if name == "qmc":
        return s.QMCSampler(seed=seed)
    raise ValueError(f"hydra.sweeper.sampler.name={name!r}: allowed " + ", ".join(SAMPLERS))
