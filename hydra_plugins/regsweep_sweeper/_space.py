"""Search space: Hydra's override grammar ↔ Optuna distributions.

The grammar is the one hydra-optuna-sweeper users know, written on the command line or in
``hydra.sweeper.params`` / ``hydra.sweeper.conditional``:

=====================================  ================================================
expression                             distribution
=====================================  ================================================
``interval(a, b)``                     ``FloatDistribution(a, b)``
``tag(log, interval(a, b))``           ``FloatDistribution(a, b, log=True)``
``int(interval(a, b))``                ``IntDistribution(a, b)`` (both ends included)
``range(a, b, s)`` (ints)              ``IntDistribution(a, last, step=s)``; ``last < b``
``range(a, b, s)`` (floats)            ``FloatDistribution(a, last, step=s)``
``tag(log, range(a, b))``              ``IntDistribution(a, last, log=True)`` (step 1)
``choice(x, y)`` or ``x,y``            ``CategoricalDistribution((x, y))``
a plain value                          none: a fixed override passed to every trial
=====================================  ================================================

``range`` stops before ``b`` like Python's ``range``; the distribution's ``high`` is the last
element. Everything is validated in :func:`parse_search_space`, before any trial exists.

Example:
    >>> space = parse_search_space(
    ...     {"regularizer": "choice(l1,l2)", "trainer.epochs": 5},
    ...     conditional={"regularizer": {"l1": {"regularizer.l1": "tag(log,interval(1e-6,1))"}}},
    ... )
    >>> space.to_overrides({"regularizer": "l2"})
    ['regularizer=l2', 'trainer.epochs=5']
"""

from __future__ import annotations

import decimal
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    Quote,
    QuotedString,
    RangeSweep,
)
from hydra.errors import HydraException
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

__all__ = [
    "Conditional",
    "Param",
    "SearchSpace",
    "SearchSpaceError",
    "parse_search_space",
    "quote",
]

_ALLOWED = (
    "allowed: interval(low, high), tag(log, interval(low, high)), int(interval(low, high)), "
    "range(start, stop[, step]), tag(log, range(start, stop)), choice(a, b, ...) or a,b,c"
)


class SearchSpaceError(ValueError):
    """A search-space entry is malformed or inconsistent; the message names the path and fix."""


@dataclass(frozen=True)
class Param:
    """One searched parameter.

    Attributes:
        path: Config path or group name (``"regularizer.l1"``, ``"regularizer"``); also the
            Optuna parameter name. Includes ``@package`` when the override names one.
        expr: The expression as written (``"tag(log, interval(1e-6, 1e-2))"``).
        distribution: The Optuna distribution the expression stands for.
        prefix: ``"+"`` or ``"++"`` when the override adds the key, else ``""``.
        pinned: A plain value inside a conditional block: set in the job when its option is
            picked, but never an Optuna parameter (so one path may be pinned to different
            values under different options, and sampling is not spent on it).
    """

    path: str
    expr: str
    distribution: BaseDistribution
    prefix: str = ""
    pinned: bool = False

    @property
    def key(self) -> str:
        """The override's key as Hydra reads it (``prefix + path``)."""
        return self.prefix + self.path


@dataclass(frozen=True)
class Conditional:
    """Params searched only in trials where the categorical ``parent`` took ``option``.

    ``option`` is the choice as a string: a string choice itself, any other choice as it is
    written in an override (``"2"``, ``"true"``, ``"null"``).
    """

    parent: str
    option: str
    params: tuple[Param, ...]


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space: what to suggest and which overrides every job gets."""

    params: tuple[Param, ...]
    conditionals: tuple[Conditional, ...]
    fixed: tuple[str, ...]

    def suggest(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        """Suggests every active param on ``trial``; returns ``{path: value}``.

        Unconditional params come first, then each conditional whose parent was suggested
        with its option (conditionals are stored parents first, so nesting works).
        """
        values = {p.path: _suggest(trial, p) for p in self.params}
        for cond in self.conditionals:
            if cond.parent in values and _text(values[cond.parent]) == cond.option:
                values.update((p.path, _suggest(trial, p)) for p in cond.params)
        return values

    def to_overrides(self, values: Mapping[str, Any]) -> list[str]:
        """Turns suggested values into override strings, followed by the fixed overrides."""
        keys = {p.path: p.key for p in self._all_params()}
        unknown = sorted(set(values) - set(keys))
        if unknown:
            raise SearchSpaceError(f"values for unknown params {unknown}; known: {sorted(keys)}")
        out = [f"{keys[path]}={_format_value(values[path])}" for path in keys if path in values]
        return out + list(self.fixed)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the study: ``parse_search_space(**as_dict())`` rebuilds the space."""
        conditional: dict[str, dict[str, dict[str, str]]] = {}
        for cond in self.conditionals:
            block = conditional.setdefault(cond.parent, {}).setdefault(cond.option, {})
            block.update((p.key, p.expr) for p in cond.params)
        return {
            "params": {p.key: p.expr for p in self.params},
            "conditional": conditional,
            "cli_overrides": list(self.fixed),
        }

    def signature(self) -> dict[str, str]:
        """What the space searches, comparable across runs: ``path`` (or ``path | when
        parent=option``) → its distribution as JSON (a pinned value as ``pinned <value>``)."""
        out = {}
        for p in self.params:
            out[p.key] = _describe(p)
        for cond in self.conditionals:
            for p in cond.params:
                out[f"{p.key} | when {cond.parent}={cond.option}"] = _describe(p)
        return out

    def bounds(self) -> dict[str, list[Any]]:
        """Per path, the extreme values a job can see: ``[low, high]`` or all choices."""
        out: dict[str, list[Any]] = {}
        for p in self._all_params():
            d = p.distribution
            if isinstance(d, CategoricalDistribution):
                seen = out.setdefault(p.path, [])
                seen.extend(c for c in d.choices if c not in seen)
            elif isinstance(d, (FloatDistribution, IntDistribution)):
                low, high = out.get(p.path, [d.low, d.high])
                out[p.path] = [min(low, d.low), max(high, d.high)]
        return out

    def _all_params(self) -> list[Param]:
        return [*self.params, *(p for c in self.conditionals for p in c.params)]


def _describe(p: Param) -> str:
    if p.pinned:
        assert isinstance(p.distribution, CategoricalDistribution)
        return f"pinned {_format_value(p.distribution.choices[0])}"
    return optuna.distributions.distribution_to_json(p.distribution)


def _format_value(value: Any) -> str:
    """Writes ``value`` so that Hydra's override parser reads it back unchanged."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, str):
        return value if _reads_back(value) else QuotedString(value, Quote.single).with_quotes()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{_format_value(k)}:{_format_value(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    raise SearchSpaceError(f"cannot write {value!r} ({type(value).__name__}) as an override value")


def quote(value: Any) -> str:
    """``value`` written as an override value Hydra reads back unchanged (quoted if needed).

    Example:
        >>> quote("a,b"), quote(3)
        ("'a,b'", '3')
    """
    return _format_value(value)


def parse_search_space(
    params: Mapping[str, str | int | float | bool | None],
    conditional: Mapping[str, Mapping[Any, Mapping[str, Any]]] | None = None,
    cli_overrides: Sequence[str] = (),
) -> SearchSpace:
    """Parses and validates a search space.

    Args:
        params: ``hydra.sweeper.params``: path → expression (or plain value: fixed).
        conditional: ``hydra.sweeper.conditional``: parent path → option → {path: expression}.
            A plain value there is pinned: set only when the option is, not searched.
        cli_overrides: The sweeper's command-line overrides. They win over YAML entries of the
            same path; a plain one fixes the path (and selects the conditionals of its value).

    Raises:
        SearchSpaceError: naming the path, the expression, and what is allowed.
    """
    top: dict[str, Param | _Fixed] = {}
    for key, value in params.items():
        item = _parse(str(key), _text(value), "hydra.sweeper.params")
        _no_duplicate(top, item, "hydra.sweeper.params")
        top[item.path] = item
    blocks = _parse_conditional(conditional or {})
    _apply_cli(cli_overrides, top, blocks)
    fixed = {p: f for p, f in top.items() if isinstance(f, _Fixed)}
    unconditional = [p for p in top.values() if isinstance(p, Param)]
    conds = _resolve_conditionals(unconditional, blocks, fixed)  # may append to unconditional
    return SearchSpace(tuple(unconditional), conds, tuple(f.line for f in fixed.values()))


_Blocks = dict[str, dict[str, dict[str, Param]]]  # parent -> option -> path -> param


def _parse_conditional(conditional: Mapping[str, Mapping[Any, Mapping[str, Any]]]) -> _Blocks:
    blocks: _Blocks = {}
    for parent, options in conditional.items():
        for option, block in options.items():
            parsed = blocks.setdefault(str(parent), {}).setdefault(_text(option), {})
            for key, value in block.items():
                where = f"hydra.sweeper.conditional.{parent}.{option}"
                item = _parse(str(key), _text(value), where)
                _no_duplicate(parsed, item, where)
                parsed[item.path] = _as_param(item)
    return blocks


def _apply_cli(lines: Sequence[str], top: dict[str, Param | _Fixed], blocks: _Blocks) -> None:
    """Command-line entries win: a sweep replaces the YAML one (conditional or not) in place,
    a plain value removes the path from the conditionals and fixes it, and a choice over a
    conditional parent drops the blocks of the options it leaves out."""
    cli: dict[str, Param | _Fixed] = {}
    for line in lines:
        item = _parse(None, line.strip(), "the command line")
        _no_duplicate(cli, item, "the command line")
        cli[item.path] = item
    for path, item in cli.items():
        in_blocks = [b for opts in blocks.values() for b in opts.values() if path in b]
        for b in in_blocks:
            if isinstance(item, Param):
                b[path] = item
            else:
                del b[path]
        if isinstance(item, _Fixed) or not in_blocks:
            top[path] = item
        d = item.distribution if isinstance(item, Param) else None
        if isinstance(d, CategoricalDistribution) and path in blocks:
            # a narrower choice of a conditional parent keeps only its options' blocks
            # (regularizer=choice(none,l2) over search=families)
            kept = {_text(c) for c in d.choices}
            blocks[path] = {o: b for o, b in blocks[path].items() if o in kept}


@dataclass(frozen=True)
class _Fixed:
    path: str
    line: str
    value: Any


def _parse(key: str | None, expr: str, where: str) -> Param | _Fixed:
    line = expr if key is None else f"{key}={expr}"
    try:
        override = _parser().parse_overrides([line])[0]
    except HydraException as e:
        hint = "; choice() rejects null, write a,b,null instead" if "NoneType" in str(e) else ""
        raise SearchSpaceError(
            f"cannot parse '{line}' from {where}: {e}{hint}\n{_ALLOWED}"
        ) from None
    path = override.key_or_group + (f"@{override.package}" if override.package else "")
    if not override.is_sweep_override():
        if override.is_delete() and key is not None and expr == "null":
            line = key
        return _Fixed(path, line, override.value())
    expr = override.get_value_string()
    if override.is_delete():
        raise _error(path, expr, "a deletion (~) cannot be swept", "drop the ~ or the sweep")
    prefix = "++" if override.is_force_add() else "+" if override.is_add() else ""
    return Param(path, expr, _distribution(override, path, expr), prefix)


def _distribution(override: Override, path: str, expr: str) -> BaseDistribution:
    sweep = override.value()
    if isinstance(sweep, IntervalSweep):
        return _interval(sweep, path, expr)
    if isinstance(sweep, RangeSweep):
        return _range(sweep, path, expr)
    if isinstance(sweep, ChoiceSweep):
        return _choice(sweep, path, expr)
    raise _error(path, expr, "glob(...) is not supported", "list the options: choice(a, b, ...)")


def _interval(sweep: IntervalSweep, path: str, expr: str) -> BaseDistribution:
    log = _log_tag(sweep.tags, path, expr)
    low, high = sweep.start, sweep.end
    assert low is not None and high is not None
    _check_bounds(low, high, log, path, expr)
    if isinstance(low, int) and isinstance(high, int):
        return IntDistribution(low, high, log=log)
    return FloatDistribution(float(low), float(high), log=log)


def _range(sweep: RangeSweep, path: str, expr: str) -> BaseDistribution:
    log = _log_tag(sweep.tags, path, expr)
    start, stop, step = sweep.start, sweep.stop, sweep.step
    assert start is not None and stop is not None
    if step <= 0:
        raise _error(path, expr, f"step must be > 0, got {step}", "write an ascending range")
    if log and step != 1:
        raise _error(path, expr, "log scale cannot have a step", "use tag(log, range(a, b))")
    if isinstance(start, int) and isinstance(stop, int) and isinstance(step, int):
        count = max(0, -(-(stop - start) // step))  # ceil((stop - start) / step)
        last = start + (count - 1) * step
        _check_bounds(start, last, log, path, expr, count)
        return IntDistribution(start, last, log=log, step=step)
    if log:
        raise _error(path, expr, "log scale cannot have a step", "use tag(log, interval(a, b))")
    d_start, d_stop, d_step = (decimal.Decimal(repr(float(v))) for v in (start, stop, step))
    count = max(0, math.ceil((d_stop - d_start) / d_step))
    last_f = float(d_start + (count - 1) * d_step)
    _check_bounds(float(start), last_f, False, path, expr, count)
    return FloatDistribution(float(start), last_f, step=float(step))


def _choice(sweep: ChoiceSweep, path: str, expr: str) -> BaseDistribution:
    if sweep.tags:
        raise _error(path, expr, f"tags {sorted(sweep.tags)} do not apply to choice", "drop tag()")
    choices: list[bool | int | float | str | None] = []
    for item in sweep.list:
        c = item.text if isinstance(item, QuotedString) else item
        if c is None or isinstance(c, (bool, int, float, str)):
            choices.append(c)
        else:
            raise _error(
                path,
                expr,
                f"choice {c!r} is a {type(c).__name__}; Optuna takes null, bool, "
                "int, float or string",
                "use a config group option or a string instead",
            )
    for i, a in enumerate(choices):
        for b in choices[i + 1 :]:
            if a == b:
                raise _error(
                    path,
                    expr,
                    f"choices {a!r} and {b!r} are equal in Python, so Optuna cannot "
                    "tell them apart",
                    "remove one, or quote it to make it a string",
                )
    return CategoricalDistribution(choices)


def _log_tag(tags: set[str], path: str, expr: str) -> bool:
    if tags - {"log"}:
        raise _error(path, expr, f"unknown tags {sorted(tags - {'log'})}", "the only tag is log")
    return "log" in tags


def _check_bounds(
    low: float, high: float, log: bool, path: str, expr: str, count: int | None = None
) -> None:
    if count is not None and count < 2:
        raise _error(
            path,
            expr,
            f"the range holds {count} value(s) (stop is excluded), so low >= high",
            "widen it, or give a plain value to fix the parameter",
        )
    if low >= high:
        raise _error(path, expr, f"low ({low}) >= high ({high})", "the bounds need low < high")
    if log and low <= 0:
        raise _error(path, expr, f"log scale needs low > 0, got {low}", "use a positive low")


def _resolve_conditionals(
    params: list[Param],
    blocks: dict[str, dict[str, dict[str, Param]]],
    fixed: Mapping[str, _Fixed],
) -> tuple[Conditional, ...]:
    """Orders conditionals parents first; a fixed parent's option becomes unconditional."""
    known = {p.path: p for p in params}
    owner: dict[str, str] = {}  # conditional path -> its parent
    resolved: list[Conditional] = []
    pending = {parent: opts for parent, opts in blocks.items() if any(opts.values())}
    while pending:
        ready = [parent for parent in pending if parent in known or parent in fixed]
        if not ready:
            parent = next(iter(pending))
            raise SearchSpaceError(
                f"hydra.sweeper.conditional.{parent}: '{parent}' is not a param of the search "
                f"space (params: {sorted(known)}). Fix: add it to hydra.sweeper.params as "
                f"choice({', '.join(pending[parent])}), or fix it with {parent}=<option>."
            )
        for parent in ready:
            options = pending.pop(parent)
            if parent in fixed:  # its option's params become unconditional, the others go
                option = _text(fixed[parent].value)
                for p in options.get(option, {}).values():
                    _check_conditional_path(p, parent, option, known, owner, fixed)
                    params.append(p)
                    known[p.path] = p
                continue
            choices = _categorical_choices(known[parent])
            for option, block in options.items():
                if option not in choices:
                    raise _error(
                        parent,
                        known[parent].expr,
                        f"conditional option '{option}' is not among its choices",
                        f"use one of {sorted(choices)}",
                    )
                for p in block.values():
                    _check_conditional_path(p, parent, option, known, owner, fixed)
                    owner[p.path] = parent
                    known.setdefault(p.path, p)
                if block:
                    resolved.append(Conditional(parent, option, tuple(block.values())))
    return tuple(resolved)


def _categorical_choices(parent: Param) -> set[str]:
    if not isinstance(parent.distribution, CategoricalDistribution):
        raise _error(
            parent.path,
            parent.expr,
            "a conditional parent must be a categorical param",
            "make it choice(...)",
        )
    return {_text(c) for c in parent.distribution.choices}


def _check_conditional_path(
    p: Param,
    parent: str,
    option: str,
    known: dict[str, Param],
    owner: dict[str, str],
    fixed: Mapping[str, _Fixed],
) -> None:
    where = f"conditional {parent}={option}"
    if p.path in fixed:
        raise _error(
            p.path,
            p.expr,
            f"in {where} but also fixed by {fixed[p.path].line}",
            "remove one of them",
        )
    if p.path in known and owner.get(p.path) != parent:
        other = f"conditional on {owner[p.path]}" if p.path in owner else "unconditional"
        raise _error(
            p.path,
            p.expr,
            f"in {where} but also {other}: {known[p.path].expr}",
            "a path may appear in one place only (or under several options of one parent)",
        )
    if p.path in known and not (p.pinned or known[p.path].pinned):
        try:
            optuna.distributions.check_distribution_compatibility(
                known[p.path].distribution, p.distribution
            )
        except ValueError as e:
            raise _error(
                p.path,
                p.expr,
                f"in {where} clashes with {known[p.path].expr}: {e}",
                "use the same kind of distribution (and the same choices)",
            ) from None


def _no_duplicate(seen: Mapping[str, Any], item: Param | _Fixed, where: str) -> None:
    if item.path in seen:
        expr = item.expr if isinstance(item, Param) else item.line.partition("=")[2]
        raise _error(item.path, expr, f"duplicate path in {where}", "give each path once")


def _as_param(item: Param | _Fixed) -> Param:
    if isinstance(item, Param):
        return item
    value = item.value
    if not (value is None or isinstance(value, (bool, int, float, str))):
        raise _error(
            item.path,
            item.line,
            "a conditional plain value must be a scalar",
            "use a config group option instead",
        )
    key, _, expr = item.line.partition("=")
    prefix = key[: len(key) - len(key.lstrip("+"))]
    return Param(item.path, expr, CategoricalDistribution([value]), prefix, pinned=True)


def _suggest(trial: optuna.trial.BaseTrial, p: Param) -> Any:
    d = p.distribution
    if p.pinned:
        assert isinstance(d, CategoricalDistribution)
        return d.choices[0]
    if isinstance(d, FloatDistribution):
        return trial.suggest_float(p.path, d.low, d.high, step=d.step, log=d.log)
    if isinstance(d, IntDistribution):
        return trial.suggest_int(p.path, d.low, d.high, step=d.step, log=d.log)
    if isinstance(d, CategoricalDistribution):
        return trial.suggest_categorical(p.path, d.choices)
    raise TypeError(f"unsupported distribution {d!r} for {p.path}")


def _text(value: Any) -> str:
    """A YAML expression or option as text: strings as they are, other values as written."""
    return value if isinstance(value, str) else _format_value(value)


def _error(path: str, expr: str, problem: str, fix: str) -> SearchSpaceError:
    return SearchSpaceError(f"search space '{path}={expr}': {problem}. Fix: {fix}.")


@cache
def _parser() -> OverridesParser:
    return OverridesParser.create()


@lru_cache(maxsize=4096)
def _reads_back(text: str) -> bool:
    """True when ``key=text`` parses to exactly the string ``text`` without quotes."""
    try:
        override = _parser().parse_overrides([f"k={text}"])[0]
    except HydraException:
        return False
    return (
        not override.is_sweep_override()
        and override.value() == text
        and isinstance(override.value(), str)
    )
