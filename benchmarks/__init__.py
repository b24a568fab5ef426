"""Performance harness: speed targets as ratios measured side by side in one run.

``python -m benchmarks [names...]`` runs every benchmark (or the named ones), prints a table and
writes one JSON per benchmark to ``outputs/bench/<name>.json``. Each benchmark module exposes
``run(*, quick: bool) -> dict`` returning a result built with :func:`result`; see README.md.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BENCH_DIR",
    "ROOT",
    "Target",
    "interleaved",
    "machine",
    "median",
    "result",
]

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "outputs" / "bench"


@dataclass(frozen=True)
class Target:
    """One speed or quality target: ``measured <op> threshold`` passes.

    Args:
        name: What is compared, e.g. ``"notes loop / ours"``.
        measured: The measured figure (a ratio, a percentage, points).
        op: ``">="`` or ``"<="``.
        threshold: The target value.
        unit: ``"x"``, ``"%"``, ``"points"``.

    Example:
        >>> Target("a / b", 1.5, ">=", 1.2, "x").passed
        True
    """

    name: str
    measured: float
    op: str
    threshold: float
    unit: str = "x"

    def __post_init__(self) -> None:
        if self.op not in (">=", "<="):
            raise ValueError(f"op={self.op!r}: allowed '>=' or '<='")

    @property
    def passed(self) -> bool:
        if self.measured != self.measured:  # NaN never passes
            return False
        if self.op == ">=":
            return self.measured >= self.threshold
        return self.measured <= self.threshold

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "target": f"{self.op} {self.threshold:g}{self.unit}",
            "pass": self.passed,
        }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def machine() -> dict[str, Any]:
    """Where the numbers were taken."""
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    with contextlib.suppress(OSError):
        info["load_average_1m"] = os.getloadavg()[0]
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["device"] = "cpu"
        info["cuda_available"] = torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a dependency
        info["torch"] = None
    return info


def interleaved(
    arms: dict[str, Callable[[], object]],
    *,
    rounds: int,
    warmup: int = 1,
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, list[float]]]:
    """Time each arm ``rounds`` times, interleaved (arm order rotates each round).

    Every arm is run ``warmup`` times first, untimed. Returns, per arm, the wall-clock seconds
    (``"wall"``) and this process's CPU seconds (``"cpu"``) of each round, in round order, so
    per-round ratios can be formed (both arms saw the same machine load). With one torch thread,
    CPU time is what an idle machine's wall time would be: other processes' load does not
    enter it, waiting for a core does.
    """
    names = list(arms)
    for _ in range(warmup):
        for name in names:
            arms[name]()
    times: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": []} for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            c0, t0 = time.process_time(), time.perf_counter()
            arms[name]()
            times[name]["wall"].append(time.perf_counter() - t0)
            times[name]["cpu"].append(time.process_time() - c0)
        parts = [f"{n} {times[n]['wall'][-1]:.3f}s (cpu {times[n]['cpu'][-1]:.3f}s)" for n in names]
        log(f"  round {r + 1}/{rounds}: " + ", ".join(parts))
    return times


def result(
    name: str,
    *,
    command: str,
    targets: Sequence[Target],
    measurements: dict[str, Any],
    method: str,
    quick: bool = False,
    seconds: float | None = None,
) -> dict[str, Any]:
    """The JSON record of one benchmark run."""
    return {
        "benchmark": name,
        "command": command,
        "quick": quick,
        "pass": all(t.passed for t in targets),
        "targets": [t.as_dict() for t in targets],
        "measurements": measurements,
        "method": method,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": seconds,
    }
