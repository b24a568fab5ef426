"""Unit tests for ``sweep.stack`` and ``sweep.population.train_step``: per-member rows kept,
appended and inserted for every field at once, and one step of a population matching each
member's step computed by hand with torch.nn (penalty, clipping, decay, its own settings)."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch
import torch.nn.functional as F

from sweep.nets import Arch, StackedMLP
from sweep.optim import optimizer_state
from sweep.penalties import Penalty
from sweep.population import Members, train_step
from sweep.stack import Hyper, MemberSettings

CPU = torch.device("cpu")

SETTINGS = [
    MemberSettings(seed=0, penalty=Penalty(l1=0.1), clip=0.5, dropout=0.2),
    MemberSettings(seed=1, penalty=Penalty(l2=0.3), weight_decay=0.2, momentum=0.9),
    MemberSettings(
        seed=2,
        penalty=Penalty(l1=0.05, l2=0.1, half_mean=True),
        clip=0.01,
        weight_decay=0.1,
        decay_all=True,
        penalize_all=True,
        nesterov=True,
    ),
    MemberSettings(seed=3, betas=(0.8, 0.99), eps=1e-6, clip=2.0),
]


def _same_rows(a: Hyper, b: Hyper) -> None:
    for f in fields(Hyper):
        assert torch.equal(getattr(a, f.name), getattr(b, f.name)), f.name


def test_hyper_keeps_and_inserts_every_setting_at_once() -> None:
    hp = Hyper.of(SETTINGS[:3], CPU)
    assert hp.size == 3 and hp.l1.dtype == torch.float64
    assert hp.flags.drop_rows == (0,) and hp.flags.clips and hp.flags.any_nesterov
    kept = hp.keep(torch.tensor([2, 1]))
    _same_rows(kept, Hyper.of([SETTINGS[2], SETTINGS[1]], CPU))
    # derived flags are those of the rows kept, not the rows before
    assert kept.flags.drop_rows == () and kept.flags.any_l1
    assert not hp.keep(torch.tensor([1])).flags.clips
    inserted = hp.insert(1, Hyper.of([SETTINGS[3]], CPU))
    _same_rows(inserted, Hyper.of([SETTINGS[0], SETTINGS[3], SETTINGS[1], SETTINGS[2]], CPU))
    _same_rows(hp.extend(Hyper.of([SETTINGS[3]], CPU)), Hyper.of(SETTINGS, CPU))
    assert hp.insert(0, hp.keep(torch.tensor([], dtype=torch.int64))).size == 3
    with pytest.raises(IndexError, match="insert at row 4 of 3"):
        hp.insert(4, hp)


def test_members_rows_carry_state_and_generators_with_the_member() -> None:
    """Nested rows (hyperparameters, optimizer state) and per-member generators move together;
    SGD's absent second moments stay absent."""
    params = [torch.randn(3, 2, 2), torch.randn(3, 2)]
    rows = Members.of(SETTINGS[:3], "sgd", params, CPU)
    rows.state.steps += torch.tensor([1.0, 2.0, 3.0])
    rows.state.first[0][2] = 7.0
    joined = Members.of([SETTINGS[3]], "sgd", [p[:1] for p in params], CPU, first=3)
    both = rows.keep(torch.tensor([2, 0])).insert(1, joined)
    assert both.ids.tolist() == [2, 3, 0]
    assert both.state.steps.tolist() == [3.0, 0.0, 1.0]
    assert bool((both.state.first[0][0] == 7.0).all()) and not both.state.first[0][1:].any()
    assert both.state.second == []
    assert both.hp.clip.tolist() == pytest.approx([0.01, 2.0, 0.5])
    assert both.batch_order[1] is joined.batch_order[0]
    assert both.dropout_draws[2] is rows.dropout_draws[0]
    adam = optimizer_state("adam", params).keep(torch.tensor([1]))
    assert [tuple(s.shape) for s in adam.second] == [(1, 2, 2), (1, 2)]


def _by_hand(
    net: StackedMLP, k: int, s: MemberSettings, x: torch.Tensor, y: torch.Tensor, lr: float
) -> list[torch.Tensor]:
    """Member ``k``'s parameters after one SGD step (no momentum), by hand with torch.nn:
    mean cross-entropy → + penalty gradient → clip the total norm → decayed update."""
    module = net.module(k)
    module.train()
    loss = F.cross_entropy(module(x[k]), y[k])
    loss.backward()
    batch = x.shape[1]
    scale = 1.0 / (2 * batch) if s.penalty.half_mean else 1.0
    params = list(module.parameters())
    grads = []
    for p in params:
        assert p.grad is not None
        g = p.grad.clone()
        if p.dim() >= 2 or s.penalize_all:
            g += scale * (s.penalty.l1 * p.detach().sign() + 2 * s.penalty.l2 * p.detach())
        grads.append(g)
    norm = torch.sqrt(sum(g.square().sum() for g in grads))  # type: ignore[arg-type]
    if s.clip is not None:
        grads = [g * min(1.0, s.clip / (float(norm) + 1e-6)) for g in grads]
    out = []
    for p, g in zip(params, grads, strict=True):
        wd = s.weight_decay if (p.dim() >= 2 or s.decay_all) else 0.0
        out.append(p.detach() - lr * (g + wd * p.detach()))
    return out


def test_one_step_matches_each_members_step_by_hand() -> None:
    """Four members, each with its own penalty (L1, L2, half-mean elastic net on every
    parameter, none), clip threshold and coupled decay: after ``train_step`` each member's
    weights equal its step computed by hand, to float32 precision."""
    settings = [
        MemberSettings(
            seed=i,
            lr=lr,
            penalty=pen,
            clip=clip,
            weight_decay=wd,
            decay_all=every,
            penalize_all=every,
        )
        for i, (lr, pen, clip, wd, every) in enumerate(
            [
                (0.5, Penalty(l1=0.1), 0.05, 0.0, False),
                (0.2, Penalty(l2=0.3), None, 0.2, False),
                (0.3, Penalty(l1=0.05, l2=0.1, half_mean=True), 0.01, 0.1, True),
                (0.1, Penalty(), None, 0.0, False),
            ]
        )
    ]
    net = StackedMLP(Arch("mlp", 3, 4, (5,)), [s.seed for s in settings], CPU)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, 3, generator=g)
    y = torch.randint(0, 4, (4, 6), generator=g)
    expected = [_by_hand(net, k, s, x, y, s.lr) for k, s in enumerate(settings)]
    hp = Hyper.of(settings, CPU)
    state = optimizer_state("sgd", net.params)
    lr = torch.tensor([s.lr for s in settings])
    loss, norm = train_step(net, state, hp, x, y, lr, kind="sgd")
    for k in range(4):
        after = list(net.module(k).parameters())
        for a, e in zip(after, expected[k], strict=True):
            torch.testing.assert_close(a.detach(), e, atol=1e-6, rtol=1e-5)
        assert float(loss[k]) > 0 and float(norm[k]) > 0
    assert state.steps.tolist() == [1.0] * 4
    # clipping bit: the first member's norm was above its threshold of 0.05
    assert float(norm[0]) > 0.05
