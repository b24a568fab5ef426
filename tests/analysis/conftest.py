"""Fixtures: the controlled study (see analysis_studies.py for its trials)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.analysis.analysis_studies import controlled_trials, write_study


@pytest.fixture(scope="session")
def controlled_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file holding the controlled study (built once per session; read only)."""
    path = tmp_path_factory.mktemp("controlled") / "studies.db"
    write_study(path, controlled_trials())
    return path


@pytest.fixture(scope="session")
def controlled_frames(controlled_db: Path) -> tuple[Any, Any]:
    """(trials, curves) DataFrames of the controlled study."""
    from analysis import load_curves, load_trials

    return load_trials(controlled_db), load_curves(controlled_db)
