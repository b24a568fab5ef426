"""Reading a study's trials for a sampler or a pruner: without the user attributes they do not
look at, and each finished trial once per process.

Optuna's cached storage reads every unfinished trial again, with all its user attributes, each
time a sampler or a pruner asks for the study's trials; a regsweep trial carries its whole job
config there while it runs and its whole record (curves included) once it ends, ~1–2 ms of
parsing per trial. A population refills a slot, or judges its members, many times a second, so
those reads were a large part of what a trial costs beyond its training. :func:`light_trials`
returns the same trials (state, values, parameters, distributions, reports, sampler
attributes) with only the user attributes named, and keeps the finished ones, which never
change, for the next call. Trials this process ends itself are kept as it ended them
(:func:`remember_ended`), so the next call need not read them back either. On storages other
than a database it is the storage's own read.
"""

from __future__ import annotations

import copy
import datetime
import functools
import json
import weakref
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from optuna.distributions import BaseDistribution, json_to_distribution
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial

from ..record import json_safe
from ._writes import backend_of

__all__ = ["light_trials", "remember_ended"]

_CHUNK = 500  # trial ids per IN (...) list


# backend → (study id, user attribute keys) → finished trials by id, as read or as ended here
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
        fresh = _read(session, [i for i in ids if i not in finished], keys)
    read = {t._trial_id: t for t in fresh}
    finished.update((i, t) for i, t in read.items() if t.state.is_finished())
    trials = [read.get(i) or finished.get(i) for i in ids]
    return sorted((t for t in trials if t is not None), key=lambda t: t.number)


def remember_ended(storage: BaseStorage, study_id: int, ended: Sequence[FrozenTrial]) -> None:
    """Keep trials of study ``study_id`` that this process has just finished for later
    :func:`light_trials` calls, as reading them back would return them: ``ended`` must hold
    everything stored for each trial (state, values, parameters, every report, sampler and
    user attributes). A population's refill then reads none of the members that just ended
    (32 of them: ~5 ms a refill)."""
    backend = backend_of(storage)
    kept_by = _FINISHED.get(backend) if isinstance(backend, RDBStorage) else None
    if not kept_by:
        return
    done = [t for t in ended if t.state.is_finished()]
    for (study, keys), finished in kept_by.items():
        if study == study_id:
            finished.update((t._trial_id, _as_read(t, keys)) for t in done)


def _read(session: Any, ids: list[int], keys: tuple[str, ...]) -> list[FrozenTrial]:
    """The trials ``ids`` as Optuna builds them, with only the user attributes ``keys``: plain
    column reads (one query per table), not ORM objects, which cost ~1 ms per trial."""
    out: list[FrozenTrial] = []
    for chunk in _chunks(ids, _CHUNK):
        out += [_frozen(i, part) for i, part in _parts(session, chunk, keys).items()]
    return out


def _parts(session: Any, ids: list[int], keys: tuple[str, ...]) -> dict[int, dict[str, Any]]:
    from optuna.storages._rdb import models as m
    from sqlalchemy import select

    t = m.TrialModel
    rows = session.execute(
        select(
            t.trial_id, t.number, t.state, t._datetime_start_utc, t._datetime_complete_utc
        ).where(t.trial_id.in_(ids))
    )
    parts: dict[int, dict[str, Any]] = {
        int(i): {
            "number": n,
            "state": state,
            "start": _local(a),
            "complete": _local(b),
            "params": [],
            "values": {},
            "reports": {},
            "system": {},
            "user": {},
        }
        for i, n, state, a, b in rows
    }

    def each(stmt: Any) -> Iterable[tuple[dict[str, Any], tuple[Any, ...]]]:
        for row in session.execute(stmt.where(stmt.selected_columns[0].in_(ids))):
            yield parts[int(row[0])], tuple(row[1:])

    p, v = m.TrialParamModel, m.TrialValueModel
    r, a, u = m.TrialIntermediateValueModel, m.TrialSystemAttributeModel, m.TrialUserAttributeModel
    for part, row in each(
        select(p.trial_id, p.param_id, p.param_name, p.param_value, p.distribution_json)
    ):
        part["params"].append(row)
    for part, (objective, value, kind) in each(
        select(v.trial_id, v.objective, v.value, v.value_type)
    ):
        part["values"][objective] = v.stored_repr_to_value(value, kind)
    for part, (step, value, kind) in each(
        select(r.trial_id, r.step, r.intermediate_value, r.intermediate_value_type)
    ):
        part["reports"][step] = r.stored_repr_to_intermediate_value(value, kind)
    for part, (key, text) in each(select(a.trial_id, a.key, a.value_json)):
        part["system"][key] = json.loads(text)
    if keys:
        for part, (key, text) in each(
            select(u.trial_id, u.key, u.value_json).where(u.key.in_(keys))
        ):
            part["user"][key] = json.loads(text)
    return parts


def _frozen(trial_id: int, part: dict[str, Any]) -> FrozenTrial:
    params = sorted(part["params"])  # in the order they were set, as Optuna returns them
    dists = {name: _distribution(text) for _, name, _, text in params}
    values = part["values"]
    return FrozenTrial(
        number=part["number"],
        state=part["state"],
        value=None,
        values=[values[k] for k in sorted(values)] if values else None,
        datetime_start=part["start"],
        datetime_complete=part["complete"],
        params={name: dists[name].to_external_repr(value) for _, name, value, _ in params},
        distributions=dists,
        user_attrs=part["user"],
        system_attrs=part["system"],
        intermediate_values=dict(sorted(part["reports"].items())),
        trial_id=trial_id,
    )


@functools.lru_cache(maxsize=256)
def _distribution(text: str) -> BaseDistribution:
    return json_to_distribution(text)


def _local(utc: datetime.datetime | None) -> datetime.datetime | None:
    """A stored naive-UTC time as the naive local time Optuna's trials carry."""
    if utc is None:
        return None
    return utc.replace(tzinfo=datetime.timezone.utc).astimezone().replace(tzinfo=None)


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _as_read(trial: FrozenTrial, keys: Collection[str]) -> FrozenTrial:
    """A trial held in memory as :func:`_read` would return it, with the user attributes
    ``keys``: attributes as JSON gives them back, reports in order of step."""
    light = copy.copy(trial)
    light._user_attrs = {k: json_safe(v) for k, v in trial.user_attrs.items() if k in keys}
    light._system_attrs = json_safe(trial.system_attrs)
    light.intermediate_values = dict(sorted(trial.intermediate_values.items()))
    light._params, light._distributions = dict(trial.params), dict(trial.distributions)
    return light


def _only(trial: FrozenTrial, attrs: Collection[str]) -> FrozenTrial:
    light = copy.copy(trial)
    light.user_attrs = {k: v for k, v in trial.user_attrs.items() if k in attrs}
    return light
