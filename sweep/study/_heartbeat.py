"""Heartbeats for the trials a process is running, from a background thread.

The sweeper beats for the trials it asked until their jobs return; a job beats for the trials
it trains. A trial whose heartbeats stop for the grace period belongs to a dead process, which
any worker on any machine can then tell (database storages only: Optuna's journal storage has
no heartbeats, so there only the owner check of a rerun on the same machine applies).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator

from optuna.storages import BaseStorage

from ._lifecycle import supports_heartbeat
from ._writes import record_heartbeats

__all__ = ["Keeper"]

log = logging.getLogger("regsweep.study")


class Keeper:
    """Beats every ``interval`` seconds for the trial ids it holds (a no-op without heartbeat
    support). Use as a context manager around the work."""

    def __init__(self, storage: BaseStorage, interval: float | None) -> None:
        self.storage = storage
        self.interval = interval
        self.enabled = interval is not None and supports_heartbeat(storage)
        self._held: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, trial_ids: Iterable[int], *, beat: bool = True) -> None:
        """Start beating for ``trial_ids``, with a first beat at once (so a process killed before
        its next beat still leaves a heartbeat that goes stale); ``beat=False`` when this
        process has just beaten for them (the sweeper's keeper, for trials it hands a job in its
        own process)."""
        ids = list(trial_ids)
        with self._lock:
            self._held.update(ids)
        if self.enabled and beat:
            self._beat(ids)

    def release(self, trial_ids: Iterable[int]) -> None:
        with self._lock:
            self._held.difference_update(trial_ids)

    @property
    def held(self) -> set[int]:
        with self._lock:
            return set(self._held)

    def _beat(self, ids: Iterable[int]) -> None:
        """One heartbeat for each of ``ids``, all in one transaction."""
        try:
            record_heartbeats(self.storage, sorted(ids))
        except Exception as exc:  # a busy database: the next beat retries
            log.debug("heartbeats for trial ids %s failed: %s", sorted(ids), exc)

    def _run(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            self._beat(self.held)

    def __enter__(self) -> Keeper:
        if self.enabled:
            self._thread = threading.Thread(
                target=self._run, name="regsweep-heartbeat", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            with contextlib.suppress(RuntimeError):
                self._thread.join(timeout=5)

    @contextlib.contextmanager
    def holding(self, trial_ids: Iterable[int]) -> Iterator[None]:
        ids = list(trial_ids)
        self.hold(ids)
        try:
            yield
        finally:
            self.release(ids)
