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
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()  # fmt: skip
    before, after, first, again, young = out
    # nothing of the sweep's is frozen before (Python 3.12 starts with a few hundred of its
    # own objects in the permanent generation; 3.11 and 3.13 with none)
    assert int(before) < 5_000
    assert int(after) - int(before) > 50_000  # torch, Hydra, Optuna, SQLAlchemy: all frozen
    assert (first, again, young) == ("True", "False", "True")
