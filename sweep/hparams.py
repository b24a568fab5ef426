"""The effective hyperparameters a trial records (``hparams``), with their names in words.

The only list of them: the job writes them, the sweeper builds baselines from them and the
analysis labels figures with them. Nothing here imports torch, Optuna or Hydra.
"""

from __future__ import annotations

from dataclasses import dataclass

from .regularizers import STRENGTHS, family_strength

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


_OTHERS = (
    HParam("l1_ratio", "elastic-net L1 ratio"),
    HParam("lr", "learning rate", log=True),
    HParam("momentum", "momentum"),
    HParam("batch_size", "batch size", log=True),
)

HPARAMS: dict[str, HParam] = {
    **{
        s.key: HParam(s.key, s.label, strength=s.key != "dropout", log=s.log)
        for s in STRENGTHS.values()
    },
    **{h.key: h for h in _OTHERS},
}
"""Every recorded hyperparameter: the registry's strengths (:mod:`sweep.regularizers`; dropout p
is recorded but drawn in its own figure, not the gap-vs-λ one) and the other settings."""

STRENGTH_KEYS = tuple(k for k, h in HPARAMS.items() if h.strength)
"""The λs: ``l1``, ``l2``, ``elastic``, ``weight_decay``, ``clip``, ``patience``."""

FAMILY_STRENGTH = {
    family: s.key
    for family in {*(s.family for s in STRENGTHS.values() if s.family), "l2_dropout"}
    if (s := family_strength(family)) is not None
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
