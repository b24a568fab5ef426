"""``python -m sweep``: one run; ``python -m sweep -m``: an Optuna study through our sweeper.

The only ``@hydra.main``. It turns the composed config into typed objects, validates every range
before any data is loaded, and calls plain functions.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from .config import AppConfig, ConfigError, register_configs, validate
from .console import EpochTable
from .data import DataError
from .run import RunOutcome, objective_values, run

log = logging.getLogger("sweep")
GROUPS = ("data", "model", "regularizer", "optimizer", "scheduler", "experiment")

register_configs()


def to_app_config(cfg: DictConfig) -> AppConfig:
    """The composed config as typed dataclasses, with every range checked."""
    app = OmegaConf.to_object(cfg)
    assert isinstance(app, AppConfig), type(app)
    return validate(app)


def _choices() -> dict[str, str]:
    choices = HydraConfig.get().runtime.choices
    return {g: str(choices[g]) for g in GROUPS if choices.get(g) is not None}


def _write_metrics(out_dir: Path, payload: dict[str, Any]) -> Path:
    path = out_dir / "metrics.json"
    path.write_text(json.dumps(payload, indent=2, default=str, allow_nan=True))
    return path


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point (see module docstring)."""
    try:
        app = to_app_config(cfg)
    except ConfigError as exc:
        log.error("%s", exc)
        if OmegaConf.select(cfg, "trial.number") is not None:
            _fail_trial_on_bad_config(cfg, str(exc))
            return None
        sys.exit(2)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    if app.trial.number is None:
        return _single_run(app, out_dir, resolved)
    return _trial_job(app, out_dir, resolved)


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
    path = _write_metrics(out_dir, payload)
    _print_summary(outcome, path)
    return outcome.objective


def _print_summary(outcome: RunOutcome, path: Path) -> None:
    s = outcome.summary
    test = f"test acc {s['test_acc']:.4f}" if s["test_acc"] is not None else "no test split"
    print(
        f"{s['stop_reason']} after {s['epochs_run']} epoch(s): best epoch {s['best_epoch']}, "
        f"val acc {s['best_val_acc']:.4f}, gap {s['gap_acc_best']:+.4f}, {test}"
        + (f" — {s['message']}" if s["message"] else "")
    )
    print(f"metrics: {path}")


def _trial_job(app: AppConfig, out_dir: Path, resolved: Any) -> float | None:
    from optuna.trial import TrialState

    from .optuna_link import open_trial

    assert app.trial.storage and app.trial.study and app.trial.number is not None
    handle = open_trial(app.trial.storage, app.trial.study, app.trial.number)
    choices = _choices()
    handle.record(
        {
            "choices": choices,
            "family": choices.get("regularizer", "none"),
            "config": resolved,
            "job_dir": str(out_dir),
        }
    )
    table = EpochTable(app.trainer.epochs, progress=False, emit=log.info)
    try:
        outcome = run(app, reporter=handle, on_epoch=table.row)
    except Exception as exc:  # a failing trial must not stop the sweep
        log.error("trial %d failed:\n%s", handle.number, traceback.format_exc())
        message = f"{type(exc).__name__}: {exc}"
        handle.fail(message)
        _write_metrics(out_dir, {"stop_reason": "failed", "message": message})
        return None
    summary = {k: v for k, v in outcome.summary.items() if k != "objective"}
    handle.record(summary)
    state = {
        "completed": TrialState.COMPLETE,
        "early_stopped": TrialState.COMPLETE,
        "pruned": TrialState.PRUNED,
    }.get(outcome.fit.stop_reason, TrialState.FAIL)
    if len(app.objectives) > 1:
        handle.finish(state, objective_values(outcome.summary, app.objectives))
    else:
        handle.finish(state, outcome.objective)
    _write_metrics(out_dir, {**outcome.summary, "choices": choices, "trial": handle.number})
    log.info(
        "trial %d: %s, objective %s", handle.number, outcome.fit.stop_reason, outcome.objective
    )
    return outcome.objective


def _fail_trial_on_bad_config(cfg: DictConfig, message: str) -> None:
    from .optuna_link import open_trial

    open_trial(cfg.trial.storage, cfg.trial.study, int(cfg.trial.number)).fail(message)


if __name__ == "__main__":
    main()
