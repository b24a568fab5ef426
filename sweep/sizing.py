"""How many members of a population train at once: the population is sized to the device.

A population's members are independent, so a population larger than the device can hold
trains as many members at once as fit (its *slots*): the others wait and take the slots of
members that end, with results identical in distribution (and, with dropout off, in value) to
one big population. On a GPU the slots are as many as the device's free memory allows; on a CPU
memory is not the limit, so every member trains at once unless ``trainer.max_population`` says
otherwise.

The bytes a member needs are measured, not guessed from the architecture: one member's forward
pass over a few training examples is run under :func:`torch.autograd.graph.saved_tensors_hooks`,
which sees every tensor autograd keeps for the backward pass, whatever the model (MLP, CNN or a
user's own module); what grows with the examples is the per-example cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .nets import StackedNet

# weights, their gradients, two optimizer states (Adam's moments), the best weights kept for
# restoring, the initial weights cached per seed
PARAM_COPIES = 6
# a backward pass holds the saved activations and gradients of the same size
ACTIVATION_COPIES = 2
# of the device's free memory, the share a population may fill (the rest: allocator
# fragmentation, cuBLAS workspaces, the evaluation's temporaries)
FREE_SHARE = 0.8

__all__ = ["MemberCost", "activation_bytes", "chunk_size", "member_cost"]


@dataclass(frozen=True)
class MemberCost:
    """Device bytes of one member: ``params`` (all its parameter copies), ``train`` (one
    training step's activations and their gradients) and ``evaluate`` (the largest activation
    of an evaluation block, input and output)."""

    params: int
    train: int
    evaluate: int

    @property
    def total(self) -> int:
        return self.params + max(self.train, self.evaluate)


def activation_bytes(net: StackedNet, x: Tensor) -> tuple[float, float]:
    """Bytes per example of one member of ``net`` (a population of one) in a training forward
    pass: all the activations autograd keeps, and the largest of them. ``x`` holds a few
    training examples (any number ≥ 1).

    Measured as the growth from a batch of 4 examples to one of 8, so that what does not grow
    with the batch (the weights autograd keeps for the backward pass) is not counted per
    example."""
    if net.size != 1:
        raise ValueError(f"activation_bytes needs a population of one, got {net.size}")
    small, large = (_saved_bytes(net, x, n) for n in (4, 8))
    if len(small) != len(large):  # a model whose saved tensors depend on the batch: per example
        slopes = [b / 8 for b in large]
    else:
        slopes = [max(b - a, 0) / 4 for a, b in zip(small, large, strict=True)]
    return sum(slopes), max(slopes)


def _saved_bytes(net: StackedNet, x: Tensor, n: int) -> list[int]:
    """The bytes of each tensor a training forward pass of ``n`` examples of ``x`` (repeated
    where ``x`` has fewer) keeps for the backward pass, then of its output."""
    sample = x[torch.arange(n, device=x.device) % len(x)].unsqueeze(0)
    saved: list[int] = []

    def pack(t: Tensor) -> Tensor:
        saved.append(t.numel() * t.element_size())
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = net.forward(sample, train=True)
    saved.append(out.numel() * out.element_size())
    return saved


def member_cost(net: StackedNet, x: Tensor, *, batch_size: int, eval_batch_size: int) -> MemberCost:
    """Measure what one member of ``net`` (a population of one) needs: ``x`` holds a few
    training examples (any number ≥ 1) from which per-example activation bytes are scaled."""
    if net.size != 1:
        raise ValueError(f"member_cost needs a population of one, got {net.size}")
    per_example, largest = activation_bytes(net, x)
    params = sum(p[0].numel() * p.element_size() for p in net.params)
    params += sum(b[0].numel() * b.element_size() for b in net.buffers)
    return MemberCost(
        params=PARAM_COPIES * params,
        train=math.ceil(ACTIVATION_COPIES * per_example * batch_size),
        evaluate=math.ceil(2 * largest * eval_batch_size),
    )


def free_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` (a GPU), or None where memory does not limit a population."""
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def chunk_size(
    members: int, *, cost: MemberCost | None, free: int | None, limit: int | None
) -> int:
    """How many of ``members`` train at once: at most ``limit`` (``trainer.max_population``)
    and, where ``free`` bytes are known, as many as :data:`FREE_SHARE` of them hold at
    ``cost`` each; never fewer than one.

    Example:
        >>> chunk_size(100, cost=MemberCost(600, 300, 100), free=10_000, limit=None)
        8
        >>> chunk_size(100, cost=None, free=None, limit=32)
        32
    """
    size = members
    if limit is not None:
        size = min(size, limit)
    if free is not None and cost is not None and cost.total > 0:
        size = min(size, int(FREE_SHARE * free) // cost.total)
    return max(size, 1)
