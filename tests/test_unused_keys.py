"""A setting the chosen option does not read is refused, before any work: never ignored."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sweep.config import (
    AppConfig,
    ConfigError,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    SchedulerConfig,
    validate,
)
from tests.helpers import compose_config, run_cli, sweep_args

# each silently ignored setting the issue found, as a user would type it
IGNORED = [
    (["data.n_samples=500"], "data.n_samples=500: allowed its default (1000) unless data=noise"),
    (["data.n_features=4"], "data.n_features=4"),
    (["data.n_classes=3"], "data.n_classes=3"),
    (["data.label=y"], "data.label='y': allowed its default ('label') unless data=files"),
    (
        ["scheduler=cosine", "scheduler.step_size=5"],
        "scheduler.step_size=5: allowed its default (10) unless scheduler=step",
    ),
    (["scheduler=cosine", "scheduler.gamma=0.5"], "scheduler.gamma=0.5"),
    (
        ["regularizer.l2=0.01"],
        "regularizer.l2=0.01: allowed its off value (0.0) with regularizer=none",
    ),
]


@pytest.mark.parametrize(("args", "said"), IGNORED)
def test_the_composed_config_refuses_a_setting_its_option_does_not_read(
    args: list[str], said: str
) -> None:
    """Each as Hydra composes it from the command line (``python -m sweep`` validates exactly
    this before loading any data)."""
    app = OmegaConf.to_object(compose_config(args))
    assert isinstance(app, AppConfig)
    with pytest.raises(ConfigError) as info:
        validate(app)
    assert any(p.startswith(said) for p in info.value.problems), info.value.problems


def test_a_run_refuses_it_with_exit_2_before_training(tmp_path: Path) -> None:
    proc = run_cli(["scheduler=cosine", "scheduler.gamma=0.5", "trainer.epochs=1"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout[-1500:] + proc.stderr[-1500:]
    assert "scheduler.gamma=0.5: allowed its default (0.1) unless scheduler=step" in (
        proc.stdout + proc.stderr
    )
    assert not list(tmp_path.rglob("metrics.json"))  # nothing trained


def test_a_sweep_refuses_it_before_a_study_exists(tmp_path: Path) -> None:
    proc = run_cli(
        sweep_args("ignored", 2, "scheduler=cosine", "scheduler.gamma=0.5"), cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "scheduler.gamma=0.5" in proc.stdout + proc.stderr
    assert not (tmp_path / "outputs" / "studies.db").exists()


def _only_fields(section: type) -> list[tuple[str, str, list[str]]]:
    out = []
    for f in dataclasses.fields(section):
        only = f.metadata.get("only")
        if only:
            out.append((f.name, only.split("=")[0].split(".")[0], only.split("=")[1].split("|")))
    return out


GROUP_SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "optimizer": OptimizerConfig,
    "scheduler": SchedulerConfig,
}
ONLY = [
    (group, name, options)
    for group, section in GROUP_SECTIONS.items()
    for name, _, options in _only_fields(section)
]
OTHER = {"data": "digits", "model": "mlp", "optimizer": "sgd", "scheduler": "none"}
CHANGED: dict[str, object] = {
    "n_samples": 70,
    "n_features": 3,
    "n_classes": 5,
    "path": "x.npz",
    "label": "y",
    "channels": [4],
    "kernel_size": 5,
    "pool": "avg",
    "pool_size": 3,
    "target": "m.Net",
    "kwargs": {"a": 1},
    "momentum": 0.5,
    "nesterov": True,
    "betas": [0.8, 0.9],
    "eps": 1e-6,
    "step_size": 3,
    "gamma": 0.5,
    "t_max": 4,
    "eta_min": 0.01,
}


def test_a_sweep_refuses_a_field_of_another_pruner_before_a_study_exists(tmp_path: Path) -> None:
    """``percentile`` under the median pruner, and the median's ``peers`` under wilcoxon, used
    to be accepted and ignored."""
    proc = run_cli(sweep_args("ignored", 2, "hydra.sweeper.pruner.percentile=10"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout[-2000:]
    assert (
        "hydra.sweeper.pruner.percentile=10.0: not read by pruner.name=median; read by "
        "pruner.name=percentile"
    ) in proc.stderr
    proc = run_cli(
        sweep_args(
            "ignored", 2, "hydra.sweeper.pruner.name=wilcoxon", "hydra.sweeper.pruner.peers=false"
        ),
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert (
        "pruner.peers=False: not read by pruner.name=wilcoxon; read by pruner.name="
        "median|percentile" in proc.stderr
    )
    assert not (tmp_path / "outputs" / "studies.db").exists()


def test_every_option_specific_field_is_covered() -> None:
    assert {name for _, name, _ in ONLY} == set(CHANGED)
    assert len(ONLY) >= 19


@pytest.mark.parametrize(("group", "name", "options"), ONLY)
def test_every_group_refuses_a_field_its_option_does_not_read(
    group: str, name: str, options: list[str]
) -> None:
    """Every field that its metadata ties to some options of its group: set away from its
    default under another option, it is refused with the key, the value and who reads it; left
    at its default it is never an error."""
    cfg = AppConfig()
    section = getattr(cfg, group)
    other = OTHER[group] if OTHER[group] not in options else "adam"
    section.name = other
    validate(cfg)  # at its default: fine
    setattr(section, name, CHANGED[name])
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    text = "\n".join(info.value.problems)
    assert f"{group}.{name}=" in text
    assert all(f"{group}={o}" in text for o in options)  # who reads it
