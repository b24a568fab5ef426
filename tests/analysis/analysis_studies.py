"""Small SQLite studies whose metrics the tests choose (helpers shared by the tests)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from analysis.testing.synthetic import record_trial
from analysis.testing.synthetic_confirm import add_confirm_study, confirm_trial, plan_entry

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
    """A version-2 trial with chosen accuracy curves (losses fixed), strength ``lam`` for its
    family; its final model is the last epoch's."""
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
    """Trials 0..10 of the controlled study (see the expected values in the tests).

    Final models (last epoch): 0 none val .68 gap .31 (best epoch 3: .72, gap .23); 1 l1 .81
    gap .07; 2 l1 .79 gap .03; 3 l2 .83 gap .07; 4 l2 .75 gap .02; 5 dropout .80 gap .06 (best
    epoch 3: .82); 6 dropout .77 gap .13; 7 pruned; 8 diverged; 9 interrupted; 10 no record.
    """
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
    path: Path,
    trials: list[FrozenTrial],
    name: str = "controlled",
    direction: str = "maximize",
    metric: str = "val_acc",
) -> str:
    """Write ``trials`` into a SQLite study at ``path``; returns the sqlite URL."""
    url = f"sqlite:///{path}"
    study = optuna.create_study(storage=url, study_name=name, direction=direction)
    study.set_user_attr("regsweep:metric", metric)
    study.add_trials(trials)
    return url


COCKTAIL_KEYS = ("l1", "l2", "dropout", "weight_decay", "clip")
COCKTAIL_DISTS = {f"regularizer.{k}": FloatDistribution(1e-7, 1e4, log=True) for k in COCKTAIL_KEYS}


def numbered(trials: list[FrozenTrial], n_objectives: int = 1) -> list[FrozenTrial]:
    """``trials`` numbered 0, 1, ... (as a study stores them), through an in-memory study."""
    study = optuna.create_study(directions=["maximize"] * n_objectives)
    study.add_trials(trials)
    return study.get_trials(deepcopy=False)


def cocktail_trials(n: int = 4) -> list[FrozenTrial]:
    """``n`` completed cocktail trials: every strength searched together, all different.

    Trial ``i`` has ``l1 = 1e-6·10^i``, ``l2 = 1e-5·10^i``, ``dropout = 0.1·(i+1)``,
    ``weight_decay = 1e-4·3^i``, ``clip = 0.1·5^i``, sparsity ``0.1·i`` and gap ``0.01·(i+1)``.
    """
    out = []
    for i in range(n):
        hp = {
            "l1": 1e-6 * 10**i,
            "l2": 1e-5 * 10**i,
            "dropout": 0.1 * (i + 1),
            "weight_decay": 1e-4 * 3**i,
            "clip": 0.1 * 5**i,
        }
        val = 0.8 + 0.01 * i
        out.append(
            record_trial(
                family="cocktail",
                hparams=hp,
                epochs_max=4,
                curves={
                    "train_acc": [0.5, 0.7, 0.8, val + 0.01 * (i + 1)],
                    "val_acc": [0.5, 0.6, 0.7, val],
                    "train_loss": LOSS_TRAIN,
                    "val_loss": LOSS_VAL,
                    "sparsity": [0.1 * i] * 4,
                },
                params={f"regularizer.{k}": v for k, v in hp.items()},
                distributions=COCKTAIL_DISTS,
            )
        )
    return numbered(out)


def v1_trial(
    family: str,
    train_acc: list[float],
    val_acc: list[float],
    *,
    test_acc: float | None = None,
    sparsity: list[float] | None = None,
    hparams: Mapping[str, float] | None = None,
) -> FrozenTrial:
    """A version-1 record (no ``record_version``): best-epoch figures under their old names,
    ``test_acc`` measured at the best epoch, the final model only in ``curves``."""
    n = len(val_acc)
    curves = {
        "epoch": [float(e) for e in range(1, n + 1)],
        "train_acc": train_acc,
        "val_acc": val_acc,
        "train_loss": LOSS_TRAIN[:n],
        "val_loss": LOSS_VAL[:n],
        "sparsity": sparsity or [0.0] * n,
    }
    b = int(np.argmax(val_acc))
    attrs = {
        "curves": curves,
        "family": family,
        "best_epoch": b + 1,
        "epochs_run": n,
        "epochs_max": n,
        "best_val_acc": val_acc[b],
        "best_val_loss": LOSS_VAL[b],
        "best_train_acc": train_acc[b],
        "best_train_loss": LOSS_TRAIN[b],
        "gap_acc_best": train_acc[b] - val_acc[b],
        "gap_loss_best": LOSS_VAL[b] - LOSS_TRAIN[b],
        "gap_acc_last": train_acc[-1] - val_acc[-1],
        "sparsity_best": curves["sparsity"][b],
        "test_acc": test_acc,
        "stop_reason": "completed",
        "hparams": dict(hparams or {}),
        "choices": {"regularizer": family},
    }
    return optuna.trial.create_trial(
        value=val_acc[b], user_attrs=attrs, intermediate_values=dict(enumerate(val_acc, 1))
    )


def confirmed_study(
    path: Path,
    arms: Mapping[str, Mapping[str, Any]],
    *,
    search: Sequence[FrozenTrial] | None = None,
    name: str = "conf",
    metric: str = "val_acc",
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
) -> str:
    """A search study (``search``, default the controlled trials) and its confirmation study.

    ``arms`` maps an arm id to ``family``, ``role``, optional ``baseline`` (an arm id) and the
    final metrics per seed (lists in ``seeds`` order): ``val_acc``, optional ``gap_acc``,
    ``test_acc``, ``val_loss``, ``sparsity``, ``chance_acc`` (a number stands for every seed),
    ``restored`` (early stopping restored an earlier epoch: a bool, or one per seed);
    ``failed``: seeds that crashed; ``diverged``: seeds that diverged.
    Returns the sqlite URL.
    """
    trials = list(search if search is not None else controlled_trials())
    url = write_study(
        path, trials, name, "minimize" if metric == "val_loss" else "maximize", metric
    )
    plan = [
        plan_entry(arm, a["family"], a["role"], baseline=a.get("baseline"), label=a.get("label"))
        for arm, a in arms.items()
    ]
    runs = []
    for arm, a in arms.items():
        for i, seed in enumerate(seeds):
            pick = {
                k: (a[k][i] if isinstance(a[k], Sequence) else a[k])
                for k in (
                    "val_acc",
                    "gap_acc",
                    "test_acc",
                    "val_loss",
                    "sparsity",
                    "chance_acc",
                    "restored",
                )
                if k in a
            }
            ended = (
                "failed"
                if seed in a.get("failed", ())
                else "diverged"
                if seed in a.get("diverged", ())
                else None
            )
            state = TrialState.FAIL if ended else TrialState.COMPLETE
            runs.append(
                confirm_trial(
                    arm=arm,
                    family=a["family"],
                    role=a["role"],
                    seed=seed,
                    label=a.get("label"),
                    state=state,
                    stop_reason=ended,
                    **pick,
                )
            )
    add_confirm_study(url, name, plan, runs, seeds=seeds, metric=metric)
    return url
