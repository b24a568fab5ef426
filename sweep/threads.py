"""How many torch threads a training process may use: a share of the cores, never all of them.

torch starts as many intra-op threads as there are cores in every process. Several workers on
one machine then fight over the cores, and small models, whose steps are too short to split,
lose most of their time to that (one busy neighbour made a 0.13 s run take 0.71 s). With
``trainer.threads=null`` (auto) each training process takes ``cores // workers`` threads, where
``workers`` counts the regsweep training processes alive on this machine (each registers itself
in a per-user folder) and the launcher's own parallel jobs; and a small model takes one thread.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .nets import Arch

__all__ = [
    "SMALL_STEP_MACS",
    "auto_threads",
    "available_cores",
    "configure_threads",
    "live_workers",
]

SMALL_STEP_MACS = 4_000_000
"""Below this many multiply-adds per training step (members × weights × batch), one thread is
fastest: splitting such a step costs more than it saves."""

_REGISTERED: Path | None = None


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; all cores where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _folder() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"regsweep-{uid}" / "workers"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _register() -> None:
    """Mark this process as a regsweep training process (removed again at exit)."""
    global _REGISTERED
    if _REGISTERED is not None:
        return
    folder = _folder()
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / str(os.getpid())
        path.touch()
        _REGISTERED = path
        atexit.register(_unregister)


def _unregister() -> None:
    global _REGISTERED
    if _REGISTERED is not None:
        with contextlib.suppress(OSError):
            _REGISTERED.unlink()
        _REGISTERED = None


def live_workers() -> int:
    """Registered regsweep training processes on this machine that are still alive (stale
    entries of killed processes are removed); at least 1."""
    count = 0
    with contextlib.suppress(OSError):
        for entry in _folder().iterdir():
            if not entry.name.isdigit():
                continue
            if _alive(int(entry.name)):
                count += 1
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
    return max(count, 1)


def step_macs(arch: Arch, members: int, batch_size: int) -> int:
    """Multiply-adds of one forward step of ``members`` networks on ``batch_size`` examples."""
    widths = [arch.n_features, *arch.hidden, arch.n_classes]
    weights = sum(a * b for a, b in itertools.pairwise(widths))
    return members * weights * batch_size


def auto_threads(*, cores: int, workers: int, macs: int) -> int:
    """Threads for one process: its share of the cores, and 1 for a small step.

    Example:
        >>> auto_threads(cores=8, workers=2, macs=10**9), auto_threads(cores=8, workers=2, macs=10)
        (4, 1)
    """
    if macs < SMALL_STEP_MACS:
        return 1
    return max(1, cores // max(workers, 1))


def configure_threads(
    threads: int | None,
    *,
    arch: Arch,
    members: int,
    device: torch.device,
    workers: int = 1,
    batch_size: int = 64,
) -> int:
    """Set torch's intra-op threads for this process and return the number set.

    ``threads`` (``trainer.threads``) wins when given; otherwise :func:`auto_threads` with the
    larger of ``workers`` (the launcher's parallel jobs) and the live regsweep processes here.
    On a GPU the CPU only feeds the device: one thread.
    """
    _register()
    if threads is None:
        if device.type == "cuda":
            threads = 1
        else:
            busy = max(workers, live_workers())
            threads = auto_threads(
                cores=available_cores(), workers=busy, macs=step_macs(arch, members, batch_size)
            )
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
