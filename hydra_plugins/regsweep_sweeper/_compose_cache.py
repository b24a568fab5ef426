"""Compose each job config from a cached composition instead of from scratch.

Hydra's launchers compose the full config (defaults tree, every YAML file) for every job:
130-160 ms on this project, more than a whole 20-epoch digits trial's training. Trials of one
sweep differ only in a few searched values and their trial link, so the loader composes once per
set of *structural* overrides (group choices and fixed overrides) and applies the per-trial
values onto a copy, with the same type checks as a composition (the root config is in struct
mode and typed by the schema). Hydra's own bookkeeping (``hydra.overrides.task``,
``hydra.job.override_dirname``) is rewritten as a fresh composition would write it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from hydra._internal.config_loader_impl import get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import DictConfig, OmegaConf, open_dict

from sweep.record import plain_copy

__all__ = ["CachingConfigLoader"]


class CachingConfigLoader:
    """Wraps a Hydra ``ConfigLoader``; only ``load_sweep_config`` is changed.

    ``value_keys`` are the config paths whose per-trial values are applied onto a cached
    composition (plain ``key=value`` overrides of existing keys); any other override is part of
    the cache key.
    """

    def __init__(self, inner: Any, value_keys: Iterable[str] = ()) -> None:
        self._inner = inner
        self.value_keys = set(value_keys)
        self._cache: dict[tuple[str, ...], DictConfig] = {}
        self._plain: dict[tuple[str, ...], tuple[dict[str, Any], dict[str, str]]] = {}
        self._parsed: dict[tuple[str, ...], list[Override]] = {}
        self._parser = OverridesParser.create()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_inner":
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "_inner": self._inner,
            "value_keys": self.value_keys,
            "_cache": {},
            "_plain": {},
            "_parsed": {},
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._parser = OverridesParser.create()

    def _is_value(self, o: Override) -> bool:
        if (
            o.type != OverrideType.CHANGE
            or o.package is not None
            or o.is_sweep_override()
            or o.is_hydra_override()
            or o.key_or_group not in self.value_keys
        ):
            return False
        value = o.value()
        if isinstance(value, list):
            return all(isinstance(v, int | float | str | bool) for v in value)
        return not isinstance(value, dict)

    def compose_plain(
        self,
        master_config: DictConfig,
        sweep_overrides: list[str],
        groups: tuple[str, ...],
        values: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """A job config as plain data (without ``hydra`` and ``trial``) and its config-group
        choices among ``groups``: composed by Hydra once per set of structural overrides, then
        copied as a plain dict with the values set, ~50× faster than copying a composition.
        ``values`` (path → value, for paths in ``value_keys``) are set without going through
        Hydra's override parser, whose cost would otherwise dominate."""
        given = tuple(sweep_overrides)
        if given not in self._parsed:
            self._parsed[given] = self._parser.parse_overrides(list(given))
        parsed = self._parsed[given]
        structural = [str(o.input_line) for o in parsed if not self._is_value(o)]
        key = _key(parsed, structural)
        if key not in self._plain:
            # the cached composition itself (the sweep's checks made most of them), read
            # without a copy: a deep copy of a composition took ~10 ms
            job = self._composition(master_config, key, structural)
            runtime = job.hydra.runtime.choices
            choices = {g: str(runtime[g]) for g in groups if runtime.get(g) is not None}
            plain = {
                str(k): OmegaConf.to_container(job[k], resolve=True)
                if OmegaConf.is_config(job[k])
                else job[k]
                for k in job
                if k not in ("hydra", "trial")
            }
            self._plain[key] = (plain, choices)
        base, choices = self._plain[key]
        out = plain_copy(base)
        settings = {o.key_or_group: o.value() for o in parsed if self._is_value(o)}
        for path, value in {**settings, **(values or {})}.items():
            *parents, leaf = path.split(".")
            node = out
            for name in parents:
                node = node[name]
            node[leaf] = value
        return out, dict(choices)

    def load_sweep_config(
        self, master_config: DictConfig, sweep_overrides: list[str]
    ) -> DictConfig:
        parsed = self._parser.parse_overrides(list(sweep_overrides))
        structural = [str(o.input_line) for o in parsed if not self._is_value(o)]
        cfg = copy.deepcopy(self._composition(master_config, _key(parsed, structural), structural))
        for o in parsed:
            if self._is_value(o):
                OmegaConf.update(cfg, o.key_or_group, o.value(), merge=False)
        app = [o for o in parsed if not o.is_hydra_override()]
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [str(o.input_line) for o in app]
            conf = cfg.hydra.job.config.override_dirname
            cfg.hydra.job.override_dirname = get_overrides_dirname(
                overrides=app,
                kv_sep=conf.kv_sep,
                item_sep=conf.item_sep,
                exclude_keys=list(conf.exclude_keys),
            )
        return cfg

    def _composition(
        self, master_config: DictConfig, key: tuple[str, ...], structural: list[str]
    ) -> DictConfig:
        """Hydra's composition for ``structural`` overrides, composed once (not to be
        changed: callers copy it)."""
        if key not in self._cache:
            self._cache[key] = self._inner.load_sweep_config(master_config, structural)
        return self._cache[key]


def _key(parsed: list[Override], structural: list[str]) -> tuple[str, ...]:
    """The cache key of a composition: its structural overrides, sorted when they name distinct
    keys (then their order does not change the composition: the sweep's checks compose "fixed,
    then the option", trials "the option, then fixed", and both find one entry)."""
    names = [o.key_or_group for o in parsed if str(o.input_line) in structural]
    if len(set(names)) == len(names):
        return tuple(sorted(structural))
    return tuple(structural)
