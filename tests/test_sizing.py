"""A population is sized to its device: chunks of ``trainer.max_population`` or of what a GPU's
free memory holds, each chunk a population of its own, results as one big population's."""

from __future__ import annotations

import copy

import pytest

import sweep.run as run_module
from sweep.config import AppConfig
from sweep.data import load_splits
from sweep.models import build_net, model_arch
from sweep.run import run_population
from sweep.sizing import (
    FREE_SHARE,
    PARAM_COPIES,
    MemberCost,
    activation_bytes,
    chunk_size,
    member_cost,
)


def _cfg(seed: int, lr: float, **trainer: object) -> AppConfig:
    cfg = AppConfig()
    cfg.data.name = "digits"
    cfg.model.hidden = [16]
    cfg.model.dropout = 0.3
    cfg.optimizer.lr = lr
    cfg.trainer.epochs = 3
    cfg.trainer.seed = seed
    cfg.trainer.device = "cpu"
    cfg.trainer.progress = False
    for key, value in trainer.items():
        setattr(cfg.trainer, key, value)
    return cfg


def _population(n: int, **trainer: object) -> list[AppConfig]:
    return [_cfg(seed=k % 3, lr=0.02 + 0.01 * k, **trainer) for k in range(n)]


def _trained(cfgs: list[AppConfig]) -> tuple[list[dict], list[int]]:
    """Each member's curves and the member behind every epoch report, in the order reported."""
    order: list[int] = []
    hooks = [lambda _row, k=k: order.append(k) for k in range(len(cfgs))]
    outcomes = run_population(cfgs, on_epoch=hooks)
    return [o.summary["curves"] for o in outcomes], order


def test_max_population_trains_in_chunks_with_the_results_of_one_population() -> None:
    whole, whole_order = _trained(_population(5))
    chunked, order = _trained(_population(5, max_population=2))
    # one population: every epoch reports every member before the next epoch
    assert whole_order[:5] == [0, 1, 2, 3, 4]
    # chunks of 2: members 0 and 1 finish all their epochs before member 2 starts
    assert order == [0, 1] * 3 + [2, 3] * 3 + [4] * 3
    for a, b in zip(whole, chunked, strict=True):
        for key in ("train_loss", "val_loss", "val_acc", "weight_l2", "grad_norm"):
            assert a[key] == pytest.approx(b[key], abs=1e-5), key  # own generators per member
    assert len({round(c["val_loss"][-1], 6) for c in chunked}) == 5


def _one_member_cost(cfg: AppConfig) -> MemberCost:
    splits = load_splits(cfg.data, seed=0, device=run_module.resolve_device("cpu"))
    arch = model_arch(cfg, splits)
    net = build_net(arch, [0], splits.x_train.device)
    return member_cost(
        net,
        splits.x_train,
        batch_size=cfg.trainer.batch_size,
        eval_batch_size=cfg.trainer.eval_batch_size,
    )


def test_on_a_gpu_the_population_is_sized_to_its_free_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The device's free memory is what lies outside this machine (no GPU here): it is the one
    thing replaced; the measurement of a member and the chunking are the real ones."""
    cfgs = _population(7)
    cost = _one_member_cost(cfgs[0])
    free = int(3.5 * cost.total / FREE_SHARE)  # room for three members and a half
    monkeypatch.setattr(run_module, "free_bytes", lambda _device: free)
    curves, order = _trained(copy.deepcopy(cfgs))
    assert order == [0, 1, 2] * 3 + [3, 4, 5] * 3 + [6] * 3
    monkeypatch.setattr(run_module, "free_bytes", lambda _device: 100 * free)
    whole, whole_order = _trained(copy.deepcopy(cfgs))
    assert whole_order[:7] == list(range(7))
    for a, b in zip(whole, curves, strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-5)


def test_a_members_cost_is_its_parameters_and_its_activations() -> None:
    cfg = _cfg(0, 0.05)
    cost = _one_member_cost(cfg)
    n_params = 64 * 16 + 16 + 16 * 10 + 10  # digits: 64 features, one hidden layer of 16
    assert cost.params == PARAM_COPIES * 4 * n_params
    # every training example keeps at least its input row and its hidden layer for backward
    assert cost.train >= 2 * 4 * (64 + 16) * cfg.trainer.batch_size
    assert cost.evaluate >= 2 * 4 * 64 * cfg.trainer.eval_batch_size
    cfg.trainer.batch_size *= 2
    cfg.trainer.eval_batch_size //= 4
    scaled = _one_member_cost(cfg)
    assert scaled.train == pytest.approx(2 * cost.train, rel=1e-3)
    assert scaled.evaluate == pytest.approx(cost.evaluate / 4, rel=1e-3)
    cfg.model.hidden = [64]
    assert _one_member_cost(cfg).train > scaled.train


def test_the_weights_autograd_keeps_are_not_counted_per_example() -> None:
    cfg = _cfg(0, 0.05)
    cfg.model.hidden = [256]  # weights of 64 × 256 floats: 8 KiB a saved example of 8
    splits = load_splits(cfg.data, seed=0, device=run_module.resolve_device("cpu"))
    net = build_net(model_arch(cfg, splits), [0], splits.x_train.device)
    total, largest = activation_bytes(net, splits.x_train)
    assert largest == 4 * 256  # the hidden layer's outputs (and dropout draws) of one example
    # its input, hidden outputs, dropout draws, mask and kept outputs, logits: each counted once
    assert 4 * (64 + 256 + 10) <= total <= 4 * (64 + 5 * 256 + 3 * 10)
    assert activation_bytes(net, splits.x_train[:1]) == (total, largest)  # examples repeated
    cost = member_cost(net, splits.x_train, batch_size=64, eval_batch_size=100)
    assert cost.train == 2 * total * 64 and cost.evaluate == 2 * largest * 100


def test_chunk_size_is_the_smaller_of_the_limit_and_the_memory_never_zero() -> None:
    cost = MemberCost(params=600, train=300, evaluate=100)  # 900 bytes a member
    assert chunk_size(100, cost=cost, free=9_000, limit=None) == 8  # 0.8 × 9000 // 900
    assert chunk_size(100, cost=cost, free=9_000, limit=5) == 5
    assert chunk_size(4, cost=cost, free=9_000, limit=None) == 4
    assert chunk_size(100, cost=cost, free=10, limit=None) == 1
    assert chunk_size(100, cost=None, free=None, limit=None) == 100
