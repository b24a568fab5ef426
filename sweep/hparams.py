"""The effective hyperparameters a trial records (``hparams``), with their names in words.

The only list of them: the job writes them, the sweeper builds baselines from them and the
analysis labels figures with them. Nothing here imports torch, Optuna or Hydra.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FAMILY_STRENGTH",
    "HPARAMS",
    "STRENGTH_KEYS",
    "HParam",
    "hparam_label",
]


@dataclass(frozen=True)
class HParam:
    """One recorded hyperparameter.

    Attributes:
        key: Its key in the trial's ``hparams``.
        label: What it is, in words, for axes and tables (``"L1 λ"``).
        strength: A regularization strength drawn in the gap-vs-λ figure.
        log: Naturally read on a log scale.
    """

    key: str
    label: str
    strength: bool = False
    log: bool = False


HPARAMS: dict[str, HParam] = {
    h.key: h
    for h in (
        HParam("l1", "L1 λ", strength=True, log=True),
        HParam("l2", "L2 λ", strength=True, log=True),
        HParam("elastic", "elastic-net λ", strength=True, log=True),
        HParam("l1_ratio", "elastic-net L1 ratio"),
        HParam("dropout", "dropout p"),
        HParam("weight_decay", "weight decay", strength=True, log=True),
        HParam("clip", "gradient clip norm", strength=True, log=True),
        HParam("lr", "learning rate", log=True),
        HParam("momentum", "momentum"),
        HParam("batch_size", "batch size", log=True),
    )
}

STRENGTH_KEYS = tuple(k for k, h in HPARAMS.items() if h.strength)
"""The λs: ``l1``, ``l2``, ``elastic``, ``weight_decay``, ``clip``."""

FAMILY_STRENGTH = {
    "l1": "l1",
    "l2": "l2",
    "elastic_net": "elastic",
    "weight_decay": "weight_decay",
    "clip": "clip",
    "dropout": "dropout",
    "l2_dropout": "l2",
}
"""The ``hparams`` key that is a regularizer family's own strength (its "λ")."""


def hparam_label(key: str) -> str:
    """The words for an ``hparams`` key or a searched parameter path.

    Example:
        >>> hparam_label("l1"), hparam_label("regularizer.dropout"), hparam_label("optimizer.lr")
        ('L1 λ', 'dropout p', 'learning rate')
    """
    known = HPARAMS.get(key) or HPARAMS.get(key.rsplit(".", 1)[-1])
    return known.label if known is not None else key
