"""``model=custom``: your own ``torch.nn.Module`` trained as a population.

The contract (:data:`CONTRACT`): ``model.target`` is an import path ``package.module.Class``
(or ``package.module:Class``) of an ``nn.Module`` subclass (or a function returning one). It is
built as ``Class(**model.kwargs, **given)``, where ``given`` holds whichever of
``n_features`` (int), ``input_shape`` (tuple, ``(C, H, W)`` for images) and ``n_classes`` (int)
its signature names, and the dropout p (``model.dropout`` or ``regularizer.dropout``) as
``dropout`` or else ``p``; a model that takes neither cannot be given a dropout p > 0.
``forward(x)`` takes a float batch ``(B, *input_shape)`` and returns logits ``(B, n_classes)``,
and every parameter takes part in it. Members are built after ``torch.manual_seed(seed)``, so
member and single run start alike. Penalties, weight decay and the weight statistics act on
its parameters of rank ≥ 2; dead units are not measured (reported as 0).

Populations: K members are one computation through ``torch.func.functional_call`` under
``vmap`` (dropout with ``randomness="different"``, from torch's global generator, seeded with
the population's first seed). :func:`check_model` tries that once per model on a dummy batch;
a model ``vmap`` cannot batch trains each trial alone (``sweep.run.structure_key`` gives each
its own population). Since a module's dropout p is fixed at construction, members of one
population share it.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from .config import ConfigError
from .nets import Masks, MemberStack, Probe, StackedNet

__all__ = ["CONTRACT", "CustomArch", "StackedCustom", "build_member", "check_model"]

Tensor = torch.Tensor
CONTRACT = (
    "an import path package.module.Class of a torch.nn.Module whose constructor takes "
    "model.kwargs plus, when it names them, n_features, input_shape, n_classes and dropout (or "
    "p), and whose forward(x) maps a float batch (B, *input_shape) to logits (B, n_classes) "
    "using every parameter"
)
_CHECKED: dict[str, str | None] = {}


@dataclass(frozen=True)
class CustomArch:
    """What every member of a custom population shares.

    Attributes:
        target: ``model.target``.
        n_features: Length of one flattened example.
        input_shape: One example's shape, as ``forward`` receives it.
        n_classes: Number of outputs.
        dropout: The dropout p passed to the constructor (shared by the population).
        kwargs: ``model.kwargs``.
    """

    target: str
    n_features: int
    input_shape: tuple[int, ...]
    n_classes: int
    dropout: float = 0.0
    kwargs: dict[str, Any] = field(default_factory=dict)
    kind: str = "custom"

    def key(self) -> str:
        """A text that identifies the model (for caches and population keys)."""
        return json.dumps(
            [
                self.target,
                self.kwargs,
                self.n_features,
                list(self.input_shape),
                self.n_classes,
                self.dropout,
            ],
            sort_keys=True,
            default=str,
        )


def _fail(arch: CustomArch, problem: str, key: str = "model.target") -> ConfigError:
    value = arch.target if key == "model.target" else arch.dropout
    return ConfigError([f"{key}={value!r}: {problem}; allowed {CONTRACT}"])


def _resolve(arch: CustomArch) -> Callable[..., Any]:
    module_name, _, attr = arch.target.replace(":", ".").rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may raise anything while importing
        raise _fail(arch, f"cannot import {module_name!r} ({type(exc).__name__}: {exc})") from exc
    found = getattr(module, attr, None)
    if not callable(found):
        raise _fail(arch, f"{module_name!r} has no class {attr!r}")
    return found


def _given(arch: CustomArch, make: Callable[..., Any]) -> dict[str, Any]:
    """The arguments regsweep fills in, for the names ``make``'s signature has."""
    try:
        names = set(inspect.signature(make).parameters)
    except (TypeError, ValueError):
        names = set()
    offer = {
        "n_features": arch.n_features,
        "input_shape": tuple(arch.input_shape),
        "n_classes": arch.n_classes,
    }
    given = {k: v for k, v in offer.items() if k in names}
    dropout_name = next((n for n in ("dropout", "p") if n in names), None)
    if dropout_name is not None:
        given[dropout_name] = arch.dropout
    elif arch.dropout > 0.0:
        raise _fail(
            arch,
            f"{arch.target} takes no `dropout` or `p` argument, so it cannot "
            f"apply dropout p; set it to 0 for this model",
            key="model.dropout",
        )
    return given


def build_member(arch: CustomArch) -> nn.Module:
    """One member, built as the contract says (with torch's global generator as it is).

    Raises:
        ConfigError: The target cannot be imported or built, or is not an ``nn.Module``.
    """
    make = _resolve(arch)
    given = _given(arch, make)
    try:
        module = make(**arch.kwargs, **given)
    except Exception as exc:  # the user's constructor may raise anything
        shown = ", ".join(f"{k}={v!r}" for k, v in {**arch.kwargs, **given}.items())
        raise _fail(arch, f"{arch.target}({shown}) raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(module, nn.Module):
        raise _fail(
            arch, f"{arch.target}(...) returned a {type(module).__name__}, not an nn.Module"
        )
    return module


def _seeded(arch: CustomArch, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_member(arch)


def check_model(arch: CustomArch) -> str | None:
    """Check the contract once per model (cached); return why ``vmap`` cannot batch it, or None
    when K members can train as one computation.

    Raises:
        ConfigError: The model breaks the contract (import, construction, output shape, a
            parameter that ``forward`` does not use).
    """
    key = arch.key()
    if key not in _CHECKED:
        _check_single(arch)
        _CHECKED[key] = _batch_problem(arch)
    return _CHECKED[key]


def _dummy(arch: CustomArch, k: int) -> Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(k, 2, arch.n_features, generator=g)


def _check_single(arch: CustomArch) -> None:
    net = StackedCustom(arch, [0], torch.device("cpu"), batched=False)
    shape = (2, *arch.input_shape)
    try:
        out = net.forward(_dummy(arch, 1), train=True)
    except Exception as exc:  # the user's forward may raise anything
        raise _fail(
            arch, f"forward on a batch of shape {shape} raised {type(exc).__name__}: {exc}"
        ) from exc
    if tuple(out.shape) != (1, 2, arch.n_classes) or not out.is_floating_point():
        got = tuple(out.shape[1:]) if isinstance(out, Tensor) else type(out).__name__
        raise _fail(
            arch,
            f"forward on a batch of shape {shape} returned {got}, not logits of "
            f"shape {(2, arch.n_classes)}",
        )
    grads = torch.autograd.grad(out.sum(), net.params, allow_unused=True)
    unused = [n for n, g in zip(net.names, grads, strict=True) if g is None]
    if unused:
        raise _fail(
            arch,
            f"parameter(s) {', '.join(unused)} take no part in forward (every "
            f"parameter is trained)",
        )


def _batch_problem(arch: CustomArch) -> str | None:
    try:
        net = StackedCustom(arch, [0, 1], torch.device("cpu"), batched=True)
        out = net.forward(_dummy(arch, 2), train=True)
        torch.autograd.grad(out.sum(), net.params)
        net.forward(_dummy(arch, 2), train=False)
    except Exception as exc:  # whatever vmap or the model raises under it
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"torch.func.vmap cannot batch it ({type(exc).__name__}: {first})"
    return None


class StackedCustom(MemberStack):
    """K instances of the user's module with stacked parameters and buffers; the interface of
    :class:`~sweep.nets.StackedMLP`.

    ``params``/``buffers`` are the module's ``named_parameters()``/``named_buffers()`` (names in
    ``names``/``buffer_names``) with a leading member dimension. With ``batched`` (the default
    for K > 1) a forward pass is one ``vmap`` over the members; otherwise K must be 1.
    """

    def __init__(
        self,
        arch: CustomArch,
        seeds: Sequence[int],
        device: torch.device,
        *,
        batched: bool | None = None,
    ) -> None:
        self.arch = arch
        self.hidden: tuple[int, ...] = ()
        self.batched = len(seeds) > 1 if batched is None else batched
        if len(seeds) > 1 and not self.batched:
            raise ValueError("an unbatched custom model trains one member at a time")
        members = [_seeded(arch, s) for s in seeds]
        self.base = members[0].to(device)
        self.names = [n for n, _ in self.base.named_parameters()]
        self.buffer_names = [n for n, _ in self.base.named_buffers()]
        own = [(dict(m.named_parameters()), dict(m.named_buffers())) for m in members]
        self._stack(
            [[p[n] for n in self.names] for p, _ in own],
            [[b[n] for n in self.buffer_names] for _, b in own],
            device,
        )

    def forward(
        self,
        x: Tensor,
        *,
        params: Sequence[Tensor] | None = None,
        buffers: Sequence[Tensor] | None = None,
        train: bool = False,
        dropout: Tensor | None = None,
        masks: Masks | None = None,
        probe: Probe | None = None,
    ) -> Tensor:
        """Logits ``(K, B, classes)`` for ``x (K, B, features)``. ``dropout``/``masks`` are
        ignored (the module applies its own p) and so is ``probe`` (no dead-unit probe)."""
        ps = self.params if params is None else params
        bs = self.buffers if buffers is None else buffers
        k, b = x.shape[0], x.shape[1]
        x = x.reshape(k, b, *self.arch.input_shape)
        self.base.train(train)

        def one(p: Sequence[Tensor], buf: Sequence[Tensor], xb: Tensor) -> Tensor:
            state = {
                **dict(zip(self.names, p, strict=True)),
                **dict(zip(self.buffer_names, buf, strict=True)),
            }
            out: Tensor = functional_call(self.base, state, (xb,))
            return out

        if not self.batched:
            return one([p[0] for p in ps], [q[0] for q in bs], x[0]).unsqueeze(0)
        out: Tensor = vmap(one, randomness="different")(list(ps), list(bs), x)
        return out

    def extend(self, other: StackedNet) -> None:
        """Append the members of ``other``; more than one member is a ``vmap`` (only a
        batchable model shares a population, see :func:`sweep.models.model_key`)."""
        super().extend(other)
        self.batched = self.batched or self.size > 1

    def module(self, member: int) -> nn.Module:
        """Member ``member`` as a module of its own (eval mode), weights copied."""
        module = build_member(self.arch).to(self.params[0].device)
        state = {
            **{n: p.detach()[member] for n, p in zip(self.names, self.params, strict=True)},
            **{n: b[member] for n, b in zip(self.buffer_names, self.buffers, strict=True)},
        }
        module.load_state_dict(state, strict=False)
        return module.eval()
