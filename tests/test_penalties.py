"""Unit tests for ``sweep.penalties``: values and gradients against hand computations."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from sweep.nets import Arch, StackedMLP, reference_module
from sweep.penalties import Penalty, add_penalty_grads, clip_grads, penalty_value
from sweep.regularizers import loss_penalty
from sweep.stack import Hyper, MemberSettings

CPU = torch.device("cpu")
W = [[1.0, -2.0, 0.5], [-0.25, 3.0, 0.0]]  # Σ|w| = 6.75, Σw² = 14.3125
V = [-1.5, 4.0]  # Σ|v| = 5.5, Σv² = 18.25


def _params() -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.tensor(W, dtype=torch.float64, requires_grad=True)
    v = torch.tensor(V, dtype=torch.float64, requires_grad=True)
    return w, v


def _value_and_grads(
    penalty: Penalty, batch_size: int = 1
) -> tuple[float, torch.Tensor, torch.Tensor]:
    w, v = _params()
    total = penalty_value([w, v], penalty, batch_size)
    total.backward()
    assert w.grad is not None and v.grad is not None
    return float(total.detach()), w.grad, v.grad


def test_l1_value_and_gradient() -> None:
    value, gw, gv = _value_and_grads(Penalty(l1=0.1))
    assert value == pytest.approx(0.1 * (6.75 + 5.5))
    # d/dw λ|w| = λ·sign(w); torch's subgradient at exactly 0 is 0.
    torch.testing.assert_close(gw, 0.1 * torch.tensor(W, dtype=torch.float64).sign())
    torch.testing.assert_close(gv, 0.1 * torch.tensor(V, dtype=torch.float64).sign())
    assert gw[1, 2] == 0.0


def test_l2_value_and_gradient() -> None:
    value, gw, gv = _value_and_grads(Penalty(l2=0.01))
    assert value == pytest.approx(0.01 * (14.3125 + 18.25))
    # d/dw λw² = 2λw
    torch.testing.assert_close(gw, 2 * 0.01 * torch.tensor(W, dtype=torch.float64))
    torch.testing.assert_close(gv, 2 * 0.01 * torch.tensor(V, dtype=torch.float64))


def test_l1_and_l2_together_add_up() -> None:
    value, gw, _ = _value_and_grads(Penalty(l1=0.1, l2=0.01))
    assert value == pytest.approx(0.1 * 12.25 + 0.01 * 32.5625)
    w = torch.tensor(W, dtype=torch.float64)
    torch.testing.assert_close(gw, 0.1 * w.sign() + 0.02 * w)


def test_docstring_example_value() -> None:
    w = torch.tensor([[1.0, -2.0]])
    assert float(penalty_value([w], Penalty(l1=0.1, l2=0.01), batch_size=1)) == pytest.approx(0.35)


def _folded(*, l1: float, l2: float, elastic: float, l1_ratio: float, half_mean: bool) -> Penalty:
    """The step's penalty for these settings, folded by the registry (sweep.regularizers)."""
    settings = SimpleNamespace(l1=l1, l2=l2, elastic=elastic, l1_ratio=l1_ratio)
    return Penalty(*loss_penalty(settings), half_mean=half_mean)


def test_elastic_net_folds_into_l1_and_l2() -> None:
    p = _folded(l1=0.01, l2=0.02, elastic=0.5, l1_ratio=0.3, half_mean=False)
    assert p.l1 == pytest.approx(0.01 + 0.5 * 0.3)
    assert p.l2 == pytest.approx(0.02 + 0.5 * 0.7)
    assert p.half_mean is False
    # value: l1·Σ|w| + l2·Σw² + elastic·(ρΣ|w| + (1−ρ)Σw²), by hand
    value, gw, _ = _value_and_grads(p)
    s1, s2 = 12.25, 32.5625
    assert value == pytest.approx(0.01 * s1 + 0.02 * s2 + 0.5 * (0.3 * s1 + 0.7 * s2))
    w = torch.tensor(W, dtype=torch.float64)
    torch.testing.assert_close(gw, (0.01 + 0.15) * w.sign() + 2 * (0.02 + 0.35) * w)


@pytest.mark.parametrize(
    ("l1_ratio", "l1", "l2"),
    [(0.0, 0.0, 0.2), (1.0, 0.2, 0.0), (0.25, 0.05, 0.15)],
)
def test_elastic_net_ratio_extremes(l1_ratio: float, l1: float, l2: float) -> None:
    p = _folded(l1=0.0, l2=0.0, elastic=0.2, l1_ratio=l1_ratio, half_mean=True)
    assert (p.l1, p.l2, p.half_mean) == (pytest.approx(l1), pytest.approx(l2), True)


def test_half_mean_divides_by_twice_the_batch_size() -> None:
    # 004's notes: λ/(2m)·Σ‖W‖², m = batch size
    lam, m = 0.003, 128
    value, gw, _ = _value_and_grads(Penalty(l2=lam, half_mean=True), batch_size=m)
    assert value == pytest.approx(lam / (2 * m) * (14.3125 + 18.25))
    torch.testing.assert_close(gw, lam / m * torch.tensor(W, dtype=torch.float64))
    value_l1, gw_l1, _ = _value_and_grads(Penalty(l1=lam, half_mean=True), batch_size=m)
    assert value_l1 == pytest.approx(lam / (2 * m) * 12.25)
    torch.testing.assert_close(gw_l1, lam / (2 * m) * torch.tensor(W, dtype=torch.float64).sign())


def test_plain_scale_ignores_batch_size() -> None:
    v1, _, _ = _value_and_grads(Penalty(l2=0.01), batch_size=1)
    v64, _, _ = _value_and_grads(Penalty(l2=0.01), batch_size=64)
    assert v1 == v64


def test_inactive_penalty_is_zero() -> None:
    assert not Penalty().active
    assert Penalty(l1=1e-9).active and Penalty(l2=1e-9).active
    w, v = _params()
    assert float(penalty_value([w, v], Penalty(), 1)) == 0.0
    assert float(penalty_value([], Penalty(l1=1.0, l2=1.0), 1)) == 0.0


def test_weight_tensors_are_the_weights_without_biases_or_norm_scales() -> None:
    net = StackedMLP(Arch("mlp", 5, 3, (4, 6), batch_norm=True), [0, 1], torch.device("cpu"))
    weights = net.weights()
    assert [tuple(p.shape) for p in weights] == [(2, 5, 4), (2, 4, 6), (2, 6, 3)]
    # every other parameter (biases, BatchNorm weight/bias) is 1-D per member
    others = [p for p, w in zip(net.params, net.weight_mask, strict=True) if not w]
    assert len(others) == 7 and all(p.dim() == 2 for p in others)


def _stack_grads(
    penalties: list[Penalty], penalize_all: list[bool], batch: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Stacked params (members = copies of W and V) and their penalty gradients (from zero)."""
    k = len(penalties)
    w, v = (torch.tensor(t, dtype=torch.float64) for t in (W, V))
    params = [w.expand(k, *w.shape).clone(), v.expand(k, *v.shape).clone()]
    grads = [torch.zeros_like(p) for p in params]
    settings = [
        MemberSettings(penalty=p, penalize_all=a)
        for p, a in zip(penalties, penalize_all, strict=True)
    ]
    add_penalty_grads(params, grads, Hyper.of(settings, CPU), [True, False], batch)
    return params, grads


def test_each_member_gets_the_gradient_of_its_own_penalty() -> None:
    """Per member, the in-place gradient equals autograd's gradient of ``penalty_value`` over
    that member's penalized tensors: its own strengths, scale and apply_to."""
    penalties = [
        Penalty(l1=0.1),
        Penalty(l2=0.01),
        Penalty(l1=0.02, l2=0.3, half_mean=True),
        Penalty(),
    ]
    penalize_all = [False, True, True, False]
    batch = 10
    _, grads = _stack_grads(penalties, penalize_all, batch)
    for k, (pen, every) in enumerate(zip(penalties, penalize_all, strict=True)):
        w, v = _params()
        if not pen.active:
            assert float(grads[0][k].abs().sum()) == 0.0  # no penalty, no gradient
            continue
        penalty_value([w, v] if every else [w], pen, batch).backward()
        assert w.grad is not None
        torch.testing.assert_close(grads[0][k], w.grad)
        expected_v = v.grad if every and v.grad is not None else torch.zeros(2, dtype=torch.float64)
        torch.testing.assert_close(grads[1][k], expected_v)


def test_half_mean_member_uses_the_steps_batch_size() -> None:
    lam = 0.003
    _, g64 = _stack_grads([Penalty(l2=lam, half_mean=True)], [False], 64)
    _, g1 = _stack_grads([Penalty(l2=lam, half_mean=True)], [False], 1)
    w = torch.tensor(W, dtype=torch.float64)
    torch.testing.assert_close(g64[0][0], lam / 64 * w)
    torch.testing.assert_close(g1[0][0], lam / 1 * w)


def _clipping(limits: list[float | None]) -> Hyper:
    return Hyper.of([MemberSettings(clip=c) for c in limits], CPU)


def test_clip_norms_per_member_match_torchs_clip_grad_norm() -> None:
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(3, 4, 2, generator=g) * 5, torch.randn(3, 2, generator=g)]
    limits = [1.0, None, 100.0]
    clipped = [t.clone() for t in grads]
    norms = clip_grads(clipped, _clipping(limits))
    for k, limit in enumerate(limits):
        own = [nn.Parameter(torch.zeros_like(t[k])) for t in grads]
        for p, t in zip(own, grads, strict=True):
            p.grad = t[k].clone()
        total = torch.nn.utils.get_total_norm([p.grad for p in own if p.grad is not None])
        assert float(norms[k]) == pytest.approx(float(total), rel=1e-6)  # before clipping
        if limit is not None:
            torch.nn.utils.clip_grad_norm_(own, limit)
        for p, c in zip(own, clipped, strict=True):
            assert p.grad is not None
            torch.testing.assert_close(c[k], p.grad)
    after = clip_grads([t.clone() for t in clipped], _clipping([None] * 3))
    assert float(after[0]) == pytest.approx(1.0, rel=1e-5)  # member 0 now has norm 1
    assert float(after[2]) == pytest.approx(float(norms[2]), rel=1e-6)  # below its limit


def test_penalty_over_weights_only_vs_all_parameters_in_the_reference_module() -> None:
    torch.manual_seed(0)
    model = reference_module(Arch("mlp", 5, 3, (4,)))
    lin1, lin2 = model[0], model[2]
    assert isinstance(lin1, nn.Linear) and isinstance(lin2, nn.Linear)
    pen = Penalty(l1=0.3, l2=0.7)

    def hand(ps: list[torch.Tensor]) -> float:
        return sum(
            float(0.3 * p.detach().abs().sum() + 0.7 * p.detach().square().sum()) for p in ps
        )

    only_w = penalty_value([lin1.weight, lin2.weight], pen, 1)
    assert float(only_w.detach()) == pytest.approx(hand([lin1.weight, lin2.weight]), rel=1e-6)
    everything = penalty_value(list(model.parameters()), pen, 1)
    biases = hand([lin1.bias, lin2.bias])
    assert biases > 0
    assert float(everything.detach()) == pytest.approx(float(only_w.detach()) + biases, rel=1e-6)
