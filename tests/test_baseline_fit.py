"""The default study's baseline is a well-fitted network, not an under-trained one."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from sweep.data._prepare import split_indices
from tests.helpers import run_cli

SEEDS = (1, 2, 3)  # the default study's first confirmation seeds


def _plain_mlp_test_accuracy(seed: int) -> float:
    """scikit-learn's MLPClassifier with its defaults (100 ReLU units, Adam, α = 1e-4, up to 200
    epochs) on regsweep's split of digits for ``seed``, standardized as the default data is."""
    x, y = load_digits(return_X_y=True)
    train, _, test = (i.numpy() for i in split_indices(len(y), val_fraction=0.15,
                                                       test_fraction=0.15, split_seed=0,
                                                       seed=seed))  # fmt: skip
    scale = StandardScaler().fit(x[train])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(random_state=seed).fit(scale.transform(x[train]), y[train])
    return float(model.score(scale.transform(x[test]), y[test]))


def test_the_default_baseline_is_at_least_as_accurate_as_a_default_plain_mlp(tmp_path: Path) -> None:
    """The unregularized default configuration (the baseline every family is judged against)
    reaches, on the fixed test split, at least the accuracy of a default-configured plain MLP
    on the same training examples, over the same seeds."""
    ours = []
    for seed in SEEDS:
        out = tmp_path / f"run{seed}"
        proc = run_cli([f"trainer.seed={seed}", f"hydra.run.dir={out}"], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        ours.append(json.loads((out / "metrics.json").read_text())["test_acc"])
    plain = [_plain_mlp_test_accuracy(seed) for seed in SEEDS]
    assert np.mean(ours) >= np.mean(plain), (ours, plain)
    assert np.mean(ours) > 0.95
