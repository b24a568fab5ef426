"""Chance level: a model at chance has collapsed only where its study shows the data can be learned.

A run's record says whether its final model is at chance level on validation (``collapsed`` in
docs/trial-record.md; ``at_chance`` here). Where other runs of the study learned, such a run
collapsed: its weights are dead or wiped, and it is left out of sparsity figures and flagged in
verdicts. Where no run learned, the unregularized ones included (000's notes: random labels),
chance is what the data allows, not a collapse: the weights still show what each regularizer
did, and the answer says that accuracy cannot tell them apart.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["mark_collapse", "nothing_learned"]


def _flags(values: pd.Series) -> pd.Series:
    numeric = values.astype(float)
    return numeric.eq(1.0).astype("boolean").mask(numeric.isna())


def nothing_learned(frame: pd.DataFrame) -> bool:
    """Whether every completed, counted run of ``frame`` (at least one) ended at chance."""
    if frame.empty:
        return False
    done = frame[(frame["state"] == "COMPLETE") & frame["counted"].astype(bool)]
    flags = _flags(done["at_chance"]).dropna()
    return bool(len(flags)) and bool(flags.all())


def mark_collapse(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (trials or confirmation runs of one study) with ``at_chance`` as a nullable
    boolean and ``collapsed`` (made here) = ``at_chance`` unless :func:`nothing_learned`, then
    False."""
    at_chance = _flags(frame["at_chance"])
    out = frame.assign(at_chance=at_chance)
    collapsed = at_chance & False if nothing_learned(out) else at_chance
    return out.assign(collapsed=collapsed)
