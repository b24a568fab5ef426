"""A sweep's job (``sweep.job``) in process: what it does per member-epoch besides training."""

from __future__ import annotations

import logging

import pytest

from sweep.job import _epoch_logger


def test_a_populations_epoch_lines_are_not_formatted_when_the_log_drops_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    row = {"epoch": 1.0, "train_loss": 0.5, "val_loss": 0.6, "train_acc": 0.8, "val_acc": 0.7}
    with caplog.at_level(logging.INFO, logger="sweep"):
        assert _epoch_logger(3, 20, alone=False) is None  # DEBUG lines: none made
        single = _epoch_logger(3, 20, alone=True)
        assert single is not None
        single(row)
    assert any("[trial 3]" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="sweep"):
        member = _epoch_logger(4, 20, alone=False)
        assert member is not None
        member(row)
    assert any("[trial 4]" in r.getMessage() and r.levelno == logging.DEBUG
               for r in caplog.records)  # fmt: skip
