"""Where a population step's time goes: ``python -m benchmarks.profile_step [K] [EPOCHS]``.

Builds the default study's digits MLP population of K members (default 128) as
:func:`sweep.run.run_population` would, with the threads and heap settings the product uses,
trains 2 warm-up epochs, then profiles EPOCHS (default 3) epochs of the training pass and the
measurement with ``torch.profiler`` and prints the operators (with their input shapes) by
their own CPU time.
"""

from __future__ import annotations

import sys

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks._peak import default_population


def main(argv: list[str]) -> None:
    k = int(argv[0]) if argv else 128
    epochs = int(argv[1]) if len(argv) > 1 else 3
    pop, lr, threads, _, _, _ = default_population(k, torch.device("cpu"))
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
