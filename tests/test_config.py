"""Config tier: every group option composes and validates; every bad input fails early, clearly."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import DictConfig, OmegaConf

import sweep.run as run_module
from sweep.__main__ import to_app_config
from sweep.config import AppConfig, ConfigError, validate
from sweep.data import clear_cache
from sweep.run import member_settings, resolve_device, run
from tests.helpers import CONF, compose_config

GROUPS = ("data", "model", "regularizer", "optimizer", "scheduler", "search", "experiment")


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


ALL_OPTIONS = [(g, o) for g in GROUPS for o in _options(g)]
# Options that need a value only the user has (validate() refuses them without it).
NEEDS = {
    "data=files": ["data.path=my_data.npz"],
    "model=custom": ["model.target=tests.custom_nets.TinyNet"],
}
REGULARIZERS = _options("regularizer")
TINY = (
    "data=digits",
    "trainer.epochs=1",
    "trainer.device=cpu",
    "trainer.progress=false",
    "model.hidden=[16]",
)

# What each regularizer option must switch on (options added later are checked generically).
SWITCHES = {
    "none": set(),
    "l1": {"l1"},
    "l2": {"l2"},
    "elastic_net": {"l1", "l2"},
    "dropout": {"dropout"},
    "weight_decay": {"weight_decay"},
    "clip": {"clip"},
    "early_stop": {"early_stop"},
    "cocktail": {"l1", "l2", "dropout", "weight_decay", "clip", "early_stop"},
}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_the_groups_have_options() -> None:
    for group in ("data", "model", "regularizer", "optimizer", "scheduler", "search"):
        assert _options(group), group
    assert set(SWITCHES) <= set(REGULARIZERS)
    assert {"digits", "noise", "mnist", "fashion_mnist", "cifar10"} <= set(_options("data"))


def _flatten(values: dict, prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for key, value in values.items():
        if isinstance(value, dict):
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


@pytest.mark.parametrize(("group", "option"), ALL_OPTIONS, ids=[f"{g}={o}" for g, o in ALL_OPTIONS])
def test_every_group_option_composes_and_validates(group: str, option: str) -> None:
    cfg = compose_config([f"{group}={option}", *NEEDS.get(f"{group}={option}", [])])
    app = to_app_config(cfg)  # to_object + validate, as ``python -m sweep`` does
    assert isinstance(app, AppConfig)
    if group in ("data", "model", "regularizer", "optimizer", "scheduler"):
        # the option's own ``name`` is the option name (the group options are the registry)
        assert getattr(app, group).name == option
        # and the option's YAML values arrive in the typed config
        values = OmegaConf.to_container(OmegaConf.load(CONF / group / f"{option}.yaml"))
        assert isinstance(values, dict)
        node = OmegaConf.structured(getattr(app, group))
        for key, value in _flatten(values):
            if f"{group}.{key}=" in " ".join(NEEDS.get(f"{group}={option}", [])):
                continue  # the user's value replaces the option's placeholder
            got = OmegaConf.select(node, key)
            assert got == (pytest.approx(value) if isinstance(value, float) else value), key


def _overriding_pairs() -> list[tuple[str, str]]:
    """(regularizer option, other group's option) for every regularizer that sets a value the
    model or optimizer also has (dropout p, weight decay): they must combine with every option."""
    pairs = []
    for reg in REGULARIZERS:
        values = OmegaConf.load(CONF / "regularizer" / f"{reg}.yaml")
        assert isinstance(values, DictConfig)
        if values.get("weight_decay") is not None:
            pairs += [(reg, f"optimizer={o}") for o in _options("optimizer")]
        if values.get("dropout") is not None:
            pairs += [(reg, f"model={o}") for o in _options("model")]
    return pairs


@pytest.mark.parametrize(("regularizer", "other"), _overriding_pairs())
def test_regularizer_options_combine_with_the_other_groups(regularizer: str, other: str) -> None:
    # e.g. ``python -m sweep -m optimizer=adamw`` runs the default search (regularizer=cocktail):
    # if the pair does not validate, every trial of that sweep fails.
    cfg = compose_config([f"regularizer={regularizer}", other, *NEEDS.get(other, [])])
    if other == "model=logreg":
        # Dropout acts after hidden activations; a model without any refuses it loudly
        # instead of silently training without the regularizer that was asked for.
        with pytest.raises(ConfigError, match="model without hidden layers"):
            to_app_config(cfg)
        return
    app = to_app_config(cfg)
    assert app.regularizer.name == regularizer


def test_regularizer_weight_decay_overrides_the_optimizers() -> None:
    app = to_app_config(
        compose_config(
            ["optimizer=adamw", "regularizer=weight_decay", "regularizer.weight_decay=0.003"]
        )
    )
    assert app.optimizer.weight_decay == 0.01
    assert member_settings(app).weight_decay == 0.003


def test_default_config_is_valid() -> None:
    app = to_app_config(compose_config())
    assert (app.data.name, app.model.name, app.regularizer.name) == ("digits", "mlp", "none")
    assert validate(AppConfig()) is not None


def _switched_on(app: AppConfig) -> set[str]:
    m = member_settings(app)
    on = set()
    if m.penalty.l1 > 0:
        on.add("l1")
    if m.penalty.l2 > 0:
        on.add("l2")
    if m.dropout > 0:
        on.add("dropout")
    if m.weight_decay > 0:
        on.add("weight_decay")
    if m.clip is not None:
        on.add("clip")
    if m.early_stop is not None:
        on.add("early_stop")
    return on


@pytest.mark.parametrize("option", REGULARIZERS)
def test_each_regularizer_is_wired_and_runs(option: str) -> None:
    app = to_app_config(compose_config([f"regularizer={option}", *TINY]))
    r = app.regularizer
    settings = member_settings(app)
    # the strengths that act are the option's, folded as documented
    assert settings.penalty.l1 == pytest.approx(r.l1 + r.elastic * r.l1_ratio)
    assert settings.penalty.l2 == pytest.approx(r.l2 + r.elastic * (1 - r.l1_ratio))
    p = r.dropout if r.dropout is not None else app.model.dropout
    assert settings.dropout == p
    wd = r.weight_decay if r.weight_decay is not None else app.optimizer.weight_decay
    assert settings.weight_decay == pytest.approx(wd)
    assert settings.clip == r.clip
    assert (settings.early_stop.patience if settings.early_stop else None) == r.early_stop.patience
    if option in SWITCHES:
        assert _switched_on(app) == SWITCHES[option]

    outcome = run(app)
    s = outcome.summary
    assert s["stop_reason"] == "completed" and s["epochs_run"] == 1
    assert len(s["curves"]["val_acc"]) == 1
    assert s["curves"]["val_loss"][0] < 2.3  # below chance level (ln 10) after one epoch
    assert s["val_acc"] > 0.3
    assert s["hparams"]["dropout"] == p and s["hparams"]["weight_decay"] == wd
    assert s["hparams"]["clip"] == (r.clip or 0.0)


# --------------------------------------------------------------------------- bad values

BAD: list[tuple[list[str], str, str]] = [
    # overrides, "key=value" the message must contain, part of the allowed range
    (["model.dropout=1.0"], "model.dropout=1.0", "[0.0, 1.0)"),
    (["model.dropout=-0.1"], "model.dropout=-0.1", "[0.0, 1.0)"),
    (["regularizer=dropout", "regularizer.dropout=1.5"], "regularizer.dropout=1.5", "[0.0, 1.0)"),
    (["regularizer.dropout=-0.2"], "regularizer.dropout=-0.2", "[0.0, 1.0)"),
    (["regularizer.l1=-0.001"], "regularizer.l1=-0.001", "[0.0, inf)"),
    (["regularizer.l2=-1"], "regularizer.l2=-1.0", "[0.0, inf)"),
    (["regularizer.elastic=-0.5"], "regularizer.elastic=-0.5", "[0.0, inf)"),
    (["regularizer.l1=nan"], "regularizer.l1=nan", "finite"),
    (["regularizer.l1_ratio=1.5"], "regularizer.l1_ratio=1.5", "[0.0, 1.0]"),
    (["regularizer.l1_ratio=-0.1"], "regularizer.l1_ratio=-0.1", "[0.0, 1.0]"),
    (["regularizer.clip=0"], "regularizer.clip=0.0", "(0.0, inf)"),
    (["regularizer.clip=-1"], "regularizer.clip=-1.0", "(0.0, inf)"),
    (["regularizer.weight_decay=-0.1"], "regularizer.weight_decay=-0.1", "[0.0, inf)"),
    (["regularizer.scale=mean"], "regularizer.scale='mean'", "plain, half_mean"),
    (["regularizer.apply_to=biases"], "regularizer.apply_to='biases'", "weights, all"),
    (["regularizer.early_stop.patience=0"], "regularizer.early_stop.patience=0", "[1, inf)"),
    (["regularizer.early_stop.monitor=loss"], "regularizer.early_stop.monitor='loss'", "val_loss"),
    (["regularizer.early_stop.min_delta=-1"], "regularizer.early_stop.min_delta=-1.0", "[0.0"),
    (["optimizer.lr=0"], "optimizer.lr=0.0", "(0.0, inf)"),
    (["optimizer.lr=-0.1"], "optimizer.lr=-0.1", "(0.0, inf)"),
    (["optimizer.momentum=1"], "optimizer.momentum=1.0", "[0.0, 1.0)"),
    (["optimizer.momentum=-0.5"], "optimizer.momentum=-0.5", "[0.0, 1.0)"),
    (["optimizer.weight_decay=-1"], "optimizer.weight_decay=-1.0", "[0.0, inf)"),
    (["optimizer.eps=0"], "optimizer.eps=0.0", "(0.0, inf)"),
    (["optimizer.betas=[0.9,1.0]"], "optimizer.betas[1]=1.0", "[0.0, 1.0)"),
    (["optimizer.betas=[0.9]"], "optimizer.betas=[0.9]", "two numbers"),
    (["optimizer=adam", "optimizer.nesterov=true"], "optimizer.nesterov=True", "optimizer=sgd"),
    (["optimizer.nesterov=true", "optimizer.momentum=0"], "optimizer.nesterov=True", "momentum"),
    (["optimizer.name=rmsprop"], "optimizer.name='rmsprop'", "sgd, adam, adamw"),
    (["trainer.epochs=0"], "trainer.epochs=0", "[1, inf)"),
    (["trainer.batch_size=0"], "trainer.batch_size=0", "[1, inf)"),
    (["trainer.eval_batch_size=0"], "trainer.eval_batch_size=0", "[1, inf)"),
    (["trainer.device=tpu"], "trainer.device='tpu'", "auto, cpu, cuda or cuda:N"),
    (["trainer.device=cuda:x"], "trainer.device='cuda:x'", "cuda:N"),
    (
        ["data.val_fraction=0.5", "data.test_fraction=0.5"],
        "data.val_fraction+data.test_fraction=1.0",
        "below 1",
    ),
    (["data.val_fraction=0"], "data.val_fraction=0.0", "(0.0, 1.0)"),
    (["data.test_fraction=-0.1"], "data.test_fraction=-0.1", "[0.0, 1.0)"),
    (["data.label_noise=1"], "data.label_noise=1.0", "[0.0, 1.0)"),
    (["data.label_noise=-0.1"], "data.label_noise=-0.1", "[0.0, 1.0)"),
    (["data.n_train=0"], "data.n_train=0", "[1, inf) or null"),
    (["data.name=svhn"], "data.name='svhn'", "digits, noise, mnist, fashion_mnist, cifar10"),
    (["data.normalize=minmax"], "data.normalize='minmax'", "none, standard, symmetric"),
    (["data=noise", "data.n_classes=1"], "data.n_classes=1", "[2, inf)"),
    (["data=noise", "data.n_samples=5"], "data.n_samples=5", "[10, inf)"),
    (["model.hidden=[16,0]"], "model.hidden[1]=0", "[1, inf)"),
    (["model.activation=gelu"], "model.activation='gelu'", "relu, sigmoid, tanh"),
    (["model.name=vit"], "model.name='vit'", "mlp, logreg"),
    (["scheduler=step", "scheduler.step_size=0"], "scheduler.step_size=0", "[1, inf)"),
    (["scheduler=step", "scheduler.gamma=0"], "scheduler.gamma=0.0", "(0.0, 1.0]"),
    (["scheduler=cosine", "scheduler.t_max=0"], "scheduler.t_max=0", "[1, inf) or null"),
    (["scheduler.eta_min=-1"], "scheduler.eta_min=-1.0", "[0.0, inf)"),
    (["metric=test_acc"], "metric='test_acc'", "val_acc, val_loss, gap_acc, gap_loss"),
    (["trainer.threads=0"], "trainer.threads=0", "[1, inf) or null"),
    (["trainer.max_population=0"], "trainer.max_population=0", "[1, inf) or null"),
    # one setting in two places
    (
        ["model.dropout=0.3", "regularizer.dropout=0.5"],
        "regularizer.dropout=0.5",
        "null when model.dropout is set (0.3)",
    ),
    (
        ["model=logreg", "model.dropout=0.3"],
        "model.dropout=0.3",
        "0 for a model without hidden layers",
    ),
]


@pytest.mark.parametrize(("overrides", "expected", "allowed"), BAD, ids=[b[1] for b in BAD])
def test_bad_value_names_key_value_and_allowed_range(
    overrides: list[str], expected: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as info:
        to_app_config(compose_config(overrides))
    problems = info.value.problems
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected + ":"), problems[0]
    assert "allowed" in problems[0] and allowed in problems[0], problems[0]
    assert expected in str(info.value)


@pytest.mark.parametrize(
    "overrides",
    [
        # the same value twice is no conflict
        ["regularizer=dropout", "model.dropout=0.3", "regularizer.dropout=0.3"],
        [
            "regularizer=weight_decay",
            "optimizer.weight_decay=0.01",
            "regularizer.weight_decay=0.01",
        ],
        ["regularizer.l1_ratio=1.0", "regularizer.l1_ratio=0.0"],
        ["data.test_fraction=0", "data.val_fraction=0.99"],
        ["optimizer.momentum=0.9", "optimizer.nesterov=true"],
        ["regularizer.dropout=0.0", "model.dropout=0.0", "data.label_noise=0.99"],
        ["trainer.device=cuda:1"],  # well-formed; whether it exists is checked at run time
    ],
)
def test_boundary_values_are_accepted(overrides: list[str]) -> None:
    assert isinstance(to_app_config(compose_config(overrides)), AppConfig)


def test_every_problem_is_reported_at_once() -> None:
    bad = ["trainer.epochs=0", "optimizer.lr=-1", "regularizer.l1_ratio=2", "data.name=svhn"]
    with pytest.raises(ConfigError) as info:
        to_app_config(compose_config(bad))
    assert len(info.value.problems) == 4
    text = str(info.value)
    assert "4 problem(s)" in text
    lines = text.splitlines()[1:]
    for key in ("trainer.epochs=0", "optimizer.lr=-1.0", "regularizer.l1_ratio=2.0", "data.name"):
        assert sum(key in line for line in lines) == 1, (key, lines)


# --------------------------------------------------------------------------- composition errors


def test_unknown_group_option_lists_the_available_ones() -> None:
    with pytest.raises(MissingConfigException) as info:
        compose_config(["regularizer=l3"])
    text = str(info.value)
    assert "regularizer/l3" in text
    for option in REGULARIZERS:
        assert f"\t{option}\n" in text or text.endswith(f"\t{option}"), option


def test_wrong_type_fails_at_composition() -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_config(["trainer.epochs=abc"])
    chain = f"{info.value} {info.value.__cause__}"
    assert "trainer.epochs" in chain and "abc" in chain
    assert "int" in chain.lower()


def test_unknown_key_fails_at_composition() -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_config(["regularizer.l3=0.1"])
    assert "l3" in f"{info.value} {info.value.__cause__}"


def test_a_stored_config_is_typed_back_as_it_was_composed() -> None:
    """A job reads its config back from the trial's stored plain data (``from_dict``): the same
    typed config as the composition, and a wrong stored value named with its key."""
    import dataclasses
    import json

    from sweep.config import from_dict

    for overrides in (["regularizer=cocktail"], ["model=cnn", "data=noise"], ["optimizer=adamw"]):
        app = to_app_config(compose_config(overrides))
        stored = json.loads(json.dumps(dataclasses.asdict(app)))  # as the sweeper stores it
        assert from_dict(stored) == app
    typed = from_dict({"optimizer": {"lr": 1, "betas": [0, 1]}, "regularizer": {"clip": None}})
    assert type(typed.optimizer.lr) is float and typed.optimizer.lr == 1.0
    assert [type(b) for b in typed.optimizer.betas] == [float, float]
    assert typed.regularizer.clip is None and typed.model.hidden == AppConfig().model.hidden
    bad = {
        '{"trainer": 5}': "trainer=5: allowed a mapping",
        '{"trainer": {"epochs": "3"}}': "trainer.epochs='3': allowed a int",
        '{"trainer": {"epochs": true}}': "trainer.epochs=True: allowed a int",
        '{"model": {"hidden": 64}}': "model.hidden=64: allowed a list",
        '{"model": {"hidden": [64, "x"]}}': "model.hidden[1]='x': allowed a int",
        '{"model": {"widths": [64]}}': "model.widths: unknown key; allowed ",
        '{"trial": {"stage": 1}}': "trial.stage=1: allowed a str",
    }
    for text, message in bad.items():
        with pytest.raises(ConfigError) as info:
            from_dict(json.loads(text))
        assert info.value.problems[0].startswith(message), (text, info.value.problems)


# --------------------------------------------------------------------------- devices


def test_resolve_device_cpu_and_auto() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"trainer\.device='{name}'.*CUDA is not available"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_run_checks_the_device_before_loading_data(
    app_config: Callable[..., AppConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_data(*args: object, **kwargs: object) -> None:
        raise AssertionError("data was loaded before the device was checked")

    monkeypatch.setattr(run_module, "load_splits", no_data)
    clear_cache()
    app = validate(app_config("trainer.device=cuda", "trainer.epochs=1"))
    with pytest.raises(ConfigError, match=r"trainer\.device='cuda'"):
        run(app)
