"""Open a study database for reading, without ever creating one."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

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
_JOURNAL_SUFFIXES = (".log", ".jsonl")
_SQLITE_PREFIX = "sqlite:///"


class AnalysisError(Exception):
    """A problem the user can fix (wrong path, wrong study name); reported without traceback."""


class StorageNotFoundError(AnalysisError):
    """The storage file does not exist or is not a study database."""


class StudyNotFoundError(AnalysisError):
    """The study name is not in the storage, or the storage holds no study."""


def resolve_storage(storage: str | os.PathLike[str] | None = None) -> str:
    """Turn a storage URL or file path into an absolute URL or journal path.

    Args:
        storage: ``sqlite:///relative.db``, any SQLAlchemy URL, a plain path to a SQLite file,
            or a path ending in ``.log``/``.jsonl`` (Optuna journal file). ``None`` means
            ``sqlite:///outputs/studies.db`` under the current working directory.

    Returns:
        ``sqlite:////abs/path.db`` for SQLite, the URL unchanged for other databases, or the
        absolute journal path (no scheme) for journal files.

    Raises:
        StorageNotFoundError: a SQLite or journal file that does not exist.
    """
    text = DEFAULT_STORAGE if storage is None else os.fspath(storage)
    if text.startswith(_SQLITE_PREFIX):
        path = Path(text[len(_SQLITE_PREFIX) :])
    elif "://" in text:
        return text  # PostgreSQL, MySQL, ...: the server says whether it exists.
    else:
        path = Path(text)
    path = path.expanduser().resolve()
    if not path.is_file():
        raise StorageNotFoundError(
            f"storage file {path} does not exist (given: {text!r}); pass --storage with the "
            "path or sqlite:/// URL of an existing study database"
        )
    if path.suffix in _JOURNAL_SUFFIXES:
        return str(path)
    return f"{_SQLITE_PREFIX}{path}"


def open_storage(storage: str | os.PathLike[str] | None = None) -> BaseStorage:
    """Open a storage read-friendly (SQLite busy timeout 30 s); never creates a database."""
    resolved = resolve_storage(storage)
    if "://" not in resolved:
        return JournalStorage(JournalFileBackend(resolved))
    kwargs: dict[str, object] = {}
    if resolved.startswith(_SQLITE_PREFIX):
        kwargs = {"connect_args": {"timeout": 30}}
    try:
        return RDBStorage(resolved, engine_kwargs=kwargs, skip_table_creation=True)
    except Exception as exc:  # sqlalchemy / optuna errors: not a study database
        raise StorageNotFoundError(
            f"{resolved} is not a readable Optuna study database ({type(exc).__name__}: {exc})"
        ) from exc


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
    if study is not None:
        if study not in names:
            raise StudyNotFoundError(
                f"no study named {study!r}; studies in this storage: {', '.join(names)}"
            )
        return study
    if isinstance(storage, RDBStorage):
        try:
            starts = _latest_starts_sql(storage)
        except Exception:  # an unexpected schema: fall back to the storage API
            starts = {n: _latest_start(storage, n) for n in names}
    else:
        starts = {n: _latest_start(storage, n) for n in names}
    order = {n: i for i, n in enumerate(names)}
    return max(names, key=lambda n: (starts.get(n) is not None, starts.get(n) or 0, order[n]))


def load_study(storage: BaseStorage, name: str) -> optuna.Study:
    """Load a study by name from an opened storage."""
    return optuna.load_study(study_name=name, storage=storage)
