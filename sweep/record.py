"""Names of what a study and its trials store (see docs/trial-record.md).

The sweeper and the job write these; ``analysis`` reads them. One place, so they cannot drift.
Nothing here imports torch, Optuna or Hydra.
"""

from __future__ import annotations

import copy
import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "BEST_EPOCH_KEYS",
    "CONFIRM_SUFFIX",
    "CURVE_KEYS",
    "FINAL_KEYS",
    "NOT_BUDGETED",
    "OBJECTIVES",
    "RECORD_VERSION",
    "STOP_REASONS",
    "STUDY_COMMAND",
    "STUDY_CONFIRM_PLAN",
    "STUDY_CONFIRM_SEEDS",
    "STUDY_FINGERPRINT",
    "STUDY_METRIC",
    "STUDY_N_TRIALS",
    "STUDY_OBJECTIVES",
    "STUDY_PRUNER",
    "STUDY_ROLE",
    "STUDY_SEARCH_SPACE",
    "STUDY_SEARCH_STUDY",
    "STUDY_VERSION",
    "TRIAL_CONFIRM",
    "TRIAL_END",
    "TRIAL_OWNER",
    "Objective",
    "StopReason",
    "collapsed",
    "confirm_study_name",
    "json_safe",
    "plain_copy",
    "record_json",
    "search_study_name",
]

RECORD_VERSION = 2
"""Version of the trial record (``record_version`` attribute); 1 had no such attribute."""

# --------------------------------------------------------------------------- study attributes

STUDY_VERSION = "regsweep:version"
STUDY_COMMAND = "regsweep:command"
STUDY_SEARCH_SPACE = "regsweep:search_space"
STUDY_METRIC = "regsweep:metric"
STUDY_OBJECTIVES = "regsweep:objectives"
STUDY_PRUNER = "regsweep:pruner"
STUDY_N_TRIALS = "regsweep:n_trials"
STUDY_FINGERPRINT = "regsweep:fingerprint"
"""What a resumed sweep must match: search space, objectives, directions and the base config."""
STUDY_ROLE = "regsweep:role"
"""``search`` for a study the sampler searches, ``confirm`` for its companion of repeated seeds."""
STUDY_SEARCH_STUDY = "regsweep:search_study"
"""In a confirmation study: the name of the search study it confirms."""
STUDY_CONFIRM_PLAN = "regsweep:confirm_plan"
"""In a confirmation study: the arms (finalists and baselines) and how each was chosen."""
STUDY_CONFIRM_SEEDS = "regsweep:confirm_seeds"
"""In a confirmation study: the seeds every arm runs on."""

CONFIRM_SUFFIX = ".confirm"


def confirm_study_name(search_study: str) -> str:
    """The companion study that holds the confirmation runs of ``search_study``.

    Example:
        >>> confirm_study_name("regsweep-default")
        'regsweep-default.confirm'
    """
    return search_study + CONFIRM_SUFFIX


def search_study_name(name: str) -> str:
    """The search study of a confirmation study name (the name itself otherwise)."""
    return name[: -len(CONFIRM_SUFFIX)] if name.endswith(CONFIRM_SUFFIX) else name


# --------------------------------------------------------------------------- trial attributes

TRIAL_OWNER = "regsweep:owner"
"""``{host, boot, pid, start}`` of the process that runs the trial (set when it is asked)."""
TRIAL_END = "regsweep:end"
"""``{state, values}``: how the trial ends, stored with its record before its state is set, so a
trial whose process died after storing its record is finished from it, not thrown away."""
TRIAL_FAMILY = "family"
"""The regularizer family the trial picked (``regularizer`` group option; ``none`` without one)."""
TRIAL_CONFIRM = "confirm"
"""In a confirmation study: ``{arm, label, family, role, seed, source_trial}`` (and, for a
dose-response run, ``dose``: ``{key, strength, finalist}``)."""
TRIAL_AUDIT = "audit"
"""``{would_prune_at}``: the pruner would have stopped this search trial after that epoch, but
it was audited (``hydra.sweeper.pruner.audit``) and ran to the end."""

CURVE_KEYS = (
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "lr",
    "weight_l1",
    "weight_l2",
    "sparsity",
    "sparsity_abs",
    "dead_units",
    "grad_norm",
    "epoch_seconds",
)

FINAL_KEYS = (
    "val_acc",
    "val_loss",
    "train_acc",
    "train_loss",
    "gap_acc",
    "gap_loss",
    "test_acc",
    "test_loss",
    "sparsity",
    "sparsity_abs",
    "dead_units",
    "weight_l1",
    "weight_l2",
)
"""Metrics of the model that training produced (the last epoch's weights, or early stopping's
restored ones): what a trial's value and every comparison use."""

BEST_EPOCH_KEYS = (
    "best_epoch_val_acc",
    "best_epoch_val_loss",
    "best_epoch_train_acc",
    "best_epoch_train_loss",
    "best_epoch_gap_acc",
    "best_epoch_gap_loss",
)
"""Secondary, chosen with hindsight: the metrics at ``best_epoch``, the epoch with the best
validation value. Never a trial's value; kept to show what hindsight would pick."""


class StopReason(str, enum.Enum):
    """Why a trial stopped: a record's ``stop_reason`` (docs/trial-record.md). A member of this
    enum is the string it names (``StopReason.PRUNED == "pruned"``, with that string's hash,
    text and JSON), so records written before the enum read the same."""

    COMPLETED = "completed"
    PRUNED = "pruned"
    EARLY_STOPPED = "early_stopped"
    DIVERGED = "diverged"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    OVER_BUDGET = "over_budget"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def __hash__(self) -> int:
        return str.__hash__(self)


STOP_REASONS = tuple(r.value for r in StopReason)

# Trials that ended for reasons outside the experiment: they neither count towards the
# study's budget nor appear in result tables.
NOT_BUDGETED = (StopReason.INTERRUPTED.value, StopReason.OVER_BUDGET.value)


# --------------------------------------------------------------------------- objectives


@dataclass(frozen=True)
class Objective:
    """A metric a study can optimize: its record key, its natural direction, its words."""

    name: str
    direction: Literal["maximize", "minimize"]
    label: str

    @property
    def key(self) -> str:
        """The record attribute holding its value for the final model (same as the name)."""
        return self.name


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("val_acc", "maximize", "validation accuracy"),
        Objective("val_loss", "minimize", "validation loss"),
        Objective("gap_acc", "minimize", "gap: train − validation accuracy"),
        Objective("gap_loss", "minimize", "gap: validation − train loss"),
        Objective("sparsity", "maximize", "weight sparsity"),
    )
}
"""Every objective, by name; the only list of them (config checks, sweeper and analysis read it)."""


COLLAPSE_MARGIN = 0.1


def collapsed(val_acc: float, chance_acc: float) -> bool:
    """Whether a model is at chance level: its validation accuracy is less than 10% of the way
    from always answering the commonest class (``chance_acc``) to perfect.

    Where other runs of the study learned, such a network collapsed: its weights say nothing
    about sparsity (they are all near zero or dead), so the analysis keeps it out of sparsity
    conclusions. Where no run learned (random labels), chance is the data's, not a collapse.

    Example:
        >>> collapsed(0.12, 0.1), collapsed(0.9, 0.1)
        (True, False)
    """
    return val_acc < chance_acc + COLLAPSE_MARGIN * (1.0 - chance_acc)


_PLAIN = frozenset({float, int, str, bool, type(None)})


def plain_copy(value: Any) -> Any:
    """A deep copy of plain stored data (dicts, lists and scalars, as a config or a trial's
    attributes are stored), ~4× as fast as ``copy.deepcopy``, which keeps a memo and looks up
    how to copy every value (48 → 11 µs a job config). Anything else is deep-copied.

    Example:
        >>> a = {"model": {"hidden": [64, 64]}}
        >>> b = plain_copy(a)
        >>> b["model"]["hidden"].append(8); a
        {'model': {'hidden': [64, 64]}}
    """
    kind = type(value)
    if kind is dict:
        return {k: plain_copy(v) for k, v in value.items()}
    if kind is list:
        return [plain_copy(v) for v in value]
    if kind in _PLAIN:
        return value
    return copy.deepcopy(value)


def json_safe(value: Any) -> Any:
    """JSON-storable: non-finite floats become null (RFC 8259 has no NaN or Infinity; a
    diverged run's losses are stored so); tuples become lists; mapping keys become strings."""
    kind = type(value)
    if kind in _PLAIN:  # most of a record: checked by type, not through isinstance's ABCs
        return value if kind is not float or math.isfinite(value) else None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if all(type(v) is float for v in value):  # a curve: no call per point
            return [v if math.isfinite(v) else None for v in value]
        return [json_safe(v) for v in value]
    return value


def record_json(record: Mapping[str, Any], *, indent: int | None = None) -> str:
    """A trial's record as its JSON file holds it: strict JSON, since RFC 8259 has no NaN or
    Infinity and jq, JavaScript and most other readers refuse them. A non-finite number (a
    diverged run's losses) is null there, as the study stores it; anything json cannot
    write is written as its ``str``.

    Example:
        >>> record_json({"val_loss": float("nan"), "curves": {"val_loss": [0.5, float("inf")]}})
        '{"val_loss": null, "curves": {"val_loss": [0.5, null]}}'
    """
    try:  # json's C encoder, in one pass, for the many records without a non-finite number
        return json.dumps(record, indent=indent, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(json_safe(record), indent=indent, default=str, allow_nan=False)
