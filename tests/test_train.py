"""Unit tests for ``sweep.train`` and the population around it: eval mode, sparsity, stopping,
seeds, and members that behave exactly as separate runs would."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sweep.config import AppConfig, DataConfig
from sweep.data import Splits, StackedSplits, clear_cache, load_splits
from sweep.nets import Arch, StackedMLP, inverted_dropout, reference_module
from sweep.optim import Schedule
from sweep.penalties import Penalty
from sweep.population import Population, _generator
from sweep.run import Entrant, RunOutcome, run, run_population
from sweep.train import EarlyStop, FitResult, MemberSettings, Shared, fit

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


def _arch(splits: Splits, hidden: tuple[int, ...], **kw: object) -> Arch:
    return Arch("mlp", splits.n_features, splits.n_classes, hidden, **kw)  # type: ignore[arg-type]


def _fit(
    splits: Splits,
    settings: list[MemberSettings],
    *,
    hidden: tuple[int, ...] = (32,),
    epochs: int = 3,
    batch_size: int = 64,
    reporters: list[object] | None = None,
    **kw: object,
) -> tuple[list[FitResult], StackedMLP]:
    net = StackedMLP(_arch(splits, hidden, **kw), [s.seed for s in settings], CPU)
    data = StackedSplits.of([splits], [0] * len(settings))
    shared = Shared(epochs=epochs, batch_size=batch_size, metric="val_acc")
    return fit(net, data, shared, settings, reporters=reporters), net  # type: ignore[arg-type]


def _eval(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        logits = model.eval()(x)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def test_rows_gathers_each_members_examples_of_its_own_split(digits: Splits) -> None:
    other = dataclasses.replace(
        digits, x_train=digits.x_train.flip(0), y_train=digits.y_train.flip(0)
    )
    idx = torch.tensor([[0, 5, 7], [1, 1, 2], [9, 3, 0]])
    for split_of, splits in (([0, 0, 0], [digits]), ([1, 0, 1], [digits, other])):
        data = StackedSplits.of(splits, split_of)
        got_x, got_y = data.rows(data.x_train, idx), data.rows(data.y_train, idx)
        assert got_x.shape == (3, 3, digits.n_features) and got_y.shape == (3, 3)
        for k, s in enumerate(split_of):
            assert torch.equal(got_x[k], splits[s].x_train[idx[k]])
            assert torch.equal(got_y[k], splits[s].y_train[idx[k]])


def test_evaluation_blocks_sized_to_the_cache_measure_the_same(digits: Splits) -> None:
    settings = [MemberSettings(seed=s, lr=0.05, dropout=0.2) for s in range(6)]
    arch = _arch(digits, (32,))
    curves = []
    for example_bytes in (0.0, 4 * 32 * 250.0):  # unknown: whole splits; else blocks of 32
        shared = Shared(epochs=2, batch_size=64, example_bytes=example_bytes)
        data = StackedSplits.of([digits], [0] * len(settings))
        net = StackedMLP(arch, [s.seed for s in settings], CPU)
        curves.append([r.curves for r in fit(net, data, shared, settings)])
    assert Shared(2, 64, example_bytes=4 * 32 * 250.0).eval_block(6, CPU) == 32  # 5 fit
    assert Shared(2, 64, example_bytes=4 * 32.0).eval_block(6, CPU) == 1365  # 1 MiB / 768 B
    assert Shared(2, 64, example_bytes=4 * 32 * 250.0).eval_block(6, torch.device("meta")) == 4096
    for whole, blocked in zip(*curves, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "dead_units"):
            assert blocked[key] == pytest.approx(whole[key], abs=1e-6), key


def test_only_dropping_members_draw_masks_each_from_its_own_generator(digits: Splits) -> None:
    settings = [
        MemberSettings(seed=3, dropout=0.5),
        MemberSettings(seed=4),
        MemberSettings(seed=5, dropout=0.1),
    ]
    net = StackedMLP(_arch(digits, (8,)), [s.seed for s in settings], CPU)
    data = StackedSplits.of([digits], [0] * 3)
    pop = Population(net, data, Shared(1, 64), settings)
    first, second = pop._masks(0, (3, 4, 8)), pop._masks(0, (3, 4, 8))
    assert torch.equal(first[1], torch.ones(4, 8)) and torch.equal(second[1], torch.ones(4, 8))
    for row, seed in ((0, 3), (2, 5)):
        own = _generator(seed, 1, CPU)
        assert torch.equal(first[row], torch.rand(4, 8, generator=own))
        assert torch.equal(second[row], torch.rand(4, 8, generator=own))
    pop.keep(torch.tensor([1]))
    assert not pop.rows.hp.flags.drop_rows


# --------------------------------------------------------------------------- L1 vs L2 sparsity


def test_l1_leaves_more_near_zero_weights_than_l2(digits: Splits) -> None:
    lam = 0.01
    (l1, l2), _ = _fit(
        digits,
        [
            MemberSettings(lr=0.1, penalty=Penalty(l1=lam)),
            MemberSettings(lr=0.1, penalty=Penalty(l2=lam)),
        ],
        epochs=8,
    )
    a, b = l1.curves, l2.curves
    assert a["sparsity_abs"][-1] > 0.2, a["sparsity_abs"]
    assert a["sparsity_abs"][-1] > 10 * max(b["sparsity_abs"][-1], 0.01)
    assert a["sparsity"][-1] > 3 * max(b["sparsity"][-1], 0.01)
    # both still learn digits: the comparison is between working models
    assert min(a["val_acc"][-1], b["val_acc"][-1]) > 0.85


# --------------------------------------------------------------------------- dropout / eval mode


def test_inverted_dropout_against_hand_computation() -> None:
    """Each member keeps a unit where its draw is at least its p and scales it by 1/(1−p);
    p = 0 keeps everything unscaled; the gradient is the same mask."""
    g = torch.Generator().manual_seed(0)
    h = torch.randn(3, 5, 7, generator=g, requires_grad=True)
    p = torch.tensor([0.5, 0.0, 0.9])
    uniform = torch.rand(3, 5, 7, generator=g)
    expected_mask = torch.stack([(uniform[i] >= p[i]).float() / (1 - p[i]) for i in range(3)])
    out = inverted_dropout(h, p, uniform.clone())
    torch.testing.assert_close(out, h.detach() * expected_mask, rtol=1e-6, atol=0)
    torch.testing.assert_close(out[1], h[1].detach(), rtol=0, atol=0)
    assert int((out[2] != 0).sum()) == int((uniform[2] >= 0.9).sum()) > 0
    out.sum().backward()
    assert h.grad is not None
    torch.testing.assert_close(h.grad, expected_mask, rtol=1e-6, atol=0)


def test_dropout_is_on_in_train_mode_and_off_in_eval(digits: Splits) -> None:
    net = StackedMLP(_arch(digits, (32,)), [0, 1], CPU)
    x = digits.x_val[:50].expand(2, -1, -1)
    p = torch.tensor([0.9, 0.0])
    gens = [torch.Generator().manual_seed(i) for i in range(2)]

    def masks(_layer: int, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.stack([torch.rand(shape[1:], generator=g) for g in gens])

    with torch.no_grad():
        a = net.forward(x, train=True, dropout=p, masks=masks)
        b = net.forward(x, train=True, dropout=p, masks=masks)
        off = net.forward(x)
    assert not torch.equal(a[0], b[0])  # a fresh mask each call for p = 0.9
    torch.testing.assert_close(a[1], off[1])  # p = 0: no dropout at all
    # eval mode is the reference network without dropout, member by member
    for k in range(2):
        with torch.no_grad():
            torch.testing.assert_close(off[k], net.module(k)(digits.x_val[:50]))


def test_members_start_as_the_seeded_reference_module(digits: Splits) -> None:
    net = StackedMLP(_arch(digits, (16, 8), batch_norm=True), [3, 4, 3], CPU)
    torch.manual_seed(3)
    ref = reference_module(_arch(digits, (16, 8), batch_norm=True))
    for k in (0, 2):
        for p, q in zip(net.module(k).parameters(), ref.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=0, atol=0)
    w0 = next(net.module(0).parameters())
    w1 = next(net.module(1).parameters())
    assert not torch.equal(w0, w1)


def test_train_metrics_are_measured_in_eval_mode_with_dropout_off(digits: Splits) -> None:
    (result,), net = _fit(digits, [MemberSettings(lr=0.1, dropout=0.5)], epochs=2)
    model = net.module(0)
    loss, acc = _eval(model, digits.x_train, digits.y_train)
    assert result.curves["train_loss"][-1] == pytest.approx(loss, rel=1e-5)
    assert result.curves["train_acc"][-1] == pytest.approx(acc, abs=1e-6)
    # the running average over the epoch (dropout on, weights moving) is another number
    assert abs(result.curves["step_loss"][-1] - loss) > 1e-3
    vloss, vacc = _eval(model, digits.x_val, digits.y_val)
    assert result.curves["val_loss"][-1] == pytest.approx(vloss, rel=1e-5)
    assert result.curves["gap_acc"][-1] == pytest.approx(acc - vacc, abs=1e-6)
    assert result.test is not None
    assert list(result.test) == pytest.approx(
        list(_eval(model, digits.x_test, digits.y_test)), rel=1e-5
    )


def test_dead_units_counts_hidden_units_that_never_change(digits: Splits) -> None:
    (result,), net = _fit(digits, [MemberSettings(lr=0.1)], epochs=1, hidden=(16,))
    with torch.no_grad():
        net.params[0][0, :, :4] = 0.0  # four units see no input ...
        net.params[1][0, :4] = -1.0  # ... and a negative bias: ReLU gives 0 everywhere
    from sweep.nets import Probe

    probe = Probe()
    with torch.no_grad():
        net.forward(digits.x_train.unsqueeze(0), probe=probe)
    assert float(probe.dead_fraction()[0]) == pytest.approx(4 / 16)
    assert 0.0 <= result.curves["dead_units"][-1] < 4 / 16


# --------------------------------------------------------------------------- clipping


def test_clip_bounds_the_update_and_grad_norm_is_measured_before_clipping() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=g) * 10, torch.randint(0, 3, (32,), generator=g)
    splits = Splits(x, y, x[:8], y[:8], x[:0], y[:0], 3, (4,), "toy")
    net = StackedMLP(Arch("logreg", 4, 3), [0], CPU)
    before = torch.cat([p.detach().flatten().clone() for p in net.params])
    clip = 1e-3
    data = StackedSplits.of([splits], [0])
    (result,) = fit(net, data, Shared(epochs=1, batch_size=32), [MemberSettings(lr=0.5, clip=clip)])
    after = torch.cat([p.detach().flatten() for p in net.params])
    assert result.curves["grad_norm"][0] > 100 * clip  # the norm before clipping
    assert float((after - before).norm()) == pytest.approx(0.5 * clip, rel=1e-3)


def test_batch_norm_trains_when_the_last_batch_has_one_example() -> None:
    # 129 training examples in batches of 64 leave a last batch of one, which batch norm cannot
    # normalize in train mode: it joins the batch before.
    splits = load_splits(DataConfig(name="digits", n_train=129), device=CPU)
    assert splits.x_train.shape[0] % 64 == 1
    (result,), net = _fit(splits, [MemberSettings(lr=0.1)], hidden=(16,), batch_norm=True)
    assert result.stop_reason == "completed" and result.epochs_run == 3
    assert all(v == v for v in result.curves["train_loss"])  # finite, not NaN
    loss, _ = _eval(net.module(0), splits.x_val, splits.y_val)  # running statistics in eval
    assert result.curves["val_loss"][-1] == pytest.approx(loss, rel=1e-4)


# --------------------------------------------------------------------------- stopping


def test_huge_lr_diverges_and_stops_at_that_epoch(digits: Splits) -> None:
    (result,), _ = _fit(digits, [MemberSettings(lr=1e6)], hidden=(16,), epochs=5)
    assert result.stop_reason == "diverged"
    assert result.epochs_run < 5
    assert result.epochs_run == len(result.curves["val_loss"])
    assert "non-finite" in result.message and f"epoch {result.epochs_run}" in result.message
    assert result.test is None


def test_early_stopping_stops_after_patience_and_restores_best(noise: Splits) -> None:
    # random labels: the val loss soon rises while the net memorizes the training set
    patience = 3
    (result,), net = _fit(
        noise,
        [MemberSettings(lr=0.2, momentum=0.9, early_stop=EarlyStop(patience=patience))],
        hidden=(64,),
        epochs=30,
        batch_size=32,
    )
    val = result.curves["val_loss"]
    assert result.stop_reason == "early_stopped"
    assert result.epochs_run < 30
    best = min(range(len(val)), key=val.__getitem__) + 1
    assert result.best_epoch == result.final_epoch == best
    assert 1 < best < result.epochs_run  # a non-trivial best: neither the first nor the last
    assert result.epochs_run == best + patience
    # the final model's test figures are those of the restored best weights
    assert result.test is not None
    model = net.module(0)  # the stack still holds the last weights: they were not restored there
    last_val, _ = _eval(model, noise.x_val, noise.y_val)
    assert last_val == pytest.approx(val[-1], rel=1e-5) and last_val != pytest.approx(val[best - 1])


def test_early_stopping_without_restore_keeps_last_weights(noise: Splits) -> None:
    es = EarlyStop(patience=3, restore_best=False)
    (result,), _ = _fit(
        noise,
        [MemberSettings(lr=0.5, momentum=0.9, early_stop=es)],
        hidden=(64,),
        epochs=30,
        batch_size=32,
    )
    assert result.stop_reason == "early_stopped" and result.best_epoch < result.epochs_run
    assert result.final_epoch == result.epochs_run


class _PruneAt:
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.reports: list[tuple[float, int]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return bool(self.reports) and self.reports[-1][1] >= self.epoch


def test_reporter_prunes_at_epoch_three(digits: Splits) -> None:
    reporter = _PruneAt(3)
    (result,), _ = _fit(
        digits,
        [MemberSettings(lr=0.05)],
        hidden=(16,),
        epochs=10,
        batch_size=128,
        reporters=[reporter],
    )
    assert result.stop_reason == "pruned"
    assert result.epochs_run == 3 and result.curves["epoch"] == [1.0, 2.0, 3.0]
    assert "epoch 3" in result.message
    # the reporter saw the optimized metric, once per epoch, with 1-based steps
    assert [s for _, s in reporter.reports] == [1, 2, 3]
    assert [v for v, _ in reporter.reports] == result.curves["val_acc"]


class _Logged:
    """A reporter that writes what it is told and asked into a log shared by the population."""

    def __init__(self, name: str, log: list[tuple[str, str, int]]) -> None:
        self.name, self.log, self.step = name, log, 0

    def report(self, value: float, step: int) -> None:
        self.step = step
        self.log.append(("report", self.name, step))

    def should_prune(self) -> bool:
        self.log.append(("judge", self.name, self.step))
        return False


def test_every_member_reports_its_epoch_before_any_member_is_judged(digits: Splits) -> None:
    """A pruner that compares the members with each other sees the whole epoch, whatever the
    members' order (before, member 0 was judged before member 1 had reported)."""
    log: list[tuple[str, str, int]] = []
    reporters = [_Logged(n, log) for n in "abc"]
    settings = [MemberSettings(lr=0.05), MemberSettings(lr=0.1), MemberSettings(lr=0.2)]
    _fit(digits, settings, epochs=2, reporters=reporters)  # type: ignore[arg-type]
    expected = [(what, n, e) for e in (1, 2) for what in ("report", "judge") for n in "abc"]
    assert log == expected


def test_lr_curve_follows_the_schedule(digits: Splits) -> None:
    step = Schedule("step", step_size=2, gamma=0.5, epochs=4)
    (result,), _ = _fit(
        digits, [MemberSettings(lr=0.4, schedule=step)], hidden=(8,), epochs=4, batch_size=256
    )
    assert result.curves["lr"] == pytest.approx([0.4, 0.4, 0.2, 0.2])


# --------------------------------------------------------------------------- seeds


def _tiny(seed: int, **changes: object) -> AppConfig:
    cfg = AppConfig()
    cfg.data.name = "digits"
    cfg.model.hidden = [16]
    cfg.model.dropout = 0.2
    cfg.trainer.epochs = 2
    cfg.trainer.seed = seed
    cfg.trainer.device = "cpu"
    cfg.trainer.progress = False
    for path, value in changes.items():
        section, key = path.split("__")
        setattr(getattr(cfg, section), key, value)
    return cfg


def test_same_seed_same_numbers_different_seed_different_numbers() -> None:
    a, b, c = (run(_tiny(seed)).summary["curves"] for seed in (3, 3, 4))
    keys = [k for k in a if k != "epoch_seconds"]
    assert len(a["val_loss"]) == 2
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    assert a["val_loss"] != c["val_loss"] and a["weight_l1"] != c["weight_l1"]


# --------------------------------------------------------------------------- populations


def _same_curves(a: dict[str, list[float]], b: dict[str, list[float]], atol: float) -> None:
    for key in (
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "weight_l1",
        "weight_l2",
        "sparsity",
        "grad_norm",
        "lr",
    ):
        assert len(a[key]) == len(b[key]), key
        assert a[key] == pytest.approx(b[key], abs=atol, rel=atol), key


MEMBERS = [
    {},
    {"optimizer__lr": 0.02, "optimizer__momentum": 0.0},
    {"regularizer__l1": 1e-3, "trainer__seed": 7},
    {"regularizer__l2": 1e-2, "regularizer__clip": 0.5, "optimizer__nesterov": True},
    {"regularizer__weight_decay": 0.05, "regularizer__apply_to": "all", "trainer__seed": 2},
]


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_a_member_equals_the_single_run_with_its_config_and_seed(dropout: float) -> None:
    """Five members with their own lr, momentum, penalties, clip, decay and seeds (so their own
    validation splits) give the curves of five separate runs: to 1e-5 with dropout off, and with
    dropout on too, since each member draws its masks from its own generator."""
    cfgs = [_tiny(0, model__dropout=dropout, trainer__epochs=4, **m) for m in MEMBERS]
    for c in cfgs:
        c.optimizer.momentum = c.optimizer.momentum if "optimizer__momentum" in str(c) else 0.9
    together = run_population(cfgs)
    for cfg, member in zip(cfgs, together, strict=True):
        alone = run(copy.deepcopy(cfg))
        _same_curves(member.summary["curves"], alone.summary["curves"], 1e-5)
        assert member.summary["test_acc"] == pytest.approx(alone.summary["test_acc"], abs=1e-6)
    # and they are different runs
    assert len({round(o.summary["val_loss"], 6) for o in together}) == len(cfgs)


ADAM_MEMBERS = [
    {},
    {"regularizer__weight_decay": 0.05, "trainer__seed": 3},
    {"regularizer__elastic": 1e-3, "regularizer__l1_ratio": 0.3, "regularizer__apply_to": "all"},
    {"scheduler__name": "cosine", "regularizer__clip": 0.3},
    {
        "scheduler__name": "step",
        "scheduler__step_size": 2,
        "scheduler__gamma": 0.5,
        "regularizer__l2": 1e-3,
        "regularizer__scale": "half_mean",
    },
    {"optimizer__betas": [0.8, 0.99], "optimizer__eps": 1e-6, "optimizer__lr": 0.003},
]


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_adam_members_equal_their_single_runs(kind: str) -> None:
    """Adam and AdamW members with their own betas, eps, decay (coupled in Adam, decoupled in
    AdamW), elastic net over every parameter, half-mean scaling, clipping and schedules, trained
    as one population, give the curves of separate runs to 1e-5 (the SGD case is above)."""
    cfgs = [
        _tiny(
            i,
            **{
                "model__dropout": 0.0,
                "trainer__epochs": 5,
                "optimizer__name": kind,
                "optimizer__lr": 0.01,
                **m,
            },
        )
        for i, m in enumerate(ADAM_MEMBERS)
    ]
    for cfg, member in zip(cfgs, run_population(cfgs), strict=True):
        alone = run(copy.deepcopy(cfg))
        _same_curves(member.summary["curves"], alone.summary["curves"], 1e-5)
        assert member.summary["val_loss"] == pytest.approx(alone.summary["val_loss"], abs=1e-6)


def test_a_pruned_member_leaves_the_stack_and_the_others_go_on(digits: Splits) -> None:
    settings = [MemberSettings(lr=0.05), MemberSettings(lr=0.1), MemberSettings(lr=0.2)]
    prune = _PruneAt(2)
    (a, b, c), net = _fit(digits, settings, epochs=5, reporters=[None, prune, None])
    assert b.stop_reason == "pruned" and b.epochs_run == 2
    assert a.epochs_run == c.epochs_run == 5
    assert net.size == 2  # the pruned member's rows are gone from every stacked tensor
    (a_alone, c_alone), _ = _fit(digits, [settings[0], settings[2]], epochs=5)
    _same_curves(a.curves, a_alone.curves, 1e-5)
    _same_curves(c.curves, c_alone.curves, 1e-5)


def test_a_diverging_member_fails_alone(digits: Splits) -> None:
    settings = [MemberSettings(lr=0.1), MemberSettings(lr=1e7), MemberSettings(lr=0.05)]
    (a, bad, c), _ = _fit(digits, settings, epochs=4)
    assert bad.stop_reason == "diverged" and bad.epochs_run < 4
    assert a.stop_reason == c.stop_reason == "completed"
    (a_alone,), _ = _fit(digits, [settings[0]], epochs=4)
    _same_curves(a.curves, a_alone.curves, 1e-5)
    assert a.test is not None and c.test is not None and bad.test is None


def test_early_stopping_acts_per_member(noise: Splits) -> None:
    settings = [
        MemberSettings(lr=0.5, momentum=0.9, early_stop=EarlyStop(patience=2)),
        MemberSettings(lr=0.5, momentum=0.9, early_stop=EarlyStop(patience=6)),
        MemberSettings(lr=0.5, momentum=0.9),
    ]
    (short, long, never), _ = _fit(noise, settings, hidden=(64,), epochs=40, batch_size=32)
    assert short.stop_reason == long.stop_reason == "early_stopped"
    assert short.epochs_run == short.best_epoch + 2
    assert long.epochs_run == long.best_epoch + 6
    assert never.stop_reason == "completed" and never.epochs_run == 40
    assert never.final_epoch == 40 and short.final_epoch == short.best_epoch


def test_members_of_different_architectures_cannot_share_a_population() -> None:
    with pytest.raises(ValueError, match="share a network"):
        run_population([_tiny(0), _tiny(0, model__hidden=[32])])


# --------------------------------------------------------------------------- the final model


def test_a_memorizing_network_shows_what_each_regularizer_does() -> None:
    """The issue's setup, shortened to 40 epochs: 400 digits with 40% wrong labels, a 256-256
    MLP, Adam.
    The unregularized network memorizes the noise; its final model is worse on validation
    than at its best epoch, and dropout and L2 change the final model's validation accuracy.
    Judged at each run's best epoch (hindsight), the three would look alike."""
    arms = {
        "none": {},
        "dropout": {"model__dropout": 0.5},
        "l2": {"regularizer__l2": 1e-2},
    }
    cfgs = []
    for changes in arms.values():
        for seed in (0, 1, 2):
            cfg = _tiny(seed, **{"model__dropout": 0.0, "trainer__epochs": 40, **changes})
            cfg.model.hidden = [256, 256]
            cfg.data.n_train, cfg.data.label_noise = 400, 0.4
            cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.momentum = "adam", 1e-3, 0.0
            cfgs.append(cfg)
    outcomes = run_population(cfgs)
    final = {
        name: [o.summary["val_acc"] for o in outcomes[3 * i : 3 * i + 3]]
        for i, name in enumerate(arms)
    }
    best = {
        name: [o.summary["best_epoch_val_acc"] for o in outcomes[3 * i : 3 * i + 3]]
        for i, name in enumerate(arms)
    }
    mean = {name: sum(v) / 3 for name, v in final.items()}
    none_train = [o.summary["train_acc"] for o in outcomes[:3]]
    assert min(none_train) > 0.97  # it memorized the wrong labels
    assert mean["none"] < sum(best["none"]) / 3 - 0.1  # the final model lost what hindsight keeps
    assert mean["l2"] > mean["none"] + 0.05
    assert mean["dropout"] > mean["none"] + 0.05
    assert len({round(v, 4) for v in mean.values()}) == 3
    hindsight = [sum(v) / 3 for v in best.values()]
    assert max(hindsight) - min(hindsight) < 0.02  # what every trial's best epoch would show


def test_a_freed_slot_takes_a_new_member_that_trains_as_a_run_of_its_own() -> None:
    """Population refill (run_population's ``more``): a member pruned at epoch 2 frees its slot;
    the member that joins trains its own 4 epochs beside the others (at their epochs 3–6), with
    its own seed's data split, and its curves are those of a separate run: to 1e-5 with dropout
    off, Adam's bias correction counted from its own first step."""
    base = {
        "model__dropout": 0.0,
        "trainer__epochs": 4,
        "optimizer__name": "adam",
        "optimizer__lr": 0.01,
    }
    cfgs = [_tiny(0, **base), _tiny(1, **base, regularizer__l2=1e-3)]
    joiner = _tiny(5, **{**base, "optimizer__lr": 0.003}, regularizer__l1=1e-4)
    ended: list[tuple[int, str, int]] = []
    asked: list[int] = []

    def more(free: int) -> list[Entrant]:
        asked.append(free)
        return [Entrant(copy.deepcopy(joiner))] if len(asked) == 1 else []

    def on_end(done: list[tuple[int, RunOutcome]]) -> None:
        ended.extend((i, o.fit.stop_reason, o.fit.epochs_run) for i, o in done)

    out = run_population(cfgs, reporters=[None, _PruneAt(2)], on_end=on_end, more=more)
    assert [o.fit.stop_reason for o in out] == ["completed", "pruned", "completed"]
    assert [o.fit.epochs_run for o in out] == [4, 2, 4]
    # member 1 ends first, alone; the joiner (index 2) outlives the first member by 2 epochs
    assert ended == [(1, "pruned", 2), (0, "completed", 4), (2, "completed", 4)]
    assert asked[0] == 1  # one slot was free
    alone = run(copy.deepcopy(joiner))
    _same_curves(out[2].summary["curves"], alone.summary["curves"], 1e-5)
    assert out[2].summary["test_acc"] == pytest.approx(alone.summary["test_acc"], abs=1e-6)
    first_alone = run(copy.deepcopy(cfgs[0]))
    _same_curves(out[0].summary["curves"], first_alone.summary["curves"], 1e-5)


def test_max_population_slots_are_refilled_from_the_queue_as_members_end() -> None:
    """With ``trainer.max_population=2`` a population of 3 trains 2 at a time: the third starts
    in the slot of the first member to end (pruned at epoch 1), beside the second, not after it."""
    cfgs = [_tiny(s, trainer__epochs=3, trainer__max_population=2) for s in (0, 1, 2)]
    seen: list[tuple[int, int]] = []  # (member, its epoch), in the order epochs are recorded

    def hook(member: int) -> Callable[[dict[str, float]], None]:
        return lambda row: seen.append((member, int(row["epoch"])))

    out = run_population(
        cfgs, reporters=[_PruneAt(1), None, None], on_epoch=[hook(0), hook(1), hook(2)]
    )
    assert [o.fit.epochs_run for o in out] == [1, 3, 3]
    assert seen == [(0, 1), (1, 1), (1, 2), (2, 1), (1, 3), (2, 2), (2, 3)]
