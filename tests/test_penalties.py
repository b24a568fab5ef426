"""Unit tests for ``sweep.penalties``: values and gradients against hand computations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sweep.models import build_model, weight_matrices
from sweep.optim import build_optimizer
from sweep.penalties import Penalty, penalty_value
from sweep.train import train_epoch

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


def test_elastic_net_folds_into_l1_and_l2() -> None:
    p = Penalty.combine(l1=0.01, l2=0.02, elastic=0.5, l1_ratio=0.3, half_mean=False)
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
    p = Penalty.combine(l1=0.0, l2=0.0, elastic=0.2, l1_ratio=l1_ratio, half_mean=True)
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


def test_weight_matrices_are_the_weights_without_biases_or_norm_scales() -> None:
    model = build_model(kind="mlp", n_features=5, n_classes=3, hidden=[4, 6], batch_norm=True)
    weights = weight_matrices(model)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [id(p) for p in weights] == [id(m.weight) for m in linears]
    assert [tuple(p.shape) for p in weights] == [(4, 5), (6, 4), (3, 6)]
    # every other parameter (biases, BatchNorm weight/bias) is 1-D
    others = [p for p in model.parameters() if all(p is not q for q in weights)]
    assert others and all(p.dim() == 1 for p in others)


def _d(p: torch.Tensor) -> torch.Tensor:
    return p.detach()


def test_penalty_over_weights_only_vs_all_parameters() -> None:
    torch.manual_seed(0)
    model = build_model(kind="mlp", n_features=5, n_classes=3, hidden=[4])
    lin1, lin2 = model[0], model[2]
    assert isinstance(lin1, nn.Linear) and isinstance(lin2, nn.Linear)
    pen = Penalty(l1=0.3, l2=0.7)

    def hand(ps: list[torch.Tensor]) -> float:
        return sum(float(0.3 * p.abs().sum() + 0.7 * p.square().sum()) for p in map(_d, ps))

    only_w = penalty_value(weight_matrices(model), pen, 1)
    assert float(only_w.detach()) == pytest.approx(hand([lin1.weight, lin2.weight]), rel=1e-6)
    only_w.backward()
    assert lin1.bias.grad is None and lin2.bias.grad is None
    assert lin1.weight.grad is not None
    torch.testing.assert_close(
        lin1.weight.grad, 0.3 * lin1.weight.detach().sign() + 1.4 * lin1.weight.detach()
    )

    everything = penalty_value(list(model.parameters()), pen, 1)
    biases = hand([lin1.bias, lin2.bias])
    assert biases > 0
    assert float(everything.detach()) == pytest.approx(float(only_w.detach()) + biases, rel=1e-6)


@pytest.mark.parametrize("penalize_biases", [False, True])
def test_train_step_applies_penalty_gradient(penalize_biases: bool) -> None:
    """One full-batch SGD step of ``train_epoch`` = w − lr·(∇CE + ∇penalty), by hand."""
    torch.manual_seed(1)
    model = build_model(kind="logreg", n_features=4, n_classes=3).double()
    x = torch.randn(10, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (10,))
    lin = model[0]
    assert isinstance(lin, nn.Linear)
    w0, b0 = lin.weight.detach().clone(), lin.bias.detach().clone()
    gw_ce, gb_ce = torch.autograd.grad(F.cross_entropy(model(x), y), [lin.weight, lin.bias])
    lr, l1, l2, m = 0.5, 0.02, 0.3, 10
    pen = Penalty(l1=l1, l2=l2, half_mean=True)  # strengths / (2m)
    penalized = list(model.parameters()) if penalize_biases else weight_matrices(model)
    opt = build_optimizer(model, name="sgd", lr=lr)
    stats = train_epoch(
        model, opt, x, y, batch_size=m, penalty=pen, penalized=penalized, clip=None,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip

    def grad_pen(p: torch.Tensor) -> torch.Tensor:
        return (l1 * p.sign() + 2 * l2 * p) / (2 * m)

    torch.testing.assert_close(lin.weight.detach(), w0 - lr * (gw_ce + grad_pen(w0)))
    expected_b = b0 - lr * (gb_ce + (grad_pen(b0) if penalize_biases else 0.0))
    torch.testing.assert_close(lin.bias.detach(), expected_b)
    # the reported step loss is the data loss, before the step (the penalty acts on gradients)
    ce0 = F.cross_entropy(x @ w0.T + b0, y)
    assert float(stats[0]) == pytest.approx(float(ce0), rel=1e-5)
