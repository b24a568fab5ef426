"""Names of what a study and its trials store (see docs/trial-record.md).

The sweeper and the job write these; ``analysis`` reads them. One place, so they cannot drift.
"""

from __future__ import annotations

__all__ = [
    "CURVE_KEYS",
    "NOT_BUDGETED",
    "STOP_REASONS",
    "STUDY_COMMAND",
    "STUDY_METRIC",
    "STUDY_N_TRIALS",
    "STUDY_OBJECTIVES",
    "STUDY_PRUNER",
    "STUDY_SEARCH_SPACE",
    "STUDY_VERSION",
]

STUDY_VERSION = "regsweep:version"
STUDY_COMMAND = "regsweep:command"
STUDY_SEARCH_SPACE = "regsweep:search_space"
STUDY_METRIC = "regsweep:metric"
STUDY_OBJECTIVES = "regsweep:objectives"
STUDY_PRUNER = "regsweep:pruner"
STUDY_N_TRIALS = "regsweep:n_trials"

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
    "grad_norm",
    "epoch_seconds",
)

STOP_REASONS = (
    "completed",
    "pruned",
    "early_stopped",
    "diverged",
    "failed",
    "interrupted",
    "over_budget",
)

# Trials that ended for reasons outside the experiment: they neither count towards the
# study's budget nor appear in result tables.
NOT_BUDGETED = ("interrupted", "over_budget")
