"""A sweep's job (``sweep.job``) in process: what it does per member-epoch besides training."""

from __future__ import annotations

import logging
from pathlib import Path

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
    assert any("[trial 4]" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


def test_a_jobs_files_are_on_disk_when_it_waits_and_a_failed_one_fails_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sweep.job import _Files

    files = _Files()
    texts = {tmp_path / f"trial_{n}.json": f'{{"trial": {n}}}' for n in range(40)}
    for path, text in texts.items():
        files.write(path, text)
    bad = tmp_path / "missing" / "trial_99.json"  # its folder does not exist
    files.write(bad, "{}")
    with caplog.at_level(logging.ERROR, logger="sweep"):
        files.wait()  # raises nothing
    assert all(path.read_text() == text for path, text in texts.items())
    assert not bad.exists()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith(f"could not write {bad}: ")
    assert "No such file" in errors[0]
    files.write(tmp_path / "again.json", "1")  # usable again after a wait
    files.wait()
    assert (tmp_path / "again.json").read_text() == "1"
