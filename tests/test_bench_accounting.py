"""The benchmarks' own accounting: FLOPs counted per epoch, and the parts a run may name."""

from __future__ import annotations

import pytest

from benchmarks import bench_population
from benchmarks._peak import epoch_flops


def test_epoch_flops_count_forward_backward_and_evaluation_by_hand() -> None:
    # digits MLP 64-64: weights 64·64 + 64·64 + 64·10 = 8832 multiply-adds per example
    got = epoch_flops([64, 64, 64, 10], n_train=1257, n_val=270)
    forward = 2 * 8832
    backward = 2 * 8832 + 2 * (64 * 64 + 64 * 10)  # no input gradient below the first layer
    assert got["train"] == 1257 * (forward + backward) == 1257 * 44800
    assert got["evaluate"] == (1257 + 270) * forward
    assert got["total"] == got["train"] + got["evaluate"]


def test_an_unknown_benchmark_part_is_refused_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(bench_population.PARTS_ENV, "peak,speed")
    with pytest.raises(
        ValueError,
        match=r"REGSWEEP_BENCH_PARTS=peak,speed: unknown part\(s\) "
        r"speed; allowed peak, populations",
    ):
        bench_population.run(quick=True)
