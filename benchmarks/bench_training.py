"""Per-epoch training time: our loop vs the notes' DataLoader loop and torchvision's pipeline.

Arms, timed whole epochs, interleaved, medians over rounds (issue "Core", section 5):

* ``ours``: the population core's training pass (``sweep.train``, one member) on the 60,000
  MNIST-format images loaded through :func:`sweep.data.load_splits` (device-resident, batched
  by a permutation, penalty gradients from :mod:`sweep.penalties`, no host sync per step).
* ``notes``: ``DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)`` over the SAME
  tensors, L1 summed in Python over ``model.parameters()``, ``loss.item()`` per step.
* ``torchvision``: ``datasets.MNIST(root, transform=Compose([ToTensor(), Normalize(.5, .5)]))``
  + ``DataLoader(batch_size=64, shuffle=True)`` on the same files (per-sample PIL decode).

Same model (MLP 784-256-10, ReLU, dropout 0.1), same initial weights, SGD lr 0.01, L1 λ=1e-4 over
every parameter in all arms, batch 64, CPU. Targets: notes/ours ≥ 1.2×, torchvision/ours ≥ 5×.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import ROOT, Target, interleaved, median, result

NAME = "training"
N_TRAIN = 60_000
N_TEST = 10_000
BATCH = 64
LR = 0.01
L1 = 1e-4
SEED = 0


def _formats() -> ModuleType:
    """``tests/formats.py`` (``tests`` is not a package), imported by path."""
    path = ROOT / "tests" / "formats.py"
    spec = importlib.util.spec_from_file_location("regsweep_tests_formats", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def mlp() -> nn.Sequential:
    """003's notes' model: 784-256-10, ReLU, dropout 0.1; the same seeded weights every call."""
    torch.manual_seed(SEED)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, 10)
    )


def ours_arm(x: torch.Tensor, y: torch.Tensor) -> Callable[[], object]:
    """One epoch of the population core's training pass (:mod:`sweep.population`), one member."""
    from sweep.data import Splits, StackedSplits
    from sweep.nets import Arch, StackedMLP
    from sweep.penalties import Penalty
    from sweep.population import Population
    from sweep.stack import MemberSettings, Shared

    empty = x[:0]
    splits = Splits(
        x_train=x,
        y_train=y,
        x_val=empty,
        y_val=y[:0],
        x_test=empty,
        y_test=y[:0],
        n_classes=10,
        input_shape=(784,),
        name="mnist",
    )
    data = StackedSplits.of([splits], [0])
    arch = Arch("mlp", n_features=784, n_classes=10, hidden=(256,))
    net = StackedMLP(arch, [SEED], x.device)
    # the notes penalize every parameter (biases too): so does this arm
    settings = MemberSettings(
        seed=SEED, lr=LR, dropout=0.1, penalty=Penalty(l1=L1), penalize_all=True
    )
    pop = Population(net, data, Shared(epochs=1, batch_size=BATCH), [settings])
    lr = torch.tensor([LR], device=x.device)

    def epoch() -> object:
        return pop.train_epoch(lr).tolist()  # the one host sync per epoch fit() also does

    return epoch


def _notes_epoch(model: nn.Module, opt: torch.optim.Optimizer, loader: Any) -> float:
    """The notes' loop, as written there (``.item()`` per step, L1 summed in Python)."""
    model.train()
    running = 0.0
    for xb, yb in loader:
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        l1 = sum(p.abs().sum() for p in model.parameters())
        loss = loss + L1 * l1
        loss.backward()
        opt.step()
        running += loss.item()
    return running


def notes_arm(x: torch.Tensor, y: torch.Tensor) -> Callable[[], object]:
    """The notes' DataLoader(TensorDataset) loop over the same tensors."""
    from torch.utils.data import DataLoader, TensorDataset

    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    torch.manual_seed(SEED)
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    return lambda: _notes_epoch(model, opt, loader)


def torchvision_arm(root: str) -> Callable[[], object]:
    """torchvision's per-sample pipeline on the MNIST files, in the notes' loop."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    ds = datasets.MNIST(root, train=True, transform=tf, download=False)
    assert len(ds) == N_TRAIN, len(ds)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    torch.manual_seed(SEED)
    loader = DataLoader(ds, batch_size=BATCH, shuffle=True)
    return lambda: _notes_epoch(model, opt, loader)


def load_ours(root: str) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The same 60,000 training images through ``load_splits`` (train + val carved from them)."""
    from sweep.config import DataConfig
    from sweep.data import load_splits

    t0 = time.perf_counter()
    cfg = DataConfig(name="mnist", root=root, normalize="symmetric", val_fraction=0.0833333)
    s = load_splits(cfg, device=torch.device("cpu"))
    x = torch.cat([s.x_train, s.x_val])
    y = torch.cat([s.y_train, s.y_val])
    seconds = time.perf_counter() - t0
    assert x.shape == (N_TRAIN, 784), x.shape
    return x, y, seconds


def run(*, quick: bool = False, rounds: int | None = None) -> dict[str, Any]:
    """Write the files, build the three arms, time them interleaved; return the JSON record."""
    rounds = rounds or (2 if quick else 5)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="regsweep-bench-") as root:
        t0 = time.perf_counter()
        _formats().write_mnist(root, N_TRAIN, N_TEST, seed=SEED)
        write_s = time.perf_counter() - t0
        x, y, load_s = load_ours(root)
        print(f"  wrote {N_TRAIN:,} MNIST-format images ({write_s:.1f}s); loaded in {load_s:.2f}s")
        arms = {
            "ours": ours_arm(x, y),
            "notes": notes_arm(x, y),
            "torchvision": torchvision_arm(root),
        }
        times = interleaved(arms, rounds=rounds, warmup=1)
    # One torch thread: CPU time is immune to other processes' load; else wall time.
    clock = "cpu" if torch.get_num_threads() == 1 else "wall"
    t = {arm: v[clock] for arm, v in times.items()}
    ratio_notes = [n / o for n, o in zip(t["notes"], t["ours"], strict=True)]
    ratio_tv = [v / o for v, o in zip(t["torchvision"], t["ours"], strict=True)]
    targets = [
        Target("(a) notes loop (DataLoader+TensorDataset) / ours", median(ratio_notes), ">=", 1.2),
        Target("(b) torchvision MNIST per-sample pipeline / ours", median(ratio_tv), ">=", 5.0),
    ]
    measurements = {
        "clock": clock,
        "torch_threads": torch.get_num_threads(),
        "epoch_seconds": times,
        "median_epoch_seconds": {
            arm: {c: median(v[c]) for c in ("wall", "cpu")} for arm, v in times.items()
        },
        "per_round_ratio": {"notes/ours": ratio_notes, "torchvision/ours": ratio_tv},
        "wall_ratio_of_medians": {
            "notes/ours": median(times["notes"]["wall"]) / median(times["ours"]["wall"]),
            "torchvision/ours": median(times["torchvision"]["wall"])
            / median(times["ours"]["wall"]),
        },
        "steps_per_epoch": -(-N_TRAIN // BATCH),
        "setup_seconds": {"write_mnist": write_s, "load_splits": load_s},
        "settings": {
            "n_train": N_TRAIN,
            "batch_size": BATCH,
            "lr": LR,
            "l1": L1,
            "optimizer": "SGD",
            "model": "MLP 784-256-10 ReLU dropout 0.1",
            "rounds": rounds,
            "warmup_epochs": 1,
            "timed": "whole epochs",
            "num_workers": 0,
        },
    }
    return result(
        NAME,
        command="python -m benchmarks training" + (" --quick" if quick else ""),
        targets=targets,
        measurements=measurements,
        method=(
            "Whole epochs of each arm, one warm-up epoch each, then `rounds` rounds with the arm "
            "order rotated; the ratio is the median over rounds of baseline/ours within a round, "
            "on process CPU time when torch uses one thread (immune to other processes' load), "
            "else on wall time. Wall times are recorded too."
        ),
        quick=quick,
        seconds=time.perf_counter() - started,
    )


def main() -> dict[str, Any]:
    return run()
