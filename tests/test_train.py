"""Unit tests for ``sweep.train`` (and the run around it): eval mode, sparsity, stopping, seeds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sweep.config import AppConfig, DataConfig
from sweep.data import Splits, clear_cache, load_splits
from sweep.models import build_model
from sweep.optim import build_optimizer, build_scheduler
from sweep.penalties import Penalty
from sweep.run import run
from sweep.train import EarlyStop, FitResult, TrainSettings, evaluate, fit, train_epoch

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def digits() -> Splits:
    return load_splits(DataConfig(name="digits"), device=CPU)


@pytest.fixture
def noise() -> Splits:
    return load_splits(DataConfig(name="noise"), device=CPU)


def _mlp(splits: Splits, hidden: list[int], dropout: float = 0.0, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return build_model(
        kind="mlp", n_features=splits.n_features, n_classes=splits.n_classes, hidden=hidden,
        dropout=dropout,
    )  # fmt: skip


def _fit(
    model: nn.Module, splits: Splits, *, lr: float, momentum: float = 0.0, **kw: object
) -> FitResult:
    opt = build_optimizer(model, name="sgd", lr=lr, momentum=momentum)
    return fit(model, opt, splits, TrainSettings(**kw))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- L1 vs L2 sparsity


def test_l1_leaves_more_near_zero_weights_than_l2(digits: Splits) -> None:
    lam = 0.01
    results = {}
    for name, pen in (("l1", Penalty(l1=lam)), ("l2", Penalty(l2=lam))):
        model = _mlp(digits, [32])
        results[name] = _fit(model, digits, lr=0.1, epochs=8, batch_size=64, penalty=pen)
    l1, l2 = results["l1"].curves, results["l2"].curves
    assert l1["sparsity_abs"][-1] > 0.2, l1["sparsity_abs"]
    assert l1["sparsity_abs"][-1] > 10 * max(l2["sparsity_abs"][-1], 0.01)
    assert l1["sparsity"][-1] > 3 * max(l2["sparsity"][-1], 0.01)
    # both still learn digits: the comparison is between working models
    assert min(l1["val_acc"][-1], l2["val_acc"][-1]) > 0.85


# --------------------------------------------------------------------------- dropout / eval mode


def _without_dropout(model: nn.Sequential) -> nn.Sequential:
    return nn.Sequential(*[m for m in model if not isinstance(m, nn.Dropout)])


def test_dropout_is_on_in_train_mode_and_off_in_eval(digits: Splits) -> None:
    model = _mlp(digits, [32], dropout=0.9)
    x = digits.x_val[:50]
    model.train()
    assert not torch.equal(model(x), model(x))  # a fresh mask each call
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), _without_dropout(model)(x), rtol=0, atol=0)


def test_evaluate_uses_eval_mode_and_restores_the_mode(digits: Splits) -> None:
    model = _mlp(digits, [32], dropout=0.9)
    model.train()
    x, y = digits.x_val, digits.y_val
    first = evaluate(model, x, y)
    assert model.training  # mode restored
    assert torch.equal(first, evaluate(model, x, y))  # deterministic despite p=0.9
    second = evaluate(model, x, y, batch_size=7)  # uneven batches: sums, not means of means
    torch.testing.assert_close(first, second, rtol=1e-6, atol=1e-6)
    with torch.no_grad():
        logits = _without_dropout(model)(x)
    loss = F.cross_entropy(logits, y).item()
    acc = (logits.argmax(1) == y).double().mean().item()
    assert first.tolist() == pytest.approx([loss, acc], rel=1e-6)
    model.eval()
    evaluate(model, x, y)
    assert not model.training


def test_fit_measures_train_metrics_with_dropout_off(digits: Splits) -> None:
    model = _mlp(digits, [32], dropout=0.5)
    result = _fit(model, digits, lr=0.1, epochs=2, batch_size=64)
    loss, acc = evaluate(model, digits.x_train, digits.y_train).tolist()
    assert result.curves["train_loss"][-1] == pytest.approx(loss, rel=1e-5)
    assert result.curves["train_acc"][-1] == pytest.approx(acc, rel=1e-6)
    # the running average over the epoch (dropout on, weights moving) is another number
    assert abs(result.curves["step_loss"][-1] - loss) > 1e-3
    vloss, vacc = evaluate(model, digits.x_val, digits.y_val).tolist()
    assert result.curves["val_loss"][-1] == pytest.approx(vloss, rel=1e-5)
    assert result.curves["gap_acc"][-1] == pytest.approx(acc - vacc, abs=1e-6)


# --------------------------------------------------------------------------- clipping


def test_clip_bounds_the_update_and_grad_norm_is_measured_before_clipping() -> None:
    torch.manual_seed(0)
    model = build_model(kind="logreg", n_features=4, n_classes=3)
    x, y = torch.randn(32, 4) * 10, torch.randint(0, 3, (32,))
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    opt = build_optimizer(model, name="sgd", lr=0.5)
    clip = 1e-3
    stats = train_epoch(
        model, opt, x, y, batch_size=32, penalty=Penalty(), penalized=[], clip=clip,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert float(stats[1]) > 100 * clip  # the norm before clipping
    assert float((after - before).norm()) == pytest.approx(0.5 * clip, rel=1e-3)


def test_batch_norm_trains_when_the_last_batch_has_one_example() -> None:
    # 129 training examples in batches of 64 leave a last batch of one, which BatchNorm cannot
    # normalize in train mode ("Expected more than 1 value per channel when training").
    splits = load_splits(DataConfig(name="digits", n_train=129), device=CPU)
    assert splits.x_train.shape[0] % 64 == 1
    torch.manual_seed(0)
    model = build_model(kind="mlp", n_features=64, n_classes=10, hidden=[16], batch_norm=True)
    result = _fit(model, splits, lr=0.1, epochs=3, batch_size=64)
    assert result.stop_reason == "completed" and result.epochs_run == 3
    assert all(v == v for v in result.curves["train_loss"])  # finite, not NaN


# --------------------------------------------------------------------------- stopping


def test_huge_lr_diverges_and_stops_at_that_epoch(digits: Splits) -> None:
    model = _mlp(digits, [16])
    result = _fit(model, digits, lr=1e6, epochs=5, batch_size=64)
    assert result.stop_reason == "diverged"
    assert result.epochs_run < 5
    assert result.epochs_run == len(result.curves["val_loss"])
    assert "non-finite" in result.message and f"epoch {result.epochs_run}" in result.message
    last = [result.curves[k][-1] for k in ("train_loss", "val_loss", "step_loss")]
    assert not all(v == v and abs(v) < float("inf") for v in last)


def test_early_stopping_stops_after_patience_and_restores_best(noise: Splits) -> None:
    # random labels: the val loss soon rises while the net memorizes the training set
    model = _mlp(noise, [64])
    patience = 3
    result = _fit(
        model, noise, lr=0.5, momentum=0.9, epochs=30, batch_size=32,
        early_stop=EarlyStop(patience=patience),
    )  # fmt: skip
    val = result.curves["val_loss"]
    assert result.stop_reason == "early_stopped"
    assert result.epochs_run < 30
    best = min(range(len(val)), key=val.__getitem__) + 1
    assert result.best_epoch == best
    assert 1 < best < result.epochs_run  # a non-trivial best: neither the first nor the last
    assert result.epochs_run == best + patience
    loss, acc = evaluate(model, noise.x_val, noise.y_val).tolist()
    assert loss == pytest.approx(val[best - 1], rel=1e-5)
    assert acc == pytest.approx(result.curves["val_acc"][best - 1], rel=1e-6)
    assert loss != pytest.approx(val[-1], rel=1e-3)
    assert result.test is not None
    assert list(result.test) == pytest.approx(evaluate(model, noise.x_test, noise.y_test).tolist())


def test_early_stopping_without_restore_keeps_last_weights(noise: Splits) -> None:
    model = _mlp(noise, [64])
    result = _fit(
        model, noise, lr=0.5, momentum=0.9, epochs=30, batch_size=32,
        early_stop=EarlyStop(patience=3, restore_best=False),
    )  # fmt: skip
    assert result.stop_reason == "early_stopped" and result.best_epoch < result.epochs_run
    loss = evaluate(model, noise.x_val, noise.y_val)[0].item()
    assert loss == pytest.approx(result.curves["val_loss"][-1], rel=1e-5)


class _PruneAt:
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.reports: list[tuple[float, int]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return bool(self.reports) and self.reports[-1][1] >= self.epoch


def test_reporter_prunes_at_epoch_three(digits: Splits) -> None:
    model = _mlp(digits, [16])
    opt = build_optimizer(model, name="sgd", lr=0.05)
    reporter = _PruneAt(3)
    result = fit(
        model, opt, digits, TrainSettings(epochs=10, batch_size=128, metric="val_loss"),
        reporter=reporter,
    )  # fmt: skip
    assert result.stop_reason == "pruned"
    assert result.epochs_run == 3 and result.curves["epoch"] == [1.0, 2.0, 3.0]
    assert "epoch 3" in result.message
    # the reporter saw the optimized metric, once per epoch, with 1-based steps
    assert [s for _, s in reporter.reports] == [1, 2, 3]
    assert [v for v, _ in reporter.reports] == result.curves["val_loss"]


def test_lr_curve_follows_the_scheduler(digits: Splits) -> None:
    model = _mlp(digits, [8])
    opt = build_optimizer(model, name="sgd", lr=0.4)
    sched = build_scheduler(opt, name="step", epochs=4, step_size=2, gamma=0.5)
    result = fit(model, opt, digits, TrainSettings(epochs=4, batch_size=256), scheduler=sched)
    assert result.curves["lr"] == pytest.approx([0.4, 0.4, 0.2, 0.2])


# --------------------------------------------------------------------------- seeds


def _tiny(seed: int) -> AppConfig:
    cfg = AppConfig()
    cfg.data.name = "digits"
    cfg.model.hidden = [16]
    cfg.model.dropout = 0.2
    cfg.trainer.epochs = 2
    cfg.trainer.seed = seed
    cfg.trainer.device = "cpu"
    cfg.trainer.progress = False
    return cfg


def test_same_seed_same_numbers_different_seed_different_numbers() -> None:
    a, b, c = (run(_tiny(seed)).summary["curves"] for seed in (3, 3, 4))
    keys = [k for k in a if k != "epoch_seconds"]
    assert len(a["val_loss"]) == 2
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    assert a["val_loss"] != c["val_loss"] and a["weight_l1"] != c["weight_l1"]
