"""Synthetic confirmation studies (``<search>.confirm``, docs/trial-record.md): runs whose
per-seed final metrics the caller chooses, for tests, demos and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from analysis.testing.records import record_trial
from sweep.record import (
    STUDY_CONFIRM_PLAN,
    STUDY_CONFIRM_SEEDS,
    STUDY_METRIC,
    STUDY_ROLE,
    STUDY_SEARCH_STUDY,
    TRIAL_CONFIRM,
    StopReason,
    confirm_study_name,
)

__all__ = [
    "DEFAULT_EFFECTS",
    "add_confirm_study",
    "confirm_trial",
    "plan_entry",
    "synthetic_confirmation",
]


def confirm_trial(
    *,
    arm: str,
    family: str,
    role: str,
    seed: int,
    val_acc: float,
    gap_acc: float = 0.05,
    test_acc: float | None = None,
    val_loss: float | None = None,
    sparsity: float = 0.0,
    chance_acc: float = 0.1,
    label: str | None = None,
    source_trial: int = 0,
    state: TrialState = TrialState.COMPLETE,
    restored: bool = False,
    stop_reason: str | None = None,
) -> FrozenTrial:
    """A confirmation run (no params, a ``confirm`` attribute) with the chosen final metrics.

    Its curves have two epochs; the second is the final model: validation accuracy
    ``val_acc``, train accuracy ``val_acc + gap_acc``, validation loss ``val_loss`` (default
    ``2·(1 − val_acc)``), test accuracy ``test_acc`` (default ``val_acc − 0.01``), weight
    sparsity ``sparsity``; ``chance_acc``: the commonest validation class's share.
    ``restored``: a third, worse epoch follows, after which early stopping restored the second.
    ``stop_reason``: by default ``failed`` (a crash) for a FAIL run, ``early_stopped`` for a
    restored one, else ``completed``; ``diverged`` for a FAIL run that diverged.
    """
    loss = val_loss if val_loss is not None else 2.0 * (1.0 - val_acc)
    train = val_acc + gap_acc
    curves = {
        "val_acc": [val_acc - 0.1, val_acc],
        "train_acc": [train - 0.1, train],
        "val_loss": [loss + 0.2, loss],
        "train_loss": [loss + 0.1, max(loss - 0.1, 0.0)],
        "sparsity": [0.0, sparsity],
        "dead_units": [0.0, 0.0],
    }
    if restored:
        worse = {"val_acc": -0.02, "train_acc": 0.01, "val_loss": 0.05, "train_loss": -0.01}
        for key, values in curves.items():
            values.append(max(values[-1] + worse.get(key, 0.0), 0.0))
    info = {
        "arm": arm,
        "label": label or arm,
        "family": family,
        "role": role,
        "seed": seed,
        "source_trial": source_trial,
    }
    return record_trial(
        family=family,
        curves=curves,
        state=state,
        seed=seed,
        epochs_max=len(curves["val_acc"]),
        chance_acc=chance_acc,
        test_acc=test_acc if test_acc is not None else val_acc - 0.01,
        final_epoch=2 if restored else None,
        stop_reason=stop_reason or (StopReason.EARLY_STOPPED if restored else None),
        extra_attrs={TRIAL_CONFIRM: info},
    )


def plan_entry(
    arm: str,
    family: str,
    role: str,
    *,
    baseline: str | None = None,
    label: str | None = None,
    source_trial: int = 0,
    rank: int = 1,
) -> dict[str, Any]:
    """One ``regsweep:confirm_plan`` entry (its ``config`` left empty)."""
    return {
        "arm": arm,
        "label": label or arm,
        "family": family,
        "role": role,
        "source_trial": source_trial,
        "rank": rank,
        "baseline": baseline,
        "config": {},
    }


def add_confirm_study(
    storage: str | optuna.storages.BaseStorage,
    search_study: str,
    plan: Sequence[Mapping[str, Any]],
    runs: Sequence[FrozenTrial],
    *,
    seeds: Sequence[int],
    metric: str = "val_acc",
) -> optuna.Study:
    """Create ``<search_study>.confirm`` with its plan, seeds and ``runs``."""
    study = optuna.create_study(
        storage=storage,
        study_name=confirm_study_name(search_study),
        direction="minimize" if metric.endswith("loss") else "maximize",
    )
    for key, value in (
        (STUDY_ROLE, "confirm"),
        (STUDY_SEARCH_STUDY, search_study),
        (STUDY_METRIC, metric),
        (STUDY_CONFIRM_PLAN, [dict(a) for a in plan]),
        (STUDY_CONFIRM_SEEDS, list(seeds)),
    ):
        study.set_user_attr(key, value)
    study.add_trials(list(runs))
    return study


DEFAULT_EFFECTS = {
    "dropout": 0.025,
    "l2": 0.004,
    "l1": -0.015,
    "weight_decay": 0.0,
    "elastic_net": 0.0,
}
"""True effect on validation accuracy of each family's finalist in :func:`synthetic_confirmation`."""


def synthetic_confirmation(
    storage: str | optuna.storages.BaseStorage,
    search_study: str,
    *,
    seeds: int = 5,
    effects: Mapping[str, float] = DEFAULT_EFFECTS,
    noise: float = 0.004,
    rng_seed: int = 0,
) -> optuna.Study:
    """A confirmation study for ``search_study``: each family's top trial and its baseline.

    Every finalist ``f`` gets a baseline arm ``base-f``; a seed shifts both arms alike (the
    pairing), and each run adds independent noise (sd ``noise``). The finalist's validation
    accuracy is its baseline's (the search's top unregularized run) plus ``effects[family]``;
    its gap is its search trial's, a baseline's that of the top unregularized run.
    """
    rng = np.random.default_rng(rng_seed)
    study = optuna.load_study(study_name=search_study, storage=storage)
    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    plan: list[dict[str, Any]] = []
    for family in sorted({str(t.user_attrs.get("family")) for t in done}):
        top = max(
            (t for t in done if t.user_attrs.get("family") == family),
            key=lambda t: float(t.user_attrs.get("val_acc") or 0.0),
        )
        base = None if family == "none" else f"base-{family}"
        plan.append(
            plan_entry(
                family,
                family,
                "finalist",
                baseline=base,
                source_trial=top.number,
                label=f"{family} (trial {top.number})",
            )
        )
        if base:
            plan.append(
                plan_entry(
                    base,
                    "none",
                    "baseline",
                    source_trial=top.number,
                    label=f"none (baseline of {family})",
                )
            )
    by_number = {t.number: t for t in done}
    none_top = next((by_number[a["source_trial"]] for a in plan if a["arm"] == "none"), None)
    level = float(none_top.user_attrs["val_acc"]) if none_top else 0.9
    base_gap = float(none_top.user_attrs["gap_acc"]) if none_top else 0.08
    shift = rng.normal(0, 0.01, seeds)
    runs = []
    for a in plan:
        effect = 0.0 if a["role"] == "baseline" else float(effects.get(a["family"], 0.0))
        own_gap = by_number[a["source_trial"]].user_attrs["gap_acc"]
        gap = base_gap if a["role"] == "baseline" else float(own_gap)
        for s in range(seeds):
            val = level + shift[s] + effect + rng.normal(0, noise)
            runs.append(
                confirm_trial(
                    arm=a["arm"],
                    label=a["label"],
                    family=a["family"],
                    role=a["role"],
                    seed=s,
                    source_trial=a["source_trial"],
                    val_acc=val,
                    gap_acc=gap + rng.normal(0, 0.005),
                )
            )
    return add_confirm_study(storage, search_study, plan, runs, seeds=range(seeds))
