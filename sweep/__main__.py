"""``python -m sweep``: one run; ``python -m sweep -m``: an Optuna study through our sweeper.

The only ``@hydra.main``. It turns the composed config into typed objects, validates every range
before any data is loaded, and calls plain functions (:func:`sweep.run.run` for one run,
:func:`sweep.job.run_trials` for a sweep's job).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from .config import GROUPS, AppConfig, ConfigError, TrialLink, register_configs, validate
from .console import EpochTable
from .data import DataError
from .record import record_json
from .run import RunOutcome, run

log = logging.getLogger("sweep")

register_configs()


def to_app_config(cfg: DictConfig) -> AppConfig:
    """The composed config as typed dataclasses, with every range checked."""
    app = OmegaConf.to_object(cfg)
    assert isinstance(app, AppConfig), type(app)
    return validate(app)


def _choices() -> dict[str, str]:
    choices = HydraConfig.get().runtime.choices
    return {g: str(choices[g]) for g in GROUPS if choices.get(g) is not None}


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point (see module docstring)."""
    link = OmegaConf.select(cfg, "trial")
    if link is not None and link.get("number") is not None:
        return _trial_job(cfg)
    try:
        app = to_app_config(cfg)
    except ConfigError as exc:
        log.error("%s", exc)
        sys.exit(2)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    return _single_run(app, out_dir, OmegaConf.to_container(cfg, resolve=True))


def _trial_job(cfg: DictConfig) -> float | None:
    """A sweep's job: its trials' configs come from their trials in the storage."""
    from .heap import freeze_heap
    from .job import run_trials

    freeze_heap()  # once per process: a no-op in the sweeper's, which froze its own
    link = OmegaConf.to_object(cfg.trial)
    assert isinstance(link, TrialLink), type(link)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    launcher = HydraConfig.get().launcher
    workers = int(launcher.get("n_jobs") or 1) if "n_jobs" in launcher else 1
    return run_trials(link, out_dir, workers=max(workers, 1))


def _single_run(app: AppConfig, out_dir: Path, resolved: Any) -> float | None:
    table = EpochTable(app.trainer.epochs, progress=app.trainer.progress)
    try:
        outcome = run(app, on_epoch=table.row)
    except (ConfigError, DataError) as exc:
        table.close()  # before the message, so the bar does not overwrite it (close is idempotent)
        log.error("%s", exc)
        sys.exit(2)
    finally:
        table.close()
    payload = {**outcome.summary, "choices": _choices(), "config": resolved}
    path = out_dir / "metrics.json"
    path.write_text(record_json(payload, indent=2))
    _print_summary(outcome, path)
    return outcome.objective


def _print_summary(outcome: RunOutcome, path: Path) -> None:
    s = outcome.summary
    test = f", test acc {s['test_acc']:.4f}" if s["test_acc"] is not None else ", no test split"
    restored = " (restored by early stopping)" if s["final_epoch"] != s["epochs_run"] else ""
    print(
        f"{s['stop_reason']} after {s['epochs_run']} epoch(s): final model from epoch "
        f"{s['final_epoch']}{restored}: val acc {s['val_acc']:.4f}, gap {s['gap_acc']:+.4f}"
        f"{test}" + (f" — {s['message']}" if s["message"] else "")
    )
    print(
        f"(hindsight: the best epoch was {s['best_epoch']}, val acc "
        f"{s['best_epoch_val_acc']:.4f}; the final model is what training produced)"
    )
    print(f"metrics: {path}")


if __name__ == "__main__":
    main()
