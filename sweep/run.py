"""The task: one validated config in, one trained-and-measured run out.

Hydra-agnostic (hydra-zen's advice): it takes the typed config, returns plain data, and never
returns the model, so a multirun does not keep every model alive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .config import AppConfig, ConfigError
from .data import Splits, load_splits
from .models import build_model
from .optim import build_optimizer, build_scheduler
from .penalties import Penalty
from .record import CURVE_KEYS
from .reporting import Reporter
from .train import EarlyStop, FitResult, TrainSettings, fit

__all__ = [
    "OBJECTIVE_KEYS",
    "RunOutcome",
    "effective_hparams",
    "objective_values",
    "resolve_device",
    "run",
    "train_settings",
]

# Each objective a study can optimize, as the summary stores it (at the best epoch).
OBJECTIVE_KEYS = {
    "val_acc": "best_val_acc",
    "val_loss": "best_val_loss",
    "gap_acc": "gap_acc_best",
    "gap_loss": "gap_loss_best",
    "sparsity": "sparsity_best",
}


@dataclass
class RunOutcome:
    """The curves and the per-run summary (the trial's user attributes, docs/trial-record.md)."""

    fit: FitResult
    summary: dict[str, Any]
    objective: float


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda``/``cuda:N`` must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(
            [f"trainer.device={name!r}: CUDA is not available here; allowed auto, cpu"]
        )
    device = torch.device(name)
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ConfigError(
            [f"trainer.device={name!r}: allowed cuda:0 … cuda:{count - 1}, auto, cpu"]
        )
    return device


def effective_hparams(cfg: AppConfig) -> dict[str, float]:
    """The strengths that act, wherever they were set (regularizer overrides model/optimizer)."""
    r = cfg.regularizer
    return {
        "l1": r.l1,
        "l2": r.l2,
        "elastic": r.elastic,
        "l1_ratio": r.l1_ratio,
        "dropout": r.dropout if r.dropout is not None else cfg.model.dropout,
        "weight_decay": r.weight_decay
        if r.weight_decay is not None
        else cfg.optimizer.weight_decay,
        "clip": r.clip or 0.0,
        "lr": cfg.optimizer.lr,
        "batch_size": float(cfg.trainer.batch_size),
        "momentum": cfg.optimizer.momentum,
    }


def train_settings(cfg: AppConfig) -> TrainSettings:
    r = cfg.regularizer
    es = r.early_stop
    return TrainSettings(
        epochs=cfg.trainer.epochs,
        batch_size=cfg.trainer.batch_size,
        penalty=Penalty.combine(
            l1=r.l1,
            l2=r.l2,
            elastic=r.elastic,
            l1_ratio=r.l1_ratio,
            half_mean=r.scale == "half_mean",
        ),
        penalize_all=r.apply_to == "all",
        clip=r.clip,
        early_stop=EarlyStop(es.patience, es.min_delta, es.monitor, es.restore_best)
        if es.patience is not None
        else None,
        metric=cfg.metric,
        eval_batch_size=cfg.trainer.eval_batch_size,
        seed=cfg.trainer.seed,
    )


def build_run(cfg: AppConfig, splits: Splits) -> tuple[torch.nn.Module, torch.optim.Optimizer, Any]:
    """Model, its optimizer and schedule, seeded, on the data's device."""
    hp = effective_hparams(cfg)
    torch.manual_seed(cfg.trainer.seed)
    model = build_model(
        kind=cfg.model.name,
        n_features=splits.n_features,
        n_classes=splits.n_classes,
        hidden=cfg.model.hidden,
        activation=cfg.model.activation,
        dropout=hp["dropout"],
        batch_norm=cfg.model.batch_norm,
    ).to(splits.x_train.device)
    o = cfg.optimizer
    optimizer = build_optimizer(
        model, name=o.name, lr=o.lr, weight_decay=hp["weight_decay"], momentum=o.momentum,
        nesterov=o.nesterov, betas=o.betas, eps=o.eps,
        decay_weights_only=cfg.regularizer.apply_to == "weights",
    )  # fmt: skip
    s = cfg.scheduler
    scheduler = build_scheduler(
        optimizer, name=s.name, epochs=cfg.trainer.epochs, step_size=s.step_size, gamma=s.gamma,
        t_max=s.t_max, eta_min=s.eta_min,
    )  # fmt: skip
    return model, optimizer, scheduler


def run(
    cfg: AppConfig,
    *,
    reporter: Reporter | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> RunOutcome:
    """Load data, build, train, and summarize one configuration."""
    device = resolve_device(cfg.trainer.device)
    if cfg.trainer.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    splits = load_splits(cfg.data, device=device)
    model, optimizer, scheduler = build_run(cfg, splits)
    result = fit(
        model, optimizer, splits, train_settings(cfg),
        scheduler=scheduler, reporter=reporter, on_epoch=on_epoch,
    )  # fmt: skip
    summary = summarize(result, cfg, device)
    return RunOutcome(fit=result, summary=summary, objective=summary["objective"])


def summarize(result: FitResult, cfg: AppConfig, device: torch.device) -> dict[str, Any]:
    """Per-run numbers the analysis reads (docs/trial-record.md)."""
    c = result.curves
    b = result.best_epoch - 1 if c.get("epoch") else -1

    def at(key: str, i: int) -> float:
        return c[key][i] if c.get(key) else float("nan")

    metric_curve = c.get(cfg.metric, [])
    return {
        "curves": {k: c.get(k, []) for k in CURVE_KEYS},
        "best_epoch": result.best_epoch,
        "best_val_acc": at("val_acc", b),
        "best_val_loss": at("val_loss", b),
        "best_train_acc": at("train_acc", b),
        "best_train_loss": at("train_loss", b),
        "test_loss": result.test[0] if result.test else None,
        "test_acc": result.test[1] if result.test else None,
        "gap_acc_best": at("gap_acc", b),
        "gap_loss_best": at("gap_loss", b),
        "gap_acc_last": at("gap_acc", -1),
        "gap_loss_last": at("gap_loss", -1),
        "sparsity_best": at("sparsity", b),
        "epochs_run": result.epochs_run,
        "epochs_max": cfg.trainer.epochs,
        "stop_reason": result.stop_reason,
        "message": result.message,
        "run_seconds": result.seconds,
        "device": str(device),
        "hparams": effective_hparams(cfg),
        "objective": metric_curve[b] if metric_curve and b >= 0 else float("nan"),
    }


def objective_values(summary: dict[str, Any], objectives: list[str]) -> list[float]:
    """The values of a multi-objective trial, in the order of ``objectives``."""
    return [float(summary[OBJECTIVE_KEYS[o]]) for o in objectives]
