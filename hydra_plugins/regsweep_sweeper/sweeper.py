"""Thin plugin module: Hydra imports every module under ``hydra_plugins`` at start, so the Optuna
and torch-heavy implementation is imported only when a sweep actually runs."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from ._config import SweeperConfig  # noqa: F401  (registers hydra/sweeper/regsweep_schema)

__all__ = ["RegsweepSweeper"]


class RegsweepSweeper(Sweeper):
    """Runs an Optuna study: populations of trials per Hydra job, pruning as early stopping,
    then a confirmation stage on several seeds."""

    def __init__(self, **settings: Any) -> None:
        from ._runner import SweepRunner

        self._runner = SweepRunner(settings)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self._runner.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self._runner.sweep(arguments)
