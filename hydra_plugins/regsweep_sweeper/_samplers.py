"""Sampler factory: ``hydra.sweeper.sampler`` → an Optuna sampler."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from ._space import SearchSpace

__all__ = ["SAMPLERS", "SeedPerTrial", "make_sampler"]

SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "qmc", "nsga2")


def _grid(space: SearchSpace) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    params = list(space.params) + [p for c in space.conditionals for p in c.params]
    for p in params:
        if p.pinned:
            continue  # set in the job, not sampled
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


class SeedPerTrial(optuna.samplers.BaseSampler):
    """Delegates to a sampler re-made for each trial with a seed derived from the trial number.

    A sampler seeded once per process would make every worker of a shared study — and every
    resumed sweep — draw the same parameters again. Seeding by trial number keeps a study
    reproducible and gives each trial its own draw, whichever worker asks for it.
    """

    def __init__(self, factory: Callable[[int], optuna.samplers.BaseSampler], seed: int) -> None:
        self._factory = factory
        self._seed = seed
        self._built = factory(seed)
        self._pending: tuple[optuna.Study, FrozenTrial] | None = None

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # built when the trial first samples: a trial that samples nothing (a confirmation
        # run, a study without a search space) does not pay for a sampler (~0.25 ms for TPE)
        self._pending = (study, trial)

    @property
    def _inner(self) -> optuna.samplers.BaseSampler:
        if self._pending is not None:
            study, trial = self._pending
            self._pending = None
            self._built = self._factory((self._seed + 7919 * trial.number) % 2**32)
            self._built.before_trial(study, trial)
        return self._built

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        if self._pending is not None and self._pending[1].number == trial.number:
            # it sampled nothing: no sampler of its own to tell (the samplers regsweep makes
            # keep nothing from after_trial without a constraints function)
            self._pending = None
            return
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()


def make_sampler(spec: Mapping[str, Any], space: SearchSpace) -> optuna.samplers.BaseSampler:
    """Build the sampler named in ``spec``; with ``spec['seed']`` each trial's draw is seeded by
    its number (:class:`SeedPerTrial`), except for grid and QMC: their seed fixes one order of
    points that trial numbers then walk through, so it must stay the same for every trial."""
    seed = spec.get("seed")
    if seed is None or spec.get("name", "tpe") in ("grid", "qmc"):
        return _make(spec, space, seed)
    return SeedPerTrial(lambda s: _make(spec, space, s), int(seed))


def _make(
    spec: Mapping[str, Any], space: SearchSpace, seed: int | None
) -> optuna.samplers.BaseSampler:
    name = spec.get("name", "tpe")
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
    if name == "nsga2":
        return s.NSGAIISampler(seed=seed)
    raise ValueError(f"hydra.sweeper.sampler.name={name!r}: allowed " + ", ".join(SAMPLERS))
