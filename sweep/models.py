"""Which network a configuration asks for: its architecture for the data, the stacked network
of a population, whether its members can train as one computation, and its part of the
population key. The only place that chooses by ``model.name``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch

from .config import AppConfig, ConfigError
from .custom import CustomArch, StackedCustom, check_model
from .data import DataError, Splits, load_splits
from .nets import Arch, StackedMLP, StackedNet
from .nets_cnn import ConvArch, StackedCNN

__all__ = ["batchable", "build_net", "cost_arch", "effective_dropout", "model_arch", "model_key"]


def effective_dropout(cfg: AppConfig) -> float:
    """The dropout p that acts: ``regularizer.dropout`` when set, else ``model.dropout``."""
    r = cfg.regularizer.dropout
    return r if r is not None else cfg.model.dropout


def model_key(cfg: AppConfig) -> tuple[Any, ...]:
    """The part of :func:`sweep.run.structure_key` that names the model. A custom model's
    dropout p is in it (it is fixed when the module is built), and a custom model that
    ``vmap`` cannot batch gets a key of its own for every configuration object."""
    m = cfg.model
    if m.name == "cnn":
        return (
            m.name,
            tuple(m.channels),
            m.kernel_size,
            m.pool,
            m.pool_size,
            tuple(m.hidden),
            m.activation,
            m.batch_norm,
        )
    if m.name == "custom":
        try:
            together = batchable(cfg)[0]
        except (ConfigError, DataError):
            together = False  # the run itself raises the clear error, for this trial alone
        alone = None if together else id(cfg)
        kwargs = json.dumps(m.kwargs, sort_keys=True, default=str)
        return (m.name, m.target, kwargs, effective_dropout(cfg), alone)
    return (m.name, tuple(m.hidden) if m.name == "mlp" else (), m.activation, m.batch_norm)


def batchable(cfg: AppConfig) -> tuple[bool, str]:
    """Whether trials with this model train K at a time as one computation, and if not why.

    Always true for ``mlp``, ``logreg`` and ``cnn``. A ``custom`` model is built once on a
    dummy batch of the data's shape (its data is loaded, from the per-process cache) and tried
    under ``torch.func.vmap``; the answer is cached per model. A sweeper calls this once per
    distinct model to say "trained one at a time" before the trials start.

    Raises:
        ConfigError: The custom model cannot be built or breaks the contract
            (:data:`sweep.custom.CONTRACT`); a CNN does not fit the data's shape.
        DataError: The data cannot be loaded.

    Example:
        >>> batchable(AppConfig())
        (True, '')
    """
    if cfg.model.name not in ("custom", "cnn"):
        return True, ""
    splits = load_splits(cfg.data, seed=cfg.trainer.seed, device=torch.device("cpu"))
    arch = model_arch(cfg, splits)
    if not isinstance(arch, CustomArch):
        return True, ""
    problem = check_model(arch)
    return problem is None, problem or ""


def model_arch(cfg: AppConfig, splits: Splits) -> Arch | ConvArch | CustomArch:
    """The architecture ``cfg.model`` describes for this data.

    Raises:
        ConfigError: ``model=cnn`` on data without an image shape, or with more pooling blocks
            than the images' size allows.
    """
    m = cfg.model
    if m.name == "cnn":
        return _conv_arch(cfg, splits)
    if m.name == "custom":
        assert m.target is not None  # validate() requires it
        return CustomArch(
            target=m.target,
            n_features=splits.n_features,
            input_shape=splits.input_shape,
            n_classes=splits.n_classes,
            dropout=effective_dropout(cfg),
            kwargs=dict(m.kwargs),
        )
    return Arch(
        kind=m.name,
        n_features=splits.n_features,
        n_classes=splits.n_classes,
        hidden=tuple(m.hidden) if m.name == "mlp" else (),
        activation=m.activation,
        batch_norm=m.batch_norm,
    )


def _conv_arch(cfg: AppConfig, splits: Splits) -> ConvArch:
    m, shape = cfg.model, splits.input_shape
    if len(shape) != 3:
        raise ConfigError(
            [
                f"model={m.name!r}: data={cfg.data.name} has examples of shape "
                f"{shape}; allowed image data, (C, H, W), e.g. digits, mnist, "
                f"cifar10 or an image folder"
            ]
        )
    arch = ConvArch(
        input_shape=(shape[0], shape[1], shape[2]),
        n_classes=splits.n_classes,
        channels=tuple(m.channels),
        kernel_size=m.kernel_size,
        pool=m.pool,
        pool_size=m.pool_size,
        hidden=tuple(m.hidden),
        activation=m.activation,
        batch_norm=m.batch_norm,
    )
    sizes = arch.sizes()
    if min(min(hw) for hw in sizes) < 1:
        fits = next(i for i, hw in enumerate(sizes) if min(hw) < 1) - 1
        steps = " → ".join(f"{h}x{w}" for h, w in sizes)
        raise ConfigError(
            [
                f"model.channels={list(m.channels)}: {len(m.channels)} blocks with "
                f"model.pool_size={m.pool_size} shrink {shape[1]}x{shape[2]} images "
                f"to nothing ({steps}); allowed at most {fits} block(s), or "
                f"model.pool=none"
            ]
        )
    return arch


def build_net(
    arch: Arch | ConvArch | CustomArch, seeds: Sequence[int], device: torch.device
) -> StackedNet:
    """The population's network: one member per seed, each initialized as a single run with
    that seed would be."""
    if isinstance(arch, ConvArch):
        return StackedCNN(arch, seeds, device)
    if isinstance(arch, CustomArch):
        return StackedCustom(arch, seeds, device)
    return StackedMLP(arch, seeds, device)


def cost_arch(arch: Arch | ConvArch | CustomArch, net: StackedNet) -> Arch:
    """An MLP with the same multiply-adds per example, which is what ``configure_threads``
    counts to decide whether a step is worth more than one thread."""
    if isinstance(arch, Arch):
        return arch
    if isinstance(arch, ConvArch):
        macs = arch.macs_per_example()
    else:  # each weight used about once per example
        macs = sum(int(w[0].numel()) for w in net.weights())
    return Arch("logreg", n_features=max(macs, 1), n_classes=1)
