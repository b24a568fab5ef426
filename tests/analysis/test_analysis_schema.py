"""The reader's names agree with the writer's (sweep/record.py) when that module exists."""

from __future__ import annotations

import pytest

from analysis import _schema


def test_names_agree_with_sweep_record() -> None:
    record = pytest.importorskip("sweep.record")
    shared = [n for n in _schema.__all__ if hasattr(record, n)]
    assert "STUDY_METRIC" in shared and "CURVE_KEYS" in shared
    for name in shared:
        assert getattr(record, name) == getattr(_schema, name), name
