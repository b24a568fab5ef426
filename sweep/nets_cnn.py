"""K small convolutional networks as one batched computation (stacked parameters).

The members' images travel side by side in the channel dimension: a batch ``(K, B, C, H, W)``
becomes ``(B, K·C, H, W)``, and each convolution is one grouped convolution with ``groups=K``
whose kernel is the members' kernels stacked, ``(K·C_out, C_in, k, k)``, so member ``k`` only
ever sees its own channels. Pooling and activations act per channel; batch norm's per-channel
statistics are per member. After the conv blocks each member's features are flattened to
``(K, B, F)`` and go through the same dense layers as :class:`~sweep.nets.StackedMLP`.

Block: Conv2d (``'same'`` padding) → [BatchNorm2d] → activation → pool → [Dropout p]; then
each dense layer Linear → [BatchNorm1d] → activation → [Dropout p]; then the Linear head.
Dropout is element-wise, with each member's own p and masks from its own generator.

A dead unit of a conv block is a channel whose activation (before pooling) is the same for
every example and position of an evaluation; of a dense layer, a unit whose output never
changes (as for the MLP). Members are initialized exactly as the reference ``torch.nn`` module
of :func:`reference_cnn` after ``torch.manual_seed(seed)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from .nets import (
    ACTIVATION_MODULES,
    ACTIVATIONS,
    BN_EPS,
    BN_MOMENTUM,
    Masks,
    MemberStack,
    Probe,
    dense_layers,
    inverted_dropout,
)

__all__ = ["EVAL_BLOCK_FLOATS", "ConvArch", "StackedCNN", "reference_cnn"]

Tensor = torch.Tensor
EVAL_BLOCK_FLOATS = 1 << 25
"""In eval mode the batch is cut into blocks whose widest activation holds about this many
floats (128 MiB) for all members together, so evaluating 4096 CIFAR images × K members never
needs gigabytes."""


@dataclass(frozen=True)
class ConvArch:
    """What every member of a CNN population shares.

    Attributes:
        input_shape: One example's ``(C, H, W)``.
        n_classes: Number of outputs.
        channels: Output channels of each conv block.
        kernel_size: Odd kernel size; padding ``kernel_size // 2`` keeps height and width.
        pool: ``max``, ``avg`` or ``none`` after each block's activation.
        pool_size: Pooling window and stride.
        hidden: Widths of the dense layers between the conv blocks and the head.
        activation: ``relu``, ``sigmoid`` or ``tanh``.
        batch_norm: Batch norm after each convolution and each dense linear layer.
    """

    input_shape: tuple[int, int, int]
    n_classes: int
    channels: tuple[int, ...]
    kernel_size: int = 3
    pool: str = "max"
    pool_size: int = 2
    hidden: tuple[int, ...] = ()
    activation: str = "relu"
    batch_norm: bool = False
    kind: str = "cnn"

    @property
    def n_features(self) -> int:
        return math.prod(self.input_shape)

    def sizes(self) -> list[tuple[int, int]]:
        """Height and width after each block (the input's first)."""
        h, w = self.input_shape[1:]
        out = [(h, w)]
        for _ in self.channels:
            if self.pool != "none":
                h, w = h // self.pool_size, w // self.pool_size
            out.append((h, w))
        return out

    def flat_features(self) -> int:
        """Features each member's dense part gets: last channels × height × width."""
        h, w = self.sizes()[-1]
        return self.channels[-1] * h * w

    def macs_per_example(self) -> int:
        """Multiply-adds of one member on one example (convolutions and linear layers)."""
        k2, total, c_in = self.kernel_size**2, 0, self.input_shape[0]
        for c, (h, w) in zip(self.channels, self.sizes(), strict=False):
            total += c * c_in * k2 * h * w
            c_in = c
        widths = [self.flat_features(), *self.hidden, self.n_classes]
        return total + sum(a * b for a, b in pairwise(widths))


def reference_cnn(arch: ConvArch, dropout: float = 0.0) -> nn.Sequential:
    """The plain ``torch.nn`` network one member computes, on flattened inputs ``(B, C·H·W)``.

    Example:
        >>> reference_cnn(ConvArch((1, 8, 8), 10, (4,)))
        Sequential(...)
    """
    layers: list[nn.Module] = [nn.Unflatten(1, arch.input_shape)]
    c_in = arch.input_shape[0]
    for c in arch.channels:
        layers.append(nn.Conv2d(c_in, c, arch.kernel_size, padding=arch.kernel_size // 2))
        if arch.batch_norm:
            layers.append(nn.BatchNorm2d(c))
        layers.append(ACTIVATION_MODULES[arch.activation]())
        if arch.pool == "max":
            layers.append(nn.MaxPool2d(arch.pool_size))
        elif arch.pool == "avg":
            layers.append(nn.AvgPool2d(arch.pool_size))
        if dropout > 0.0:
            layers.append(nn.Dropout(dropout))
        c_in = c
    layers.append(nn.Flatten())
    width_in = arch.flat_features()
    for width in arch.hidden:
        layers.append(nn.Linear(width_in, width))
        if arch.batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(ACTIVATION_MODULES[arch.activation]())
        if dropout > 0.0:
            layers.append(nn.Dropout(dropout))
        width_in = width
    layers.append(nn.Linear(width_in, arch.n_classes))
    return nn.Sequential(*layers)


def _flat(module: nn.Module) -> tuple[list[Tensor], list[Tensor]]:
    """A reference module's parameters (linear weights transposed to ``(in, out)``) and
    batch-norm running statistics, in order."""
    params: list[Tensor] = []
    buffers: list[Tensor] = []
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            params += [layer.weight.detach().t(), layer.bias.detach()]
        elif isinstance(layer, nn.Conv2d):
            assert layer.bias is not None
            params += [layer.weight.detach(), layer.bias.detach()]
        elif isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            assert layer.running_mean is not None and layer.running_var is not None
            params += [layer.weight.detach(), layer.bias.detach()]
            buffers += [layer.running_mean.detach(), layer.running_var.detach()]
    return params, buffers


class StackedCNN(MemberStack):
    """K CNNs with stacked parameters; the interface of :class:`~sweep.nets.StackedMLP`.

    ``params`` follow the reference module's ``parameters()`` with a leading member dimension:
    conv kernels ``(K, C_out, C_in, k, k)``, linear weights ``(K, in, out)``; ``weight_mask``
    marks the kernels and linear weights. ``hidden`` lists the probed layers' widths: each
    block's channels, then the dense widths.
    """

    def __init__(self, arch: ConvArch, seeds: Sequence[int], device: torch.device) -> None:
        self.arch = arch
        self.hidden = (*arch.channels, *arch.hidden)
        self.act = ACTIVATIONS[arch.activation]
        flat = [_flat(_seeded_reference(arch, s)) for s in seeds]
        self._stack([m[0] for m in flat], [m[1] for m in flat], device)

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
        """Logits ``(K, B, classes)`` for flattened images ``(K, B, C·H·W)``; the arguments
        are those of :meth:`StackedMLP.forward <sweep.nets.StackedMLP.forward>` (masks are
        drawn with shape ``(K, B, C, H, W)`` after each block's pooling)."""
        ps = list(self.params if params is None else params)
        bs = list(self.buffers if buffers is None else buffers)
        if train:
            return self._forward(x, ps, bs, True, dropout, masks, None)
        step = max(1, EVAL_BLOCK_FLOATS // max(1, x.shape[0] * self._widest()))
        starts = range(0, max(x.shape[1], 1), step)  # an empty batch is one empty block
        parts = [
            self._forward(x[:, s : s + step], ps, bs, False, None, None, probe) for s in starts
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def _widest(self) -> int:
        """Floats of one member's widest activation for one example (a block's convolution
        output, at the block's input resolution, or the input itself)."""
        sizes = self.arch.sizes()
        widths = (self.arch.input_shape[0], *self.arch.channels)
        return max(c * h * w for c, (h, w) in zip(widths, [sizes[0], *sizes[:-1]], strict=True))

    def _forward(
        self,
        x: Tensor,
        ps: list[Tensor],
        bs: list[Tensor],
        train: bool,
        dropout: Tensor | None,
        masks: Masks | None,
        probe: Probe | None,
    ) -> Tensor:
        a = self.arch
        k, b = x.shape[0], x.shape[1]
        c, height, width_px = a.input_shape
        h = x.reshape(k, b, c, height, width_px).transpose(0, 1).reshape(b, k * c, height, width_px)
        h = h.contiguous(memory_format=torch.channels_last)  # CPU pooling: ~10x faster
        i = j = 0
        for layer, width in enumerate(a.channels):
            w = ps[i]
            h = F.conv2d(
                h,
                w.reshape(-1, *w.shape[2:]),
                ps[i + 1].reshape(-1),
                padding=a.kernel_size // 2,
                groups=k,
            )
            i += 2
            if a.batch_norm:
                h = F.batch_norm(
                    h,
                    bs[j].view(-1),
                    bs[j + 1].view(-1),
                    ps[i].reshape(-1),
                    ps[i + 1].reshape(-1),
                    training=train,
                    momentum=BN_MOMENTUM,
                    eps=BN_EPS,
                )
                i, j = i + 2, j + 2
            h = self.act(h)
            if probe is not None:
                lo, hi = h.amin(dim=(0, 2, 3)), h.amax(dim=(0, 2, 3))
                probe.add_range(layer, lo.view(k, width), hi.view(k, width))
            if a.pool == "max":
                h = F.max_pool2d(h, a.pool_size)
            elif a.pool == "avg":
                h = F.avg_pool2d(h, a.pool_size)
            if train and dropout is not None and masks is not None:
                u = masks(layer, (k, b, width, *h.shape[2:]))
                u = u.transpose(0, 1).reshape(h.shape)
                h = inverted_dropout(h, dropout.repeat_interleave(width).unsqueeze(0), u)
        feats = h.reshape(b, k, a.flat_features()).transpose(0, 1)
        return dense_layers(
            feats,
            ps[i:],
            bs[j:],
            widths=a.hidden,
            batch_norm=a.batch_norm,
            act=self.act,
            train=train,
            dropout=dropout,
            masks=masks,
            probe=probe,
            first_layer=len(a.channels),
        )

    def module(self, member: int) -> nn.Sequential:
        """Member ``member`` as the reference ``torch.nn`` module (eval mode), weights copied."""
        module = reference_cnn(self.arch).to(self.params[0].device)
        ref_params, ref_buffers = _flat(module)
        with torch.no_grad():
            for ref, p in zip(ref_params, self.params, strict=True):
                ref.copy_(p.detach()[member])  # a transposed view writes through
            for ref, b in zip(ref_buffers, self.buffers, strict=True):
                ref.copy_(b[member])
        return module.eval()


def _seeded_reference(arch: ConvArch, seed: int) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return reference_cnn(arch)
