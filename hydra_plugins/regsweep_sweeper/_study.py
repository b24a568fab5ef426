"""Opening the search study: new, or resumed only when compatible; secrets kept out of configs.

A study records a fingerprint of what its trials mean: the search space, the objectives and
their directions, and the base job config (without settings that do not change results, such
as the device). A rerun whose fingerprint differs is refused before anything is written,
saying what differs and how to start a new study; a larger ``n_trials`` is always allowed.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.storages import BaseStorage
from optuna.study import StudyDirection

from sweep import record
from sweep.study import StorageSpec, as_spec, make_pruner, mask_url

from ._checks import SweepConfigError, resolved_pruner
from ._config import SweeperConfig
from ._samplers import make_sampler
from ._space import SearchSpace

__all__ = [
    "EXECUTION_KEYS",
    "command_line",
    "fingerprint",
    "fingerprint_differences",
    "open_search_study",
    "pruner_spec",
    "scrub_config",
    "store_study_attrs",
    "version",
]

EXECUTION_KEYS = (
    "trainer.device",
    "trainer.progress",
    "trainer.threads",
    "trainer.max_population",
    "trainer.eval_batch_size",
    "trainer.deterministic",
    "data.root",
    "data.download",
    "trial",
)
"""Job settings that change how a trial runs, not what it computes: a resumed study may differ
in them."""


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("regsweep")
    except PackageNotFoundError:
        return "unknown"


def command_line() -> str:
    """The command as typed, with passwords in URLs masked (it is stored in the study)."""
    argv = [mask_url(a) for a in sys.argv]
    if argv and argv[0].endswith("__main__.py"):
        argv[0:1] = ["python", "-m", Path(argv[0]).parent.name]
    return shlex.join(argv)


def scrub_config(config: DictConfig, spec: StorageSpec) -> None:
    """Replace the storage URL in the sweep's config by its masked form, in place: Hydra writes
    this config (``multirun.yaml``) and recomposes every job's ``hydra.yaml`` from its
    overrides, so a password in them would land in files."""
    if spec.masked == spec.url and spec.given == spec.url:
        return
    with open_dict(config):
        if OmegaConf.select(config, "hydra.sweeper.storage") is not None:
            config.hydra.sweeper.storage = spec.masked
        overrides = OmegaConf.select(config, "hydra.overrides.hydra")
        if overrides is not None:
            config.hydra.overrides.hydra = [mask_url(str(o)) for o in overrides]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def fingerprint(
    space: SearchSpace, metrics: list[str], directions: list[str], base: DictConfig
) -> dict[str, Any]:
    """What a resumed sweep must match (see the module docstring)."""
    config = OmegaConf.to_container(base, resolve=True)
    flat = {
        k: v
        for k, v in _flatten(config).items()
        if not any(k == e or k.startswith(e + ".") for e in EXECUTION_KEYS)
    }
    return {
        "space": space.signature(),
        "objectives": metrics,
        "directions": directions,
        "config": json.loads(json.dumps(flat, default=str)),
    }


def _show(value: Any) -> str:
    if isinstance(value, str) and value.startswith("{"):
        try:
            d = json.loads(value)
            attrs = d.get("attributes", {})
            kind = d.get("name", "").replace("Distribution", "").lower()
            return f"{kind}{attrs}"
        except ValueError:
            pass
    return json.dumps(value) if not isinstance(value, str) else value


def fingerprint_differences(stored: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """One line per difference between two fingerprints."""
    lines = []
    for part, label in (("objectives", "objectives"), ("directions", "directions")):
        if stored.get(part) != new.get(part):
            lines.append(f"{label}: stored {stored.get(part)}, now {new.get(part)}")
    for part, label in (("space", "searched"), ("config", "config")):
        old, now = dict(stored.get(part) or {}), dict(new.get(part) or {})
        for key in sorted(set(old) | set(now)):
            if old.get(key) != now.get(key):
                was = _show(old[key]) if key in old else "(absent)"
                is_ = _show(now[key]) if key in now else "(absent)"
                lines.append(f"{label} {key}: stored {was}, now {is_}")
    return lines


def pruner_spec(s: SweeperConfig, n_objectives: int) -> dict[str, Any]:
    """What the study stores as ``regsweep:pruner``: the name and the pruner's every field."""
    if n_objectives > 1 and s.pruner.name != "none":
        return {"name": "none", "why": "multi-objective"}
    return as_spec(s.pruner.name, resolved_pruner(s)[0])


def _existing(storage: BaseStorage, name: str) -> optuna.Study | None:
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return optuna.load_study(study_name=name, storage=storage)


def _new_name(name: str) -> str:
    match = re.fullmatch(r"(.*)-(\d+)", name)
    return f"{match.group(1)}-{int(match.group(2)) + 1}" if match else f"{name}-2"


def open_search_study(
    storage: BaseStorage,
    s: SweeperConfig,
    space: SearchSpace,
    metrics: list[str],
    directions: list[str],
    fp: dict[str, Any],
) -> optuna.Study:
    """Create the search study, or resume it when ``fp`` matches what it stores.

    Raises:
        SweepConfigError: The stored study searches something else (nothing is written).
    """
    name = s.study_name
    old = _existing(storage, name)
    if old is not None:
        problems = []
        role = old.user_attrs.get(record.STUDY_ROLE, "search")
        if role != "search":
            problems.append(
                f"study {name!r} holds the {role} runs of "
                f"{old.user_attrs.get(record.STUDY_SEARCH_STUDY)!r}, not a search"
            )
        stored_dirs = [d.name.lower() for d in old.directions]
        stored = old.user_attrs.get(record.STUDY_FINGERPRINT)
        # created, then killed before (or while) its attributes were stored: nothing to compare
        # but the directions (fixed at creation), and no trial in it to lose
        unstamped = stored is None and not old.get_trials(deepcopy=False)
        if unstamped:
            diff = []
        elif stored is None:
            stored = {
                "directions": stored_dirs,
                "objectives": old.user_attrs.get(
                    record.STUDY_OBJECTIVES, [old.user_attrs.get(record.STUDY_METRIC)]
                ),
            }
            diff = fingerprint_differences(stored, {k: fp[k] for k in stored})
        else:
            diff = fingerprint_differences(stored, fp)
        if stored_dirs != directions and not any(d.startswith("directions") for d in diff):
            diff.insert(0, f"directions: stored {stored_dirs}, now {directions}")
        problems += diff
        if problems:
            raise SweepConfigError(
                [
                    f"hydra.sweeper.study_name={name!r}: the stored study differs from this sweep, "
                    "so its trials would not be comparable; nothing was written",
                    *problems,
                    f"fix: start a new study (hydra.sweeper.study_name={_new_name(name)}), or rerun "
                    "with the stored settings to resume (hydra.sweeper.n_trials may grow)",
                ]
            )
    spec = pruner_spec(s, len(metrics))
    if spec.get("name") == "none" and s.pruner.name != "none":
        print(
            f"[regsweep] multi-objective study ({', '.join(metrics)}): pruning is off — "
            "Optuna cannot prune trials with several objectives; every trial runs to its end"
        )
    sampler_spec = OmegaConf.to_container(OmegaConf.structured(s.sampler))
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(sampler_spec, space),  # type: ignore[arg-type]
        pruner=make_pruner(spec),
        directions=[StudyDirection[d.upper()] for d in directions],
        load_if_exists=True,
    )
    attrs = {
        record.STUDY_ROLE: "search",
        record.STUDY_VERSION: version(),
        record.STUDY_SEARCH_SPACE: space.as_dict(),
        record.STUDY_METRIC: metrics[0],
        record.STUDY_OBJECTIVES: metrics,
        record.STUDY_PRUNER: spec,
        record.STUDY_N_TRIALS: int(s.n_trials),
        record.STUDY_FINGERPRINT: fp,
    }
    if old is None:
        attrs[record.STUDY_COMMAND] = command_line()
    store_study_attrs(study, attrs, metrics)
    return study


def store_study_attrs(study: optuna.Study, attrs: Mapping[str, Any], metrics: list[str]) -> None:
    """Write the study attributes that differ from the stored ones, and the metric names
    (which optuna-dashboard shows as the objectives' names)."""
    current = study.user_attrs
    for key, value in attrs.items():
        if current.get(key) != value:
            study.set_user_attr(key, value)
    if list(study.metric_names or []) != metrics:
        study.set_metric_names(metrics)
