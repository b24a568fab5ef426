"""The reader's extra names agree with what the job writes."""

from __future__ import annotations

from analysis import _schema
from sweep.config import AppConfig
from sweep.run import effective_hparams


def test_hparam_keys_are_the_ones_a_run_stores() -> None:
    assert set(_schema.HPARAM_KEYS) <= set(effective_hparams(AppConfig()))


def test_families_are_the_regularizer_options() -> None:
    from tests.helpers import CONF

    options = {p.stem for p in (CONF / "regularizer").glob("*.yaml")}
    assert set(_schema.FAMILIES) == options
