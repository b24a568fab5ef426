"""Shared fixtures (helpers live in tests/helpers.py, importable as ``tests.helpers``)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sweep.config import AppConfig
from tests.helpers import compose_config, run_cli

__all__ = ["compose_config", "run_cli"]


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tests train tiny models: a second intra-op thread only adds contention on a shared machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def app_config() -> Callable[..., AppConfig]:
    """Compose + convert to the typed config (no range checks: tests call validate themselves)."""

    def make(*overrides: str) -> AppConfig:
        obj = OmegaConf.to_object(compose_config(overrides))
        assert isinstance(obj, AppConfig)
        return obj

    return make


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli("trainer.epochs=2", ...)`` runs the real CLI with ``tmp_path`` as working directory."""

    def call(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return run_cli(args, cwd=tmp_path, **kwargs)  # type: ignore[arg-type]

    return call
