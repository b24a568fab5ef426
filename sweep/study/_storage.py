"""The one module that opens every storage: for the sweeper, the jobs and the analysis.

Forms accepted (``hydra.sweeper.storage`` and ``python -m analysis --storage``):

==========================================  ==============================================
``sqlite:///relative.db``                   SQLite, relative to the current directory
``sqlite:////absolute.db``                  SQLite, absolute path
``outputs/studies.db`` (a plain path)       SQLite (any suffix but the journal ones)
``runs/study.log`` / ``.jsonl`` / ``.journal``  Optuna journal file
``journal:///relative.log``                 journal file, relative to the current directory
``journal:////absolute.log``                journal file, absolute path
any other SQLAlchemy URL                    e.g. ``postgresql+psycopg2://user@host/db``
==========================================  ==============================================

Every problem becomes one :class:`StorageError` line that names the key, the value (password
masked), the cause and the fix, found before anything is created where it can be: a folder, a
file that is not a database, a read-only file or folder, a missing driver, an unreachable
server. Nothing is left behind by a storage that could not be opened.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

__all__ = [
    "JOURNAL_SUFFIXES",
    "SQLITE_TIMEOUT_S",
    "STORAGE_ENV",
    "StorageError",
    "StorageSpec",
    "mask_secrets",
    "mask_url",
    "open_storage",
    "resolve_storage",
]

JOURNAL_SUFFIXES = (".log", ".jsonl", ".journal")
SQLITE_TIMEOUT_S = 60.0
STORAGE_ENV = "REGSWEEP_STORAGE"
"""Environment variable through which the sweeper hands its jobs the full storage URL, so that
a password never passes through Hydra overrides (which Hydra writes into files and logs)."""
_SQLITE_HEADER = b"SQLite format 3\x00"
_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^@\s]*)@")


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``.

    Example:
        >>> mask_url("postgresql+psycopg2://ann:s3cret@db.example:5432/runs")
        'postgresql+psycopg2://ann:***@db.example:5432/runs'
    """
    return _PASSWORD.sub(r"\1***@", url)


def mask_secrets(text: str, *secrets: str) -> str:
    """``text`` with every URL password masked and every given secret replaced by ``***``."""
    out = mask_url(text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, "***")
    return out


def url_password(url: str) -> str:
    """The password inside ``url`` ('' when there is none)."""
    match = _PASSWORD.search(url)
    return match.group(2) if match else ""


class StorageError(Exception):
    """A storage cannot be used: one line naming the key, the value, the cause and the fix."""

    def __init__(self, key: str, value: str, cause: str, fix: str) -> None:
        self.key, self.value, self.cause, self.fix = key, mask_url(value), cause, fix
        secret = url_password(value)
        cause = mask_secrets(cause, secret)
        super().__init__(f"{key}={self.value!r}: {cause}. Fix: {fix}")


@dataclass(frozen=True)
class StorageSpec:
    """A resolved storage.

    Attributes:
        kind: ``sqlite``, ``journal`` or ``rdb`` (another SQLAlchemy database).
        url: The absolute URL (SQLite: ``sqlite:////abs``; journal: ``journal:////abs``), with
            any password: keep it out of files and logs (use :attr:`masked`).
        path: The file of a SQLite or journal storage.
        given: The value as the user wrote it.
        key: The setting it came from, for messages.
    """

    kind: Literal["sqlite", "journal", "rdb"]
    url: str
    path: Path | None
    given: str
    key: str

    @property
    def masked(self) -> str:
        """The URL with its password masked: safe to print, store and pass around."""
        return mask_url(self.url)

    def error(self, cause: str, fix: str) -> StorageError:
        return StorageError(self.key, self.given, cause, fix)


def resolve_storage(
    value: str | os.PathLike[str],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    key: str = "hydra.sweeper.storage",
) -> StorageSpec:
    """Turn a storage setting into a :class:`StorageSpec` with an absolute path.

    Example:
        >>> resolve_storage("sqlite:///outputs/s.db", base_dir="/tmp").url
        'sqlite:////tmp/outputs/s.db'
        >>> resolve_storage("runs/s.log", base_dir="/tmp").url
        'journal:////tmp/runs/s.log'
    """
    text = os.fspath(value).strip()
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if not text:
        raise StorageError(key, text, "empty", "give a SQLite path, a journal file or a URL")
    for scheme, kind in (("sqlite:///", "sqlite"), ("journal:///", "journal")):
        if text.startswith(scheme):
            rest = text[len(scheme) :]
            if kind == "sqlite" and rest in ("", ":memory:"):
                raise StorageError(
                    key,
                    text,
                    "an in-memory database is lost when the sweep ends, and its "
                    "jobs could not share it",
                    "give a file: sqlite:///outputs/studies.db",
                )
            path = (base / Path(rest).expanduser()).resolve()
            return StorageSpec(kind, f"{scheme}{path}", path, text, key)  # type: ignore[arg-type]
    if "://" not in text:
        path = (base / Path(text).expanduser()).resolve()
        kind = "journal" if path.suffix in JOURNAL_SUFFIXES else "sqlite"
        return StorageSpec(kind, f"{kind}:///{path}", path, text, key)  # type: ignore[arg-type]
    _check_url(text, key)
    return StorageSpec("rdb", text, None, text, key)


def _check_url(url: str, key: str) -> None:
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
        raise StorageError(
            key,
            url,
            f"not a database URL ({exc})",
            "write dialect+driver://user@host:port/database",
        ) from None
    try:
        parsed.get_dialect()
    except sqlalchemy.exc.NoSuchModuleError:
        raise StorageError(
            key,
            url,
            f"unknown database kind {parsed.drivername!r}",
            "use sqlite:///file.db, a journal file (*.log), or a URL such as "
            "postgresql+psycopg2://user@host/db",
        ) from None
    except ImportError as exc:
        extra = (
            " (pip install -e '.[postgres]')" if parsed.drivername.startswith("postgres") else ""
        )
        raise StorageError(
            key, url, f"its driver is not installed ({exc})", f"install the driver{extra}"
        ) from None


# --------------------------------------------------------------------------- checks


def _writable(path: Path) -> bool:
    """Writable by this process and not marked read-only (root may write anything, but a file
    or folder without write permission bits was made read-only on purpose)."""
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)


def _first_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_file(spec: StorageSpec, *, create: bool) -> None:
    """Everything about a SQLite or journal file that can be checked without opening it."""
    path = spec.path
    assert path is not None
    what = "SQLite database" if spec.kind == "sqlite" else "Optuna journal file"
    if path.is_dir():
        raise spec.error(
            f"{path} is a folder, not a {what}",
            f"name a file inside it, e.g. {path / 'studies.db'}",
        )
    if path.exists():
        if not path.is_file():
            raise spec.error(f"{path} is not a regular file", f"name a {what}")
        if spec.kind == "sqlite" and path.stat().st_size > 0:
            with open(path, "rb") as f:
                head = f.read(len(_SQLITE_HEADER))
            if head != _SQLITE_HEADER:
                raise spec.error(
                    f"{path} is not a SQLite database",
                    f"name a {what} or a new file; journal files end in .log, .jsonl or .journal",
                )
        if create and not _writable(path):
            raise spec.error(
                f"{path} is read-only", "make it writable (chmod u+w) or name another file"
            )
        if create and not _writable(path.parent):
            raise spec.error(
                f"its folder {path.parent} is read-only (the database needs to "
                "write lock files beside it)",
                "make the folder writable or use another one",
            )
        return
    if not create:
        raise spec.error(
            f"no such file {path}",
            "give the path of an existing study storage (the sweep's hydra.sweeper.storage)",
        )
    anchor = _first_existing(path.parent)
    if not anchor.is_dir():
        raise spec.error(
            f"{anchor} is a file, so {path.parent} cannot be a folder", "choose another path"
        )
    if not _writable(anchor):
        raise spec.error(f"cannot create {path}: {anchor} is read-only", "choose a writable folder")


# --------------------------------------------------------------------------- opening


def open_storage(
    spec: StorageSpec,
    *,
    create: bool = True,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    read_only: bool = False,
) -> BaseStorage:
    """Open ``spec``; with ``create=False`` a missing file is an error, never a new database.

    Heartbeats (stale-trial detection) exist for database storages only. SQLite is put in WAL
    mode with a 60 s busy timeout and ``synchronous=NORMAL``, so several local workers and a
    reader (analysis, optuna-dashboard) wait for each other instead of failing.

    Raises:
        StorageError: The storage cannot be used; nothing was created or left behind.
    """
    if spec.kind in ("sqlite", "journal"):
        _check_file(spec, create=create and not read_only)
    if spec.kind == "journal":
        return _open_journal(spec)
    kwargs: dict[str, Any] = {}
    if heartbeat_interval is not None:
        kwargs["heartbeat_interval"] = heartbeat_interval
        kwargs["grace_period"] = grace_period or 2 * heartbeat_interval
    if spec.kind == "sqlite":
        return _open_sqlite(spec, kwargs, read_only=read_only)
    kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    if spec.url.startswith("postgresql"):
        kwargs["engine_kwargs"]["connect_args"] = {"connect_timeout": 10}
    return _rdb(spec, kwargs, create=create)


def _open_journal(spec: StorageSpec) -> BaseStorage:
    assert spec.path is not None
    existed = spec.path.exists()
    try:
        spec.path.parent.mkdir(parents=True, exist_ok=True)
        storage = JournalStorage(JournalFileBackend(str(spec.path)))
        storage.get_all_studies()  # replays the file now: a broken one fails here, not later
    except Exception as exc:
        if not existed:
            with contextlib.suppress(OSError):
                spec.path.unlink()
        raise spec.error(
            f"not a readable Optuna journal file ({type(exc).__name__}: {_first_line(exc)})",
            "name an Optuna journal file or a new file",
        ) from None
    return storage


def _open_sqlite(spec: StorageSpec, kwargs: dict[str, Any], *, read_only: bool) -> BaseStorage:
    path = spec.path
    assert path is not None
    before = {p: p.exists() for p in _sqlite_files(path)}
    url = spec.url
    if read_only and not os.access(path.parent, os.W_OK):
        url = f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true"
    try:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
            _wal_mode(path)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
        storage = _rdb(spec, kwargs, create=not read_only, url=url)
        if not read_only:
            _normal_sync(storage)
        return storage
    except StorageError:
        _remove_new(before)
        raise
    except (sqlite3.Error, OSError) as exc:
        _remove_new(before)
        raise spec.error(
            f"SQLite cannot open {path} ({_first_line(exc)})", "check the file and its folder"
        ) from None


def _sqlite_files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def _remove_new(before: dict[Path, bool]) -> None:
    """Remove the files an attempt created (never one that was there before it)."""
    for p, existed in before.items():
        if not existed:
            with contextlib.suppress(OSError):
                p.unlink()


def _wal_mode(path: Path) -> None:
    """Put the file in WAL mode (it stays so). Switching needs the file to itself, and SQLite
    answers 'database is locked' at once, without waiting, when workers started together are
    opening it too: wait for them, or find that one of them has already switched it."""
    deadline = time.monotonic() + SQLITE_TIMEOUT_S
    while True:
        con = sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S)
        try:
            if con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        finally:
            con.close()
        time.sleep(random.uniform(0.02, 0.1))


def _normal_sync(storage: RDBStorage) -> None:
    """``synchronous=NORMAL`` on every connection: under WAL a commit skips its fsync (the
    database stays consistent; a power cut may lose the last commits)."""
    import sqlalchemy

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    sqlalchemy.event.listen(storage.engine, "connect", on_connect)
    storage.engine.dispose()  # connections opened before the listener are replaced


def _rdb(
    spec: StorageSpec,
    kwargs: dict[str, Any],
    *,
    create: bool,
    url: str | None = None,
    attempts: int = 6,
) -> RDBStorage:
    """Open an RDB storage, retrying while other workers create the same schema (workers
    started together on an empty database race on Optuna's tables: optuna#1092)."""
    import sqlalchemy.exc
    from optuna.exceptions import StorageInternalError

    for attempt in range(attempts):
        try:
            try:
                return RDBStorage(url or spec.url, skip_table_creation=not create, **kwargs)
            except StorageInternalError as wrapped:  # Optuna wraps what a session raised
                if isinstance(wrapped.__cause__, sqlalchemy.exc.SQLAlchemyError):
                    raise wrapped.__cause__ from None
                raise
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as exc:
            if attempt == attempts - 1 or not create:
                raise spec.error(
                    f"not an Optuna study database ({_first_line(exc)})",
                    "name a regsweep/Optuna storage",
                ) from None
        except sqlalchemy.exc.OperationalError as exc:
            text = _first_line(exc)
            racing = "locked" in text or (create and "already exists" in text)
            if racing and attempt < attempts - 1:
                pass  # another worker is creating the same tables (SQLite says so this way)
            elif spec.kind == "rdb":
                raise spec.error(
                    f"cannot connect to the database server ({text})",
                    "check the host, port, user and that the server is running; "
                    "give the password through PGPASSWORD or ~/.pgpass rather "
                    "than in the URL",
                ) from None
            else:
                raise spec.error(
                    f"SQLite cannot use {spec.path} ({text})", "check the file and its folder"
                ) from None
        except (
            sqlalchemy.exc.DatabaseError,
            StorageInternalError,
            ValueError,
            RuntimeError,
        ) as exc:
            raise spec.error(
                f"not a usable Optuna study database ({_first_line(exc)})",
                "name a regsweep/Optuna storage",
            ) from None
        time.sleep(random.uniform(0.2, 0.8) * (attempt + 1))
    raise AssertionError("unreachable")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
