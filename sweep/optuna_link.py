"""Everything between a job and its Optuna trial: storages, pruners, and reconnecting to a trial.

The sweeper asks the study for a trial and hands the job only ``(storage URL, study, number)``.
The job reopens the same storage, rebuilds the study's pruner from the spec stored in the study,
and works with that trial. This works in-process, across processes and across machines, as long
as the storage is shared. Optuna documents constructing ``Trial`` directly as not recommended, so
``tests/test_optuna_link.py`` pins the behaviour and a version bump that breaks it fails there.
"""

from __future__ import annotations

import copy
import math
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from .record import STUDY_PRUNER

__all__ = [
    "PRUNERS",
    "TrialHandle",
    "fail_stale_trials",
    "make_pruner",
    "open_storage",
    "open_trial",
    "resolve_storage_url",
    "supports_heartbeat",
]

# We drive heartbeats ourselves around ask-and-tell (see ``heartbeat``), which Optuna calls
# experimental and warns about on every ask; the warnings would drown the sweep's output.
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
warnings.filterwarnings(
    "ignore", message=".*heartbeat_interval.*", category=optuna.exceptions.ExperimentalWarning
)
warnings.filterwarnings(
    "ignore", message=".*grace_period.*", category=optuna.exceptions.ExperimentalWarning
)

PRUNERS = (
    "none",
    "median",
    "percentile",
    "successive_halving",
    "hyperband",
    "threshold",
    "wilcoxon",
)
_JOURNAL_SUFFIXES = (".log", ".jsonl", ".journal")
SQLITE_TIMEOUT_S = 60.0


def resolve_storage_url(url: str, base_dir: str | Path | None = None) -> str:
    """Make a storage URL independent of the working directory.

    ``sqlite:///rel/path.db`` and plain paths become absolute (``base_dir`` or the cwd); paths
    ending in ``.log``/``.jsonl``/``.journal`` (or ``journal:///path``) name a journal file.
    Other SQLAlchemy URLs (``postgresql://...``) are returned as they are.

    Example:
        >>> resolve_storage_url("sqlite:///outputs/s.db", "/tmp")
        'sqlite:////tmp/outputs/s.db'
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if path in ("", ":memory:"):
            return url
        return "sqlite:///" + str((base / Path(path).expanduser()).resolve())
    if url.startswith("journal:///"):
        return "journal:///" + str((base / Path(url[len("journal:///") :])).resolve())
    if "://" not in url:
        file = (base / Path(url).expanduser()).resolve()
        scheme = "journal:///" if file.suffix in _JOURNAL_SUFFIXES else "sqlite:///"
        return scheme + str(file)
    return url


def _prepare_sqlite(path: Path) -> None:
    """Create the folder and switch the file to WAL mode (persistent), so that several writers
    and a concurrent reader (analysis, optuna-dashboard) wait for each other instead of failing
    with "database is locked"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S)
    try:
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    create: bool = True,
) -> BaseStorage:
    """Open an absolute storage URL from :func:`resolve_storage_url`.

    Heartbeats (stale-trial detection) are set up for database storages only; Optuna's journal
    storage has none. With ``create=False`` a missing SQLite or journal file is an error instead
    of a new empty database.
    """
    if url.startswith("journal:///"):
        path = Path(url[len("journal:///") :])
        if not create and not path.exists():
            raise FileNotFoundError(f"storage {url!r}: no such journal file {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        path = Path(url[len("sqlite:///") :])
        if not create and not path.exists():
            raise FileNotFoundError(f"storage {url!r}: no such database file {path}")
        _prepare_sqlite(path)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    elif url.startswith("postgresql"):
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    if heartbeat_interval is not None:
        kwargs["heartbeat_interval"] = heartbeat_interval
        kwargs["grace_period"] = grace_period or 2 * heartbeat_interval
    storage = _rdb_storage(url, kwargs)
    if url.startswith("sqlite:///"):
        _sqlite_normal_sync(storage)
    return storage


def _sqlite_normal_sync(storage: RDBStorage) -> None:
    """``synchronous=NORMAL`` on every connection: in WAL mode a commit then skips its fsync
    (the database stays consistent; a power cut may lose the last commits). Every per-epoch
    report is a commit, so this is most of a short trial's storage time."""
    import sqlalchemy

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    sqlalchemy.event.listen(storage.engine, "connect", on_connect)
    storage.engine.dispose()  # connections opened before the listener are replaced


def _rdb_storage(url: str, kwargs: dict[str, Any], attempts: int = 6) -> RDBStorage:
    """Open an RDB storage, retrying while other workers create the same schema.

    Workers started together on an empty database race to create Optuna's tables and one of
    them fails with a unique-constraint error (optuna#1092); a short random back-off and a
    retry find the tables made.
    """
    import random

    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            return RDBStorage(url, **kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError,
                sqlalchemy.exc.OperationalError):  # fmt: skip
            if attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.2, 0.8) * (attempt + 1))
    raise AssertionError("unreachable")


def make_pruner(spec: Mapping[str, Any] | None) -> optuna.pruners.BasePruner:
    """Build the pruner a study stores as ``regsweep:pruner``; ``patience`` wraps it in
    :class:`~optuna.pruners.PatientPruner`.

    Example:
        >>> type(make_pruner({"name": "median", "patience": 2})).__name__
        'PatientPruner'
    """
    s = dict(spec or {"name": "none"})
    name = s.get("name", "none")
    p = optuna.pruners
    base: optuna.pruners.BasePruner
    if name == "none":
        base = p.NopPruner()
    elif name in ("median", "percentile"):
        common = {
            "n_startup_trials": int(s.get("n_startup_trials", 5)),
            "n_warmup_steps": int(s.get("n_warmup_steps", 0)),
            "interval_steps": int(s.get("interval_steps", 1)),
            "n_min_trials": int(s.get("n_min_trials", 1)),
        }
        pct = 50.0 if name == "median" else float(s.get("percentile", 25.0))
        base = p.PercentilePruner(pct, **common)
    elif name == "successive_halving":
        base = p.SuccessiveHalvingPruner(
            min_resource=s.get("min_resource", "auto"),
            reduction_factor=int(s.get("reduction_factor", 3)),
            min_early_stopping_rate=int(s.get("min_early_stopping_rate", 0)),
            bootstrap_count=int(s.get("bootstrap_count", 0)),
        )
    elif name == "hyperband":
        base = p.HyperbandPruner(
            min_resource=int(s.get("min_resource", 1)) if s.get("min_resource", 1) != "auto" else 1,
            max_resource=s.get("max_resource", "auto"),
            reduction_factor=int(s.get("reduction_factor", 3)),
            bootstrap_count=int(s.get("bootstrap_count", 0)),
        )
    elif name == "threshold":
        base = p.ThresholdPruner(
            lower=s.get("lower"),
            upper=s.get("upper"),
            n_warmup_steps=int(s.get("n_warmup_steps", 0)),
            interval_steps=int(s.get("interval_steps", 1)),
        )
    elif name == "wilcoxon":
        base = p.WilcoxonPruner(
            p_threshold=float(s.get("p_threshold", 0.1)),
            n_startup_steps=int(s.get("n_warmup_steps", 2)),
        )
    else:
        raise ValueError(f"pruner.name={name!r}: allowed " + ", ".join(PRUNERS))
    if s.get("patience") is not None:
        return p.PatientPruner(
            base, patience=int(s["patience"]), min_delta=float(s.get("min_delta", 0.0))
        )
    return base


@dataclass
class TrialHandle:
    """A job's view of its trial: a :class:`~sweep.reporting.Reporter` plus result recording.

    Reports are kept here and written to the storage at most every ``flush_every_s`` seconds
    and when the trial ends, in one transaction: a commit per epoch was most of a short trial's
    storage time. Pruning decisions use every value reported so far: Optuna's pruners compare
    the running trial with *finished* trials (percentile, median) or with rung records they
    write themselves (successive halving, hyperband), so nothing they read is held back.
    """

    study: optuna.Study
    trial: optuna.trial.Trial
    flush_every_s: float = 2.0
    _values: dict[int, float] = field(default_factory=dict)
    _unwritten: dict[int, float] = field(default_factory=dict)
    _last_flush: float = field(default_factory=time.monotonic)

    @property
    def number(self) -> int:
        return self.trial.number

    @property
    def multi_objective(self) -> bool:
        """Optuna cannot report or prune in multi-objective studies: both are skipped."""
        return len(self.study.directions) > 1

    def report(self, value: float, step: int) -> None:
        """Report the metric of epoch ``step``; NaN is skipped (the pruner cannot rank it)."""
        if not math.isfinite(value) or self.multi_objective:
            return
        self._values[step] = float(value)
        self._unwritten[step] = float(value)
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    def should_prune(self) -> bool:
        if self.multi_objective or not self._values:
            return False
        frozen = copy.copy(self.study._storage.get_trial(self.trial._trial_id))
        frozen.intermediate_values = dict(self._values)
        return self.study.pruner.prune(self.study, frozen)

    def flush(self) -> None:
        """Write the reports not yet stored, in one transaction on database storages."""
        if self._unwritten:
            _write_intermediate(self.study._storage, self.trial._trial_id, self._unwritten)
            self._unwritten = {}
        self._last_flush = time.monotonic()

    def record(self, attrs: Mapping[str, Any]) -> None:
        """Store result attributes (JSON values; non-finite floats become null outside curves)."""
        safe = {k: _json_safe(v, keep_nan=k == "curves") for k, v in attrs.items()}
        _write_user_attrs(self.study._storage, self.trial._trial_id, safe)

    def fail(self, message: str) -> None:
        """End the trial as FAIL with stop reason ``failed`` and ``message``."""
        self.record({"stop_reason": "failed", "message": message})
        self.finish(TrialState.FAIL)

    def finish(self, state: TrialState, value: float | list[float] | None = None) -> None:
        """Tell the study how the trial ended (one value, or one per objective); a missing or
        non-finite value is stored as FAIL. Pending reports are written first (a pruned
        trial's value is its last report)."""
        self.flush()
        values = [value] if isinstance(value, float | int) else value
        if state == TrialState.COMPLETE and (not values or not all(map(math.isfinite, values))):
            state = TrialState.FAIL
        told = values if state == TrialState.COMPLETE else None
        self.study.tell(self.trial, values=told, state=state, skip_if_finished=True)


def _write_intermediate(storage: BaseStorage, trial_id: int, values: Mapping[int, float]) -> None:
    _write_many(storage, trial_id, values, kind="intermediate")


def _write_user_attrs(storage: BaseStorage, trial_id: int, attrs: Mapping[str, Any]) -> None:
    _write_many(storage, trial_id, attrs, kind="user_attr")


def _write_many(
    storage: BaseStorage, trial_id: int, items: Mapping[Any, Any], *, kind: str
) -> None:
    """Write many intermediate values or user attributes of a trial in one transaction on a
    database storage (Optuna commits each on its own: ~20 reports and ~30 attributes a trial),
    one by one elsewhere. Uses RDBStorage's per-item writes without their commit, as its own
    ``set_trial_intermediate_value`` / ``set_trial_user_attr`` do."""
    backend = getattr(storage, "_backend", storage)  # Optuna wraps RDB storages in a cache
    if not isinstance(backend, RDBStorage):
        for key, value in items.items():
            if kind == "intermediate":
                storage.set_trial_intermediate_value(trial_id, key, value)
            else:
                storage.set_trial_user_attr(trial_id, key, value)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session, True) as session:
        for key, value in items.items():
            if kind == "intermediate":
                backend._set_trial_intermediate_value_without_commit(session, trial_id, key, value)
            else:
                backend._set_trial_attr_without_commit(
                    session, models.TrialUserAttributeModel, trial_id, key, value
                )


def _json_safe(value: Any, *, keep_nan: bool) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return value if keep_nan else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v, keep_nan=keep_nan) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v, keep_nan=keep_nan) for v in value]
    return value


_JOB_STORAGES: dict[str, BaseStorage] = {}


def _job_storage(url: str) -> BaseStorage:
    """One storage (one connection pool) per URL per process: in-process launchers run many
    jobs one after another, and a new engine plus schema check per trial is wasted time."""
    if url not in _JOB_STORAGES:
        _JOB_STORAGES[url] = open_storage(url)
    return _JOB_STORAGES[url]


def open_trial(url: str, study_name: str, number: int) -> TrialHandle:
    """Reconnect to trial ``number`` of ``study_name`` in the storage at ``url``.

    The pruner is the one the sweeper stored in the study, so every worker prunes alike.
    """
    storage = _job_storage(url)
    study = optuna.load_study(study_name=study_name, storage=storage)
    study.pruner = make_pruner(study.user_attrs.get(STUDY_PRUNER))
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    state = storage.get_trial(trial_id).state
    if state != TrialState.RUNNING:
        raise RuntimeError(
            f"trial {number} of study {study_name!r} is {state.name}, not RUNNING: "
            "it was finished by another process (interrupted and failed, or told twice)"
        )
    return TrialHandle(study=study, trial=optuna.trial.Trial(study, trial_id))


def supports_heartbeat(storage: BaseStorage) -> bool:
    """Whether ``storage`` (an RDB storage, possibly wrapped in Optuna's cache) has heartbeats on."""
    return isinstance(storage, BaseHeartbeat) and storage.get_heartbeat_interval() is not None


@contextmanager
def heartbeat(
    storage: BaseStorage, trial_ids: Iterator[int] | Any, interval: float
) -> Iterator[None]:
    """Record heartbeats for the trials in ``trial_ids`` (re-read each beat) every ``interval`` s.

    A no-op for storages without heartbeat support (journal, in-memory).
    """
    if not supports_heartbeat(storage):
        yield
        return
    assert isinstance(storage, BaseHeartbeat)
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            for tid in list(trial_ids):
                # A beat lost to a busy database is retried next time.
                with suppress(Exception):
                    storage.record_heartbeat(tid)
            stop.wait(interval)

    thread = threading.Thread(target=beat, name="regsweep-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def fail_stale_trials(study: optuna.Study, *, requeue: bool = False) -> list[int]:
    """Mark RUNNING trials whose heartbeat went stale (a killed sweep) as FAIL, reason
    ``interrupted``; with ``requeue``, enqueue their parameters again. Returns their numbers.
    """
    storage = study._storage
    if not supports_heartbeat(storage):
        return []
    assert isinstance(storage, BaseHeartbeat)
    failed: list[int] = []
    for trial_id in storage._get_stale_trial_ids(study._study_id):
        frozen = storage.get_trial(trial_id)
        try:
            storage.set_trial_user_attr(trial_id, "stop_reason", "interrupted")
            storage.set_trial_user_attr(
                trial_id,
                "message",
                "its sweep process stopped (no heartbeat); marked failed at restart",
            )
            if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        failed.append(frozen.number)
        if requeue:
            study.enqueue_trial(frozen.params, user_attrs={"requeued_from": frozen.number})
    return failed
