"""Which process owns a running trial, and whether that process is provably gone.

A trial's owner is ``{host, boot, pid, start}``: the machine's name, its boot id (a reboot makes
every earlier process dead), the process id and the process's start time (a reused pid is
another process). On the owner's own machine a rerun can tell at once that the owner is gone,
instead of waiting for its heartbeat to go stale.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Mapping
from typing import Any

__all__ = ["current_owner", "owner_is_dead", "owner_text"]


@functools.cache
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def _stat(pid: int) -> list[str]:
    """Fields 3… of ``/proc/<pid>/stat`` (state, ppid, …); [] where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return []
    # The command name (field 2) may contain spaces; fields after its closing paren are fixed.
    return stat[stat.rfind(")") + 2 :].split()


def _start_time(pid: int) -> str:
    """The start time of process ``pid`` in clock ticks since boot ('' where unknown)."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


def current_owner() -> dict[str, Any]:
    """This process as a trial owner."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": pid, "start": _start_time(pid)}


def owner_text(owner: Mapping[str, Any] | None) -> str:
    """``pid 123 on host-a``: for messages."""
    if not owner:
        return "an unknown process"
    return f"pid {owner.get('pid')} on {owner.get('host')}"


def owner_is_dead(owner: Mapping[str, Any] | None) -> bool:
    """True only when ``owner`` is provably gone: it ran on this machine (same host and boot)
    and its pid is no longer alive, or now belongs to a process started at another time. A
    process on another machine is never provably dead here (its heartbeat decides)."""
    if not owner or owner.get("host") != socket.gethostname():
        return False
    boot = owner.get("boot") or ""
    if boot and _boot_id() and boot != _boot_id():
        return True  # this machine rebooted since
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, someone else's
    fields = _stat(pid)
    if fields and fields[0] in ("Z", "X"):
        return True  # a zombie: dead, only not yet reaped by its parent
    start = owner.get("start") or ""
    now = fields[19] if len(fields) > 19 else ""
    return bool(start and now and start != now)
