"""``python -m sweep --help``: every key with its current value and what it does.

Hydra's help template cannot describe keys, so ``conf/config.yaml``'s template calls the
resolvers registered here (``${regsweep.help:}``, and the sweeper's ``${regsweep.sweeper_help:}``),
which walk the typed schemas: each field's ``help`` metadata, the value the composed config
gives it (so ``--help regularizer=l1`` shows L1's values), internal keys hidden and keys that
apply to one option only (the noise data's sizes) shown only with that option.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from omegaconf import DictConfig, OmegaConf

__all__ = ["describe_keys", "register_help"]


def _show(value: Any) -> str:
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _applies(only: str | None, root: DictConfig) -> bool:
    if not only:
        return True
    key, _, want = only.partition("=")
    return str(OmegaConf.select(root, key, default=None)) in want.split("|")


def describe_keys(schema: type, node: Any, root: DictConfig, prefix: str = "") -> list[str]:
    """``key=value   help`` lines for every field of the dataclass ``schema`` (recursively),
    with values from the config ``node``."""
    rows: list[tuple[str, str]] = []
    _walk(schema, node, root, prefix, rows)
    width = min(max((len(k) for k, _ in rows), default=0), 48)
    return [f"  {k.ljust(width)}  {h}".rstrip() for k, h in rows]


def _walk(
    schema: type, node: Any, root: DictConfig, prefix: str, rows: list[tuple[str, str]]
) -> None:
    for f in dataclasses.fields(schema):
        meta = f.metadata
        if f.name.startswith("_") or meta.get("internal") or not _applies(meta.get("only"), root):
            continue
        value = node.get(f.name) if node is not None and f.name in node else None
        sub = _dataclass_type(schema, f)
        if sub is not None:
            _walk(sub, value, root, f"{prefix}{f.name}.", rows)
            continue
        rows.append((f"{prefix}{f.name}={_show(value)}", str(meta.get("help", ""))))


def _dataclass_type(schema: type, f: dataclasses.Field[Any]) -> type | None:
    import typing

    hints = typing.get_type_hints(schema)
    hint = hints.get(f.name)
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def _escape(lines: list[str]) -> str:
    # the help template is a string.Template: a literal $ must be doubled
    return "\n".join(lines).replace("$", "$$")


def register_help() -> None:
    """Register ``${regsweep.help:}`` (the job config's keys)."""
    from .config import AppConfig

    def app_help(*, _root_: DictConfig) -> str:
        return _escape(describe_keys(AppConfig, _root_, _root_))

    if not OmegaConf.has_resolver("regsweep.help"):
        OmegaConf.register_new_resolver("regsweep.help", app_help)
