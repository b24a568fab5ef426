"""The training loop of a population: K members of one architecture trained as one computation.

Each epoch: every member steps through its own shuffled batches (data loss → backward → + its
penalty gradient → its gradient norm, clipped to its threshold → its optimizer step); then each
member's train split (in eval mode: dropout off, batch norm on running statistics) and
validation split are measured with one evaluation function. Each member reports to its own
reporter, and leaves the stack when it is pruned, diverges or stops early; the step's cost
shrinks with it. One member is a single run.

Knows neither Optuna nor Hydra: it takes built objects, plain settings and reporters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .data import StackedSplits
from .losses import cross_entropy
from .metrics import weight_stats
from .nets import Probe, StackedNet
from .optim import Schedule, StackedOptimizer, scheduled_lr
from .penalties import ClipNorms, Penalty, PenaltyStack
from .reporting import NullReporter, Reporter

__all__ = ["EarlyStop", "FitResult", "Joining", "MemberSettings", "Shared", "batch_bounds", "fit"]

Tensor = torch.Tensor
EpochHook = Callable[[dict[str, float]], None]


@dataclass(frozen=True)
class EarlyStop:
    """Stop after ``patience`` epochs without improving ``monitor`` by more than ``min_delta``;
    with ``restore_best`` the final model has the best monitored epoch's weights."""

    patience: int
    min_delta: float = 0.0
    monitor: str = "val_loss"
    restore_best: bool = True


@dataclass(frozen=True)
class MemberSettings:
    """What one member trains with, besides the architecture and data it shares."""

    seed: int = 0
    lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    decay_all: bool = False
    penalty: Penalty = field(default_factory=Penalty)
    penalize_all: bool = False
    dropout: float = 0.0
    clip: float | None = None
    early_stop: EarlyStop | None = None
    schedule: Schedule = field(default_factory=Schedule)


CPU_EVAL_BYTES = 1 << 20
"""On a CPU, an evaluation block's largest activation (all members together) stays within this
many bytes, so that each block's temporaries stay in cache and in memory already mapped. On
the digits MLP 64-64, measuring the members after an epoch took (ms per member, median of 5)
0.84 at K = 32 and 1.16 at K = 128 in blocks of 4096 examples (one block: 41 MB a layer at
K = 128), 0.48 and 0.55 within 1 MiB, 0.54 and 0.62 within 4 MiB."""

MIN_EVAL_BLOCK = 32
"""The fewest examples a CPU evaluation block holds, however large each example's activations
(a convolution's): below that, each block's operations cost more to dispatch than to compute."""


@dataclass(frozen=True)
class Shared:
    """What every member of a population shares besides architecture and data.

    ``eval_batch_size`` is the most examples an evaluation block holds; on a CPU, where
    ``example_bytes`` (one member's largest activation per example, :func:`sweep.sizing.
    activation_bytes`) is known, blocks are also kept within :data:`CPU_EVAL_BYTES`, down to
    :data:`MIN_EVAL_BLOCK` examples.
    """

    epochs: int
    batch_size: int
    optimizer: str = "sgd"
    metric: str = "val_acc"
    eval_batch_size: int = 4096
    example_bytes: float = 0.0

    def eval_block(self, members: int, device: torch.device) -> int:
        """Examples per evaluation block for ``members`` members on ``device``.

        Example:
            >>> Shared(1, 64, example_bytes=256.0).eval_block(128, torch.device("cpu"))
            32
        """
        if device.type != "cpu" or self.example_bytes <= 0:
            return self.eval_batch_size
        fits = int(CPU_EVAL_BYTES // (self.example_bytes * max(members, 1)))
        return min(self.eval_batch_size, max(MIN_EVAL_BLOCK, fits))


@dataclass
class FitResult:
    """One member's curves and how its training ended.

    ``final_epoch`` is the epoch whose weights the final model has: the last one run, or the
    best monitored one when early stopping restored it. ``best_epoch`` is the epoch with the best
    validation value (of early stopping's monitor, else of the optimized metric): hindsight,
    kept for comparison. ``test`` is (loss, accuracy) of the final model, None without a test
    split or after divergence.
    """

    curves: dict[str, list[float]]
    best_epoch: int
    final_epoch: int
    stop_reason: str
    message: str
    test: tuple[float, float] | None
    seconds: float

    @property
    def epochs_run(self) -> int:
        return len(self.curves.get("epoch", []))


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


def higher_is_better(metric: str) -> bool:
    return metric.endswith("_acc") and not metric.startswith("gap")


@dataclass
class _Member:
    """Bookkeeping of one member while it trains (Python side, per epoch)."""

    settings: MemberSettings
    reporter: Reporter
    on_epoch: EpochHook | None
    select: str
    curves: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    best_value: float = math.nan
    stop: str = ""
    message: str = ""
    epoch: int = 0  # epochs trained so far: members that joined later are at their own epoch
    started: float = field(default_factory=time.perf_counter)

    def improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if math.isnan(self.best_value):
            return True
        es = self.settings.early_stop
        delta = es.min_delta if es else 0.0
        if higher_is_better(self.select):
            return value > self.best_value + delta
        return value < self.best_value - delta

    @property
    def restores(self) -> bool:
        es = self.settings.early_stop
        return es is not None and es.restore_best


class _Population:
    """The stacked state of the members still training, and how to step and measure them."""

    def __init__(
        self,
        net: StackedNet,
        data: StackedSplits,
        shared: Shared,
        members: list[_Member],
        first: int = 0,
    ) -> None:
        self.net, self.data, self.shared = net, data, shared
        s = [m.settings for m in members]
        dev = data.x_train.device

        def vec(values: Sequence[float]) -> Tensor:
            return torch.tensor(values, dtype=torch.float32, device=dev)

        # the member index of each stacked row: members are numbered in the order they joined
        self.ids = torch.arange(first, first + len(members), device=dev)
        self.dropout = vec([m.dropout for m in s])
        self._dropping()
        self.penalties = PenaltyStack(
            [m.penalty for m in s], [m.penalize_all for m in s], net.weight_mask, dev
        )
        self.clip = ClipNorms([m.clip for m in s], dev)
        decay = vec([m.weight_decay for m in s])
        self.optimizer = StackedOptimizer(
            shared.optimizer, net.params, net.weight_mask,
            momentum=vec([m.momentum for m in s]),
            nesterov=torch.tensor([m.nesterov for m in s], device=dev),
            decay=decay,
            decay_other=decay * torch.tensor([m.decay_all for m in s], device=dev),
            beta1=vec([m.betas[0] for m in s]), beta2=vec([m.betas[1] for m in s]),
            eps=vec([m.eps for m in s]),
        )  # fmt: skip
        # batch orders are drawn on the CPU on every device: a seed orders its batches the same
        # on a GPU as on a laptop (a CUDA generator draws other permutations from the same seed)
        self.batch_order = [_generator(m.seed, 0, torch.device("cpu")) for m in s]
        self.dropout_draws = [_generator(m.seed, 1, dev) for m in s]
        self.best: list[Tensor] | None = None
        if any(m.restores for m in members):
            self.best = [p.detach().clone() for p in net.params + net.buffers]

    def _dropping(self) -> None:
        """Which stacked rows drop units (read once per change, not per step)."""
        self.drop_rows = (self.dropout > 0).nonzero().flatten().tolist()
        self.use_dropout = bool(self.drop_rows)
        self.all_drop = len(self.drop_rows) == self.size

    @property
    def size(self) -> int:
        return int(self.ids.shape[0])

    def keep(self, rows: Tensor) -> None:
        """Keep the stacked rows ``rows`` (members that go on)."""
        listed = rows.tolist()
        self.ids = self.ids[rows]
        self.net.keep(rows)
        self.data = self.data.keep(rows)
        self.dropout = self.dropout[rows]
        self._dropping()
        self.penalties.keep(rows)
        self.clip.keep(rows)
        self.optimizer.keep(rows)
        self.batch_order = [self.batch_order[i] for i in listed]
        self.dropout_draws = [self.dropout_draws[i] for i in listed]
        if self.best is not None:
            self.best = [b[rows].contiguous() for b in self.best]

    def extend(self, other: _Population) -> None:
        """Append the members of ``other`` (built for members that join this population):
        their networks, data, settings and optimizer state, each their own."""
        if other.best is not None and self.best is None:
            self.best = [p.detach().clone() for p in self.net.params + self.net.buffers]
        if self.best is not None:
            theirs = other.best or [p.detach() for p in other.net.params + other.net.buffers]
            self.best = [torch.cat([a, b]) for a, b in zip(self.best, theirs, strict=True)]
        self.ids = torch.cat([self.ids, other.ids])
        self.net.extend(other.net)
        self.data = self.data.extend(other.data)
        self.dropout = torch.cat([self.dropout, other.dropout])
        self._dropping()
        self.penalties.extend(other.penalties)
        self.clip.extend(other.clip)
        self.optimizer.extend(other.optimizer)
        self.batch_order += other.batch_order
        self.dropout_draws += other.dropout_draws

    def _masks(self, _layer: int, shape: tuple[int, ...]) -> Tensor:
        """Each dropping member's draws from its own generator, written in place; members
        with p = 0 keep every unit (draws of 1) and draw nothing."""
        dev = self.data.x_train.device
        out = torch.empty(shape, device=dev) if self.all_drop else torch.ones(shape, device=dev)
        for r in self.drop_rows:
            torch.rand(shape[1:], generator=self.dropout_draws[r], device=dev, out=out[r])
        return out

    def train_epoch(self, lr: Tensor) -> Tensor:
        """One pass over each member's shuffled training split; returns ``(K, 2)``: the mean
        data loss of the steps and the mean gradient norm before clipping."""
        data, net = self.data, self.net
        n = data.x_train.shape[1]
        dev = data.x_train.device
        perm = torch.stack([torch.randperm(n, generator=g) for g in self.batch_order]).to(dev)
        loss_sum = torch.zeros(self.size, device=dev)
        norm_sum = torch.zeros(self.size, device=dev)
        bounds = batch_bounds(n, self.shared.batch_size)
        for start, stop in bounds:
            idx = perm[:, start:stop]
            logits = net.forward(
                data.rows(data.x_train, idx), train=True,
                dropout=self.dropout if self.use_dropout else None,
                masks=self._masks if self.use_dropout else None,
            )  # fmt: skip
            target = data.rows(data.y_train, idx)
            per_member = cross_entropy(logits, target).mean(dim=1)
            grads = list(torch.autograd.grad(per_member.sum(), net.params))
            self.penalties.add_grads(net.params, grads, stop - start)
            norm_sum += self.clip(grads)
            self.optimizer.step(net.params, grads, lr)
            loss_sum += per_member.detach()
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
        chosen = current
        if self.best is not None and bool(restored.any()):
            flag = restored.view(-1, 1)
            chosen = [
                torch.where(flag.view((-1,) + (1,) * (c.dim() - 1)), b[rows], c[rows])
                for b, c in zip(self.best, current, strict=True)
            ]
        else:
            chosen = [c[rows] for c in current]
        return self.evaluate(
            self.data.x_test, self.data.y_test, params=chosen[:n_p], buffers=chosen[n_p:],
            data=self.data.keep(rows),
        )  # fmt: skip


def _generator(seed: int, stream: int, device: torch.device) -> torch.Generator:
    """A member's own generator for one purpose: ``stream`` 0 orders its batches (as a single
    run seeded ``seed`` always has), 1 draws its dropout masks."""
    g = torch.Generator(device=device)
    g.manual_seed(seed if stream == 0 else (seed * 1_000_003 + 7919 * stream) % 2**63)
    return g


_ROW_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "weight_l1", "weight_l2",
             "sparsity", "sparsity_abs", "dead_units")  # fmt: skip


def _row(epoch: int, measured: list[float], steps: list[float], lr: float,
         seconds: float) -> dict[str, float]:  # fmt: skip
    row = {"epoch": float(epoch), **dict(zip(_ROW_KEYS, measured, strict=True))}
    row["gap_acc"] = row["train_acc"] - row["val_acc"]
    row["gap_loss"] = row["val_loss"] - row["train_loss"]
    row.update(step_loss=steps[0], grad_norm=steps[1], lr=lr, epoch_seconds=seconds)
    return row


@dataclass
class Joining:
    """Members that join a running population as slots free up: their network (each member
    initialized as a single run with its seed would be), their data (stacked splits that begin
    with every split the population already uses; ``split_of`` is the joining members'), and
    their settings, reporters and epoch hooks."""

    net: StackedNet
    data: StackedSplits
    settings: list[MemberSettings]
    reporters: list[Reporter | None]
    on_epoch: list[EpochHook | None]


OnEnd = Callable[[list[tuple[int, "FitResult"]]], None]
More = Callable[[int], Joining | None]


def fit(
    net: StackedNet,
    data: StackedSplits,
    shared: Shared,
    settings: Sequence[MemberSettings],
    *,
    reporters: Sequence[Reporter | None] | None = None,
    on_epoch: Sequence[EpochHook | None] | None = None,
    on_end: OnEnd | None = None,
    more: More | None = None,
    slots: int | None = None,
    each_epoch: Callable[[], None] | None = None,
) -> list[FitResult]:
    """Train the members of ``net`` for ``shared.epochs`` epochs each; one :class:`FitResult`
    per member, in the order members joined.

    A member stops early when its reporter says prune ("pruned"), when its early stopping's
    patience runs out ("early_stopped"), or when one of its losses becomes NaN/inf
    ("diverged"); the others go on without it. ``on_end`` hears of members as they end (their
    index and result), at the end of the epoch they end in. With ``more``, every epoch that
    leaves slots free (of ``slots``, default the starting size) asks ``more(free)`` for members
    to join; each joins at its own epoch 1 and trains its own ``shared.epochs`` epochs, so
    members that are pruned early free their place for new ones instead of leaving it idle.
    ``each_epoch`` is called before each epoch of the population.
    """
    start = _join(Joining(net, data, list(settings), list(reporters or []), list(on_epoch or [])),
                  shared, first=0)  # fmt: skip
    members, pop = start.members, start.population
    results: list[FitResult | None] = [None] * len(members)
    room = max(slots or 0, pop.size)
    dev = data.x_train.device
    while pop.size:
        if each_epoch is not None:
            each_epoch()
        te = time.perf_counter()
        ids = pop.ids.tolist()
        epochs = [members[i].epoch + 1 for i in ids]
        lrs = [scheduled_lr(members[i].settings.lr, members[i].settings.schedule, e - 1)
               for i, e in zip(ids, epochs, strict=True)]  # fmt: skip
        steps = pop.train_epoch(torch.tensor(lrs, device=dev))
        values = torch.cat([pop.measure(), steps.float()], dim=1).tolist()
        seconds = time.perf_counter() - te
        # every member reports its epoch before any is judged: a pruner that compares the
        # members with each other sees the same population whatever their order
        alive = [_record(members[i], _row(e, values[r][:9], values[r][9:], lrs[r], seconds), e,
                         shared) for r, (i, e) in enumerate(zip(ids, epochs, strict=True))]  # fmt: skip
        going, improved = [], []
        for row_i, (i, epoch) in enumerate(zip(ids, epochs, strict=True)):
            m = members[i]
            if alive[row_i] and _goes_on(m, epoch) and epoch < shared.epochs:
                going.append(row_i)
            if m.best_epoch == epoch and m.restores:
                improved.append(row_i)
        pop.remember_best(torch.tensor(improved, dtype=torch.int64, device=dev))
        if len(going) < pop.size:
            staying = set(going)
            ended = [r for r in range(pop.size) if r not in staying]
            done = _finish(pop, members, ended, results)
            if on_end is not None:
                on_end(done)
            if not going and more is None:
                break  # the last members' weights stay in ``net`` for whoever built it
            pop.keep(torch.tensor(going, dtype=torch.int64, device=dev))
        joining = more(room - pop.size) if more is not None and pop.size < room else None
        if joining is not None and joining.settings:
            new = _join(joining, shared, first=len(members))
            members += new.members
            results += [None] * len(new.members)
            pop.extend(new.population)
    return [r for r in results if r is not None]


@dataclass
class _Joined:
    members: list[_Member]
    population: _Population


def _join(joining: Joining, shared: Shared, *, first: int) -> _Joined:
    """The members of ``joining`` and their stacked state, numbered from ``first``."""
    k = len(joining.settings)
    if joining.net.size != k or int(joining.data.split_of.shape[0]) != k:
        raise ValueError(f"{k} joining members came with {joining.net.size} networks and "
                         f"{int(joining.data.split_of.shape[0])} data rows")  # fmt: skip
    reps = list(joining.reporters) or [None] * k
    hooks = list(joining.on_epoch) or [None] * k
    members = [_Member(s, reps[i] or NullReporter(), hooks[i], _select(s, shared.metric))
               for i, s in enumerate(joining.settings)]  # fmt: skip
    return _Joined(members, _Population(joining.net, joining.data, shared, members, first=first))


def _select(s: MemberSettings, metric: str) -> str:
    if s.early_stop is not None:
        return s.early_stop.monitor
    return metric if metric.startswith("val") else "val_loss"


def _record(m: _Member, row: dict[str, float], epoch: int, shared: Shared) -> bool:
    """Record and report one epoch of a member; False when it diverged here."""
    m.epoch = epoch
    for key, value in row.items():
        m.curves.setdefault(key, []).append(value)
    if m.on_epoch is not None:
        m.on_epoch(row)
    if not all(math.isfinite(row[k]) for k in ("train_loss", "val_loss", "step_loss")):
        m.stop = "diverged"
        m.message = f"loss became non-finite at epoch {epoch} (lr={row['lr']:g})"
        return False
    if m.improves(row[m.select]):
        m.best_epoch, m.best_value = epoch, row[m.select]
    m.reporter.report(row[shared.metric], epoch)
    return True


def _goes_on(m: _Member, epoch: int) -> bool:
    """Whether a member that reported ``epoch`` trains on; False when it stops here (and why, in
    ``m.stop``): pruned by its reporter, or out of early-stopping patience."""
    if m.reporter.should_prune():
        m.stop, m.message = "pruned", f"pruned at epoch {epoch}"
        return False
    es = m.settings.early_stop
    if es is not None and epoch - m.best_epoch >= es.patience:
        m.stop = "early_stopped"
        m.message = f"no {m.select} improvement for {es.patience} epochs"
        return False
    return True


def _finish(
    pop: _Population,
    members: list[_Member],
    rows: list[int],
    results: list[FitResult | None],
) -> list[tuple[int, FitResult]]:
    """Measure the final models of the stacked ``rows`` on the test split, store their
    results and return them (member index, result)."""
    if not rows:
        return []
    now = time.perf_counter()
    dev = pop.ids.device
    ids = [int(pop.ids[r]) for r in rows]
    restored = [members[i].restores and members[i].best_epoch > 0 for i in ids]
    live = [j for j, i in enumerate(ids) if members[i].stop != "diverged"]
    test_rows = torch.tensor([rows[j] for j in live], dtype=torch.int64, device=dev)
    flags = torch.tensor([restored[j] for j in live], dtype=torch.bool, device=dev)
    tested = pop.test(test_rows, flags)
    scores = tested.tolist() if tested is not None else []
    by_member: dict[int, tuple[float, float]] = (
        {ids[j]: (scores[n][0], scores[n][1]) for n, j in enumerate(live)} if scores else {}
    )
    done = []
    for j, i in enumerate(ids):
        m = members[i]
        run = len(m.curves.get("epoch", []))
        result = FitResult(
            curves=m.curves,
            best_epoch=m.best_epoch or run,
            final_epoch=m.best_epoch if restored[j] else run,
            stop_reason=m.stop or "completed",
            message=m.message,
            test=by_member.get(i),
            seconds=now - m.started,
        )
        results[i] = result
        done.append((i, result))
    return done
