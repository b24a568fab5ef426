"""Study facts for the top of the report: name, direction, metric, search space, command, ..."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis._format import metric_label
from sweep.record import STUDY_COMMAND, STUDY_PRUNER, STUDY_SEARCH_SPACE
from sweep.study import PRUNERS, own_fields

if TYPE_CHECKING:
    from analysis._load import StudyData

__all__ = [
    "PRUNER_KEYS",
    "objectives_text",
    "pruner_text",
    "search_space_lines",
    "study_facts",
]

# The parameters that matter for each pruner name: its own fields (sweep.study's settings class
# of that pruner), not those every pruner shares.
PRUNER_KEYS: dict[str, tuple[str, ...]] = {name: own_fields(name) for name in PRUNERS}


def pruner_text(spec: Any) -> str:
    """``median (n_startup_trials=5, n_warmup_steps=4, ...)``: the name and its own settings.

    Unknown names show every non-null setting; ``patience`` (a wrapper) is added when set.
    """
    if not isinstance(spec, Mapping):
        return "not recorded" if spec is None else str(spec)
    name = str(spec.get("name", "none"))
    keys = PRUNER_KEYS.get(name, tuple(k for k in spec if k != "name"))
    if spec.get("patience") is not None:
        keys = (*keys, "patience", "min_delta")
    shown = [f"{k}={spec[k]}" for k in keys if spec.get(k) is not None]
    return f"{name} ({', '.join(shown)})" if shown else name


def search_space_lines(space: Any) -> list[str]:
    """One ``path: expression`` line per searched parameter; conditional ones say when."""
    if not isinstance(space, Mapping):
        return [] if space is None else [str(space)]
    lines = [f"{path}: {expr}" for path, expr in (space.get("params") or {}).items()]
    for parent, options in (space.get("conditional") or {}).items():
        for option, params in (options or {}).items():
            lines += [
                f"{path}: {expr} (when {parent}={option})" for path, expr in (params or {}).items()
            ]
    fixed = space.get("cli_overrides") or []
    if fixed:
        lines.append("fixed on the command line: " + " ".join(map(str, fixed)))
    return lines


def objectives_text(data: StudyData) -> str:
    """``validation accuracy (val_acc, maximize), weight sparsity (sparsity, maximize)``."""
    return ", ".join(
        f"{metric_label(o)} ({o}, {d})"
        for o, d in zip(data.objectives, data.directions, strict=False)
    )


def _confirm_text(data: StudyData) -> str:
    confirm = data.confirm
    if confirm is None:
        return "none yet (single runs only)"
    seeds = confirm.confirm_seeds
    arms = confirm.confirm_plan
    return (
        f"{confirm.name}: {len(arms)} arms × {len(seeds)} seeds, {len(confirm.trials)} runs stored"
    )


def study_facts(data: StudyData, trials: pd.DataFrame) -> list[tuple[str, str | list[str]]]:
    """(label, value) rows: study, direction, metric (or objectives), search space, command,
    states, pruner, confirmation."""
    attrs = data.user_attrs
    counts = trials["state"].value_counts() if not trials.empty else pd.Series(dtype=int)
    states = ", ".join(f"{int(n)} {s.lower()}" for s, n in sorted(counts.items())) or "none"
    multi = len(data.directions) >= 2
    return [
        ("study", data.name),
        ("direction", ", ".join(data.directions) or "unknown"),
        ("objectives" if multi else "metric", objectives_text(data) if multi else data.metric),
        ("search space", search_space_lines(attrs.get(STUDY_SEARCH_SPACE)) or "not recorded"),
        ("command", str(attrs.get(STUDY_COMMAND) or "not recorded")),
        ("trials", f"{len(trials)}: {states}"),
        ("pruner", pruner_text(attrs.get(STUDY_PRUNER))),
        ("confirmation", _confirm_text(data)),
    ]
