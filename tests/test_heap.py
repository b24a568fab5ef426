"""``sweep.heap``: a sweep's process freezes what it built before training, once (in a process of
its own: freezing the test worker's heap would change every later test)."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

_PROBE = """
import gc
from sweep.heap import freeze_heap
import sweep.job, hydra_plugins.regsweep_sweeper._runner  # a sweep's imports
before = gc.get_freeze_count()
first, again = freeze_heap(), freeze_heap()
kept = [[]]
kept[0].append(kept)  # a cycle made after the freeze is still the collector's to walk
print(before, gc.get_freeze_count(), first, again, len(gc.get_objects(generation=0)) > 0)
"""


def test_the_heap_is_frozen_once_with_everything_built_before() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    before, after, first, again, young = out
    # nothing of the sweep's is frozen before (Python 3.12 starts with a few hundred of its
    # own objects in the permanent generation; 3.11 and 3.13 with none)
    assert int(before) < 5_000
    assert int(after) - int(before) > 50_000  # torch, Hydra, Optuna, SQLAlchemy: all frozen
    assert (first, again, young) == ("True", "False", "True")


_FAULTS = """
import resource, sys, torch
torch.set_num_threads(1)
from sweep.heap import keep_freed_pages
kept = keep_freed_pages() if sys.argv[1] == "keep" else None
again = keep_freed_pages() if kept is not None else None
k, n = 128, 64
w = [torch.randn(k, n, n, requires_grad=True) for _ in range(3)]
x = torch.randn(k, n, n)

def step():
    h = x
    for p in w:
        h = torch.relu(torch.bmm(h, p))
    torch.autograd.grad(h.sum(), w)

for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, kept, again)
"""


def _faults(mode: str) -> list[str]:
    return subprocess.run(
        [sys.executable, "-c", _FAULTS, mode], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()


def test_freed_step_tensors_are_reused_instead_of_faulted_in_again() -> None:
    """20 steps of a 3-layer stack at K = 128 (2 MiB tensors), after 3 that let the heap grow:
    glibc's defaults hand each freed tensor back to the kernel and fault it in again the next
    step; with ``keep_freed_pages`` the steps reuse the pages (once per process)."""
    default, kept = _faults("default"), _faults("keep")
    assert default[1:] == ["None", "None"] and kept[1:] == ["True", "False"]
    assert int(default[0]) > 5_000  # ~half a 2 MiB tensor's 512 pages per op, every step
    # measured after 3 warm-up steps: 500–2 000 against 5 500–17 200 (the defaults' count moves
    # with glibc's dynamic thresholds): fewer, and under half a 2 MiB tensor's pages per step
    assert int(kept[0]) < int(default[0])
    assert int(kept[0]) <= 20 * 256
