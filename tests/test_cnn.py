"""``model=cnn``: K convolutional networks as one grouped computation, each member exactly the
single run with its config and seed."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

import sweep.nets_cnn as nets_cnn
from sweep.config import AppConfig, ConfigError, DataConfig, validate
from sweep.data import Splits, StackedSplits, clear_cache, load_splits
from sweep.nets import Probe
from sweep.nets_cnn import ConvArch, StackedCNN, reference_cnn
from sweep.penalties import Penalty, add_penalty_grads
from sweep.run import batchable, run, run_population, structure_key
from sweep.stack import Hyper, MemberSettings, Shared
from sweep.train import fit

CPU = torch.device("cpu")
SMALL = ConvArch((1, 8, 8), 10, (4, 6), hidden=(12,))


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def digits() -> Splits:
    return load_splits(DataConfig(name="digits"), device=CPU)


@pytest.mark.parametrize(
    "arch",
    [
        SMALL,
        ConvArch((1, 8, 8), 10, (4, 6), pool="avg", batch_norm=True, hidden=(12,)),
        ConvArch((3, 6, 5), 4, (5,), kernel_size=5, pool="none", activation="tanh"),
    ],
    ids=["max", "avg+bn", "rgb-nopool"],
)
def test_members_start_as_the_seeded_reference_and_compute_it(arch: ConvArch) -> None:
    net = StackedCNN(arch, [3, 4, 3], CPU)
    torch.manual_seed(3)
    ref = reference_cnn(arch).eval()
    for p, q in zip(net.module(0).parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    x = torch.randn(3, 7, arch.n_features, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = net.forward(x)
        for k in range(3):
            torch.testing.assert_close(out[k], net.module(k)(x[k]), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out[0], ref(x[0]), rtol=1e-5, atol=1e-5)
    assert not torch.equal(out[0], out[1])  # another seed, another network


def test_weight_tensors_are_the_kernels_and_linear_weights() -> None:
    arch = ConvArch((1, 8, 8), 10, (4, 6), hidden=(12,), batch_norm=True)
    net = StackedCNN(arch, [0, 1], CPU)
    shapes = [tuple(p.shape[1:]) for p, w in zip(net.params, net.weight_mask, strict=True) if w]
    assert shapes == [(4, 1, 3, 3), (6, 4, 3, 3), (24, 12), (12, 10)]
    # the penalty's gradient reaches exactly those tensors (biases and batch-norm scales: 0)
    grads = [torch.zeros_like(p) for p in net.params]
    hp = Hyper.of([MemberSettings(penalty=Penalty(l1=0.1))] * 2, CPU)
    add_penalty_grads(net.params, grads, hp, net.weight_mask, 64)
    touched = [bool(g.abs().sum() > 0) for g in grads]
    assert touched == net.weight_mask and sum(touched) == 4


def test_dropout_masks_are_per_member_and_off_in_eval() -> None:
    net = StackedCNN(SMALL, [0, 1], CPU)
    x = torch.randn(2, 5, 64)
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    seen: list[tuple[int, tuple[int, ...]]] = []

    def masks(layer: int, shape: tuple[int, ...]) -> torch.Tensor:
        seen.append((layer, shape))
        return torch.stack([torch.rand(shape[1:], generator=g) for g in gens])

    p = torch.tensor([0.9, 0.0])
    with torch.no_grad():
        a = net.forward(x, train=True, dropout=p, masks=masks)
        b = net.forward(x, train=True, dropout=p, masks=masks)
        off = net.forward(x)
    assert not torch.equal(a[0], b[0])
    torch.testing.assert_close(a[1], off[1])  # p = 0: no dropout
    # after each block's pooling (K, B, C, H, W), then after the dense layer (K, B, width)
    assert seen[:3] == [(0, (2, 5, 4, 4, 4)), (1, (2, 5, 6, 2, 2)), (2, (2, 5, 12))]


def test_dead_units_are_channels_whose_activation_never_changes(digits: Splits) -> None:
    net = StackedCNN(SMALL, [0], CPU)
    with torch.no_grad():
        net.params[0][0, :2] = 0.0  # two channels of block 1 see nothing ...
        net.params[1][0, :2] = -1.0  # ... and ReLU of a negative bias is 0 everywhere
    probe = Probe()
    with torch.no_grad():
        net.forward(digits.x_train.unsqueeze(0), probe=probe)
    assert [t.shape for t in probe.low] == [(1, 4), (1, 6), (1, 12)]
    flat = (probe.high[0] - probe.low[0] <= 1e-6)[0].tolist()
    assert flat == [True, True, False, False]  # exactly the two silenced channels of block 1
    dead = sum(int((hi - lo <= 1e-6).sum()) for lo, hi in zip(probe.low, probe.high, strict=True))
    assert float(probe.dead_fraction()[0]) == pytest.approx(dead / (4 + 6 + 12))


def test_evaluation_in_blocks_gives_the_numbers_of_one_pass(
    digits: Splits, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = StackedCNN(ConvArch((1, 8, 8), 10, (4,), batch_norm=True), [0, 1], CPU)
    x = digits.x_val.expand(2, -1, -1)
    whole, p1 = Probe(), Probe()
    with torch.no_grad():
        a = net.forward(x, probe=whole)
        monkeypatch.setattr(nets_cnn, "EVAL_BLOCK_FLOATS", 2 * 4 * 64 * 50)  # 50 examples a block
        b = net.forward(x, probe=p1)
    torch.testing.assert_close(a, b)
    assert net.forward(x[:, :0]).shape == (2, 0, 10)  # an empty split (no test fraction)
    assert len(p1.low) == 1
    torch.testing.assert_close(whole.low[0], p1.low[0])
    torch.testing.assert_close(whole.high[0], p1.high[0])


# --------------------------------------------------------------------------- runs and populations


def _cfg(seed: int = 0, **changes: object) -> AppConfig:
    cfg = AppConfig()
    cfg.model.name, cfg.model.channels, cfg.model.hidden = "cnn", [4, 8], [16]
    cfg.optimizer.lr, cfg.optimizer.momentum = 0.05, 0.9
    cfg.trainer.epochs, cfg.trainer.seed = 3, seed
    cfg.trainer.device, cfg.trainer.progress = "cpu", False
    for path, value in changes.items():
        section, key = path.split("__")
        setattr(getattr(cfg, section), key, value)
    if any(p.startswith("regularizer__") for p in changes) and "regularizer__name" not in changes:
        cfg.regularizer.name = "cocktail"  # strengths set by hand: not the unregularized none
    return validate(cfg)


MEMBERS = [
    {},
    {"optimizer__lr": 0.02, "optimizer__momentum": 0.0},
    {"regularizer__l1": 1e-3, "trainer__seed": 7},
    {"regularizer__l2": 1e-2, "regularizer__clip": 0.5, "optimizer__nesterov": True},
    {"regularizer__weight_decay": 0.05, "regularizer__apply_to": "all", "trainer__seed": 2},
]


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_a_member_equals_the_single_run_with_its_config_and_seed(dropout: float) -> None:
    """Five CNN members with their own lr, momentum, penalties, clip, decay, dropout masks and
    seeds (so their own validation splits) give the curves of five separate runs: the grouped
    convolution computes each member's channels exactly as a convolution of its own would."""
    cfgs = [_cfg(0, model__dropout=dropout, **m) for m in MEMBERS]
    assert len({structure_key(c) for c in cfgs}) == 1
    together = run_population(cfgs)
    for cfg, member in zip(cfgs, together, strict=True):
        alone = run(copy.deepcopy(cfg)).summary
        for key in (
            "train_loss",
            "train_acc",
            "val_loss",
            "val_acc",
            "weight_l1",
            "weight_l2",
            "sparsity",
            "grad_norm",
            "dead_units",
        ):
            assert member.summary["curves"][key] == pytest.approx(
                alone["curves"][key], rel=1e-5, abs=1e-5
            ), key
        assert member.summary["test_acc"] == pytest.approx(alone["test_acc"], abs=1e-6)
    assert len({round(o.summary["val_loss"], 6) for o in together}) == len(cfgs)


def test_batch_norm_statistics_are_per_member_as_in_the_reference_module() -> None:
    """Train mode: batch statistics and running statistics of each member are those of its own
    ``nn.BatchNorm2d``. (Grouped batch norm sums in another order than a network of its own: a
    step differs from the single run's by float rounding, about 1e-6, which training can
    amplify, so with batch norm a member's curves match its single run only approximately.)"""
    arch = ConvArch((1, 8, 8), 10, (4, 8), hidden=(16,), batch_norm=True)
    net = StackedCNN(arch, [0, 1, 2], CPU)
    refs = [net.module(k).train() for k in range(3)]
    x = torch.randn(3, 32, 64, generator=torch.Generator().manual_seed(1))
    out = net.forward(x, train=True)
    for k, ref in enumerate(refs):
        torch.testing.assert_close(out[k], ref(x[k]), rtol=1e-4, atol=1e-5)
        running = [b for n, b in ref.named_buffers() if "running" in n]
        for mine, theirs in zip(net.buffers, running, strict=True):
            torch.testing.assert_close(mine[k], theirs, rtol=1e-5, atol=1e-6)
    assert not torch.equal(net.buffers[0][0], torch.zeros(4))  # they were updated


def test_a_cnn_learns_digits_as_1x8x8_images() -> None:
    outcome = run(
        _cfg(
            0,
            model__channels=[16, 32],
            model__hidden=[64],
            trainer__epochs=6,
            optimizer__name="adam",
            optimizer__lr=0.003,
            optimizer__momentum=0.0,
        )
    )
    s = outcome.summary
    assert s["val_acc"] > 0.93 and s["test_acc"] > 0.93  # chance is about 0.1
    assert s["curves"]["val_loss"][-1] < s["curves"]["val_loss"][0]


def test_a_pruned_cnn_member_leaves_the_stack(digits: Splits) -> None:
    class PruneAtOne:
        def report(self, value: float, step: int) -> None: ...

        def should_prune(self) -> bool:
            return True

    net = StackedCNN(SMALL, [0, 1, 2], CPU)
    settings = [MemberSettings(seed=i, lr=0.05) for i in range(3)]
    data = StackedSplits.of([digits], [0, 0, 0])
    a, b, c = fit(
        net,
        data,
        Shared(epochs=2, batch_size=128),
        settings,  # type: ignore[arg-type]
        reporters=[None, PruneAtOne(), None],
    )
    assert b.stop_reason == "pruned" and a.epochs_run == c.epochs_run == 2
    assert net.size == 2 and all(p.shape[0] == 2 for p in net.params)


# --------------------------------------------------------------------------- config and shapes


def test_a_cnn_needs_image_data() -> None:
    cfg = _cfg(0, data__name="noise")
    with pytest.raises(ConfigError, match=r"model='cnn': data=noise has examples of shape \(10,\)"):
        run(cfg)


def test_too_many_pooling_blocks_for_the_image_size_are_refused_before_training() -> None:
    cfg = _cfg(0, model__channels=[4, 4, 4, 4])
    with pytest.raises(ConfigError) as info:
        batchable(cfg)
    assert info.value.problems[0].startswith("model.channels=[4, 4, 4, 4]: 4 blocks")
    assert "8x8 → 4x4 → 2x2 → 1x1 → 0x0" in info.value.problems[0]
    assert "at most 3 block(s), or model.pool=none" in info.value.problems[0]
    assert batchable(_cfg(0, model__channels=[4, 4, 4, 4], model__pool="none")) == (True, "")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"model__kernel_size": 4}, "model.kernel_size=4: allowed an odd integer >= 1"),
        ({"model__channels": []}, "model.channels=[]: allowed one width per conv block"),
        ({"model__channels": [8, 0]}, "model.channels[1]=0: allowed [1, inf)"),
        ({"model__pool": "median"}, "model.pool='median': allowed one of max, avg, none"),
        ({"model__pool_size": 1}, "model.pool_size=1: allowed [2, inf)"),
        (
            {"model__name": "mlp", "model__channels": [16, 32], "model__kernel_size": 5},
            "model.kernel_size=5: allowed its default (3) unless model=cnn",
        ),
    ],
)
def test_bad_cnn_values_name_key_value_and_allowed(changes: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        _cfg(0, **changes)
    assert len(info.value.problems) == 1 and info.value.problems[0].startswith(expected)


def test_the_mlp_still_sees_flat_features_and_the_cnn_images() -> None:
    # one batch, two views of it: the CNN reshapes (K, B, 64) to (B, K·1, 8, 8) itself
    net = StackedCNN(ConvArch((1, 8, 8), 10, (2,), pool="none"), [0], CPU)
    x = torch.arange(64.0).view(1, 1, 64)
    with torch.no_grad():
        conv = F.conv2d(x.view(1, 1, 8, 8), net.params[0][0], net.params[1][0], padding=1)
        probe = Probe()
        net.forward(x, probe=probe)
    torch.testing.assert_close(probe.high[0][0], conv.relu().amax(dim=(0, 2, 3)))


# --------------------------------------------------------------------------- presets


@pytest.mark.parametrize(
    ("preset", "base"),
    [
        ("notes003_mnist_dropout_cnn", "notes003_mnist_dropout"),
        ("notes004_cifar10_cnn", "notes004_cifar10"),
    ],
)
def test_the_cnn_variants_of_the_notes_presets_compose_validate_and_run(
    preset: str, base: str
) -> None:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    from sweep.__main__ import to_app_config
    from tests.helpers import CONF

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cnn = compose(
            config_name="config", overrides=[f"experiment={preset}"], return_hydra_config=True
        )
        mlp = compose(
            config_name="config", overrides=[f"experiment={base}"], return_hydra_config=True
        )
    # the base preset's study, searched the same way, under a name of its own
    assert cnn.hydra.sweeper.study_name == preset
    for key in ("params", "conditional", "n_trials", "sampler"):
        assert OmegaConf.select(cnn, f"hydra.sweeper.{key}") == OmegaConf.select(
            mlp, f"hydra.sweeper.{key}"
        ), key
    for node in (cnn, mlp):
        with open_dict(node):
            del node["hydra"]
    app, ref = to_app_config(cnn), to_app_config(mlp)  # both pass the range checks
    assert app.model.name == "cnn" and app.model.channels and app.model.activation == "relu"
    assert (app.data.name, app.regularizer.name) == (ref.data.name, ref.regularizer.name)
    # the comment's promise: with data=digits it runs on the bundled set, as 1x8x8 images
    app.data = type(app.data)(name="digits")
    app.trainer.epochs, app.trainer.device, app.trainer.progress = 1, "cpu", False
    assert batchable(app) == (True, "")
    assert run(app).summary["val_acc"] > 0.2
