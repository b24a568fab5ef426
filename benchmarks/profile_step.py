"""Where a population step's time goes: ``python -m benchmarks.profile_step [K] [EPOCHS]``.

Builds the default study's digits MLP population of K members (default 128) as
:func:`sweep.run.run_population` would, with the threads and heap settings the product uses,
trains 2 warm-up epochs, then profiles EPOCHS (default 3) epochs of the training pass and the
measurement with ``torch.profiler`` and prints the operators (with their input shapes) by
their own CPU time.
"""

from __future__ import annotations

import dataclasses
import sys

import torch
from torch.profiler import ProfilerActivity, profile

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


def main(argv: list[str]) -> None:
    k = int(argv[0]) if argv else 128
    epochs = int(argv[1]) if len(argv) > 1 else 3
    keep_freed_pages()
    cpu = torch.device("cpu")
    cfg = AppConfig()
    splits = load_splits(cfg.data, seed=cfg.trainer.seed, device=cpu)
    arch = Arch("mlp", splits.x_train.shape[1], splits.n_classes, tuple(cfg.model.hidden))
    macs = step_macs(arch, k, cfg.trainer.batch_size)
    threads = auto_threads(cores=available_cores(), workers=1, macs=macs)
    torch.set_num_threads(threads)
    settings = [dataclasses.replace(member_settings(cfg), seed=i) for i in range(k)]
    example = activation_bytes(build_net(arch, [0], cpu), splits.x_train[:8])[1]
    shared = Shared(1, cfg.trainer.batch_size, optimizer=cfg.optimizer.name, example_bytes=example)
    net = build_net(arch, [s.seed for s in settings], cpu)
    pop = Population(net, StackedSplits.of([splits], [0] * k), shared, settings)
    lr = torch.full((k,), settings[0].lr)
    for _ in range(2):
        pop.train_epoch(lr).tolist()
        pop.measure().tolist()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(epochs):
            pop.train_epoch(lr).tolist()
            pop.measure().tolist()
    print(f"K={k}, {threads} thread(s), {epochs} epochs: train_epoch + measure")
    table = prof.key_averages(group_by_input_shape=True)
    print(table.table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main(sys.argv[1:])
