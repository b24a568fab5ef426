"""The training loop of a population: K members of one architecture trained as one computation.

Each epoch: every member steps through its own shuffled batches (data loss → backward → + its
penalty gradient → its gradient norm, clipped to its threshold → its optimizer step); then each
member's train split (in eval mode: dropout off, batch norm on running statistics) and
validation split are measured with one evaluation function. Each member reports to its own
reporter, and leaves the stack when it is pruned, diverges or stops early; the step's cost
shrinks with it. One member is a single run.

The stacked state and the step are :mod:`sweep.population`'s; the settings are plain data
(:mod:`sweep.stack`). Knows neither Optuna nor Hydra: it takes built objects, plain settings
and reporters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .data import StackedSplits
from .nets import StackedNet
from .optim import scheduled_lr
from .population import Population, batch_bounds
from .record import StopReason
from .reporting import NullReporter, Reporter
from .stack import EarlyStop, MemberSettings, Shared

__all__ = ["EarlyStop", "FitResult", "Joining", "MemberSettings", "Shared", "batch_bounds", "fit"]

Tensor = torch.Tensor
EpochHook = Callable[[dict[str, float]], None]


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


_ROW_KEYS = (
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "weight_l1",
    "weight_l2",
    "sparsity",
    "sparsity_abs",
    "dead_units",
)


def _row(
    epoch: int, measured: list[float], steps: list[float], lr: float, seconds: float
) -> dict[str, float]:
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
    start = _join(
        Joining(net, data, list(settings), list(reporters or []), list(on_epoch or [])),
        shared,
        first=0,
    )
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
        lrs = [
            scheduled_lr(members[i].settings.lr, members[i].settings.schedule, e - 1)
            for i, e in zip(ids, epochs, strict=True)
        ]
        steps = pop.train_epoch(torch.tensor(lrs, device=dev))
        values = torch.cat([pop.measure(), steps.float()], dim=1).tolist()
        seconds = time.perf_counter() - te
        # every member reports its epoch before any is judged: a pruner that compares the
        # members with each other sees the same population whatever their order
        alive = [
            _record(members[i], _row(e, values[r][:9], values[r][9:], lrs[r], seconds), e, shared)
            for r, (i, e) in enumerate(zip(ids, epochs, strict=True))
        ]
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
    population: Population


def _join(joining: Joining, shared: Shared, *, first: int) -> _Joined:
    """The members of ``joining`` and their stacked state, numbered from ``first``."""
    k = len(joining.settings)
    if joining.net.size != k or int(joining.data.split_of.shape[0]) != k:
        raise ValueError(
            f"{k} joining members came with {joining.net.size} networks and "
            f"{int(joining.data.split_of.shape[0])} data rows"
        )
    reps = list(joining.reporters) or [None] * k
    hooks = list(joining.on_epoch) or [None] * k
    members = [
        _Member(s, reps[i] or NullReporter(), hooks[i], _select(s, shared.metric))
        for i, s in enumerate(joining.settings)
    ]
    pop = Population(
        joining.net,
        joining.data,
        shared,
        joining.settings,
        first=first,
        keeps_best=any(m.restores for m in members),
    )
    return _Joined(members, pop)


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
        m.stop = StopReason.DIVERGED
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
        m.stop, m.message = StopReason.PRUNED, f"pruned at epoch {epoch}"
        return False
    es = m.settings.early_stop
    if es is not None and epoch - m.best_epoch >= es.patience:
        m.stop = StopReason.EARLY_STOPPED
        m.message = f"no {m.select} improvement for {es.patience} epochs"
        return False
    return True


def _finish(
    pop: Population,
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
    live = [j for j, i in enumerate(ids) if members[i].stop != StopReason.DIVERGED]
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
            stop_reason=m.stop or StopReason.COMPLETED,
            message=m.message,
            test=by_member.get(i),
            seconds=now - m.started,
        )
        results[i] = result
        done.append((i, result))
    return done
