"""Reading a study's trials for a sampler or a pruner: without the user attributes they do not
look at, and each finished trial once per process.

Optuna's cached storage reads every unfinished trial again, with all its user attributes, each
time a sampler or a pruner asks for the study's trials; a regsweep trial carries its whole job
config there while it runs and its whole record (curves included) once it ends, ~1–2 ms of
parsing per trial. A population refills a slot, or judges its members, many times a second, so
those reads were a large part of what a trial costs beyond its training. :func:`light_trials`
returns the same trials (state, values, parameters, distributions, reports, sampler
attributes) with only the user attributes named, and keeps the finished ones, which never
change, for the next call. On storages other than a database it is the storage's own read.
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Iterable
from typing import Any

from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial

from ._writes import backend_of

__all__ = ["light_trials"]

_CHUNK = 500  # trial ids per IN (...) list

# backend → (study id, user attribute keys) → finished trials by id, as read
_FINISHED: weakref.WeakKeyDictionary[Any, dict[tuple[int, tuple[str, ...]], dict[int, FrozenTrial]]]
_FINISHED = weakref.WeakKeyDictionary()


def light_trials(
    storage: BaseStorage, study_id: int, attrs: Collection[str] = ()
) -> list[FrozenTrial]:
    """The study's trials in order of number, each with only the user attributes ``attrs``.

    The trials returned are shared with later calls: read them, do not change them.
    """
    backend = backend_of(storage)
    if not isinstance(backend, RDBStorage):
        return [_only(t, attrs) for t in storage.get_all_trials(study_id, deepcopy=False)]
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    keys = tuple(sorted(attrs))
    finished = _FINISHED.setdefault(backend, {}).setdefault((study_id, keys), {})
    trial = models.TrialModel
    with _create_scoped_session(backend.scoped_session) as session:
        ids = [int(i) for (i,) in session.query(trial.trial_id).filter(trial.study_id == study_id)]
        fresh = _read(backend, session, [i for i in ids if i not in finished], keys)
    for t in fresh:
        if t.state.is_finished():
            finished[t._trial_id] = t
    by_id = {**finished, **{t._trial_id: t for t in fresh}}
    return sorted((by_id[i] for i in ids if i in by_id), key=lambda t: t.number)


def _read(
    backend: RDBStorage, session: Any, ids: list[int], keys: tuple[str, ...]
) -> list[FrozenTrial]:
    """The trials ``ids``, built as Optuna builds them, loading only the user attributes
    ``keys``."""
    from optuna.storages._rdb import models
    from sqlalchemy import orm

    trial, user = models.TrialModel, models.TrialUserAttributeModel
    loads = [orm.selectinload(trial.params), orm.selectinload(trial.values),
             orm.selectinload(trial.system_attributes),
             orm.selectinload(trial.intermediate_values),
             orm.selectinload(trial.user_attributes.and_(user.key.in_(keys)))]  # fmt: skip
    out: list[FrozenTrial] = []
    for chunk in _chunks(ids, _CHUNK):
        rows = session.query(trial).options(*loads).filter(trial.trial_id.in_(chunk)).all()
        out += [backend._build_frozen_trial_from_trial_model(r) for r in rows]
    return out


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _only(trial: FrozenTrial, attrs: Collection[str]) -> FrozenTrial:
    import copy

    light = copy.copy(trial)
    light.user_attrs = {k: v for k, v in trial.user_attrs.items() if k in attrs}
    return light
