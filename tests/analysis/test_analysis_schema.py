"""The reader takes its names from the writer (sweep.record, sweep.hparams)."""

from __future__ import annotations

from analysis import _schema
from sweep.config import AppConfig
from sweep.hparams import HPARAMS
from sweep.record import BEST_EPOCH_KEYS, FINAL_KEYS
from sweep.run import effective_hparams


def test_hparam_keys_are_the_ones_a_run_stores() -> None:
    assert tuple(HPARAMS) == _schema.HPARAM_KEYS
    assert set(_schema.HPARAM_KEYS) == set(effective_hparams(AppConfig()))


def test_columns_come_from_the_record() -> None:
    assert set(FINAL_KEYS) <= set(_schema.METRIC_COLUMNS)
    assert set(BEST_EPOCH_KEYS) <= set(_schema.BEST_EPOCH_COLUMNS)
    assert set(_schema.V1_BEST_EPOCH.values()) <= set(_schema.BEST_EPOCH_COLUMNS)
