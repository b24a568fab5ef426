"""SIGTERM handled like Ctrl-C: what SLURM, Kubernetes and systemd send to stop a process.

Inside :func:`terminate_as_interrupt` a SIGTERM raises :class:`Terminated` (a
``KeyboardInterrupt``) in the main thread, so the same clean-up runs as for Ctrl-C: reports
flushed, running trials ended as interrupted, results written; the process then exits with
143 (128 + SIGTERM) instead of 130.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["EXIT_SIGINT", "EXIT_SIGTERM", "Terminated", "exit_code", "terminate_as_interrupt"]

EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def exit_code(exc: BaseException) -> int:
    """143 after SIGTERM, 130 after Ctrl-C."""
    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(f"received signal {signum}")


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (main thread only; elsewhere a
    no-op, since only the main thread may set signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
