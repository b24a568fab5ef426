"""Names a regsweep study stores (docs/trial-record.md): the writer's constants from
``sweep.record`` plus what only the reader needs (attribute types, families, strengths)."""

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

from sweep.record import (
    CURVE_KEYS,
    NOT_BUDGETED,
    STOP_REASONS,
    STUDY_COMMAND,
    STUDY_METRIC,
    STUDY_N_TRIALS,
    STUDY_PRUNER,
    STUDY_SEARCH_SPACE,
    STUDY_VERSION,
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
    "l2_dropout",
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
    "l2_dropout": "l2",
}
