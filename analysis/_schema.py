"""What the reader needs beyond the writer's names (docs/trial-record.md).

The names themselves come from ``sweep.record`` (attributes, objectives) and ``sweep.hparams``
(the recorded hyperparameters and their words); this module only adds how the analysis reads
them: the columns of a trial row and how a version-1 record maps onto version 2.
"""

from __future__ import annotations

import math

from sweep.hparams import HPARAMS
from sweep.record import BEST_EPOCH_KEYS, FINAL_KEYS

__all__ = [
    "BEST_EPOCH_COLUMNS",
    "HPARAM_KEYS",
    "METRIC_COLUMNS",
    "V1_BEST_EPOCH",
    "V1_CHANCE_ACC",
    "delta_range",
    "metric_range",
]

HPARAM_KEYS = tuple(HPARAMS)
"""The ``hparams`` keys, in ``sweep.hparams.HPARAMS`` order; each becomes an ``hp_<key>`` column."""

# Version 1 stored best-epoch figures under these names (and ``test_*`` at the best epoch).
V1_BEST_EPOCH = {
    "best_val_acc": "best_epoch_val_acc",
    "best_val_loss": "best_epoch_val_loss",
    "best_train_acc": "best_epoch_train_acc",
    "best_train_loss": "best_epoch_train_loss",
    "gap_acc_best": "best_epoch_gap_acc",
    "gap_loss_best": "best_epoch_gap_loss",
    "sparsity_best": "best_epoch_sparsity",
    "test_acc": "best_epoch_test_acc",
    "test_loss": "best_epoch_test_loss",
}

BEST_EPOCH_COLUMNS = (
    *BEST_EPOCH_KEYS,
    "best_epoch_sparsity",
    "best_epoch_test_acc",
    "best_epoch_test_loss",
)
"""Secondary, hindsight columns. The last three only version-1 records fill (v2 stores no
sparsity or test figures at the best epoch)."""

METRIC_COLUMNS = (*FINAL_KEYS, "chance_acc")
"""Float metrics of the final model (the trial's result) plus the chance level."""

V1_CHANCE_ACC = 0.1
"""Chance level assumed for version-1 records, which did not store one: the smallest plausible
for the 10-class datasets regsweep ships (digits, MNIST, CIFAR-10)."""


_RANGES = {
    **dict.fromkeys(
        ("val_acc", "train_acc", "test_acc", "sparsity", "sparsity_abs", "dead_units"), (0.0, 1.0)
    ),
    "gap_acc": (-1.0, 1.0),
    **dict.fromkeys(("val_loss", "train_loss", "test_loss"), (0.0, math.inf)),
}


def metric_range(metric: str) -> tuple[float, float]:
    """The values a final-model metric can take: an accuracy, a sparsity or the dead units'
    share lies in [0, 1], the accuracy gap in [−1, 1], a loss in [0, ∞); anything else is
    unbounded."""
    return _RANGES.get(metric, (-math.inf, math.inf))


def delta_range(metric: str) -> tuple[float, float]:
    """The values a difference of two runs' ``metric`` can take (Δ accuracy: [−1, 1])."""
    low, high = metric_range(metric)
    return low - high, high - low
