"""Writing many trials at once: new trials, attributes, parameters, reports and final states in
one transaction.

Optuna's storage API commits every attribute and every report on its own: ~50 commits for a
trial's record, thousands for a population. On database storages these functions write any
number of trials in one transaction, with multi-row upserts on SQLite and PostgreSQL (one
statement per table instead of one per value). They use RDBStorage's models and its
``*_without_commit`` methods, as Optuna's own writers do; ``tests/test_study.py`` pins them.
Other storages (Optuna's journal) get the same writes one by one.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial, TrialState

from ..record import json_safe

__all__ = [
    "Write",
    "create_trials",
    "ended_among",
    "json_text",
    "numbers_without",
    "record_heartbeats",
    "write_many",
]

_CHUNK = 200  # rows per multi-row statement (SQLite allows 999 variables in old builds)


@dataclass
class Write:
    """What to store for one running trial: user attributes (stored as :func:`json_safe`
    makes them), reports by step, sampler (system) attributes, parameters (name → internal
    value and distribution), and optionally its final state and values."""

    trial_id: int
    attrs: Mapping[str, Any] = field(default_factory=dict)
    reports: Mapping[int, float] = field(default_factory=dict)
    ending: tuple[TrialState, Sequence[float] | None] | None = None
    system_attrs: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, tuple[float, BaseDistribution]] = field(default_factory=dict)
    heartbeat: bool = False  # record a heartbeat too (database storages that keep them)

    @property
    def empty(self) -> bool:
        return not (
            self.attrs
            or self.reports
            or self.ending
            or self.system_attrs
            or self.params
            or self.heartbeat
        )


_encode_str = json.encoder.encode_basestring_ascii  # what json.dumps writes for a str


def json_text(value: Any) -> str:
    """``json.dumps(json_safe(value))``, with the scalars that make most of a record (its
    numbers and words) written directly: json.dumps costs ~4 µs a call, ~40 calls a trial."""
    kind = type(value)
    if kind is float:
        return float.__repr__(value) if math.isfinite(value) else "null"
    if kind is str:
        return _encode_str(value)
    if kind is int:
        return int.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    return json.dumps(json_safe(value))


def backend_of(storage: BaseStorage) -> BaseStorage:
    return getattr(storage, "_backend", storage)  # Optuna wraps RDB storages in a cache


def new_frozen(
    number: int, trial_id: int, start: datetime, attrs: Mapping[str, Any]
) -> FrozenTrial:
    """The in-memory record of a trial just created RUNNING with user attributes ``attrs``."""
    return FrozenTrial(
        number=number,
        state=TrialState.RUNNING,
        value=None,
        values=None,
        datetime_start=start,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs=dict(attrs),
        system_attrs={},
        intermediate_values={},
        trial_id=trial_id,
    )


def create_trials(
    storage: BaseStorage, study_id: int, n: int, attrs: Mapping[str, Any]
) -> list[FrozenTrial]:
    """Create ``n`` RUNNING trials with user attributes ``attrs`` (JSON-safe), numbered after
    the study's last, in one transaction on database storages. As in Optuna, the rows are
    inserted first and numbered by the trials before them, with the study row locked
    (PostgreSQL) or the database's write lock held (SQLite): concurrent workers never share a
    number."""
    if n <= 0:
        return []
    backend = backend_of(storage)
    if not isinstance(backend, RDBStorage):
        made = []
        for _ in range(n):
            template = new_frozen(-1, -1, datetime.now(), attrs)
            trial_id = storage.create_new_trial(study_id, template_trial=template)
            made.append(storage.get_trial(trial_id))
        return made
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy import func

    start = datetime.now()
    with _create_scoped_session(backend.scoped_session, True) as session:
        models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
        # the inserts take SQLite's write lock: nobody adds a trial until commit
        ids = sorted(_insert_running(backend, session, study_id, n, start))
        base = (
            session.query(func.count(models.TrialModel.trial_id))
            .filter(models.TrialModel.study_id == study_id, models.TrialModel.trial_id < ids[0])
            .scalar()
        )
        # numbered as Optuna numbers a trial: by the trials before it
        _number(session, {trial_id: base + i for i, trial_id in enumerate(ids)})
        made = [new_frozen(base + i, trial_id, start, attrs) for i, trial_id in enumerate(ids)]
        _upsert_attrs(
            backend,
            session,
            models.TrialUserAttributeModel,
            [(t._trial_id, k, json_text(v)) for t in made for k, v in attrs.items()],
        )
    cache = getattr(storage, "_add_trials_to_cache", None)
    if cache is not None:  # Optuna's cache over the RDB storage learns them as it would
        with storage._lock:  # type: ignore[attr-defined]
            studies = storage._studies  # type: ignore[attr-defined]
            if study_id not in studies:
                from optuna.storages._cached_storage import _StudyInfo

                studies[study_id] = _StudyInfo()
            cache(study_id, [copy.deepcopy(t) for t in made])
    return made


def _insert_running(
    backend: RDBStorage, session: Any, study_id: int, n: int, start: datetime
) -> list[int]:
    """Insert ``n`` unnumbered RUNNING trial rows; their ids. One statement with RETURNING
    where the database keeps the rows' order (SQLite, PostgreSQL): the ORM's unit of work
    spent ~0.1 ms a row."""
    from optuna.storages._rdb import models
    from sqlalchemy import insert

    table = models.TrialModel.__table__
    if getattr(
        backend.engine.dialect, "insert_executemany_returning_sort_by_parameter_order", False
    ):
        row = {
            "study_id": study_id,
            "number": None,
            "state": TrialState.RUNNING,
            "datetime_start": start,
        }
        stmt = insert(table).returning(table.c.trial_id, sort_by_parameter_order=True)
        return [int(i) for i in session.execute(stmt, [row] * n).scalars().all()]
    rows = [
        models.TrialModel(
            study_id=study_id, number=None, state=TrialState.RUNNING, datetime_start=start
        )
        for _ in range(n)
    ]
    session.add_all(rows)
    session.flush()
    return [int(r.trial_id) for r in rows]


def _number(session: Any, numbers: Mapping[int, int]) -> None:
    """Set the numbers of trial rows (``{trial_id: number}``) in one executemany."""
    from optuna.storages._rdb import models
    from sqlalchemy import bindparam, update

    table = models.TrialModel.__table__
    stmt = (
        update(table)
        .where(table.c.trial_id == bindparam("id_"))
        .values(number=bindparam("number_"))
    )
    session.connection().execute(
        stmt, [{"id_": i, "number_": number} for i, number in numbers.items()]
    )


def write_many(storage: BaseStorage, writes: Iterable[Write]) -> set[int]:
    """Store ``writes``; return the ids of the trials written. A trial that is already finished
    (another process ended it) is skipped entirely, in the same transaction that checks it."""
    items = list(writes)
    if not items:
        return set()
    backend = backend_of(storage)
    if isinstance(backend, RDBStorage):
        return _rdb(backend, items)
    done = set()
    for w in items:
        try:
            for step, value in w.reports.items():
                storage.set_trial_intermediate_value(w.trial_id, step, value)
            for key, value in w.attrs.items():
                storage.set_trial_user_attr(w.trial_id, key, json_safe(value))
            for key, value in w.system_attrs.items():
                storage.set_trial_system_attr(w.trial_id, key, json_safe(value))
            for name, (internal, dist) in w.params.items():
                storage.set_trial_param(w.trial_id, name, internal, dist)
            if w.ending is not None and not storage.set_trial_state_values(w.trial_id, *w.ending):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        done.add(w.trial_id)
    return done


def _rdb(backend: RDBStorage, items: list[Write]) -> set[int]:
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    ids = [w.trial_id for w in items]
    with _create_scoped_session(backend.scoped_session, True) as session:
        rows = (
            session.query(models.TrialModel)
            .filter(models.TrialModel.trial_id.in_(ids))
            .with_for_update()
            .all()
        )
        trials: dict[Any, Any] = {t.trial_id: t for t in rows if not t.state.is_finished()}
        live = [w for w in items if w.trial_id in trials]
        attrs = [(w.trial_id, k, json_text(v)) for w in live for k, v in w.attrs.items()]
        system = [(w.trial_id, k, json_text(v)) for w in live for k, v in w.system_attrs.items()]
        reports = [(w.trial_id, s, v) for w in live for s, v in w.reports.items()]
        _upsert_attrs(backend, session, models.TrialUserAttributeModel, attrs)
        _upsert_attrs(backend, session, models.TrialSystemAttributeModel, system)
        _upsert_params(
            backend,
            session,
            [
                (w.trial_id, name, internal, dist)
                for w in live
                for name, (internal, dist) in w.params.items()
            ],
        )
        _upsert_reports(backend, session, reports)
        ending = [w for w in live if w.ending is not None]
        _upsert_values(backend, session, trials, ending)
        _beat(backend, session, [w.trial_id for w in live if w.heartbeat])
        now = datetime.now()
        for w in ending:
            assert w.ending is not None
            trial = trials[w.trial_id]
            trial.state = w.ending[0]
            trial.datetime_complete = now
    return {w.trial_id for w in live}


def ended_among(
    storage: BaseStorage, trial_ids: Sequence[int], key: str
) -> dict[int, tuple[TrialState, Any]]:
    """Those of ``trial_ids`` that are not RUNNING any more: their state and user attribute
    ``key`` (None when missing), in one query on a database storage."""
    ids = list(trial_ids)
    if not ids:
        return {}
    backend = backend_of(storage)
    if not isinstance(backend, RDBStorage):
        read = [storage.get_trial(i) for i in ids]
        return {
            t._trial_id: (t.state, t.user_attrs.get(key))
            for t in read
            if t.state != TrialState.RUNNING
        }
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    trial, attr = models.TrialModel, models.TrialUserAttributeModel
    with _create_scoped_session(backend.scoped_session) as session:
        rows = (
            session.query(trial.trial_id, trial.state, attr.value_json)
            .outerjoin(attr, (attr.trial_id == trial.trial_id) & (attr.key == key))
            .filter(trial.trial_id.in_(ids), trial.state != TrialState.RUNNING)
            .all()
        )
    return {
        int(i): (TrialState(state), None if v is None else json.loads(v)) for i, state, v in rows
    }


def numbers_without(
    storage: BaseStorage, study_id: int, key: str, values: Sequence[str]
) -> list[int]:
    """The numbers of the study's trials whose user attribute ``key`` is not one of ``values``
    (missing counts as not), in order: one query on a database storage, where reading the
    trials would load every attribute of every running trial (~1 ms each)."""
    backend = backend_of(storage)
    if not isinstance(backend, RDBStorage):
        trials = storage.get_all_trials(study_id, deepcopy=False)
        return sorted(t.number for t in trials if t.user_attrs.get(key) not in values)
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    trial, attr = models.TrialModel, models.TrialUserAttributeModel
    with _create_scoped_session(backend.scoped_session) as session:
        left_out = session.query(attr.trial_id).filter(
            attr.key == key, attr.value_json.in_([json.dumps(v) for v in values])
        )
        rows = (
            session.query(trial.number)
            .filter(trial.study_id == study_id, ~trial.trial_id.in_(left_out))
            .order_by(trial.number)
            .all()
        )
    return [int(r[0]) for r in rows]


def record_heartbeats(storage: BaseStorage, trial_ids: Sequence[int]) -> None:
    """Optuna's ``record_heartbeat`` for many trials in one transaction (the database's clock,
    as Optuna's stale-trial check reads it)."""
    ids = list(trial_ids)
    if not ids:
        return
    backend = backend_of(storage)
    if not isinstance(backend, RDBStorage):
        for trial_id in ids:
            storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
        return
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session, True) as session:
        _beat(backend, session, ids)


def _beat(backend: RDBStorage, session: Any, ids: list[int]) -> None:
    """A heartbeat for each of ``ids`` at the database's clock, in ``session``."""
    if not ids:
        return
    from optuna.storages._rdb import models
    from sqlalchemy import func

    model = models.TrialHeartbeatModel
    now = session.execute(func.now()).scalar()

    def one(row: dict[str, Any]) -> None:
        beat = session.query(model).filter(model.trial_id == row["trial_id"]).one_or_none()
        if beat is None:
            session.add(model(**row))
        else:
            beat.heartbeat = row["heartbeat"]

    _upsert(
        backend,
        session,
        model,
        [model.trial_id],
        [{"trial_id": i, "heartbeat": now} for i in ids],
        one,
    )


def _dialect_insert(backend: RDBStorage) -> Any:
    name = backend.engine.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert

        return insert
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    return None


def _upsert(
    backend: RDBStorage,
    session: Any,
    model: Any,
    keys: list[Any],
    rows: list[dict[str, Any]],
    fallback: Any,
) -> None:
    """Insert-or-update ``rows`` of ``model`` (unique on ``keys``) with one compiled statement
    executed for all rows; ``fallback(row)`` writes one row on other databases."""
    if not rows:
        return
    insert = _dialect_insert(backend)
    if insert is None:
        for row in rows:
            fallback(row)
        return
    table = model.__table__
    names = tuple(k.key for k in keys)
    columns = tuple(rows[0])
    raw = _sqlite_upsert(table, names, columns) if backend.engine.name == "sqlite" else None
    if raw is not None:
        sql, enums = raw
        params = [tuple(row[c] for c in columns) for row in rows]
        if enums:
            params = [
                tuple(
                    v.name if i in enums and isinstance(v, enum.Enum) else v
                    for i, v in enumerate(p)
                )
                for p in params
            ]
        session.connection().exec_driver_sql(sql, params)
        return
    # the table, not the mapped class: an ORM-enabled insert spends ~20 µs of Python per row
    session.execute(_upsert_statement(insert, table, names, columns), rows)


def _upsert_statement(insert: Any, table: Any, names: Sequence[str], columns: Sequence[str]) -> Any:
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c[k] for k in names],
        set_={c: stmt.excluded[c] for c in columns if c not in names},
    )


_DRIVER_TYPES = ("Integer", "String", "Text", "Float", "Enum")


@functools.cache
def _sqlite_upsert(
    table: Any, names: tuple[str, ...], columns: tuple[str, ...]
) -> tuple[str, frozenset[int]] | None:
    """The SQL of the upsert of ``columns`` rows into ``table`` on SQLite, compiled once, and
    the positions of its enum columns (stored by name); None when a column needs SQLAlchemy's
    conversion (a date). Executed on the session's connection with plain tuples, the rows skip
    SQLAlchemy's per-row parameter processing (~2.5 µs a row, ~2,000 rows for 32 trials'
    records)."""
    from sqlalchemy.dialects import sqlite

    kinds = [type(table.c[c].type).__name__ for c in columns]
    if any(k not in _DRIVER_TYPES for k in kinds):
        return None
    stmt = _upsert_statement(sqlite.insert, table, names, columns)
    compiled = stmt.compile(dialect=sqlite.dialect(), column_keys=list(columns))
    if list(compiled.positiontup or []) != list(columns):
        return None
    return str(compiled), frozenset(i for i, k in enumerate(kinds) if k == "Enum")


def _upsert_attrs(
    backend: RDBStorage, session: Any, model: Any, rows: list[tuple[int, str, str]]
) -> None:
    """User or system attributes (``model``): (trial id, key, JSON text) rows."""

    def one(row: dict[str, Any]) -> None:
        backend._set_trial_attr_without_commit(
            session, model, row["trial_id"], row["key"], json.loads(row["value_json"])
        )

    _upsert(
        backend,
        session,
        model,
        [model.trial_id, model.key],
        [{"trial_id": t, "key": k, "value_json": v} for t, k, v in rows],
        one,
    )


def _upsert_params(
    backend: RDBStorage, session: Any, rows: list[tuple[int, str, float, BaseDistribution]]
) -> None:
    from optuna.distributions import distribution_to_json
    from optuna.storages._rdb import models

    model = models.TrialParamModel

    def one(row: dict[str, Any]) -> None:
        session.add(model(**row))

    _upsert(
        backend,
        session,
        model,
        [model.trial_id, model.param_name],
        [
            {
                "trial_id": t,
                "param_name": name,
                "param_value": value,
                "distribution_json": distribution_to_json(dist),
            }
            for t, name, value, dist in rows
        ],
        one,
    )


def _upsert_reports(backend: RDBStorage, session: Any, rows: list[tuple[int, int, float]]) -> None:
    from optuna.storages._rdb import models

    model = models.TrialIntermediateValueModel
    values = []
    for trial_id, step, value in rows:
        stored, kind = model.intermediate_value_to_stored_repr(value)
        values.append(
            {
                "trial_id": trial_id,
                "step": step,
                "intermediate_value": stored,
                "intermediate_value_type": kind,
            }
        )

    def one(row: dict[str, Any]) -> None:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            backend._set_trial_intermediate_value_without_commit(
                session,
                row["trial_id"],
                row["step"],
                model.stored_repr_to_intermediate_value(
                    row["intermediate_value"], row["intermediate_value_type"]
                ),
            )

    _upsert(backend, session, model, [model.trial_id, model.step], values, one)


def _upsert_values(
    backend: RDBStorage, session: Any, trials: dict[Any, Any], writes: list[Write]
) -> None:
    from optuna.storages._rdb import models

    model = models.TrialValueModel
    rows = []
    for w in writes:
        assert w.ending is not None
        for objective, value in enumerate(w.ending[1] or []):
            stored, kind = model.value_to_stored_repr(value)
            rows.append(
                {
                    "trial_id": w.trial_id,
                    "objective": objective,
                    "value": stored,
                    "value_type": kind,
                }
            )

    def one(row: dict[str, Any]) -> None:
        value = model.stored_repr_to_value(row["value"], row["value_type"])
        backend._set_trial_value_without_commit(
            session, trials[row["trial_id"]], row["objective"], value
        )

    _upsert(backend, session, model, [model.trial_id, model.objective], rows, one)
