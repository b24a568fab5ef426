"""Unit tests for ``sweep.optim``: each member's update equals torch.optim's with its own settings;
L2 ≡ weight decay under SGD and Adam, not AdamW; schedules equal torch's schedulers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sweep.optim import Schedule, optimizer_state, optimizer_step, scheduled_lr
from sweep.penalties import add_penalty_grads
from sweep.stack import Hyper

K = 3
STEPS = 10
SHAPES = [(4, 3), (3,)]  # a weight matrix and a bias per member
LR = [0.1, 0.05, 0.2]


def _init(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(K, *s, generator=g, dtype=torch.float64) for s in SHAPES]


def _grads(step: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)
    return [torch.randn(K, *s, generator=g, dtype=torch.float64) for s in SHAPES]


def _vec(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _hyper(k: int, **given: torch.Tensor) -> Hyper:
    """Hyperparameter rows of ``k`` members in float64: zero strengths, no clipping, default
    betas, unless ``given``."""
    zeros, no = _vec([0.0] * k), torch.tensor([False] * k)
    rows = dict(
        l1=zeros,
        l2=zeros,
        penalize_all=no,
        half_mean=no,
        clip=_vec([float("inf")] * k),
        momentum=zeros,
        nesterov=no,
        beta1=_vec([0.9] * k),
        beta2=_vec([0.999] * k),
        eps=_vec([1e-8] * k),
        decay=zeros,
        decay_other=zeros,
        dropout=zeros,
    )
    return Hyper(**{**rows, **given})


def _stacked(
    kind: str,
    *,
    momentum: list[float],
    nesterov: list[bool],
    decay: list[float],
    decay_all: list[bool],
    betas: tuple[list[float], list[float]] = ([0.9] * K, [0.999] * K),
    steps: int = STEPS,
    l2: list[float] | None = None,
) -> list[torch.Tensor]:
    params = _init()
    hp = _hyper(
        K,
        momentum=_vec(momentum),
        nesterov=torch.tensor(nesterov),
        decay=_vec(decay),
        decay_other=_vec(decay) * torch.tensor(decay_all, dtype=torch.float64),
        beta1=_vec(betas[0]),
        beta2=_vec(betas[1]),
        l2=_vec(l2 or [0.0] * K),
    )
    state = optimizer_state(kind, params)
    for step in range(steps):
        grads = [g.clone() for g in _grads(step)]
        add_penalty_grads(params, grads, hp, [True, False], batch=1)
        optimizer_step(kind, params, grads, state, hp, _vec(LR), [True, False])
    return params


def _torch(kind: str, member: int, *, steps: int = STEPS, **kw: object) -> list[torch.Tensor]:
    """The same member's parameters stepped by torch.optim with the same gradients."""
    params = [nn.Parameter(p[member].clone()) for p in _init()]
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
    decay = float(kw.pop("weight_decay", 0.0))  # type: ignore[arg-type]
    decay_all = bool(kw.pop("decay_all", False))
    groups = [
        {"params": [params[0]], "weight_decay": decay},
        {"params": [params[1]], "weight_decay": decay if decay_all else 0.0},
    ]
    opt = cls(groups, lr=LR[member], **kw)
    for step in range(steps):
        for p, g in zip(params, _grads(step), strict=True):
            p.grad = g[member].clone()
        opt.step()
    return [p.detach() for p in params]


def _close(stacked: list[torch.Tensor], member: int, reference: list[torch.Tensor]) -> None:
    for s, r in zip(stacked, reference, strict=True):
        torch.testing.assert_close(s[member], r, rtol=0, atol=1e-12)


def test_sgd_members_each_match_torch_with_their_own_settings() -> None:
    momentum, nesterov = [0.0, 0.9, 0.5], [False, False, True]
    decay, decay_all = [0.0, 0.01, 0.3], [False, True, False]
    stacked = _stacked(
        "sgd", momentum=momentum, nesterov=nesterov, decay=decay, decay_all=decay_all
    )
    for k in range(K):
        ref = _torch(
            "sgd",
            k,
            momentum=momentum[k],
            nesterov=nesterov[k],
            weight_decay=decay[k],
            decay_all=decay_all[k],
        )
        _close(stacked, k, ref)


def test_sgd_without_momentum_in_any_member_matches_torch() -> None:
    """No member has momentum: the step skips the momentum buffers (a population-wide flag,
    read once) and is still each member's plain SGD, with and without decay."""
    decay, decay_all = [0.0, 0.05, 0.2], [False, False, True]
    stacked = _stacked(
        "sgd", momentum=[0.0] * K, nesterov=[False] * K, decay=decay, decay_all=decay_all
    )
    for k in range(K):
        ref = _torch("sgd", k, momentum=0.0, weight_decay=decay[k], decay_all=decay_all[k])
        _close(stacked, k, ref)


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_adam_and_adamw_members_each_match_torch(kind: str) -> None:
    decay, decay_all = [0.0, 0.1, 0.5], [False, False, True]
    betas = ([0.9, 0.8, 0.95], [0.999, 0.99, 0.9])
    stacked = _stacked(
        kind,
        momentum=[0.0] * K,
        nesterov=[False] * K,
        decay=decay,
        decay_all=decay_all,
        betas=betas,
    )
    for k in range(K):
        ref = _torch(
            kind,
            k,
            betas=(betas[0][k], betas[1][k]),
            eps=1e-8,
            weight_decay=decay[k],
            decay_all=decay_all[k],
        )
        _close(stacked, k, ref)


def test_sgd_l2_penalty_equals_weight_decay_of_twice_lambda() -> None:
    # 002's derivation: L = L_CE + λ‖W‖²  ⇒  W ← W − γ∇L_CE − 2γλW  ≡  SGD(weight_decay=2λ)
    lam = [0.05, 0.1, 0.0]
    zeros, no = [0.0] * K, [False] * K
    with_penalty = _stacked("sgd", momentum=zeros, nesterov=no, decay=zeros, decay_all=no, l2=lam)
    with_decay = _stacked(
        "sgd", momentum=zeros, nesterov=no, decay=[2 * v for v in lam], decay_all=no
    )
    for a, b in zip(with_penalty, with_decay, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # the test has teeth: weight_decay=λ does not match where λ > 0
    half = _stacked("sgd", momentum=zeros, nesterov=no, decay=lam, decay_all=no)
    assert float((half[0][0] - with_penalty[0][0]).abs().max()) > 1e-3
    torch.testing.assert_close(half[0][2], with_penalty[0][2])  # λ = 0: all the same


def test_adam_decay_is_coupled_l2_and_adamw_is_not() -> None:
    lam = [0.05] * K
    zeros, no = [0.0] * K, [False] * K
    penalty = _stacked("adam", momentum=zeros, nesterov=no, decay=zeros, decay_all=no, l2=lam)
    coupled = _stacked("adam", momentum=zeros, nesterov=no, decay=[0.1] * K, decay_all=no)
    decoupled = _stacked("adamw", momentum=zeros, nesterov=no, decay=[0.1] * K, decay_all=no)
    torch.testing.assert_close(penalty[0], coupled[0], rtol=0, atol=1e-10)
    assert float((decoupled[0] - coupled[0]).abs().max()) > 1e-4


def test_first_step_by_hand() -> None:
    """One member each: SGD w − lr(g + wd·w); Adam w − lr·g'/(|g'| + eps) with g' = g + wd·w;
    AdamW w(1 − lr·wd) − lr·g/(|g| + eps). The bias (not a weight tensor) is not decayed."""
    lr, wd, eps = 0.1, 0.5, 1e-8
    w0 = torch.tensor([[[1.0, -3.0]]], dtype=torch.float64)
    b0 = torch.tensor([[0.5]], dtype=torch.float64)
    g = torch.tensor([[[2.0, 1.0]]], dtype=torch.float64)
    gb = torch.tensor([[1.0]], dtype=torch.float64)

    def one(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
        w, b = w0.clone(), b0.clone()
        hp = _hyper(1, decay=_vec([wd]), eps=_vec([eps]))
        state = optimizer_state(kind, [w, b])
        optimizer_step(kind, [w, b], [g.clone(), gb.clone()], state, hp, _vec([lr]), [True, False])
        return w, b

    w, b = one("sgd")
    torch.testing.assert_close(w, w0 - lr * (g + wd * w0))
    torch.testing.assert_close(b, b0 - lr * gb)
    w, b = one("adam")
    gc = g + wd * w0
    torch.testing.assert_close(w, w0 - lr * gc / (gc.abs() + eps))
    torch.testing.assert_close(b, b0 - lr * gb / (gb.abs() + eps))
    w, _ = one("adamw")
    torch.testing.assert_close(w, w0 * (1 - lr * wd) - lr * g / (g.abs() + eps))


def test_unknown_optimizer_is_refused() -> None:
    with pytest.raises(ValueError, match=r"optimizer\.name='rmsprop'.*sgd, adam, adamw"):
        optimizer_state("rmsprop", [])
    w = torch.zeros(1, 2)
    with pytest.raises(ValueError, match=r"optimizer\.name='rmsprop'.*sgd, adam, adamw"):
        optimizer_step(
            "rmsprop", [w], [w], optimizer_state("sgd", [w]), _hyper(1), _vec([0.1]), [True]
        )


def _torch_lrs(make: object, epochs: int) -> list[float]:
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.8)
    sched = make(opt)  # type: ignore[operator]
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize(
    ("schedule", "make"),
    [
        (
            Schedule("step", step_size=3, gamma=0.5, epochs=10),
            lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
        ),
        (
            Schedule("cosine", eta_min=0.1, epochs=10),
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.1),
        ),
        (
            Schedule("cosine", t_max=4, epochs=10),
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=4),
        ),
    ],
)
def test_schedules_equal_torchs_schedulers(schedule: Schedule, make: object) -> None:
    ours = [scheduled_lr(0.8, schedule, e) for e in range(10)]
    assert ours == pytest.approx(_torch_lrs(make, 10), abs=1e-9)


def test_no_schedule_and_unknown_schedule() -> None:
    assert [scheduled_lr(0.3, Schedule(), e) for e in range(3)] == [0.3, 0.3, 0.3]
    with pytest.raises(ValueError, match=r"scheduler\.name='linear'"):
        scheduled_lr(0.1, Schedule("linear"), 0)
