"""``model=custom``: the user's own ``nn.Module`` (from ``tests/custom_nets.py``), its contract,
its errors and its populations."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch

from sweep.config import AppConfig, ConfigError, validate
from sweep.custom import CONTRACT, CustomArch, StackedCustom
from sweep.data import clear_cache
from sweep.penalties import Penalty, add_penalty_grads
from sweep.run import batchable, run, run_population, structure_key
from sweep.stack import Hyper, MemberSettings
from tests.custom_nets import TinyNet

CPU = torch.device("cpu")
NETS = "tests.custom_nets"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()
    TinyNet.built_with.clear()
    yield
    clear_cache()


def _cfg(target: str = "TinyNet", seed: int = 0, **changes: object) -> AppConfig:
    cfg = AppConfig()
    cfg.model.name, cfg.model.target, cfg.model.hidden = "custom", f"{NETS}.{target}", []
    cfg.optimizer.lr, cfg.optimizer.momentum = 0.1, 0.9
    cfg.trainer.epochs, cfg.trainer.seed = 3, seed
    cfg.trainer.device, cfg.trainer.progress = "cpu", False
    for path, value in changes.items():
        section, key = path.split("__")
        setattr(getattr(cfg, section), key, value)
    if any(p.startswith("regularizer__") for p in changes) and "regularizer__name" not in changes:
        cfg.regularizer.name = "cocktail"  # strengths set by hand: not the unregularized none
    return validate(cfg)


def test_a_custom_module_trains_with_the_arguments_the_contract_promises() -> None:
    cfg = _cfg(model__dropout=0.3, model__kwargs={"width": 48})
    s = run(cfg).summary
    assert s["val_acc"] > 0.85 and s["stop_reason"] == "completed"  # digits; chance ~0.1
    # built with the data's sizes, model.kwargs and the dropout p (model.dropout)
    assert {"n_features": 64, "n_classes": 10, "dropout": 0.3, "width": 48} in TinyNet.built_with
    assert s["hparams"]["dropout"] == 0.3


def test_regularizer_dropout_reaches_a_module_that_takes_p() -> None:
    net = StackedCustom(
        CustomArch(f"{NETS}.BatchNormNet", 64, (1, 8, 8), 10, dropout=0.25), [0], CPU
    )
    drops = [m.p for m in net.base.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == [0.25]
    cfg = _cfg("BatchNormNet", regularizer__dropout=0.4)
    assert run(cfg).summary["hparams"]["dropout"] == 0.4


def test_penalties_touch_only_the_modules_rank_2_tensors() -> None:
    net = StackedCustom(CustomArch(f"{NETS}.TinyNet", 64, (1, 8, 8), 10), [0, 1], CPU)
    weights = [n for n, w in zip(net.names, net.weight_mask, strict=True) if w]
    assert weights == ["body.1.weight", "body.4.weight"]  # not the biases, not `scale`
    grads = [torch.zeros_like(p) for p in net.params]
    hp = Hyper.of([MemberSettings(penalty=Penalty(l1=0.1, l2=0.2))] * 2, CPU)
    add_penalty_grads(net.params, grads, hp, net.weight_mask, 64)
    for name, g, p in zip(net.names, grads, net.params, strict=True):
        if name in weights:
            torch.testing.assert_close(g, 0.1 * p.sign() + 0.4 * p.detach())
        else:
            assert not g.any(), name
    # and in a run: the weight statistics are about those tensors only
    s = run(_cfg(trainer__epochs=1)).summary
    assert s["weight_l1"] > 0 and s["dead_units"] == 0.0


def test_members_batched_by_vmap_equal_their_single_runs() -> None:
    cfgs = [
        _cfg(seed=0),
        _cfg(seed=3, optimizer__lr=0.05),
        _cfg(seed=5, regularizer__l2=1e-3, regularizer__clip=0.5),
    ]
    assert batchable(cfgs[0]) == (True, "")
    assert len({structure_key(c) for c in cfgs}) == 1
    together = run_population(cfgs)
    for cfg, member in zip(cfgs, together, strict=True):
        alone = run(copy.deepcopy(cfg)).summary
        for key in ("train_loss", "val_loss", "val_acc", "weight_l2", "grad_norm"):
            assert member.summary["curves"][key] == pytest.approx(
                alone["curves"][key], rel=1e-5, abs=1e-5
            ), key


def test_batch_norm_buffers_are_per_member_under_vmap() -> None:
    cfgs = [_cfg("BatchNormNet", seed=s, trainer__epochs=1) for s in (0, 1)]
    outcomes = run_population(cfgs)
    assert all(o.summary["val_acc"] > 0.3 for o in outcomes)
    net = StackedCustom(CustomArch(f"{NETS}.BatchNormNet", 64, (1, 8, 8), 10), [0, 1], CPU)
    x = torch.randn(2, 16, 64, generator=torch.Generator().manual_seed(0))
    x[1] += 3.0
    net.forward(x, train=True)
    means = net.buffers[net.buffer_names.index("net.1.running_mean")]
    assert float(means[1].mean() - means[0].mean()) != 0.0  # each member its own statistics
    torch.testing.assert_close(net.module(1).net[1].running_mean, means[1])


def test_a_model_vmap_cannot_batch_trains_each_trial_alone() -> None:
    a, b = _cfg("ItemNet", seed=0), _cfg("ItemNet", seed=1)
    ok, why = batchable(a)
    assert not ok and "vmap cannot batch it" in why and ".item()" in why
    assert structure_key(a) != structure_key(b)  # a population of one each
    assert structure_key(a) == structure_key(a)
    assert run(a).summary["val_acc"] > 0.5
    with pytest.raises(ValueError, match="share a network"):
        run_population([a, b])


def test_members_of_one_population_share_a_custom_models_dropout() -> None:
    assert structure_key(_cfg(model__dropout=0.1)) != structure_key(_cfg(model__dropout=0.2))
    assert structure_key(_cfg(optimizer__lr=0.3)) == structure_key(_cfg(regularizer__l1=0.1))


BAD = [
    ("nowhere.Net", "cannot import 'tests.custom_nets.nowhere'"),
    ("Missing", "has no class 'Missing'"),
    ("RaisingNet", "RaisingNet(n_classes=10) raised RuntimeError: no network for 10 classes"),
    ("WrongShapeNet", "returned (2, 3), not logits of shape (2, 10)"),
]


@pytest.mark.parametrize(("target", "expected"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_target_is_a_clear_error_before_training(target: str, expected: str) -> None:
    cfg = _cfg(target)
    for check in (batchable, run):
        with pytest.raises(ConfigError) as info:
            check(cfg)  # type: ignore[operator]
        (problem,) = info.value.problems
        assert problem.startswith(f"model.target='{NETS}.{target}': "), problem
        assert expected in problem and f"allowed {CONTRACT}" in problem


def test_dropout_for_a_module_without_a_dropout_argument_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        run(_cfg("NoDropoutNet", model__dropout=0.3))
    (problem,) = info.value.problems
    assert problem.startswith("model.dropout=0.3: ")
    assert "takes no `dropout` or `p` argument" in problem
    assert run(_cfg("NoDropoutNet", trainer__epochs=1)).summary["epochs_run"] == 1


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"model__target": None}, "model.target=None: allowed an import path"),
        ({"model__target": "NoDots"}, "model.target='NoDots': allowed an import path"),
        ({"model__kwargs": {"n_classes": 3}}, "model.kwargs.n_classes=3: allowed not set here"),
        ({"model__hidden": [8]}, "model.hidden=[8]: allowed [] with model=custom"),
        (
            {"model__name": "mlp", "model__hidden": [8]},
            f"model.target='{NETS}.TinyNet': allowed its default (None) unless model=custom",
        ),
    ],
)
def test_bad_custom_values_name_key_value_and_allowed(changes: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        _cfg(**changes)
    assert len(info.value.problems) == 1 and info.value.problems[0].startswith(expected)


def test_training_leaves_the_callers_generator_where_it_was() -> None:
    """The population draws from generators of its own (a custom model's dropout from a forked
    global one): a caller's seeded sequence goes on as if nothing had trained."""
    cfg = _cfg(model__dropout=0.3)
    run(cfg)  # first use: importing the user's module may draw, as any import may
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run(cfg)
    assert torch.equal(torch.rand(3), expected)
