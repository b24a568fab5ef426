"""Sampler factory: ``hydra.sweeper.sampler`` → an Optuna sampler."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    IntDistribution,
    check_distribution_compatibility,
)
from optuna.trial import FrozenTrial, TrialState

from sweep.record import NOT_BUDGETED

from ._space import SearchSpace

__all__ = [
    "FAMILY_PARAM",
    "SAMPLERS",
    "FamilySampler",
    "GroupOnDemandTPE",
    "SeedPerTrial",
    "family_choices",
    "make_sampler",
]

SAMPLERS = ("tpe", "random", "grid", "cmaes", "gp", "qmc", "nsga2")

FAMILY_PARAM = "regularizer"
"""The searched parameter whose choices are the regularizer families."""


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


def family_choices(space: SearchSpace) -> tuple[str, ...]:
    """The families of a families study: the choices of an unconditional categorical
    ``regularizer`` parameter with two or more of them; () for any other space."""
    for p in space.params:
        d = p.distribution
        categorical = isinstance(d, CategoricalDistribution) and len(d.choices) > 1
        if p.path == FAMILY_PARAM and not p.pinned and categorical:
            return tuple(str(c) for c in d.choices)  # type: ignore[attr-defined]
    return ()


class _FamilyStudy:
    """A study as one family's sampler sees it: only the trials of that family."""

    def __init__(self, study: optuna.Study, family: str) -> None:
        self._study = study
        self._family = family

    def _mine(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        return [t for t in trials if t.params.get(FAMILY_PARAM) == self._family]

    def _get_trials(
        self, deepcopy: bool = True, states: Any = None, use_cache: bool = False
    ) -> list[FrozenTrial]:
        return self._mine(
            self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        )

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        return self._mine(self._study.get_trials(deepcopy=deepcopy, states=states))

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


class FamilySampler(optuna.samplers.BaseSampler):
    """An equal share of the budget for every regularizer family, each searched by its own
    sampler.

    A categorical ``regularizer`` drawn by TPE starves the families whose first draws did badly
    (the default study once completed no L1 or L2 run). Here the family is not drawn: each trial
    takes the family with the fewest trials so far (ties: the order of ``choice(...)``), so a
    fresh study's trial k gets family k mod F, and when ``n_trials`` does not divide by F the
    first ``n_trials mod F`` families get one trial more. Every other parameter of the trial
    (the learning rate, the family's own strengths) is drawn by a sampler of the family's own
    (``factory()``), which sees only that family's trials. Trials that ended outside the budget
    (interrupted, over budget: ``stop_reason`` in ``not_counted``) are not counted.

    Example:
        >>> s = FamilySampler(optuna.samplers.RandomSampler, ("none", "l2"))
        >>> s.families
        ('none', 'l2')
    """

    def __init__(
        self,
        factory: Callable[[], optuna.samplers.BaseSampler],
        families: Sequence[str],
        *,
        not_counted: Sequence[str] = NOT_BUDGETED,
    ) -> None:
        self.families = tuple(families)
        self._factory = factory
        self._inner: dict[str, optuna.samplers.BaseSampler] = {}
        self._drawn: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._not_counted = set(not_counted)

    def _sampler(self, family: str) -> optuna.samplers.BaseSampler:
        if family not in self._inner:
            self._inner[family] = self._factory()
        return self._inner[family]

    def next_family(self, study: optuna.Study, trial: FrozenTrial) -> str:
        """The family with the fewest counted trials numbered below ``trial``."""
        counts = dict.fromkeys(self.families, 0)
        for t in study._get_trials(deepcopy=False, use_cache=False):
            family = t.params.get(FAMILY_PARAM)
            if t.number >= trial.number or family not in counts:
                continue
            if t.user_attrs.get("stop_reason") in self._not_counted:
                continue
            counts[family] += 1
        return min(self.families, key=lambda f: (counts[f], self.families.index(f)))

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._assign(study, trial)

    def _assign(self, study: optuna.Study, trial: FrozenTrial) -> str:
        """The trial's family: as given (a re-queued trial's fixed parameters), or the next one,
        stored as the trial's fixed parameter (Optuna's ``enqueue_trial`` mechanism)."""
        fixed = dict(trial.system_attrs.get("fixed_params") or {})
        if FAMILY_PARAM in trial.params:
            return str(trial.params[FAMILY_PARAM])
        if FAMILY_PARAM not in fixed:
            fixed[FAMILY_PARAM] = self.next_family(study, trial)
            with contextlib.suppress(TypeError):  # a lazy view of the stored attributes
                trial.system_attrs["fixed_params"] = fixed  # what Trial reads after before_trial
            study._storage.set_trial_system_attr(trial._trial_id, "fixed_params", fixed)
        return str(fixed[FAMILY_PARAM])

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}  # each family's relative draw is made on its first parameter

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        family = self._assign(study, trial)
        if param_name == FAMILY_PARAM:
            return family
        inner = self._sampler(family)
        view = cast(optuna.Study, _FamilyStudy(study, family))
        drawn = self._drawn.get(trial._trial_id)
        if drawn is None:
            space = inner.infer_relative_search_space(view, trial)
            space = {k: d for k, d in space.items() if k != FAMILY_PARAM}
            drawn = self._drawn[trial._trial_id] = dict(inner.sample_relative(view, trial, space))
            while len(self._drawn) > 64:
                self._drawn.popitem(last=False)
        if param_name in drawn:
            value = drawn[param_name]
            if param_distribution._contains(param_distribution.to_internal_repr(value)):
                return value
        return inner.sample_independent(view, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        family = trial.params.get(FAMILY_PARAM)
        if family is None:
            return  # it sampled nothing
        view = cast(optuna.Study, _FamilyStudy(study, str(family)))
        self._sampler(str(family)).after_trial(view, trial, state, values)

    def reseed_rng(self) -> None:
        for inner in self._inner.values():
            inner.reseed_rng()


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
    families = family_choices(space)
    name = spec.get("name", "tpe")
    if families and name != "grid" and spec.get("balance_families", True):
        within = SearchSpace(space.params, (), space.fixed)  # one family's parameters: no groups
        return FamilySampler(lambda: _make_one(spec, within, seed), families)
    return _make_one(spec, space, seed)


def _make_one(
    spec: Mapping[str, Any], space: SearchSpace, seed: int | None
) -> optuna.samplers.BaseSampler:
    name = spec.get("name", "tpe")
    s = optuna.samplers
    if name == "tpe":
        multivariate = bool(spec.get("multivariate", True))
        startup = int(spec.get("n_startup_trials", 10))
        liar = bool(spec.get("constant_liar", True))
        if multivariate and space.conditionals:  # groups of parameters that occur together
            return GroupOnDemandTPE(
                seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=liar
            )
        return s.TPESampler(
            seed=seed, n_startup_trials=startup, multivariate=multivariate, constant_liar=liar
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
