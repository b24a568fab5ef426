"""The stacked state of a population, one training step as a function of it, and its measures.

:func:`train_step` is one optimizer step of every member: data loss → gradients → + penalty
gradients → per-member gradient norm, clipped → optimizer update. It is a function of the
stacked parameters (the network's), the optimizer state, the batch and the hyperparameters,
and keeps nothing between calls. :class:`Population` holds what those calls share while the
members train: the network, the data, the rows (:class:`Members`), and each member's random
generators; :meth:`Population.evaluate` measures every split with one function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .data import StackedSplits
from .losses import cross_entropy
from .metrics import weight_stats
from .nets import Masks, Probe, StackedNet
from .optim import optimizer_state, optimizer_step
from .penalties import add_penalty_grads, clip_grads
from .stack import Hyper, MemberSettings, OptimState, Rows, Shared

__all__ = ["Members", "Population", "batch_bounds", "train_step"]

Tensor = torch.Tensor


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Consecutive [start, stop) ranges; a last batch of one example joins the one before, since
    batch norm cannot train on a single example.

    Example:
        >>> batch_bounds(5, 2)
        [(0, 2), (2, 5)]
    """
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return [(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]


def train_step(
    net: StackedNet,
    state: OptimState,
    hp: Hyper,
    x: Tensor,
    y: Tensor,
    lr: Tensor,
    *,
    kind: str,
    masks: Masks | None = None,
) -> tuple[Tensor, Tensor]:
    """One step of every member on its own batch ``x`` ``(K, B, ...)``, ``y`` ``(K, B)``:
    ``net.params`` and ``state`` are updated in place. Returns each member's mean data loss and
    its gradient norm before clipping, ``(K,)`` each. ``masks`` draws the dropout of members
    with ``hp.dropout > 0``."""
    params = net.params
    logits = net.forward(x, train=True, dropout=hp.dropout if masks else None, masks=masks)
    per_member = cross_entropy(logits, y).mean(dim=1)
    grads = list(torch.autograd.grad(per_member.sum(), params))
    add_penalty_grads(params, grads, hp, net.weight_mask, int(x.shape[1]))
    norms = clip_grads(grads, hp)
    optimizer_step(kind, params, grads, state, hp, lr, net.weight_mask)
    return per_member.detach(), norms


def _generator(seed: int, stream: int, device: torch.device) -> torch.Generator:
    """A member's own generator for one purpose: ``stream`` 0 orders its batches (as a single
    run seeded ``seed`` always has), 1 draws its dropout masks."""
    g = torch.Generator(device=device)
    g.manual_seed(seed if stream == 0 else (seed * 1_000_003 + 7919 * stream) % 2**63)
    return g


@dataclass
class Members(Rows):
    """The rows of the members still training: each one's index (members are numbered in the
    order they joined), hyperparameters, optimizer state and generators (batch order, drawn on
    the CPU on every device, so a seed orders its batches the same on a GPU as on a laptop;
    dropout draws, on the population's device)."""

    ids: Tensor
    hp: Hyper
    state: OptimState
    batch_order: list[torch.Generator]
    dropout_draws: list[torch.Generator]

    @classmethod
    def of(
        cls,
        settings: Sequence[MemberSettings],
        kind: str,
        params: Sequence[Tensor],
        device: torch.device,
        first: int = 0,
    ) -> Members:
        """Fresh rows for ``settings``, numbered from ``first``, their optimizer state zero."""
        cpu = torch.device("cpu")
        return cls(
            ids=torch.arange(first, first + len(settings), device=device),
            hp=Hyper.of(settings, device),
            state=optimizer_state(kind, params),
            batch_order=[_generator(s.seed, 0, cpu) for s in settings],
            dropout_draws=[_generator(s.seed, 1, device) for s in settings],
        )


class Population:
    """The members still training: their network, data and rows, and how to step and measure
    them. ``best`` holds the best weights (parameters, then buffers) of early-stopping members
    that restore them; None while no member does."""

    def __init__(
        self,
        net: StackedNet,
        data: StackedSplits,
        shared: Shared,
        settings: Sequence[MemberSettings],
        *,
        first: int = 0,
        keeps_best: bool = False,
    ) -> None:
        self.net, self.data, self.shared = net, data, shared
        self.rows = Members.of(settings, shared.optimizer, net.params, data.x_train.device, first)
        self.best: list[Tensor] | None = None
        if keeps_best:
            self.best = self._weights()

    def _weights(self) -> list[Tensor]:
        return [p.detach().clone() for p in self.net.params + self.net.buffers]

    @property
    def size(self) -> int:
        return self.rows.size

    @property
    def ids(self) -> Tensor:
        return self.rows.ids

    def keep(self, rows: Tensor) -> None:
        """Keep the stacked rows ``rows`` (members that go on)."""
        self.rows = self.rows.keep(rows)
        self.net.keep(rows)
        self.data = self.data.keep(rows)
        if self.best is not None:
            self.best = [b[rows].contiguous() for b in self.best]

    def extend(self, other: Population) -> None:
        """Append the members of ``other`` (built for members that join this population):
        their networks, data, rows and best weights, each their own."""
        if other.best is not None and self.best is None:
            self.best = self._weights()
        if self.best is not None:
            theirs = other.best or [p.detach() for p in other.net.params + other.net.buffers]
            self.best = [torch.cat([a, b]) for a, b in zip(self.best, theirs, strict=True)]
        self.rows = self.rows.extend(other.rows)
        self.net.extend(other.net)
        self.data = self.data.extend(other.data)

    def _masks(self, _layer: int, shape: tuple[int, ...]) -> Tensor:
        """Each dropping member's draws from its own generator, written in place; members
        with p = 0 keep every unit (draws of 1) and draw nothing."""
        dev = self.data.x_train.device
        flags = self.rows.hp.flags
        out = torch.empty(shape, device=dev) if flags.all_drop else torch.ones(shape, device=dev)
        for r in flags.drop_rows:
            torch.rand(shape[1:], generator=self.rows.dropout_draws[r], device=dev, out=out[r])
        return out

    def train_epoch(self, lr: Tensor) -> Tensor:
        """One pass over each member's shuffled training split; returns ``(K, 2)``: the mean
        data loss of the steps and the mean gradient norm before clipping."""
        data, rows = self.data, self.rows
        n = data.x_train.shape[1]
        dev = data.x_train.device
        perm = torch.stack([torch.randperm(n, generator=g) for g in rows.batch_order]).to(dev)
        loss_sum = torch.zeros(self.size, device=dev)
        norm_sum = torch.zeros(self.size, device=dev)
        bounds = batch_bounds(n, self.shared.batch_size)
        masks = self._masks if rows.hp.flags.drop_rows else None
        for start, stop in bounds:
            idx = perm[:, start:stop]
            loss, norm = train_step(
                self.net,
                rows.state,
                rows.hp,
                data.rows(data.x_train, idx),
                data.rows(data.y_train, idx),
                lr,
                kind=self.shared.optimizer,
                masks=masks,
            )
            loss_sum += loss
            norm_sum += norm
        return torch.stack([loss_sum, norm_sum], dim=1) / max(len(bounds), 1)

    @torch.no_grad()
    def evaluate(
        self,
        x: Tensor,
        y: Tensor,
        *,
        params: Sequence[Tensor] | None = None,
        buffers: Sequence[Tensor] | None = None,
        data: StackedSplits | None = None,
        probe: Probe | None = None,
    ) -> Tensor:
        """``(K, 2)``: mean cross-entropy and accuracy of each member on its own split of
        ``x``/``y`` (stacked ``(S, N, ...)``), in eval mode, in blocks (:meth:`Shared.eval_block`)."""
        data = data or self.data
        k = int(data.split_of.shape[0])
        n = x.shape[1]
        loss = torch.zeros(k, dtype=torch.float64, device=x.device)
        correct = torch.zeros(k, dtype=torch.float64, device=x.device)
        block = self.shared.eval_block(k, x.device)
        for start in range(0, n, block):
            stop = min(n, start + block)
            logits = self.net.forward(
                data.block(x, start, stop), params=params, buffers=buffers, probe=probe
            )
            target = data.block(y, start, stop)
            loss += cross_entropy(logits, target).double().sum(dim=1)
            correct += (logits.argmax(dim=2) == target).double().sum(dim=1)
        return torch.stack([loss / max(n, 1), correct / max(n, 1)], dim=1)

    def measure(self) -> Tensor:
        """``(K, 9)`` after an epoch: train loss/acc, val loss/acc (eval mode), weight L1, L2,
        relative and absolute sparsity, and the fraction of dead hidden units."""
        probe = Probe() if self.net.hidden else None
        tr = self.evaluate(self.data.x_train, self.data.y_train, probe=probe)
        va = self.evaluate(self.data.x_val, self.data.y_val)
        ws = weight_stats(self.net.weights())
        dead = probe.dead_fraction() if probe is not None else torch.zeros(self.size)
        return torch.cat([tr.float(), va.float(), ws, dead.to(ws.device).unsqueeze(1)], dim=1)

    def remember_best(self, rows: Tensor) -> None:
        """Copy the current weights of the stacked ``rows`` as their best (early stopping)."""
        if self.best is None or rows.numel() == 0:
            return
        current = self.net.params + self.net.buffers
        for b, p in zip(self.best, current, strict=True):
            b[rows] = p.detach()[rows]

    def test(self, rows: Tensor, restored: Tensor) -> Tensor | None:
        """``(len(rows), 2)`` test loss and accuracy of the final models of the stacked ``rows``;
        ``restored[i]`` says whether row ``rows[i]`` ends with its best (restored) weights."""
        if self.data.x_test.shape[1] == 0 or rows.numel() == 0:
            return None
        n_p = len(self.net.params)
        current = [t.detach() for t in self.net.params + self.net.buffers]
        if self.best is not None and bool(restored.any()):
            flag = restored.view(-1, 1)
            chosen = [
                torch.where(flag.view((-1,) + (1,) * (c.dim() - 1)), b[rows], c[rows])
                for b, c in zip(self.best, current, strict=True)
            ]
        else:
            chosen = [c[rows] for c in current]
        return self.evaluate(
            self.data.x_test,
            self.data.y_test,
            params=chosen[:n_p],
            buffers=chosen[n_p:],
            data=self.data.keep(rows),
        )
