"""Helpers the tests share: compose the real config tree, run the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from sweep.config import register_configs

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

register_configs()


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The job config exactly as ``python -m sweep`` composes it (Hydra's compose API)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=False)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a Python process a test starts: this one's, with the repository first
    on ``PYTHONPATH`` (what was there stays: an environment whose packages are found through
    it, such as the GPU machine's, must keep finding them)."""
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **extra}


def run_cli(
    args: Sequence[str],
    *,
    cwd: Path,
    timeout: float = 240,
    env: dict[str, str] | None = None,
    module: str = "sweep",
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <module> <args>`` in ``cwd`` and capture its output."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", **(env or {})}
    full_env.pop("PYTEST_CURRENT_TEST", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


FAST = ["model.hidden=[32]", "search=none"]


def sweep_args(
    study: str, n_trials: int, *extra: str, epochs: int = 3, confirm: int = 0, dose: int = 0
) -> list[str]:
    """``-m`` overrides of a short sweep into ``outputs/studies.db`` (no search preset; a
    confirmation stage on ``confirm`` seeds, none by default; ``dose`` strengths on each
    family's dose-response path, none by default)."""
    return [
        "-m",
        *FAST,
        f"hydra.sweeper.confirm.seeds={confirm}",
        f"hydra.sweeper.confirm.dose_points={dose}",
        f"trainer.epochs={epochs}",
        f"hydra.sweeper.study_name={study}",
        f"hydra.sweeper.n_trials={n_trials}",
        *extra,
    ]


def load_study(cwd: Path, study: str) -> Any:
    """The study as a fresh process would read it (``outputs/studies.db`` under ``cwd``)."""
    import optuna

    url = f"sqlite:///{cwd / 'outputs' / 'studies.db'}"
    return optuna.load_study(study_name=study, storage=url)


_ASK_MANY = """
import sys
import optuna
from sweep.study import ask_suggested, open_storage, resolve_storage
study = optuna.load_study(study_name=sys.argv[2],
                          storage=open_storage(resolve_storage(sys.argv[1]), create=False))
for _ in range(int(sys.argv[3])):
    ask_suggested(study, int(sys.argv[4]), lambda t: {"x": t.suggest_float("x", 0, 1)})
"""


def ask_concurrently(storage: str, study: str, *, procs: int, batches: int, size: int) -> None:
    """``procs`` processes started together, each asking ``batches`` batches of ``size`` trials
    of ``study`` (which must exist) through :func:`sweep.study.ask_suggested`."""
    env = child_env()
    args = [sys.executable, "-c", _ASK_MANY, storage, study, str(batches), str(size)]
    running = [subprocess.Popen(args, env=env) for _ in range(procs)]
    codes = [p.wait(timeout=180) for p in running]
    assert codes == [0] * procs, codes


def most_at_once(trials: Any) -> int:
    """The most other trials that were running when one of ``trials`` started (from their
    stored start and completion times)."""
    return max(
        sum(
            1
            for u in trials
            if u is not t
            and u.datetime_start <= t.datetime_start
            and u.datetime_complete > t.datetime_start
        )
        for t in trials
    )
