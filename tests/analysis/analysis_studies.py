"""Small SQLite studies whose metrics the tests choose (helpers shared by the tests)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from analysis._synthetic import record_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)

DISTS = {
    "regularizer": CategoricalDistribution(["none", "l1", "l2", "dropout"]),
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "model.dropout": FloatDistribution(0.0, 0.9),
}
LOSS_TRAIN = [1.0, 0.6, 0.3, 0.1]
LOSS_VAL = [1.1, 0.8, 0.75, 0.9]


def trial(
    family: str,
    train_acc: list[float],
    val_acc: list[float],
    *,
    lam: float = 0.0,
    lr: float = 0.01,
    test_acc: float | None = None,
    **kw: Any,
) -> FrozenTrial:
    """A trial with chosen accuracy curves (losses fixed), strength ``lam`` for its family."""
    n = len(val_acc)
    key = {"l1": "l1", "l2": "l2", "dropout": "dropout"}.get(family)
    dropout = lam if family == "dropout" else 0.0
    curves = {
        "train_acc": train_acc,
        "val_acc": val_acc,
        "train_loss": LOSS_TRAIN[:n],
        "val_loss": LOSS_VAL[:n],
        "sparsity": kw.pop("sparsity", [0.0] * n),
    }
    return record_trial(
        family=family,
        curves=curves,
        hparams={key: lam} if key else {},
        test_acc=test_acc,
        epochs_max=kw.pop("epochs_max", 4),
        params={"regularizer": family, "lr": lr, "model.dropout": dropout},
        distributions=DISTS,
        **kw,
    )


def controlled_trials() -> list[FrozenTrial]:
    """Trials 0..10 of the controlled study (see the expected values in the tests)."""
    nan = math.nan
    return [
        trial("none", [0.6, 0.8, 0.95, 0.99], [0.55, 0.70, 0.72, 0.68], test_acc=0.70),
        trial(
            "l1",
            [0.6, 0.75, 0.85, 0.88],
            [0.58, 0.72, 0.80, 0.81],
            lam=1e-3,
            lr=0.001,
            test_acc=0.79,
            sparsity=[0.1, 0.2, 0.3, 0.4],
        ),
        trial(
            "l1",
            [0.5, 0.7, 0.8, 0.82],
            [0.5, 0.68, 0.78, 0.79],
            lam=1e-2,
            lr=0.003,
            test_acc=0.77,
            sparsity=[0.2, 0.4, 0.5, 0.6],
        ),
        trial(
            "l2",
            [0.6, 0.8, 0.85, 0.90],
            [0.6, 0.75, 0.80, 0.83],
            lam=1e-3,
            lr=0.03,
            test_acc=0.80,
            sparsity=[0.01] * 4,
        ),
        trial(
            "l2",
            [0.6, 0.7, 0.75, 0.77],
            [0.6, 0.7, 0.75, 0.75],
            lam=1e-2,
            lr=0.05,
            test_acc=0.74,
            sparsity=[0.0] * 4,
        ),
        trial(
            "dropout",
            [0.6, 0.8, 0.84, 0.86],
            [0.6, 0.78, 0.82, 0.80],
            lam=0.5,
            lr=0.01,
            test_acc=0.81,
        ),
        trial(
            "dropout",
            [0.6, 0.8, 0.88, 0.90],
            [0.6, 0.75, 0.78, 0.77],
            lam=0.2,
            lr=0.02,
            test_acc=0.76,
        ),
        trial("l2", [0.5, 0.55], [0.4, 0.45], lam=0.1, state=TrialState.PRUNED),
        trial(
            "l1", [0.5, nan], [0.5, nan], lam=10.0, state=TrialState.FAIL, stop_reason="diverged"
        ),
        trial(
            "l2",
            [0.99, 0.99, 0.99, 0.99],
            [0.99, 0.99, 0.99, 0.99],
            lam=1e-4,
            state=TrialState.FAIL,
            stop_reason="interrupted",
            test_acc=0.99,
        ),
        optuna.trial.create_trial(
            value=0.5,
            user_attrs={"family": "none"},
            params={"regularizer": "none", "lr": 0.01, "model.dropout": 0.0},
            distributions=DISTS,
        ),
    ]


def write_study(
    path: Path, trials: list[FrozenTrial], name: str = "controlled", direction: str = "maximize"
) -> str:
    """Write ``trials`` into a SQLite study at ``path``; returns the sqlite URL."""
    url = f"sqlite:///{path}"
    study = optuna.create_study(storage=url, study_name=name, direction=direction)
    study.set_user_attr("regsweep:metric", "val_acc")
    study.add_trials(trials)
    return url


COCKTAIL_KEYS = ("l1", "l2", "dropout", "weight_decay", "clip")
COCKTAIL_DISTS = {f"regularizer.{k}": FloatDistribution(1e-7, 1e4, log=True)
                  for k in COCKTAIL_KEYS}  # fmt: skip


def numbered(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """``trials`` numbered 0, 1, ... (as a study stores them), through an in-memory study."""
    study = optuna.create_study()
    study.add_trials(trials)
    return study.get_trials(deepcopy=False)


def cocktail_trials(n: int = 4) -> list[FrozenTrial]:
    """``n`` completed cocktail trials: every strength searched together, all different.

    Trial ``i`` has ``l1 = 1e-6·10^i``, ``l2 = 1e-5·10^i``, ``dropout = 0.1·(i+1)``,
    ``weight_decay = 1e-4·3^i``, ``clip = 0.1·5^i``, sparsity ``0.1·i`` and gap ``0.01·(i+1)``.
    """
    out = []
    for i in range(n):
        hp = {"l1": 1e-6 * 10**i, "l2": 1e-5 * 10**i, "dropout": 0.1 * (i + 1),
              "weight_decay": 1e-4 * 3**i, "clip": 0.1 * 5**i}  # fmt: skip
        val = 0.8 + 0.01 * i
        out.append(record_trial(
            family="cocktail", hparams=hp, epochs_max=4,
            curves={"train_acc": [0.5, 0.7, 0.8, val + 0.01 * (i + 1)],
                    "val_acc": [0.5, 0.6, 0.7, val], "train_loss": LOSS_TRAIN,
                    "val_loss": LOSS_VAL, "sparsity": [0.1 * i] * 4},
            params={f"regularizer.{k}": v for k, v in hp.items()}, distributions=COCKTAIL_DISTS,
        ))  # fmt: skip
    return numbered(out)
