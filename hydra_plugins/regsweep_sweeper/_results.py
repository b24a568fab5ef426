"""What a sweep prints and writes when it ends: ``optimization_results.yaml`` and a summary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from omegaconf import OmegaConf
from optuna.trial import TrialState

from ._budget import Tally, budget_count
from ._space import SearchSpace

__all__ = ["print_space", "print_summary", "say_budget", "write_results"]


def _counts(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def write_results(
    study: optuna.Study, sweep_dir: Path, tally: Tally, confirm: optuna.Study | None = None
) -> dict[str, Any]:
    """``optimization_results.yaml``: the study's counts, this run's tally, the best trial (or
    the Pareto front), and the confirmation study's counts."""
    trials = study.get_trials(deepcopy=False)
    results: dict[str, Any] = {
        "name": study.study_name,
        "directions": [d.name.lower() for d in study.directions],
        "n_trials": tally.n_trials,
        "counts": _counts(study),
        "this_run": tally.as_dict(),
    }
    if not any(t.state == TrialState.COMPLETE and t.values for t in trials):
        pass
    elif len(study.directions) > 1:
        results["pareto_front"] = [
            {"trial": t.number, "values": [float(v) for v in t.values], "params": dict(t.params)}
            for t in study.best_trials
        ]
    else:
        best = study.best_trial
        results["best_trial"] = best.number
        results["best_value"] = float(best.value) if best.value is not None else math.nan
        results["best_params"] = dict(best.params)
        results["best_note"] = (
            "a single run on one validation split; the confirmation "
            "study repeats the finalists over seeds"
        )
    if confirm is not None:
        results["confirmation"] = {"study": confirm.study_name, "counts": _counts(confirm)}
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
    return results


def say_budget(study: optuna.Study, n_trials: int) -> None:
    """Tell a rerun what it will do: resume, or nothing because the budget is spent."""
    stored = budget_count(study)
    name = study.study_name
    if stored >= n_trials:
        print(
            f"[regsweep] study {name!r} already has {stored} of its {n_trials} trials: nothing to "
            "search (raise hydra.sweeper.n_trials to run more, or choose another study_name)"
        )
    elif stored:
        print(f"[regsweep] resuming study {name!r}: {stored} of {n_trials} trials stored")


def say_shares(families: Sequence[str], n_trials: int, per_family: int) -> None:
    """Warn when the budget cannot give every family ``per_family`` completed runs."""
    if families and n_trials < per_family * len(families):
        share, extra = divmod(n_trials, len(families))
        more = f" ({extra} of them {share + 1})" if extra else ""
        print(
            f"[regsweep] hydra.sweeper.n_trials={n_trials} gives each of the {len(families)} "
            f"families {share} trial{'s' if share != 1 else ''}{more}, fewer than the "
            f"{per_family} completed runs that make a family's search count as explored "
            f"(pruner.family_startup_trials); {per_family * len(families)} trials would"
        )


def print_space(space: SearchSpace, directions: list[str], checked: list[str]) -> None:
    """What a sweep would search (``hydra.sweeper.dry_run=true``): nothing is stored."""
    s = space.as_dict()
    print(f"[regsweep] search space checked ({', '.join(directions)}); no study was opened")
    for path, expr in s["params"].items():
        print(f"[regsweep]   {path}: {expr}")
    for parent, options in s["conditional"].items():
        for option, block in options.items():
            for path, expr in block.items():
                print(f"[regsweep]   {path}: {expr}   (when {parent}={option})")
    for line in s["cli_overrides"]:
        print(f"[regsweep]   fixed: {line}")
    for line in checked:
        print(f"[regsweep]   data: {line}")


def print_summary(study: optuna.Study, tally: Tally, results: dict[str, Any]) -> None:
    print(f"[regsweep] study {study.study_name!r}: {tally.progress_line(study)}")
    if "best_trial" in results:
        print(
            f"[regsweep] best single run: trial {results['best_trial']}, value "
            f"{results['best_value']:.6g} (one seed, one validation split: noise-prone)"
        )
        for key, value in results["best_params"].items():
            print(f"[regsweep]   {key} = {value}")
    for entry in results.get("pareto_front", []):
        values = ", ".join(f"{v:.4g}" for v in entry["values"])
        print(f"[regsweep] Pareto front: trial {entry['trial']} ({values})")
