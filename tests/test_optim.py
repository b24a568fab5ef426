"""Unit tests for ``sweep.optim``: decay groups, L2 ≡ weight decay under SGD, Adam vs AdamW."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sweep.models import build_model, weight_matrices
from sweep.optim import build_optimizer, build_scheduler, param_groups
from sweep.penalties import Penalty, penalty_value

STEPS = 10
BATCH = 16
LAM = 0.05


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    x = torch.randn(STEPS * BATCH, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (STEPS * BATCH,), generator=g)
    return x, y


def _model() -> nn.Sequential:
    torch.manual_seed(7)
    return build_model(kind="mlp", n_features=6, n_classes=3, hidden=[8]).double()


def _train(
    *, name: str, lr: float, weight_decay: float = 0.0, l2: float = 0.0, **kw: object
) -> list[torch.Tensor]:
    """``STEPS`` steps on the same batches from the same initial weights; returns the weights."""
    model = _model()
    opt = build_optimizer(model, name=name, lr=lr, weight_decay=weight_decay, **kw)  # type: ignore[arg-type]
    x, y = _data()
    for i in range(STEPS):
        xb, yb = x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]
        loss = F.cross_entropy(model(xb), yb)
        if l2:
            loss = loss + penalty_value(weight_matrices(model), Penalty(l2=l2), BATCH)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor], atol: float = 1e-12) -> bool:
    return all(torch.allclose(p, q, rtol=0.0, atol=atol) for p, q in zip(a, b, strict=True))


def _max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((p - q).abs().max()) for p, q in zip(a, b, strict=True))


def test_sgd_l2_penalty_equals_weight_decay_of_twice_lambda() -> None:
    # 002's derivation: L = L_CE + λ‖W‖²  ⇒  W ← W − γ∇L_CE − 2γλW  ≡  SGD(weight_decay=2λ)
    with_penalty = _train(name="sgd", lr=0.2, l2=LAM)
    with_decay = _train(name="sgd", lr=0.2, weight_decay=2 * LAM)
    assert _same(with_penalty, with_decay), _max_diff(with_penalty, with_decay)
    # the test has teeth: neither plain SGD nor weight_decay=λ matches
    assert _max_diff(with_penalty, _train(name="sgd", lr=0.2)) > 1e-3
    assert _max_diff(with_penalty, _train(name="sgd", lr=0.2, weight_decay=LAM)) > 1e-4


def test_sgd_decay_on_all_parameters_differs_from_weight_penalty() -> None:
    with_penalty = _train(name="sgd", lr=0.2, l2=LAM)
    decay_all = _train(name="sgd", lr=0.2, weight_decay=2 * LAM, decay_weights_only=False)
    assert not _same(with_penalty, decay_all, atol=1e-6)
    # the weight matrices agree up to the biases' effect, but the biases were decayed
    biases_pen = [p for p in with_penalty if p.dim() == 1]
    biases_all = [p for p in decay_all if p.dim() == 1]
    assert _max_diff(biases_pen, biases_all) > 1e-4


def test_adam_weight_decay_is_coupled_l2() -> None:
    # Adam adds wd·w to the gradient before the adaptive scaling: the same as a λ‖W‖² penalty
    with_penalty = _train(name="adam", lr=0.01, l2=LAM)
    with_decay = _train(name="adam", lr=0.01, weight_decay=2 * LAM)
    assert _same(with_penalty, with_decay, atol=1e-10), _max_diff(with_penalty, with_decay)


def test_adam_and_adamw_decay_give_different_weights() -> None:
    adam = _train(name="adam", lr=0.01, weight_decay=2 * LAM)
    adamw = _train(name="adamw", lr=0.01, weight_decay=2 * LAM)
    plain = _train(name="adam", lr=0.01)
    assert _max_diff(adam, adamw) > 1e-4
    assert _max_diff(adamw, plain) > 1e-5  # AdamW's decay did act


def _one_step(name: str, wd: float, lr: float, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    lin = nn.Linear(2, 1).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -3.0]]))
        lin.bias.fill_(0.5)
    opt = build_optimizer(lin, name=name, lr=lr, weight_decay=wd, eps=eps)
    x = torch.tensor([[2.0, 1.0]], dtype=torch.float64)
    lin(x).sum().backward()  # dL/dw = x = [2, 1], dL/db = 1
    opt.step()
    return lin.weight.detach().clone(), lin.bias.detach().clone()


def test_first_step_by_hand_adam_vs_adamw() -> None:
    lr, wd, eps = 0.1, 0.5, 1e-8
    w0 = torch.tensor([[1.0, -3.0]], dtype=torch.float64)
    g = torch.tensor([[2.0, 1.0]], dtype=torch.float64)
    # first Adam step: m̂ = g', v̂ = g'², update = lr·g'/(|g'| + eps)
    w_adam, b_adam = _one_step("adam", wd, lr, eps)
    g_c = g + wd * w0  # coupled: [2.5, -0.5]
    torch.testing.assert_close(w_adam, w0 - lr * g_c / (g_c.abs() + eps))
    b_expected = torch.tensor([0.5 - lr * 1 / (1 + eps)], dtype=torch.float64)
    torch.testing.assert_close(b_adam, b_expected)
    # AdamW: w ← w·(1 − lr·wd), then the adaptive step on the raw gradient
    w_adamw, b_adamw = _one_step("adamw", wd, lr, eps)
    torch.testing.assert_close(w_adamw, w0 * (1 - lr * wd) - lr * g / (g.abs() + eps))
    torch.testing.assert_close(b_adamw, b_adam)  # the bias is not decayed by either
    # SGD: w ← w − lr·(g + wd·w); bias without decay
    w_sgd, b_sgd = _one_step("sgd", wd, lr, eps)
    torch.testing.assert_close(w_sgd, w0 - lr * (g + wd * w0))
    torch.testing.assert_close(b_sgd, torch.tensor([0.5 - lr], dtype=torch.float64))


def test_param_groups_put_decay_on_weight_matrices_only() -> None:
    model = build_model(kind="mlp", n_features=5, n_classes=3, hidden=[4], batch_norm=True)
    groups = param_groups(model, 0.1, weights_only=True)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert [id(p) for p in groups[0]["params"]] == [id(p) for p in weight_matrices(model)]
    n_all = len(list(model.parameters()))
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == n_all
    assert all(p.dim() == 1 for p in groups[1]["params"])
    every = param_groups(model, 0.1, weights_only=False)
    assert len(every) == 1 and every[0]["weight_decay"] == 0.1
    assert len(every[0]["params"]) == n_all


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_build_optimizer_passes_settings(name: str) -> None:
    model = build_model(kind="mlp", n_features=5, n_classes=3, hidden=[4])
    opt = build_optimizer(
        model, name=name, lr=0.03, weight_decay=0.2, momentum=0.8, nesterov=name == "sgd",
        betas=[0.8, 0.95], eps=1e-6,
    )  # fmt: skip
    kind = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    assert type(opt) is kind
    assert [g["lr"] for g in opt.param_groups] == [0.03, 0.03]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.2, 0.0]
    # the optimizer serves exactly this model's parameters
    served = {id(p) for g in opt.param_groups for p in g["params"]}
    assert served == {id(p) for p in model.parameters()}
    if name == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.8 and opt.param_groups[0]["nesterov"]
    else:
        assert opt.param_groups[0]["betas"] == (0.8, 0.95) and opt.param_groups[0]["eps"] == 1e-6


def test_build_optimizer_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match=r"optimizer\.name='rmsprop'.*sgd, adam, adamw"):
        build_optimizer(nn.Linear(2, 2), name="rmsprop", lr=0.1)


def _lrs(name: str, epochs: int, **kw: object) -> list[float]:
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.8)
    sched = build_scheduler(opt, name=name, epochs=epochs, **kw)  # type: ignore[arg-type]
    assert sched is not None
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    lrs.append(opt.param_groups[0]["lr"])
    return lrs


def test_schedulers() -> None:
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.8)
    assert build_scheduler(opt, name="none", epochs=5) is None
    assert _lrs("step", 5, step_size=2, gamma=0.5) == pytest.approx([0.8, 0.8, 0.4, 0.4, 0.2, 0.2])
    cos = _lrs("cosine", 4, eta_min=0.1)  # t_max null → the run's epochs
    assert cos[0] == pytest.approx(0.8) and cos[-1] == pytest.approx(0.1)
    assert cos[2] == pytest.approx(0.45)  # halfway: (0.8 + 0.1) / 2
    with pytest.raises(ValueError, match=r"scheduler\.name='linear'"):
        build_scheduler(opt, name="linear", epochs=3)
