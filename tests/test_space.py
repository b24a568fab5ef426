"""Unit tests for the search space: override grammar ↔ Optuna distributions."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hydra_plugins.regsweep_sweeper._space import (
    Conditional,
    Param,
    SearchSpace,
    SearchSpaceError,
    parse_search_space,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

F, Int, C = FloatDistribution, IntDistribution, CategoricalDistribution

DISTRIBUTIONS: list[tuple[str, BaseDistribution]] = [
    ("interval(0, 1)", F(0.0, 1.0)),
    ("interval(1, 2)", F(1.0, 2.0)),  # ints without int() stay float
    ("interval(-1.5, 2.5)", F(-1.5, 2.5)),
    ("tag(log, interval(1e-6, 1e-2))", F(1e-6, 1e-2, log=True)),
    ("tag(log,interval(0.001,10))", F(0.001, 10.0, log=True)),
    ("int(interval(1, 10))", Int(1, 10)),
    ("int(interval(-3, 3))", Int(-3, 3)),
    ("tag(log, int(interval(1, 1024)))", Int(1, 1024, log=True)),
    ("int(tag(log, interval(2, 64)))", Int(2, 64, log=True)),
    ("range(1, 5)", Int(1, 4)),  # like Python's range: 1, 2, 3, 4
    ("range(0, 10, 2)", Int(0, 8, step=2)),
    ("range(0, 11, 2)", Int(0, 10, step=2)),
    ("range(1, 10, 3)", Int(1, 7, step=3)),
    ("range(-4, 4, 4)", Int(-4, 0, step=4)),
    ("int(range(1, 5))", Int(1, 4)),
    ("tag(log, range(1, 257))", Int(1, 256, log=True)),
    ("range(0.0, 1.0, 0.25)", F(0.0, 0.75, step=0.25)),
    ("range(0, 1, 0.1)", F(0.0, 0.9, step=0.1)),
    ("range(0.1, 0.55, 0.15)", F(0.1, 0.4, step=0.15)),  # 0.1, 0.25, 0.4
    ("float(range(1, 5))", F(1.0, 4.0, step=1.0)),
    ("range(1, 5.5)", F(1.0, 5.0, step=1.0)),
    ("choice(l1, l2, dropout)", C(("l1", "l2", "dropout"))),
    ("l1,l2,dropout", C(("l1", "l2", "dropout"))),
    ("choice(1, 2, 4)", C((1, 2, 4))),
    ("choice(0.1, 0.5)", C((0.1, 0.5))),
    ("choice(true, false)", C((True, False))),
    ("choice(adam, 'a b', \"c,d\")", C(("adam", "a b", "c,d"))),
    ("sgd,null", C(("sgd", None))),
    ("shuffle(choice(a, b))", C(("a", "b"))),
    ("str(choice(1, 2))", C(("1", "2"))),
    ("choice(single)", C(("single",))),
]


@pytest.mark.parametrize(("expr", "expected"), DISTRIBUTIONS)
def test_expression_to_distribution_from_yaml(expr: str, expected: BaseDistribution) -> None:
    space = parse_search_space({"model.x": expr})
    assert space.params == (Param("model.x", expr, expected),)
    assert space.fixed == ()


@pytest.mark.parametrize(("expr", "expected"), DISTRIBUTIONS)
def test_expression_to_distribution_from_cli(expr: str, expected: BaseDistribution) -> None:
    space = parse_search_space({}, cli_overrides=[f"model.x={expr}"])
    (param,) = space.params
    assert param.distribution == expected
    assert param.expr == expr


def test_choice_keeps_python_types() -> None:
    (param,) = parse_search_space({"x": "choice(2, 2.5, abc, true, '7')"}).params
    assert isinstance(param.distribution, CategoricalDistribution)
    choices = param.distribution.choices
    assert choices == (2, 2.5, "abc", True, "7")
    assert [type(c) for c in choices] == [int, float, str, bool, str]
    (param,) = parse_search_space({"x": "1,null,false"}).params
    assert isinstance(param.distribution, CategoricalDistribution)
    assert [type(c) for c in param.distribution.choices] == [int, type(None), bool]


def test_group_choice_and_added_keys() -> None:
    space = parse_search_space(
        {}, cli_overrides=["regularizer=choice(l1,l2,dropout)", "+model.extra=interval(0,1)"]
    )
    group, extra = space.params
    assert (group.path, group.key, group.distribution) == (
        "regularizer",
        "regularizer",
        C(("l1", "l2", "dropout")),
    )
    assert (extra.path, extra.prefix, extra.key) == ("model.extra", "+", "+model.extra")
    assert space.to_overrides({"regularizer": "l2", "model.extra": 0.5}) == [
        "regularizer=l2",
        "+model.extra=0.5",
    ]


def test_yaml_scalars_are_fixed_overrides() -> None:
    space = parse_search_space(
        {"trainer.epochs": 5, "lr": 1e-07, "flag": True, "name": "adam", "x": None, "y": "a b"}
    )
    assert space.params == ()
    assert space.fixed == (
        "trainer.epochs=5",
        "lr=1e-07",
        "flag=true",
        "name=adam",
        "x=null",
        "y=a b",
    )


def test_cli_plain_overrides_are_fixed_in_order() -> None:
    cli = ["trainer.epochs=5", "+foo=bar", "~baz", "++q=[1,2]", "opt=choice(sgd,adam)"]
    space = parse_search_space({"data.n": 100}, cli_overrides=cli)
    assert space.fixed == ("data.n=100", "trainer.epochs=5", "+foo=bar", "~baz", "++q=[1,2]")
    assert [p.path for p in space.params] == ["opt"]
    assert space.to_overrides({"opt": "sgd"})[1:] == list(space.fixed)


def test_cli_sweep_overrides_yaml_param_in_place() -> None:
    space = parse_search_space(
        {"a": "interval(0, 1)", "b": "choice(x, y)"}, cli_overrides=["a=tag(log,interval(1e-3,1))"]
    )
    assert [(p.path, p.distribution) for p in space.params] == [
        ("a", F(1e-3, 1.0, log=True)),
        ("b", C(("x", "y"))),
    ]


def test_cli_fixed_value_replaces_yaml_param() -> None:
    space = parse_search_space(
        {"a": "interval(0, 1)", "b": "choice(x, y)"}, cli_overrides=["a=0.3"]
    )
    assert [p.path for p in space.params] == ["b"]
    assert space.fixed == ("a=0.3",)


def test_cli_sweep_replaces_conditional_distribution_and_keeps_it_conditional() -> None:
    space = parse_search_space(
        {"reg": "choice(l1, l2)"},
        {"reg": {"l1": {"reg.l1": "interval(0, 1)"}}},
        cli_overrides=["reg.l1=tag(log, interval(1e-5, 1e-1))"],
    )
    assert [p.path for p in space.params] == ["reg"]
    (cond,) = space.conditionals
    assert (cond.parent, cond.option) == ("reg", "l1")
    assert cond.params[0].distribution == F(1e-5, 1e-1, log=True)


def test_fixed_parent_promotes_its_option_and_drops_the_others() -> None:
    conditional = {
        "reg": {"l1": {"reg.l1": "interval(0, 1)"}, "l2": {"reg.l2": "interval(0, 2)"}},
    }
    space = parse_search_space({"reg": "choice(l1, l2)"}, conditional, cli_overrides=["reg=l2"])
    assert space.conditionals == ()
    assert [(p.path, p.distribution) for p in space.params] == [("reg.l2", F(0.0, 2.0))]
    assert space.fixed == ("reg=l2",)
    # A fixed value without conditionals of its own keeps none of them.
    space = parse_search_space({"reg": "dropout"}, conditional)
    assert (space.params, space.conditionals, space.fixed) == ((), (), ("reg=dropout",))


def _error(
    params: dict[str, Any],
    conditional: dict[str, Any] | None = None,
    cli: tuple[str, ...] = (),
) -> str:
    with pytest.raises(SearchSpaceError) as info:
        parse_search_space(params, conditional, cli)
    return str(info.value)


ERRORS: list[tuple[dict[str, Any], dict[str, Any] | None, tuple[str, ...], list[str]]] = [
    ({"a.b": "interval(0, 1"}, None, (), ["a.b=interval(0, 1", "cannot parse", "allowed:"]),
    ({"a": "choice()"}, None, (), ["a=choice()", "empty choice"]),
    ({}, None, ("a=interval(,1)",), ["a=interval(,1)", "the command line"]),
    ({"a": "choice(x, null)"}, None, (), ["a=choice(x, null)", "write a,b,null"]),
    ({"lr": "interval(1, 0.5)"}, None, (), ["lr=interval(1, 0.5)", "low (1.0) >= high (0.5)"]),
    ({"lr": "interval(2, 2)"}, None, (), ["lr=interval(2, 2)", "low (2.0) >= high (2.0)"]),
    ({"n": "int(interval(5, 1))"}, None, (), ["n=int(interval(5, 1))", ">= high"]),
    ({"n": "range(5, 1)"}, None, (), ["n=range(5, 1)", "holds 0 value(s)"]),
    ({"n": "range(1, 2)"}, None, (), ["n=range(1, 2)", "holds 1 value(s)"]),
    ({"n": "range(1, 5, -1)"}, None, (), ["n=range(1, 5, -1)", "step must be > 0"]),
    ({"n": "range(1, 5, 0)"}, None, (), ["n=range(1, 5, 0)", "step must be > 0"]),
    ({"lr": "tag(log, interval(0, 1))"}, None, (), ["lr=tag(log, interval(0, 1))", "low > 0"]),
    ({"lr": "tag(log, interval(-1, 1))"}, None, (), ["lr=", "log scale needs low > 0"]),
    ({"n": "tag(log, range(0, 8))"}, None, (), ["n=tag(log, range(0, 8))", "low > 0"]),
    ({"n": "tag(log, range(1, 9, 2))"}, None, (), ["n=tag(log, range(1, 9, 2))", "step"]),
    ({"x": "tag(log, range(0.5, 4.0))"}, None, (), ["x=tag(log, range(0.5, 4.0))", "step"]),
    ({"x": "tag(lin, interval(0, 1))"}, None, (), ["x=tag(lin, interval(0, 1))", "'lin'"]),
    ({"x": "tag(log, choice(1, 2))"}, None, (), ["x=tag(log, choice(1, 2))", "drop tag()"]),
    ({"x": "choice(1, true)"}, None, (), ["x=choice(1, true)", "equal in Python"]),
    ({"x": "choice(1, 1.0)"}, None, (), ["x=choice(1, 1.0)", "equal in Python"]),
    ({"x": "a,b,a"}, None, (), ["x=a,b,a", "'a' and 'a'"]),
    ({"x": "choice([1,2],[3])"}, None, (), ["x=choice([1,2],[3])", "is a list"]),
    ({"x": "glob(*)"}, None, (), ["x=glob(*)", "glob(...) is not supported"]),
    ({}, None, ("~x=choice(a,b)",), ["x=choice(a,b)", "deletion"]),
    ({}, None, ("a=interval(0,1)", "a=choice(1,2)"), ["a=choice(1,2)", "duplicate path"]),
    ({"a": 1, "+a": 2}, None, (), ["'a=", "duplicate path in hydra.sweeper.params"]),
    (
        {"lr": "interval(0, 1)"},
        {"lr": {"x": {"m": "interval(0, 1)"}}},
        (),
        ["lr=interval(0, 1)", "must be a categorical"],
    ),
    (
        {"opt": "choice(sgd, adam)"},
        {"reg": {"l1": {"reg.l1": "interval(0, 1)"}}},
        (),
        ["hydra.sweeper.conditional.reg", "'reg' is not a param", "['opt']", "choice(l1)"],
    ),
    (
        {"opt": "choice(sgd, adam)"},
        {"opt": {"rmsprop": {"opt.alpha": "interval(0, 1)"}}},
        (),
        ["opt=choice(sgd, adam)", "'rmsprop' is not among", "['adam', 'sgd']"],
    ),
    (
        {"opt": "choice(sgd, adam)", "opt.lr": "interval(0, 1)"},
        {"opt": {"sgd": {"opt.lr": "interval(0, 2)"}}},
        (),
        ["opt.lr=interval(0, 2)", "conditional opt=sgd", "also unconditional"],
    ),
    (
        {"opt": "choice(sgd, adam)", "reg": "choice(l1, l2)"},
        {"opt": {"sgd": {"m": "interval(0, 1)"}}, "reg": {"l1": {"m": "interval(0, 1)"}}},
        (),
        ["m=interval(0, 1)", "conditional reg=l1", "also conditional on opt"],
    ),
    (
        {"opt": "choice(sgd, adam)"},
        {"opt": {"sgd": {"m": "interval(0, 1)"}, "adam": {"m": "int(interval(0, 1))"}}},
        (),
        ["m=int(interval(0, 1))", "clashes with interval(0, 1)", "different distribution"],
    ),
    (
        {"opt": "choice(sgd, adam)"},
        {"opt": {"sgd": {"m": "choice(a, b)"}, "adam": {"m": "choice(a, c)"}}},
        (),
        ["m=choice(a, c)", "clashes with choice(a, b)"],
    ),
    (
        {"opt": "choice(sgd, adam)", "m": 3},
        {"opt": {"sgd": {"m": "interval(0, 1)"}}},
        (),
        ["m=interval(0, 1)", "also fixed by m=3"],
    ),
    ({}, {"opt": {"sgd": {"m": [1, 2]}}}, ("opt=sgd",), ["m=[1,2]", "must be a scalar"]),
]


@pytest.mark.parametrize(("params", "conditional", "cli", "fragments"), ERRORS)
def test_errors_name_path_expression_and_fix(
    params: dict[str, Any],
    conditional: dict[str, Any] | None,
    cli: tuple[str, ...],
    fragments: list[str],
) -> None:
    message = _error(params, conditional, cli)
    for fragment in fragments:
        assert fragment in message
    assert "Fix:" in message or "allowed:" in message


def test_search_space_error_is_a_value_error() -> None:
    assert issubclass(SearchSpaceError, ValueError)


CONDITIONAL: dict[str, Any] = {
    "regularizer": {
        "l1": {"regularizer.l1": "tag(log, interval(1e-6, 1e-2))"},
        "l2": {"regularizer.l2": "tag(log, interval(1e-5, 1e-1))", "model.bn": "true,false"},
        "dropout": {"model.dropout": "interval(0.0, 0.7)", "model.dropout_kind": "plain,alpha"},
    },
    "model.dropout_kind": {"alpha": {"model.alpha_scale": "range(1, 4)"}},  # nested
    "opt": {"sgd": {"opt.momentum": "interval(0, 0.99)"}, "adam": {"opt.beta": 0.9}},
}
PARAMS = {"regularizer": "choice(l1, l2, dropout)", "opt": "sgd,adam", "lr": "interval(0, 1)"}


def _expected_paths(values: dict[str, Any]) -> set[str]:
    paths = {"regularizer", "opt", "lr"}
    paths.add("opt.momentum" if values["opt"] == "sgd" else "opt.beta")
    reg = values["regularizer"]
    paths |= {"l1": {"regularizer.l1"}, "l2": {"regularizer.l2", "model.bn"}}.get(reg, set())
    if reg == "dropout":
        paths |= {"model.dropout", "model.dropout_kind"}
        if values["model.dropout_kind"] == "alpha":
            paths.add("model.alpha_scale")
    return paths


def test_conditionals_with_a_real_study() -> None:
    space = parse_search_space(PARAMS, CONDITIONAL)
    assert [c.parent for c in space.conditionals].index("model.dropout_kind") > 2  # parents first
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: set[str] = set()
    for _ in range(30):
        trial = study.ask()
        values = space.suggest(trial)
        assert set(values) == _expected_paths(values)
        pinned = {k: v for k, v in values.items() if k == "opt.beta"}
        assert {k: v for k, v in values.items() if k not in pinned} == trial.params
        if values["opt"] == "adam":
            assert values["opt.beta"] == 0.9  # a plain value there is pinned, not searched
            assert "opt.beta" not in trial.params
        else:
            assert 0.0 <= values["opt.momentum"] <= 0.99
        seen.add(f"{values['regularizer']}/{values.get('model.dropout_kind')}")
        study.tell(trial, 0.0)
    assert seen == {"l1/None", "l2/None", "dropout/plain", "dropout/alpha"}


def test_suggest_with_fixed_trial() -> None:
    space = parse_search_space(PARAMS, CONDITIONAL)
    chosen = {"regularizer": "l1", "opt": "adam", "lr": 0.25, "regularizer.l1": 1e-4}
    values = space.suggest(optuna.trial.FixedTrial({**chosen, "opt.beta": 0.9}))
    assert values == {**chosen, "opt.beta": 0.9}
    assert space.to_overrides(values) == [
        "regularizer=l1",
        "opt=adam",
        "lr=0.25",
        "regularizer.l1=0.0001",
        "opt.beta=0.9",
    ]


def test_numeric_and_bool_options_match_conditionals() -> None:
    space = parse_search_space(
        {"depth": "choice(2, 3)", "bn": "true,false"},
        {"depth": {"3": {"w3": "interval(0, 1)"}}, "bn": {True: {"mom": "interval(0, 1)"}}},
    )
    assert [(c.parent, c.option) for c in space.conditionals] == [("depth", "3"), ("bn", "true")]
    values = space.suggest(optuna.trial.FixedTrial({"depth": 3, "bn": False, "w3": 0.5}))
    assert values == {"depth": 3, "bn": False, "w3": 0.5}


PARSER = OverridesParser.create()
ROUND_TRIP = [
    1e-07,
    -2.5e-12,
    0.1,
    2.0,
    3,
    -4,
    0,
    True,
    False,
    None,
    float("inf"),
    "l1",
    "a b",
    "c,d",
    "it's",
    'say "hi"',
    "back\\slash'",
    "true",
    "null",
    "5",
    "1e-3",
    "",
    " padded ",
    "x=y",
    "choice(a,b)",
    "[1,2]",
    "${oc.env:HOME}",
    "naïve",
]


@pytest.mark.parametrize("value", ROUND_TRIP)
def test_to_overrides_round_trips_through_hydra(value: Any) -> None:
    space = parse_search_space({}, cli_overrides=["x=interval(0,1)", "+y.z=choice(a,b)"])
    lines = space.to_overrides({"x": value, "y.z": value})
    parsed = PARSER.parse_overrides(lines)
    assert [o.get_key_element() for o in parsed] == ["x", "+y.z"]
    for override in parsed:
        assert not override.is_sweep_override()
        assert override.value() == value
        assert type(override.value()) is type(value)


def test_to_overrides_nan_and_unknown() -> None:
    space = parse_search_space({"x": "interval(0, 1)"}, cli_overrides=["k=2"])
    (line, fixed) = space.to_overrides({"x": float("nan")})
    assert math.isnan(PARSER.parse_overrides([line])[0].value())  # type: ignore[arg-type]
    assert fixed == "k=2"
    with pytest.raises(SearchSpaceError, match="unknown params \\['nope'\\]"):
        space.to_overrides({"nope": 1})


def test_as_dict_rebuilds_the_same_space() -> None:
    space = parse_search_space(
        {**PARAMS, "trainer.epochs": 5},
        CONDITIONAL,
        cli_overrides=["+extra=int(interval(1,4))", "data=mnist"],
    )
    stored = space.as_dict()
    assert stored["params"]["regularizer"] == "choice(l1, l2, dropout)"
    assert stored["params"]["+extra"] == "int(interval(1,4))"
    assert stored["conditional"]["regularizer"]["l2"] == {
        "regularizer.l2": "tag(log, interval(1e-5, 1e-1))",
        "model.bn": "true,false",
    }
    assert stored["conditional"]["opt"]["adam"] == {"opt.beta": "0.9"}
    assert stored["cli_overrides"] == ["trainer.epochs=5", "data=mnist"]
    assert parse_search_space(**stored) == space


def test_bounds_cover_every_path() -> None:
    space = parse_search_space(
        {"opt": "choice(sgd, adam)", "n": "range(1, 10, 2)", "g": "a,b"},
        {"opt": {"sgd": {"lr": "interval(0.01, 0.5)"}, "adam": {"lr": "interval(1e-4, 0.1)"}}},
        cli_overrides=["e=3"],
    )
    assert space.bounds() == {
        "opt": ["sgd", "adam"],
        "n": [1, 9],
        "g": ["a", "b"],
        "lr": [1e-4, 0.5],
    }


def test_dataclasses_are_frozen() -> None:
    space = SearchSpace(params=(), conditionals=(Conditional("a", "b", ()),), fixed=())
    with pytest.raises(AttributeError):
        space.params = ()  # type: ignore[misc]


def test_pinned_values_may_differ_per_option_and_are_not_optuna_params() -> None:
    """A preset pins the same key to different values per option (000's L1 vs L2 arms)."""
    space = parse_search_space(
        {"reg": "choice(none, l1, l2)"},
        {"reg": {"l1": {"r.l1": 0.01}, "l2": {"r.l1": 0.0, "r.l2": 0.01}, "none": {"r.l1": 0.0}}},
    )
    from hydra_plugins.regsweep_sweeper._samplers import make_sampler

    study = optuna.create_study(sampler=make_sampler({"name": "grid", "seed": 0}, space))
    seen = {}
    for _ in range(3):
        trial = study.ask()
        values = space.suggest(trial)
        assert trial.params == {"reg": values["reg"]}
        seen[values["reg"]] = space.to_overrides(values)
        optuna.load_study(study_name=study.study_name, storage=study._storage).tell(
            trial.number, 1.0
        )
    assert seen == {
        "none": ["reg=none", "r.l1=0.0"],
        "l1": ["reg=l1", "r.l1=0.01"],
        "l2": ["reg=l2", "r.l1=0.0", "r.l2=0.01"],
    }
    assert sorted(space.bounds()["r.l1"]) == [0.0, 0.01]
