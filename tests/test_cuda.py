"""The CUDA path: populations trained on a GPU, against the same populations on the CPU and
against single runs on the GPU, a whole sweep on the GPU, and populations sized to its memory.

These need a CUDA device and are skipped without one (this project's CI has none); README's
"GPU" section says where and when they last ran.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from optuna.trial import TrialState

from sweep.config import AppConfig
from sweep.run import run, run_population
from sweep.sizing import FREE_SHARE, MemberCost, chunk_size, free_bytes
from tests.helpers import load_study, run_cli, sweep_args
from tests.test_train import MEMBERS, _same_curves, _tiny

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _members(device: str, dropout: float) -> list[AppConfig]:
    cfgs = [_tiny(0, model__dropout=dropout, trainer__epochs=4, **m) for m in MEMBERS]
    for c in cfgs:
        c.optimizer.momentum = c.optimizer.momentum if "optimizer__momentum" in str(c) else 0.9
        c.trainer.device = device
    return cfgs


def test_a_population_trains_on_the_gpu_as_on_the_cpu() -> None:
    """Five members with their own lr, momentum, penalties, clip, decay and seeds: on the GPU
    the same curves as on the CPU (up to the two devices' rounding, dropout off: the batch
    orders are drawn on the CPU on both)."""
    gpu = run_population(_members("cuda", 0.0))
    cpu = run_population(_members("cpu", 0.0))
    for g, c in zip(gpu, cpu, strict=True):
        assert g.summary["device"].startswith("cuda") and c.summary["device"] == "cpu"
        _same_curves(g.summary["curves"], c.summary["curves"], 1e-3)
        assert g.summary["test_acc"] == pytest.approx(c.summary["test_acc"], abs=1e-2)
    assert len({round(o.summary["val_loss"], 6) for o in gpu}) == len(gpu)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_a_member_on_the_gpu_equals_the_single_run_there(dropout: float) -> None:
    """A member and the single run with its config and seed, both on the GPU: the same curves,
    dropout on too (each member draws its masks from its own generator on the device)."""
    cfgs = _members("cuda", dropout)
    together = run_population(cfgs)
    for cfg, member in zip(cfgs, together, strict=True):
        alone = run(copy.deepcopy(cfg))
        _same_curves(member.summary["curves"], alone.summary["curves"], 1e-4)


def test_a_population_is_sized_to_the_gpus_free_memory() -> None:
    """The device's free memory bounds how many members train at once, and a population larger
    than its slots trains the rest as slots free up: every member ends all the same."""
    free = free_bytes(torch.device("cuda"))
    assert free is not None and free > 0
    gib = 1 << 30
    held = chunk_size(10**9, cost=MemberCost(gib, 0, 0), free=free, limit=None)
    assert held == max(1, int(FREE_SHARE * free) // gib) < 10**9
    cfgs = [
        _tiny(s, model__hidden=[1024, 1024], trainer__epochs=1, trainer__device="cuda")
        for s in range(3)
    ]
    for c in cfgs:
        c.trainer.max_population = 2  # two at a time: the third joins when a slot frees
    outcomes = run_population(cfgs)
    assert [o.summary["epochs_run"] for o in outcomes] == [1, 1, 1]


def test_a_sweep_trains_its_populations_on_the_gpu(tmp_path: Path) -> None:
    proc = run_cli(
        sweep_args(
            "gpu",
            16,
            "trainer.device=cuda",
            "hydra.sweeper.population=8",
            "optimizer.lr=tag(log, interval(0.01, 0.1))",
        ),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = load_study(tmp_path, "gpu").trials
    assert len(trials) == 16 and all(t.state == TrialState.COMPLETE for t in trials)
    assert all(str(t.user_attrs["device"]).startswith("cuda") for t in trials)
    assert all(t.user_attrs["population"]["size"] == 8 for t in trials)
