"""Sampler factory: ``hydra.sweeper.sampler`` → an Optuna sampler."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    IntDistribution,
    check_distribution_compatibility,
)
from optuna.trial import FrozenTrial, TrialState

from ._space import SearchSpace

__all__ = ["SAMPLERS", "GroupOnDemandTPE", "SeedPerTrial", "make_sampler"]

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


class GroupOnDemandTPE(optuna.samplers.TPESampler):
    """TPE's grouped multivariate sampling (``group=True``), each group drawn when the trial first
    suggests one of its parameters instead of every group at the trial's start.

    With conditional parameters TPE splits the search space into groups of parameters that
    occur together (the root choice and the learning rate; each regularizer family's own
    parameters) and, at the start of every trial, fits and draws every group the study has
    seen, though the trial then suggests only its own family's: in the default study that is up
    to 8 fits for 1 or 2 used. Here a group is drawn by TPE's own group draw, from the same
    observations, when the trial asks for one of its parameters; only the order in which the
    draws take numbers from the generator differs. A running trial then holds the parameters it
    suggested, which is what TPE's constant liar reads from it (it no longer stores a draw for
    every other family's parameters as well).
    """

    _KEPT = 64  # trials whose drawn groups are kept (one is asked and suggested at a time)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(group=True, **kwargs)
        self._drawn: OrderedDict[int, tuple[set[int], dict[str, Any]]] = OrderedDict()

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        # infer_relative_search_space has just grouped the study's parameters for this trial
        self._drawn[trial._trial_id] = (set(), {})
        while len(self._drawn) > self._KEPT:
            self._drawn.popitem(last=False)
        return {}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        found = self._group_of(param_name)
        state = self._drawn.get(trial._trial_id)
        if found is not None and state is not None:
            index, space = found
            done, values = state
            if index not in done:
                done.add(index)
                values.update(self._sample_relative(study, trial, space))
            if param_name in values:
                try:
                    check_distribution_compatibility(space[param_name], param_distribution)
                except ValueError:
                    pass  # asked with another distribution: drawn on its own below
                else:
                    value = values[param_name]
                    if param_distribution._contains(param_distribution.to_internal_repr(value)):
                        return value
        return super().sample_independent(study, trial, param_name, param_distribution)

    def _group_of(self, name: str) -> tuple[int, dict[str, BaseDistribution]] | None:
        """The group holding ``name`` (its index and search space, as TPE's group draw builds
        it), or None."""
        groups = self._search_space_group
        if groups is None:
            return None
        for index, sub_space in enumerate(groups.search_spaces):
            if name in sub_space:
                return index, {n: d for n, d in sorted(sub_space.items()) if not d.single()}
        return None


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
        multivariate = bool(spec.get("multivariate", True))
        startup = int(spec.get("n_startup_trials", 10))
        liar = bool(spec.get("constant_liar", True))
        if multivariate and space.conditionals:  # groups of parameters that occur together
            return GroupOnDemandTPE(seed=seed, n_startup_trials=startup, multivariate=True,
                                    constant_liar=liar)  # fmt: skip
        return s.TPESampler(seed=seed, n_startup_trials=startup, multivariate=multivariate,
                            constant_liar=liar)  # fmt: skip
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
