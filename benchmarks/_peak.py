"""How close the population step comes to the machine: its FLOP/s against a measured GEMM peak.

In a process of its own, with the threads the product picks for each K (``trainer.threads``
auto: :func:`sweep.threads.auto_threads` for one worker) and its heap settings
(:func:`sweep.heap.keep_freed_pages`):

- **GEMM peak**: the best single-precision ``torch.mm`` of square matrices (CPU: 512–2048, GPU:
  4096–8192) at each thread count used, 2n³ FLOPs per product;
- **the step**: the digits MLP 64-64 of the default study, K members built as
  :func:`sweep.run.run_population` builds them, one epoch = the training pass
  (:meth:`sweep.population.Population.train_epoch`) and the measurement of the train and
  validation splits (:meth:`~sweep.population.Population.measure`); the median of 5 timed
  epochs after 2 warm-up ones;
- **FLOPs** of the matrix products, counted from the layer widths: forward 2·in·out per example
  and layer; backward 2·in·out for the weight's gradient and, above the first layer, 2·in·out
  for the input's; evaluation one forward pass per example of both splits. Element-wise work
  (activations, losses, penalties, clipping, the optimizer) is not counted: it is what keeps a
  step from the GEMM peak, not part of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from . import ROOT, Target

CPU_KS = (1, 8, 32, 128)
GPU_KS = (1, 64, 256, 1024)
SHARE_AT = 128
SHARE_TARGET = 0.40


def epoch_flops(widths: Sequence[int], n_train: int, n_val: int) -> dict[str, int]:
    """FLOPs of one member's epoch of an MLP with layer ``widths`` (inputs first, classes last):
    training on ``n_train`` examples, then evaluating the train and validation splits.

    Example:
        >>> epoch_flops([4, 3, 2], n_train=10, n_val=5)
        {'train': 840, 'evaluate': 540, 'total': 1380}
    """
    layers = list(pairwise(widths))
    forward = 2 * sum(a * b for a, b in layers)
    backward = forward + 2 * sum(a * b for a, b in layers[1:])
    train = n_train * (forward + backward)
    evaluate = (n_train + n_val) * forward
    return {"train": train, "evaluate": evaluate, "total": train + evaluate}


def default_population(k: int, device: Any) -> tuple[Any, Any, int, list[int], int, int]:
    """The default study's digits MLP population of ``k`` members (seeds 0..k-1, one data
    split), built as :func:`sweep.run.run_population` builds it, torch's threads set as the
    product sets them for one worker. Returns the population, each member's learning rate
    ``(k,)``, the threads, the layer widths and the train and validation split sizes."""
    import dataclasses

    import torch

    from sweep.config import AppConfig
    from sweep.data import StackedSplits, load_splits
    from sweep.heap import keep_freed_pages
    from sweep.models import build_net
    from sweep.nets import Arch
    from sweep.population import Population
    from sweep.run import member_settings
    from sweep.sizing import activation_bytes
    from sweep.stack import Shared
    from sweep.threads import auto_threads, available_cores, step_macs

    keep_freed_pages()
    cfg = AppConfig()
    splits = load_splits(cfg.data, seed=cfg.trainer.seed, device=device)
    arch = Arch("mlp", splits.x_train.shape[1], splits.n_classes, tuple(cfg.model.hidden))
    threads = 1
    if device.type != "cuda":
        macs = step_macs(arch, k, cfg.trainer.batch_size)
        threads = auto_threads(cores=available_cores(), workers=1, macs=macs)
    torch.set_num_threads(threads)
    settings = [dataclasses.replace(member_settings(cfg), seed=i) for i in range(k)]
    example = 0.0
    if device.type == "cpu":
        example = activation_bytes(build_net(arch, [0], device), splits.x_train[:8])[1]
    shared = Shared(1, cfg.trainer.batch_size, optimizer=cfg.optimizer.name, example_bytes=example)
    net = build_net(arch, [s.seed for s in settings], device)
    pop = Population(net, StackedSplits.of([splits], [0] * k), shared, settings)
    lr = torch.full((k,), settings[0].lr, device=device)
    widths = [arch.n_features, *arch.hidden, arch.n_classes]
    return pop, lr, threads, widths, int(splits.x_train.shape[0]), int(splits.x_val.shape[0])


_PROBE = r"""import json, statistics, sys, time
import torch
from benchmarks._peak import default_population

device = torch.device(sys.argv[1])
ks = [int(k) for k in sys.argv[2].split(",")]

def sync():
    if device.type == "cuda":
        torch.cuda.synchronize()

def gemm(threads):
    torch.set_num_threads(threads)
    sizes = (4096, 8192) if device.type == "cuda" else (512, 1024, 2048)
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        c = torch.empty(n, n, device=device)
        for _ in range(3):
            torch.mm(a, b, out=c)
        sync()
        for _ in range(10):
            t = time.perf_counter(); torch.mm(a, b, out=c); sync()
            best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best

peaks, rows = {}, {}
for k in ks:
    pop, lr, threads, widths, n_train, n_val = default_population(k, device)
    if threads not in peaks:
        peaks[threads] = gemm(threads)
        torch.set_num_threads(threads)
    times = []
    for i in range(7):
        sync(); t = time.perf_counter()
        pop.train_epoch(lr).tolist(); pop.measure().tolist()
        sync()
        if i >= 2:
            times.append(time.perf_counter() - t)
    rows[k] = {"threads": threads, "epoch_seconds": statistics.median(times)}
print(json.dumps({"peaks": peaks, "rows": rows, "widths": widths, "n_train": n_train,
                  "n_val": n_val,
                  "device_name": torch.cuda.get_device_name() if device.type == "cuda" else None}))
"""


def peak_share(
    *, quick: bool, gpu: bool, env: dict[str, str]
) -> tuple[list[Target], dict[str, Any]]:
    """The step's FLOP/s and share of the GEMM peak at each K (see the module's docstring)."""
    ks = GPU_KS if gpu else CPU_KS
    if quick and not gpu:
        ks = (1, 32, 128)
    device = "cuda" if gpu else "cpu"
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, device, ",".join(map(str, ks))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"peak probe exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    flops = epoch_flops(got["widths"], got["n_train"], got["n_val"])
    rows: dict[str, Any] = {}
    for k, row in got["rows"].items():
        peak = float(got["peaks"][str(row["threads"])])
        achieved = int(k) * flops["total"] / row["epoch_seconds"]
        rows[k] = {
            **row,
            "gflops": achieved / 1e9,
            "peak_gflops": peak / 1e9,
            "share_of_peak": achieved / peak,
            "member_epochs_per_s": int(k) / row["epoch_seconds"],
        }
        print(
            f"  peak K={int(k):>4}: {row['threads']} thread(s), epoch "
            f"{1000 * row['epoch_seconds']:.1f} ms, {achieved / 1e9:.1f} GFLOP/s of "
            f"{peak / 1e9:.1f} peak = {100 * achieved / peak:.1f}%",
            flush=True,
        )
    at = str(256 if gpu else SHARE_AT)
    targets = (
        []
        if gpu
        else [
            Target(
                f"population step at K={SHARE_AT}: share of this machine's GEMM peak, CPU",
                rows[at]["share_of_peak"],
                ">=",
                SHARE_TARGET,
            ),
        ]
    )
    threads_env = {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return targets, {
        "device": device,
        "device_name": got["device_name"],
        "flops_per_member_epoch": flops,
        "rows": rows,
        "peaks_gflops": {t: p / 1e9 for t, p in got["peaks"].items()},
        "runner_thread_env": threads_env,
    }
