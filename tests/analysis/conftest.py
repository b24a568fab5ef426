"""Fixtures: the controlled study (see analysis_studies.py for its trials)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# tests/conftest.py puts tests/ on sys.path, where this folder (tests/analysis, no __init__)
# would shadow the real `analysis` package as a namespace package: put the repo root first.
_ROOT = str(Path(__file__).resolve().parents[2])
if getattr(sys.modules.get("analysis"), "__file__", "") is None:
    del sys.modules["analysis"]
sys.path.insert(0, _ROOT)
sys.path.insert(0, str(Path(__file__).resolve().parent))  # analysis_studies

import pytest  # noqa: E402
from analysis_studies import controlled_trials, write_study  # noqa: E402


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
