"""The training loop: epochs of steps on device-resident tensors, one evaluation for every split.

Knows neither Optuna nor Hydra: it takes built objects, plain settings and a :class:`Reporter`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .metrics import weight_stats
from .models import weight_matrices
from .penalties import Penalty, add_penalty_grad
from .reporting import NullReporter, Reporter

if TYPE_CHECKING:
    from .data import Splits

__all__ = ["EarlyStop", "FitResult", "TrainSettings", "evaluate", "fit", "train_epoch"]

Tensor = torch.Tensor


@dataclass(frozen=True)
class EarlyStop:
    """Stop after ``patience`` epochs without improving ``monitor`` by more than ``min_delta``."""

    patience: int
    min_delta: float = 0.0
    monitor: str = "val_loss"
    restore_best: bool = True


@dataclass(frozen=True)
class TrainSettings:
    """Everything :func:`fit` needs besides the objects it trains."""

    epochs: int
    batch_size: int
    penalty: Penalty = field(default_factory=Penalty)
    penalize_all: bool = False
    clip: float | None = None
    early_stop: EarlyStop | None = None
    metric: str = "val_acc"
    eval_batch_size: int = 4096
    seed: int = 0


@dataclass
class FitResult:
    """Per-epoch curves and how the run ended. ``model`` holds the weights of ``best_epoch``
    when early stopping restored them, else those of the last epoch."""

    curves: dict[str, list[float]]
    best_epoch: int
    stop_reason: str
    message: str
    test: tuple[float, float] | None
    seconds: float

    @property
    def epochs_run(self) -> int:
        return len(self.curves["epoch"])


def _higher_is_better(metric: str) -> bool:
    return metric.endswith("_acc") and not metric.startswith("gap")


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 4096) -> Tensor:
    """Mean cross-entropy and accuracy in eval mode, as a 2-element tensor (one sync for callers)."""
    was_training = model.training
    model.eval()
    loss_sum = x.new_zeros((), dtype=torch.float64)
    correct = x.new_zeros((), dtype=torch.float64)
    for start in range(0, x.shape[0], batch_size):
        logits = model(x[start : start + batch_size])
        target = y[start : start + batch_size]
        loss_sum += F.cross_entropy(logits, target, reduction="sum").double()
        correct += (logits.argmax(dim=1) == target).sum().double()
    model.train(was_training)
    n = max(x.shape[0], 1)
    return torch.stack([loss_sum / n, correct / n])


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    *,
    batch_size: int,
    penalty: Penalty,
    penalized: list[nn.Parameter],
    clip: float | None,
    generator: torch.Generator,
) -> Tensor:
    """One pass over shuffled ``x``; returns [mean data loss of the steps, mean grad norm].

    Step: data loss → backward → + penalty gradient → gradient norm (before clipping) → clip →
    optimizer step. No host sync happens inside the loop.
    """
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    n = x.shape[0]
    perm = torch.randperm(n, device=x.device, generator=generator)
    loss_sum = x.new_zeros((), dtype=torch.float32)
    norm_sum = x.new_zeros((), dtype=torch.float32)
    steps = 0
    for start, stop in _batch_bounds(n, batch_size):
        idx = perm[start:stop]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        add_penalty_grad(penalized, penalty, stop - start)
        norm_sum += _grad_norm(params, clip)
        optimizer.step()
        loss_sum += loss.detach()
        steps += 1
    return torch.stack([loss_sum, norm_sum]) / max(steps, 1)


def _grad_norm(params: list[nn.Parameter], clip: float | None) -> Tensor:
    """Total gradient norm before clipping; clips to ``clip`` when set."""
    if clip is not None:
        return torch.nn.utils.clip_grad_norm_(params, clip, foreach=True)
    grads = [p.grad for p in params if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads, foreach=True)


def _batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Consecutive [start, stop) ranges; a last batch of one example joins the one before, since
    batch norm cannot train on a single example."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return [(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]


@dataclass
class _Best:
    epoch: int = 0
    value: float = math.nan
    state: dict[str, Tensor] | None = None

    def improves(self, value: float, higher: bool, min_delta: float) -> bool:
        if math.isnan(value):
            return False
        if math.isnan(self.value):
            return True
        return value > self.value + min_delta if higher else value < self.value - min_delta


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    splits: Splits,
    settings: TrainSettings,
    *,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    reporter: Reporter | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> FitResult:
    """Train for ``settings.epochs`` epochs, evaluating train (eval mode) and val at each epoch end.

    Stops early when the reporter says prune, when early stopping's patience runs out, or when a
    loss becomes NaN/inf ("diverged"). Test metrics are computed once, with the best epoch's weights.
    """
    reporter = reporter or NullReporter()
    gen = torch.Generator(device=splits.x_train.device).manual_seed(settings.seed)
    penalized = list(model.parameters()) if settings.penalize_all else weight_matrices(model)
    es = settings.early_stop
    select = (
        es.monitor if es else (settings.metric if settings.metric.startswith("val") else "val_loss")
    )
    higher = _higher_is_better(select)
    best = _Best()
    curves: dict[str, list[float]] = {}
    stop, message = "completed", ""
    t0 = time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        te = time.perf_counter()
        lr = float(optimizer.param_groups[0]["lr"])
        step_stats = train_epoch(
            model,
            optimizer,
            splits.x_train,
            splits.y_train,
            batch_size=settings.batch_size,
            penalty=settings.penalty,
            penalized=penalized,
            clip=settings.clip,
            generator=gen,
        )
        if scheduler is not None:
            scheduler.step()
        tr = evaluate(model, splits.x_train, splits.y_train, settings.eval_batch_size)
        va = evaluate(model, splits.x_val, splits.y_val, settings.eval_batch_size)
        ws = weight_stats(weight_matrices(model))
        values = torch.cat([tr.float(), va.float(), step_stats.float(), ws]).tolist()
        row = _row(epoch, values, lr, time.perf_counter() - te)
        for key, value in row.items():
            curves.setdefault(key, []).append(value)
        if on_epoch is not None:
            on_epoch(row)
        if not all(math.isfinite(row[k]) for k in ("train_loss", "val_loss", "step_loss")):
            stop, message = "diverged", f"loss became non-finite at epoch {epoch} (lr={lr:g})"
            break
        if best.improves(row[select], higher, es.min_delta if es else 0.0):
            best = _Best(epoch, row[select], copy.deepcopy(model.state_dict()))
        reporter.report(row[settings.metric], epoch)
        if reporter.should_prune():
            stop, message = "pruned", f"pruned at epoch {epoch}"
            break
        if es is not None and epoch - best.epoch >= es.patience:
            stop, message = "early_stopped", f"no {select} improvement for {es.patience} epochs"
            break
    return _finish(model, splits, settings, curves, best, stop, message, time.perf_counter() - t0)


def _row(epoch: int, v: list[float], lr: float, seconds: float) -> dict[str, float]:
    return {
        "epoch": float(epoch),
        "train_loss": v[0], "train_acc": v[1], "val_loss": v[2], "val_acc": v[3],
        "gap_acc": v[1] - v[3], "gap_loss": v[2] - v[0],
        "step_loss": v[4], "grad_norm": v[5],
        "weight_l1": v[6], "weight_l2": v[7], "sparsity": v[8], "sparsity_abs": v[9],
        "lr": lr, "epoch_seconds": seconds,
    }  # fmt: skip


def _finish(
    model: nn.Module,
    splits: Splits,
    settings: TrainSettings,
    curves: dict[str, list[float]],
    best: _Best,
    stop: str,
    message: str,
    seconds: float,
) -> FitResult:
    test: tuple[float, float] | None = None
    if best.state is not None:
        last = copy.deepcopy(model.state_dict())
        model.load_state_dict(best.state)
        if splits.x_test.shape[0] > 0:
            loss, acc = evaluate(
                model, splits.x_test, splits.y_test, settings.eval_batch_size
            ).tolist()
            test = (loss, acc)
        restore = settings.early_stop is not None and settings.early_stop.restore_best
        if not restore:
            model.load_state_dict(last)
    return FitResult(
        curves=curves,
        best_epoch=best.epoch or len(curves.get("epoch", [])),
        stop_reason=stop,
        message=message,
        test=test,
        seconds=seconds,
    )
