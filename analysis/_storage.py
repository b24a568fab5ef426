"""Open a study database for reading, without ever creating one.

Storages are opened by the one storage module the sweeper and its jobs use
(:mod:`sweep.study`), so every form the sweeper accepts reads here too: SQLite files and URLs,
journal files (``*.log``, ``*.jsonl``, ``*.journal``, ``journal:///relative``,
``journal:////absolute``) and any SQLAlchemy URL; a problem is one line naming ``--storage``.
"""

from __future__ import annotations

import os
from datetime import datetime

import optuna
from optuna.storages import BaseStorage, RDBStorage

from sweep.record import CONFIRM_SUFFIX
from sweep.study import StorageError
from sweep.study import open_storage as _open
from sweep.study import resolve_storage as _resolve

__all__ = [
    "DEFAULT_STORAGE",
    "AnalysisError",
    "StorageNotFoundError",
    "StudyNotFoundError",
    "list_studies",
    "open_storage",
    "resolve_storage",
    "resolve_study_name",
]

DEFAULT_STORAGE = "sqlite:///outputs/studies.db"
_KEY = "--storage"


class AnalysisError(Exception):
    """A problem the user can fix (wrong path, wrong study name); reported without traceback."""


class StorageNotFoundError(AnalysisError):
    """The storage file does not exist or is not a study database."""


class StudyNotFoundError(AnalysisError):
    """The study name is not in the storage, or the storage holds no study."""


def resolve_storage(storage: str | os.PathLike[str] | None = None) -> str:
    """Turn a storage URL or file path into an absolute URL (password kept; see ``mask_url``).

    Args:
        storage: anything ``hydra.sweeper.storage`` accepts. ``None`` means
            ``sqlite:///outputs/studies.db`` under the current working directory.

    Raises:
        StorageNotFoundError: a malformed value, or a SQLite or journal file that does not exist.
    """
    text = DEFAULT_STORAGE if storage is None else os.fspath(storage)
    try:
        spec = _resolve(text, key=_KEY)
        if spec.path is not None and not spec.path.is_file():
            raise spec.error(
                f"{spec.path} does not exist",
                "pass --storage with the path or URL "
                "of an existing study storage (the sweep's hydra.sweeper.storage)",
            )
    except StorageError as exc:
        raise StorageNotFoundError(str(exc)) from None
    return spec.url


def open_storage(storage: str | os.PathLike[str] | None = None) -> BaseStorage:
    """Open a storage for reading; never creates a database (nor leaves files behind)."""
    url = resolve_storage(storage)
    try:
        return _open(_resolve(url, key=_KEY), create=False, read_only=True)
    except StorageError as exc:
        raise StorageNotFoundError(str(exc)) from None


def list_studies(storage: BaseStorage) -> list[str]:
    """Names of the studies in ``storage``, in creation order."""
    try:
        return [s.study_name for s in storage.get_all_studies()]
    except Exception as exc:
        raise StorageNotFoundError(f"cannot list studies: {type(exc).__name__}: {exc}") from exc


def _latest_start(storage: BaseStorage, name: str) -> datetime | None:
    study_id = storage.get_study_id_from_name(name)
    starts = [
        t.datetime_start
        for t in storage.get_all_trials(study_id, deepcopy=False)
        if t.datetime_start is not None
    ]
    return max(starts, default=None)


def _latest_starts_sql(storage: RDBStorage) -> dict[str, datetime | None]:
    from sqlalchemy import text

    query = text(
        "SELECT s.study_name, MAX(t.datetime_start) FROM studies s "
        "LEFT JOIN trials t ON t.study_id = s.study_id GROUP BY s.study_id, s.study_name"
    )
    with storage.engine.connect() as conn:
        rows = conn.execute(query).all()
    out: dict[str, datetime | None] = {}
    for name, start in rows:
        out[str(name)] = datetime.fromisoformat(start) if isinstance(start, str) else start
    return out


def resolve_study_name(storage: BaseStorage, study: str | None = None) -> str:
    """Check ``study`` exists, or pick the most recent one when it is ``None``.

    The most recent study is the one whose latest trial started last; studies without trials
    rank by creation order after those with trials.

    Raises:
        StudyNotFoundError: unknown name (the message lists the studies that exist) or an
            empty storage.
    """
    names = list_studies(storage)
    if not names:
        raise StudyNotFoundError("the storage holds no study yet; run a sweep first")
    searches = [n for n in names if not n.endswith(CONFIRM_SUFFIX)] or names
    if study is not None:
        if study not in names:
            raise StudyNotFoundError(
                f"no study named {study!r}; studies in this storage: {', '.join(names)}"
            )
        return study
    backend = getattr(storage, "_backend", storage)
    if isinstance(backend, RDBStorage):
        try:
            starts = _latest_starts_sql(backend)
        except Exception:  # an unexpected schema: fall back to the storage API
            starts = {n: _latest_start(storage, n) for n in searches}
    else:
        starts = {n: _latest_start(storage, n) for n in searches}
    order = {n: i for i, n in enumerate(searches)}
    return max(searches, key=lambda n: (starts.get(n) is not None, starts.get(n) or 0, order[n]))


def load_study(storage: BaseStorage, name: str) -> optuna.Study:
    """Load a study by name from an opened storage."""
    return optuna.load_study(study_name=name, storage=storage)
