"""The heap of a training process: freeze what was built before training, and keep freed pages.

A sweep's process holds hundreds of thousands of long-lived objects (torch, Hydra, Optuna and
SQLAlchemy modules, composed configs) before it trains anything. Python's cyclic garbage
collector walks all of them at every full collection, and the allocations of asking, storing
and ending trials trigger one every second or so: in a 128-trial population sweep on digits,
full collections took 0.2–0.28 s each and ~4 % of the search's time, work that one process
training the same population never does. :func:`freeze_heap` collects once, then moves every
live object to the collector's permanent generation (``gc.freeze``), so later collections walk
only what the trials allocate. Objects frozen here are still freed by reference counting; only
cycles among them would stay, and they were alive when frozen.

A population's step allocates tensors of a few MiB (128 members × a 64×64 layer is 2 MiB) and
frees them a moment later. glibc's malloc hands such blocks back to the kernel when they are
freed (``mmap`` above its threshold, trimming the top of the heap above twice that), so the
next step's tensors of the same size fault their pages in again: 27 200 minor faults in 20
steps of the digits MLP at K = 128, and a tenth of the epoch in system time.
:func:`keep_freed_pages` raises both thresholds once per process, so freed blocks are reused
(5 100 faults); the process's footprint then stays at its high-water mark, which training
reaches in its first epoch anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

__all__ = ["KEEP_BELOW", "freeze_heap", "keep_freed_pages"]

_frozen = False
_kept: bool | None = None

KEEP_BELOW = 32 << 20
"""Blocks up to this size come from the heap, not fresh ``mmap`` pages (glibc's largest allowed
``M_MMAP_THRESHOLD`` on 64-bit)."""

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def keep_freed_pages() -> bool:
    """Ask glibc's malloc to keep freed blocks of up to :data:`KEEP_BELOW` bytes for reuse and
    never trim the heap below 1 GiB; once per process. True when the settings took effect
    here (Linux with glibc), False otherwise or when already done."""
    global _kept
    if _kept is not None:
        return False
    _kept = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: their own policies
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _kept = bool(mallopt(_M_MMAP_THRESHOLD, KEEP_BELOW)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    )
    return _kept


def freeze_heap() -> bool:
    """Collect, then freeze every live object; once per process (False when already done)."""
    global _frozen
    if _frozen:
        return False
    gc.collect()
    gc.freeze()
    _frozen = True
    return True
