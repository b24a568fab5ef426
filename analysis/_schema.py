"""Names a regsweep study stores, as written in docs/trial-record.md.

``sweep/record.py`` did not exist when this reader was written, so the names the reader needs
are defined here; ``tests/analysis/test_schema.py`` checks they agree with ``sweep.record``
whenever that module is importable.
"""

from __future__ import annotations

__all__ = [
    "CURVE_KEYS",
    "FAMILIES",
    "FAMILY_STRENGTH",
    "HPARAM_KEYS",
    "NOT_BUDGETED",
    "STOP_REASONS",
    "STUDY_COMMAND",
    "STUDY_METRIC",
    "STUDY_N_TRIALS",
    "STUDY_PRUNER",
    "STUDY_SEARCH_SPACE",
    "STUDY_VERSION",
    "TRIAL_FLOAT_ATTRS",
    "TRIAL_INT_ATTRS",
]

# Study user attributes.
STUDY_VERSION = "regsweep:version"
STUDY_COMMAND = "regsweep:command"
STUDY_SEARCH_SPACE = "regsweep:search_space"
STUDY_METRIC = "regsweep:metric"
STUDY_PRUNER = "regsweep:pruner"
STUDY_N_TRIALS = "regsweep:n_trials"

# Trial user attribute ``curves``: one list per key, one entry per epoch run.
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

# Scalar trial user attributes.
TRIAL_FLOAT_ATTRS = (
    "best_val_acc",
    "best_val_loss",
    "best_train_acc",
    "best_train_loss",
    "test_acc",
    "test_loss",
    "gap_acc_best",
    "gap_loss_best",
    "gap_acc_last",
    "gap_loss_last",
    "sparsity_best",
    "run_seconds",
)
TRIAL_INT_ATTRS = ("best_epoch", "epochs_run", "epochs_max")

STOP_REASONS = (
    "completed",
    "pruned",
    "early_stopped",
    "diverged",
    "failed",
    "interrupted",
    "over_budget",
)
# Trials that ended for reasons outside the experiment: left out of result tables.
NOT_BUDGETED = ("interrupted", "over_budget")

# ``hparams``: effective strengths of the trial.
HPARAM_KEYS = (
    "l1",
    "l2",
    "elastic",
    "l1_ratio",
    "dropout",
    "weight_decay",
    "clip",
    "lr",
    "batch_size",
)

FAMILIES = (
    "none",
    "l1",
    "l2",
    "elastic_net",
    "dropout",
    "weight_decay",
    "clip",
    "early_stop",
    "cocktail",
)

# The ``hparams`` key that is a family's own strength (its "λ").
FAMILY_STRENGTH = {
    "l1": "l1",
    "l2": "l2",
    "elastic_net": "elastic",
    "weight_decay": "weight_decay",
    "clip": "clip",
    "dropout": "dropout",
}
