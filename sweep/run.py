"""The task: validated configs in, trained-and-measured runs out.

``run_population`` trains several configurations that share a network (same data, architecture,
batch size, epochs and optimizer kind: :func:`structure_key`) as one population; ``run`` is the
population of one. Hydra-agnostic (hydra-zen's advice): it takes typed configs, returns plain
data, and never returns models, so a multirun does not keep every model alive.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from .config import AppConfig, ConfigError
from .custom import CustomArch, check_model
from .data import Splits, StackedSplits, load_splits
from .heap import keep_freed_pages
from .hparams import HPARAMS
from .models import batchable, build_net, cost_arch, effective_dropout, model_arch, model_key
from .nets import Arch
from .nets_cnn import ConvArch
from .optim import Schedule
from .penalties import Penalty
from .record import BEST_EPOCH_KEYS, CURVE_KEYS, OBJECTIVES, RECORD_VERSION, collapsed
from .regularizers import STRENGTHS, loss_penalty, value_at
from .reporting import Reporter
from .sizing import activation_bytes, chunk_size, free_bytes, member_cost
from .threads import configure_threads
from .train import EarlyStop, FitResult, Joining, MemberSettings, Shared, fit

__all__ = [
    "Entrant",
    "RunOutcome",
    "batchable",
    "build_net",
    "effective_hparams",
    "member_settings",
    "objective_values",
    "resolve_device",
    "run",
    "run_population",
    "structure_key",
]

log = logging.getLogger(__name__)

EpochHook = Callable[[dict[str, float]], None]


@dataclass
class RunOutcome:
    """The curves and the per-run summary (the trial's user attributes, docs/trial-record.md)."""

    fit: FitResult
    summary: dict[str, Any]
    objective: float


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda``/``cuda:N`` must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(
            [f"trainer.device={name!r}: CUDA is not available here; allowed auto, cpu"]
        )
    device = torch.device(name)
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ConfigError(
            [f"trainer.device={name!r}: allowed cuda:0 … cuda:{count - 1}, auto, cpu"]
        )
    return device


def effective_hparams(cfg: AppConfig) -> dict[str, float]:
    """The values that act, wherever they were set (regularizer overrides model/optimizer): every
    registered strength (off, None, counts as 0) and the other recorded settings."""
    r = cfg.regularizer
    values = {s.key: float(value_at(cfg, s.path) or 0.0) for s in STRENGTHS.values()}
    values.update(
        {
            "l1_ratio": r.l1_ratio,
            "dropout": effective_dropout(cfg),
            "weight_decay": r.weight_decay
            if r.weight_decay is not None
            else cfg.optimizer.weight_decay,
            "lr": cfg.optimizer.lr,
            "momentum": cfg.optimizer.momentum,
            "batch_size": float(cfg.trainer.batch_size),
        }
    )
    assert set(values) == set(HPARAMS), sorted(set(values) ^ set(HPARAMS))
    return values


def structure_key(cfg: AppConfig) -> tuple[Any, ...]:
    """What members of one population must share: the data, the architecture, the batch size,
    the evaluation batch size, the epochs, the optimizer kind, the device and the optimized
    metric. Everything else
    (strengths, dropout p, clip, learning rate, momentum, betas, decay, schedule, early
    stopping, seed) is per member, except a custom model's dropout p (fixed when it is built).
    A custom model that ``vmap`` cannot batch (:func:`batchable`) gets a key of its own for
    every configuration object, so each such trial is a population of one.

    Example:
        >>> a, b = AppConfig(), AppConfig()
        >>> b.regularizer.l2, b.optimizer.lr, b.trainer.seed = 1e-3, 0.01, 4
        >>> structure_key(a) == structure_key(b)
        True
    """
    t = cfg.trainer
    return (
        tuple(sorted(asdict(cfg.data).items())),
        model_key(cfg),
        t.batch_size,
        t.eval_batch_size,
        t.epochs,
        t.device,
        cfg.optimizer.name,
        cfg.metric,
    )


def member_settings(cfg: AppConfig) -> MemberSettings:
    """One configuration's per-member settings."""
    r, o, s = cfg.regularizer, cfg.optimizer, cfg.scheduler
    hp = effective_hparams(cfg)
    es = r.early_stop
    return MemberSettings(
        seed=cfg.trainer.seed,
        lr=o.lr,
        momentum=o.momentum,
        nesterov=o.nesterov,
        betas=(float(o.betas[0]), float(o.betas[1])),
        eps=o.eps,
        weight_decay=hp["weight_decay"],
        decay_all=r.apply_to == "all",
        penalty=Penalty(*loss_penalty(r), half_mean=r.scale == "half_mean"),
        penalize_all=r.apply_to == "all",
        dropout=hp["dropout"],
        clip=r.clip,
        early_stop=EarlyStop(es.patience, es.min_delta, es.monitor, es.restore_best)
        if es.patience is not None
        else None,
        schedule=Schedule(
            s.name, s.step_size, s.gamma, s.t_max, s.eta_min, epochs=cfg.trainer.epochs
        ),
    )


@dataclass
class Entrant:
    """A configuration that joins a running population, with its reporter and epoch hook."""

    config: AppConfig
    reporter: Reporter | None = None
    on_epoch: EpochHook | None = None


OutcomesHook = Callable[[list[tuple[int, RunOutcome]]], None]
MoreHook = Callable[[int], Sequence[Entrant]]


class _Library:
    """The data splits of a population, one per seed, stacked once and only ever appended to
    (members that join later find every split the population already uses where it was)."""

    def __init__(self, data: Any, device: torch.device) -> None:
        self.data, self.device = data, device
        self.seeds: list[int] = []
        self.splits: list[Splits] = []
        self.stacked: StackedSplits | None = None

    def rows(self, seeds: Sequence[int]) -> tuple[StackedSplits, list[Splits]]:
        """The stacked data of members with ``seeds``, and each one's own splits."""
        new = [s for s in dict.fromkeys(seeds) if s not in self.seeds]
        for seed in new:
            self.seeds.append(seed)
            self.splits.append(load_splits(self.data, seed=seed, device=self.device))
        index = [self.seeds.index(s) for s in seeds]
        if new or self.stacked is None:
            self.stacked = StackedSplits.of(self.splits, index)
        stacked = dataclasses.replace(
            self.stacked, split_of=torch.tensor(index, dtype=torch.int64, device=self.device)
        )
        return stacked, [self.splits[i] for i in index]


def run_population(
    cfgs: Sequence[AppConfig],
    *,
    reporters: Sequence[Reporter | None] | None = None,
    on_epoch: Sequence[EpochHook | None] | None = None,
    workers: int = 1,
    on_end: OutcomesHook | None = None,
    more: MoreHook | None = None,
    slots: int | None = None,
    each_epoch: Callable[[], None] | None = None,
) -> list[RunOutcome]:
    """Load data, build, train and summarize configurations that share a network, as one
    population; their outcomes in the order given, then those of members that joined.

    A population larger than the device holds (:mod:`sweep.sizing`: a GPU's free memory, or
    ``trainer.max_population``) trains that many at a time: a member that ends frees its slot
    for the next configuration. When the given ones are all in, ``more(free)`` may hand over
    further configurations (:class:`Entrant`, sharing the network) to fill free slots;
    ``slots`` (default: as many as given) is how many train at once, within what the device
    holds. ``each_epoch`` is called before each epoch of the population.
    ``on_end`` hears of members as they end (index in the order above, outcome).

    Raises:
        ValueError: The configurations do not share a network (see :func:`structure_key`).
        ConfigError: The device does not exist; the model does not fit the data (a CNN on
            non-image data, too many pooling blocks) or a custom model breaks its contract.
        DataError: The data cannot be loaded.
    """
    if not cfgs:
        return []
    key = structure_key(cfgs[0])
    if any(structure_key(c) != key for c in cfgs):
        raise ValueError(
            "a population needs configurations that share a network; got "
            f"{len({structure_key(c) for c in cfgs})} different structures"
        )
    first = cfgs[0]
    device = resolve_device(first.trainer.device)
    if first.trainer.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    library = _Library(first.data, device)
    stacked, own = library.rows([c.trainer.seed for c in cfgs])
    arch = model_arch(first, own[0])
    if isinstance(arch, CustomArch):
        check_model(arch)  # the contract, before training (cached: once per model)
    size = _chunk(max(len(cfgs), slots or 0), first, arch, stacked, device)
    if size < len(cfgs):
        log.info(
            "population of %d trains %d at a time (trainer.max_population=%s, device %s)",
            len(cfgs),
            size,
            first.trainer.max_population,
            device,
        )
    given = [
        Entrant(
            c,
            None if reporters is None else reporters[i],
            None if on_epoch is None else on_epoch[i],
        )
        for i, c in enumerate(cfgs)
    ]
    train = _Train(arch, library, device, key, on_end, more)
    return train.run(given, size, workers, each_epoch)


class _Train:
    """One population's training: its members as they join, and their outcomes."""

    def __init__(
        self,
        arch: Arch | ConvArch | CustomArch,
        library: _Library,
        device: torch.device,
        key: tuple[Any, ...],
        on_end: OutcomesHook | None,
        more: MoreHook | None,
    ) -> None:
        self.arch, self.library, self.device, self.key = arch, library, device, key
        self.on_end, self.more = on_end, more
        self.cfgs: list[AppConfig] = []
        self.own: list[Splits] = []
        self.waiting: list[Entrant] = []
        self.outcomes: dict[int, RunOutcome] = {}

    def _joining(self, entrants: Sequence[Entrant]) -> Joining:
        cfgs = [e.config for e in entrants]
        if any(structure_key(c) != self.key for c in cfgs):
            raise ValueError("a configuration that joins a population must share its network")
        stacked, own = self.library.rows([c.trainer.seed for c in cfgs])
        self.cfgs += cfgs
        self.own += own
        return Joining(
            build_net(self.arch, [c.trainer.seed for c in cfgs], self.device),
            stacked,
            [member_settings(c) for c in cfgs],
            [e.reporter for e in entrants],
            [e.on_epoch for e in entrants],
        )

    def _more(self, free: int) -> Joining | None:
        entrants = self.waiting[:free]
        del self.waiting[:free]
        if len(entrants) < free and self.more is not None:
            entrants += list(self.more(free - len(entrants)))
        return self._joining(entrants) if entrants else None

    def _ended(self, done: list[tuple[int, FitResult]]) -> None:
        ended = []
        for i, result in done:
            summary = summarize(result, self.cfgs[i], self.device, self.own[i])
            outcome = RunOutcome(fit=result, summary=summary, objective=summary["objective"])
            self.outcomes[i] = outcome
            ended.append((i, outcome))
        if self.on_end is not None:
            self.on_end(ended)

    def run(
        self, given: list[Entrant], size: int, workers: int, each_epoch: Callable[[], None] | None
    ) -> list[RunOutcome]:
        self.waiting = given[size:]
        start = self._joining(given[: min(size, len(given))])
        first = self.cfgs[0]
        configure_threads(
            first.trainer.threads,
            arch=cost_arch(self.arch, start.net),
            members=size,
            device=self.device,
            workers=workers,
            batch_size=first.trainer.batch_size,
        )
        keep_freed_pages()  # a step's tensors reuse the last step's pages: see sweep.heap
        grows = bool(self.waiting) or self.more is not None
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            example_bytes = 0.0
            if self.device.type == "cpu":  # evaluation blocks sized to the cache
                one = build_net(self.arch, [first.trainer.seed], self.device)
                example_bytes = activation_bytes(one, start.data.x_train[0])[1]
            shared = Shared(
                epochs=first.trainer.epochs,
                batch_size=first.trainer.batch_size,
                optimizer=first.optimizer.name,
                metric=first.metric,
                eval_batch_size=first.trainer.eval_batch_size,
                example_bytes=example_bytes,
            )
            torch.manual_seed(first.trainer.seed)  # a custom model's own dropout draws from it
            fit(
                start.net,
                start.data,
                shared,
                start.settings,
                reporters=start.reporters,
                on_epoch=start.on_epoch,
                on_end=self._ended,
                more=self._more if grows else None,
                slots=size,
                each_epoch=each_epoch,
            )
        return [self.outcomes[i] for i in sorted(self.outcomes)]


def _chunk(
    wanted: int,
    first: AppConfig,
    arch: Arch | ConvArch | CustomArch,
    stacked: StackedSplits,
    device: torch.device,
) -> int:
    """How many of ``wanted`` members (configured like ``first``) train at once on
    ``device``."""
    t = first.trainer
    free = free_bytes(device) if wanted > 1 else None
    cost = None
    if free is not None:
        one = build_net(arch, [t.seed], device)
        cost = member_cost(
            one, stacked.x_train[0], batch_size=t.batch_size, eval_batch_size=t.eval_batch_size
        )
    return chunk_size(wanted, cost=cost, free=free, limit=t.max_population)


def run(
    cfg: AppConfig,
    *,
    reporter: Reporter | None = None,
    on_epoch: EpochHook | None = None,
) -> RunOutcome:
    """Load data, build, train and summarize one configuration (a population of one)."""
    return run_population([cfg], reporters=[reporter], on_epoch=[on_epoch])[0]


def chance_accuracy(y: torch.Tensor, n_classes: int) -> float:
    """Accuracy of always answering the commonest class of ``y``."""
    if y.numel() == 0:
        return 1.0 / n_classes
    return float(torch.bincount(y, minlength=n_classes).max()) / y.numel()


def summarize(
    result: FitResult, cfg: AppConfig, device: torch.device, splits: Splits
) -> dict[str, Any]:
    """Per-run numbers the analysis reads (docs/trial-record.md)."""
    c = result.curves
    run_ = result.epochs_run

    def at(key: str, epoch: int) -> float:
        values = c.get(key) or []
        return float(values[epoch - 1]) if 1 <= epoch <= len(values) else math.nan

    f, b = result.final_epoch, result.best_epoch
    final = {
        key: at(key, f)
        for key in (
            "val_acc",
            "val_loss",
            "train_acc",
            "train_loss",
            "gap_acc",
            "gap_loss",
            "sparsity",
            "sparsity_abs",
            "dead_units",
            "weight_l1",
            "weight_l2",
        )
    }
    best = {
        f"best_epoch_{k}": at(k, b)
        for k in ("val_acc", "val_loss", "train_acc", "train_loss", "gap_acc", "gap_loss")
    }
    assert set(best) == set(BEST_EPOCH_KEYS)
    chance = chance_accuracy(splits.y_val, splits.n_classes)
    summary: dict[str, Any] = {
        "record_version": RECORD_VERSION,
        "curves": {k: c.get(k, []) for k in CURVE_KEYS},
        "final_epoch": f if run_ else 0,
        **final,
        "test_loss": result.test[0] if result.test else None,
        "test_acc": result.test[1] if result.test else None,
        "chance_acc": chance,
        "collapsed": bool(math.isfinite(final["val_acc"]) and collapsed(final["val_acc"], chance)),
        "best_epoch": b if run_ else 0,
        **best,
        "epochs_run": run_,
        "epochs_max": cfg.trainer.epochs,
        "stop_reason": result.stop_reason,
        "message": result.message,
        "run_seconds": result.seconds,
        "device": str(device),
        "seed": cfg.trainer.seed,
        "hparams": effective_hparams(cfg),
    }
    summary["objective"] = float(summary[OBJECTIVES[cfg.metric].key])
    return summary


def objective_values(summary: dict[str, Any], objectives: list[str]) -> list[float]:
    """The values of a multi-objective trial, in the order of ``objectives``."""
    return [float(summary[OBJECTIVES[o].key]) for o in objectives]
