"""The sweeper's schema (``hydra.sweeper.*``), registered as ``hydra/sweeper/regsweep_schema``.

Values live in ``conf/hydra/sweeper/regsweep.yaml`` (the config group option
``hydra/sweeper=regsweep``, the default), types here; each field's ``help`` metadata is what
``python -m sweep --help`` prints for it.
"""
# Underscore modules are skipped by Hydra's plugin scan and imported only by sweeper.py.
# No `from __future__ import annotations` here: the schema's field types must be real types.

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

__all__ = ["ConfirmConfig", "PrunerConfig", "SamplerConfig", "SweeperConfig"]


def _help(text: str, **kw: Any) -> Any:
    return field(metadata={"help": text}, **kw)


@dataclass
class SamplerConfig:
    """How Optuna picks each trial's parameters."""

    name: str = _help(
        "tpe, random, grid (choice/range only), cmaes, gp, qmc, or nsga2 (multi-objective)",
        default="tpe",
    )
    seed: int | None = _help(
        "makes the search repeatable; each trial's draw is seeded by it "
        "and the trial number, so workers never repeat each other",
        default=None,
    )
    n_startup_trials: int = _help("random trials before TPE/GP model the results", default=10)
    multivariate: bool = _help("TPE models the parameters jointly", default=True)
    constant_liar: bool = _help(
        "TPE avoids the points of trials still running (workers, populations)", default=True
    )
    balance_families: bool = _help(
        "a search over regularizer=choice(...): every family gets an "
        "equal share of n_trials (trial k: family k mod F) and its "
        "own sampler over its own trials (false: the family is "
        "drawn like any categorical)",
        default=True,
    )


@dataclass
class PrunerConfig:
    """How weak trials are stopped early (pruning is the early stopping of a sweep).

    Each pruner reads its own fields, with its own defaults (``sweep.study._pruner_configs``:
    one settings class per pruner); a field left null takes the chosen pruner's default, and a
    field the chosen pruner does not read is refused before the sweep starts."""

    name: str = _help(
        "none, median, percentile, successive_halving, hyperband, threshold or wilcoxon",
        default="median",
    )
    n_startup_trials: int | None = _help(
        "median/percentile: other trials that must have "
        "reached an epoch before it prunes there (finished "
        "ones, with peers=false); default 3",
        default=None,
    )
    peers: bool | None = _help(
        "median/percentile: judge a trial against running trials too, so "
        "the members of a population are each other's reference (false: "
        "Optuna's rule, finished trials only); default true",
        default=None,
    )
    by_family: bool | None = _help(
        "median/percentile: judge a trial only against trials of its "
        "own regularizer family (a regularized run that learns slowly "
        "early is not pruned by comparison with unregularized ones); "
        "default true",
        default=None,
    )
    family_startup_trials: int | None = _help(
        "any pruner: each family's first this-many trials "
        "(by number; one that fails or diverges passes its "
        "place on) are never pruned, so every family ends "
        "the search with this many completed runs (0: "
        "off); default 3",
        default=None,
    )
    audit: float | None = _help(
        "any pruner: the share (0 to 1) of the trials the pruner would "
        "stop that run to the end instead, flagged as audited, so the "
        "report can say how often pruning was wrong; default 0.2",
        default=None,
    )
    n_warmup_steps: int | None = _help(
        "median/percentile/threshold: the first epoch that can be "
        "pruned (epochs count from 1; default 4, threshold 0); "
        "wilcoxon: epochs before it prunes (default 2)",
        default=None,
    )
    interval_steps: int | None = _help(
        "median/percentile/threshold: epochs between checks; default 1", default=None
    )
    n_min_trials: int | None = _help(
        "median/percentile: trials reported at an epoch before it prunes there; default 1",
        default=None,
    )
    percentile: float | None = _help(
        "percentile: keep the trials in the best this-many percent "
        "at an epoch (median: 50); default 25",
        default=None,
    )
    min_resource: Any = _help(
        "successive_halving/hyperband: epochs of the first rung, or auto; "
        "default auto (successive_halving), 1 (hyperband)",
        default=None,
    )
    max_resource: Any = _help(
        "hyperband: the largest number of epochs, or auto; default auto", default=None
    )
    reduction_factor: int | None = _help(
        "successive_halving/hyperband: rung growth factor; default 3", default=None
    )
    min_early_stopping_rate: int | None = _help(
        "successive_halving: first rung's exponent; default 0", default=None
    )
    bootstrap_count: int | None = _help(
        "successive_halving/hyperband: trials at a rung before it prunes; default 0", default=None
    )
    lower: float | None = _help("threshold: prune below this value", default=None)
    upper: float | None = _help("threshold: prune above this value", default=None)
    p_threshold: float | None = _help(
        "wilcoxon: p-value below which it prunes; default 0.1", default=None
    )
    patience: int | None = _help(
        "any pruner: wrap it in PatientPruner, pruning only after this "
        "many epochs without improvement",
        default=None,
    )
    min_delta: float | None = _help(
        "any pruner with patience: improvement that counts; default 0", default=None
    )


@dataclass
class ConfirmConfig:
    """The confirmation stage: finalists and the unregularized baseline on several seeds."""

    seeds: int = _help(
        "seeds each finalist and the baseline are re-trained on after the "
        "search (0: no confirmation stage)",
        default=5,
    )
    top_k: int | None = _help(
        "finalists per regularizer family (null: every distinct "
        "configuration the search completed, as the notes presets do)",
        default=1,
    )
    only: bool = _help(
        "run (or finish) the confirmation stage of an existing study, without searching",
        default=False,
    )
    dose_points: int = _help(
        "the dose-response stage: strengths on each family's path, "
        "spanning its searched range, run at the finalist's other settings "
        "on the same seeds (with the finalist and strength 0 besides; 0: "
        "no dose-response stage)",
        default=6,
    )
    target_mde: float | None = _help(
        "add seeds to the finalists and their baselines until the "
        "smallest effect their seeds detect (80% power, at the "
        "analysis's level) is at most this, in the decision "
        "metric's units (0.01: one point of accuracy); null: "
        "confirm.seeds only",
        default=None,
    )
    max_seeds: int = _help("confirm.target_mde adds seeds up to this many", default=20)
    population: int | None = _help(
        "runs trained together as one population in the "
        "confirmation and dose-response stage (null: the search's "
        "population)",
        default=None,
    )


@dataclass
class SweeperConfig:
    """Everything ``python -m sweep -m`` needs besides the job config."""

    _target_: str = "hydra_plugins.regsweep_sweeper.sweeper.RegsweepSweeper"
    storage: str = _help(
        "the study database: a SQLite file, a journal file (*.log), or a "
        "SQLAlchemy URL such as postgresql+psycopg2://user@host/db",
        default="sqlite:///outputs/studies.db",
    )
    study_name: str = _help(
        "the study; rerunning with the same name resumes it", default="regsweep-default"
    )
    direction: Any = _help(
        "auto (from the metric), maximize, minimize, or one per objective", default="auto"
    )
    metric: str = _help(
        "the optimized metric of the final model: val_acc, val_loss, gap_acc, gap_loss or sparsity",
        default="val_acc",
    )
    objectives: list[str] = _help(
        "two or more metrics make a multi-objective study", default_factory=list
    )
    n_trials: int = _help(
        "the search study's total budget, counting trials already stored", default=40
    )
    population: int = _help(
        "trials trained together as one batched model in one job (those "
        "that share data, architecture, batch size, epochs and optimizer "
        "kind)",
        default=8,
    )
    n_jobs: int = _help(
        "jobs launched together (use with hydra/launcher=joblib hydra.launcher.n_jobs=N)", default=1
    )
    max_failure_rate: float = _help(
        "stop once more than this fraction of this process's trials failed", default=0.5
    )
    heartbeat_interval: int = _help(
        "seconds between the heartbeats of running trials (database storages)", default=10
    )
    grace_period: int | None = _help(
        "seconds without a heartbeat after which a trial belongs "
        "to a dead process (null: 2 × heartbeat_interval)",
        default=None,
    )
    requeue_interrupted: bool = _help(
        "re-queue the parameters of trials whose process died or was interrupted", default=False
    )
    dry_run: bool = _help(
        "check the search space and the data, print them; store nothing", default=False
    )
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    confirm: ConfirmConfig = field(default_factory=ConfirmConfig)
    params: dict[str, Any] = _help(
        "the search space: path → expression (search=... presets set it)", default_factory=dict
    )
    conditional: dict[str, Any] = _help(
        "parameters searched only for one option of a categorical parameter", default_factory=dict
    )


ConfigStore.instance().store(
    group="hydra/sweeper", name="regsweep_schema", node=SweeperConfig, provider="regsweep"
)


def _sweeper_help(*, _root_: Any) -> str:
    """``${regsweep.sweeper_help:}``: the sweeper's keys, when hydra/sweeper=regsweep."""
    from omegaconf import OmegaConf

    from sweep.help import describe_keys

    node = OmegaConf.select(_root_, "hydra.sweeper")
    if node is None or "RegsweepSweeper" not in str(node.get("_target_", "")):
        return "  (another sweeper is selected: see its documentation)"
    lines = describe_keys(SweeperConfig, node, _root_, prefix="hydra.sweeper.")
    return "\n".join(lines).replace("$", "$$")


def _register_help() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("regsweep.sweeper_help"):
        OmegaConf.register_new_resolver("regsweep.sweeper_help", _sweeper_help)


_register_help()
