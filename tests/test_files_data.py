"""``data=files``: the user's own .npz, .csv and image folders, in their real on-disk formats."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from sweep.config import AppConfig, ConfigError, DataConfig, validate
from sweep.data import DataError, Splits, clear_cache, load_splits
from sweep.run import run

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def _files(path: Path | str, **kw: object) -> Splits:
    return load_splits(DataConfig(name="files", path=str(path), **kw), device=CPU)  # type: ignore[arg-type]


def _digits_npz(tmp_path: Path) -> Path:
    bunch = load_digits()
    path = tmp_path / "digits.npz"
    np.savez(
        path, x=bunch.data, y=bunch.target
    )  # float64 0..16 and int64 0..9, as sklearn has them
    return path


def _digits_csv(tmp_path: Path) -> Path:
    import pandas as pd

    bunch = load_digits()
    frame = pd.DataFrame(bunch.data.astype(np.int64), columns=[f"p{i}" for i in range(64)])
    frame.insert(10, "target", bunch.target)  # the label column need not be first or last
    path = tmp_path / "digits.csv"
    frame.to_csv(path, index=False)
    return path


def _same_splits(a: Splits, b: Splits) -> None:
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0, msg=name)
    assert a.n_classes == b.n_classes == 10


def _cfg(data: dict[str, object], seed: int = 3) -> AppConfig:
    cfg = AppConfig()
    for key, value in data.items():
        setattr(cfg.data, key, value)
    cfg.model.hidden = [32]
    cfg.model.dropout = 0.2
    cfg.trainer.epochs, cfg.trainer.seed = 3, seed
    cfg.trainer.device, cfg.trainer.progress = "cpu", False
    return validate(cfg)


@pytest.mark.parametrize("kind", ["npz", "csv"])
def test_digits_saved_as_a_file_gives_the_numbers_of_data_digits(tmp_path: Path, kind: str) -> None:
    path = _digits_npz(tmp_path) if kind == "npz" else _digits_csv(tmp_path)
    data = {"name": "files", "path": str(path), "label": "target"}
    for seed in (0, 5):  # the test split fixed by split_seed, validation drawn by the seed
        digits = load_splits(DataConfig(name="digits"), seed=seed, device=CPU)
        mine = load_splits(DataConfig(**data), seed=seed, device=CPU)  # type: ignore[arg-type]
        _same_splits(mine, digits)
    curves = run(_cfg(data)).summary["curves"]
    bundled = run(_cfg({"name": "digits"})).summary["curves"]
    for key in ("train_loss", "val_loss", "val_acc", "weight_l2", "grad_norm"):
        assert curves[key] == bundled[key], key  # the same numbers, not merely close
    assert curves["val_acc"][-1] > 0.8


def test_npz_predefined_splits_are_used_as_given(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, x_val, x_test = (rng.normal(size=(n, 3)).astype(np.float32) for n in (50, 7, 9))
    y, y_val, y_test = (np.arange(n) % 3 for n in (50, 7, 9))
    path = tmp_path / "own.npz"
    np.savez(path, x=x, y=y, x_val=x_val, y_val=y_val, x_test=x_test, y_test=y_test)
    a = _files(path, normalize="none", val_fraction=0.5, test_fraction=0.3)  # fractions unused
    torch.testing.assert_close(a.x_val, torch.from_numpy(x_val), rtol=0, atol=0)
    torch.testing.assert_close(a.x_test, torch.from_numpy(x_test), rtol=0, atol=0)
    assert a.y_test.tolist() == y_test.tolist() and a.y_val.tolist() == y_val.tolist()
    assert a.x_train.shape == (50, 3) and a.input_shape == (3,)
    # the whole training pool, shuffled by the seed; n_train takes a random subset of it
    b = load_splits(
        DataConfig(name="files", path=str(path), normalize="none", n_train=20), seed=1, device=CPU
    )
    assert sorted(a.y_train.tolist()) == sorted(y.tolist()) and len(b.y_train) == 20
    assert not torch.equal(a.x_train[:20], b.x_train)


def test_only_a_test_split_carves_validation_by_the_seed(tmp_path: Path) -> None:
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    path = tmp_path / "t.npz"
    np.savez(path, x=x, y=np.arange(20) % 2, x_test=x[:4] + 100, y_test=np.array([0, 1, 0, 1]))
    a = load_splits(
        DataConfig(name="files", path=str(path), normalize="none", val_fraction=0.25),
        seed=0,
        device=CPU,
    )
    b = load_splits(
        DataConfig(name="files", path=str(path), normalize="none", val_fraction=0.25),
        seed=1,
        device=CPU,
    )
    assert (len(a.y_train), len(a.y_val), len(a.y_test)) == (15, 5, 4)
    assert float(a.x_test.min()) == 100.0 and torch.equal(a.x_test, b.x_test)
    assert not torch.equal(a.x_val, b.x_val)


def test_labels_map_to_consecutive_classes_and_images_keep_their_shape(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(30, 5, 4), dtype=np.uint8)  # (N, H, W) 8-bit images
    y = np.array([9, 3, 5] * 10)
    path = tmp_path / "img.npz"
    np.savez(path, x=x, y=y)
    s = _files(path, normalize="none", val_fraction=0.2, test_fraction=0.2)
    assert (s.input_shape, s.n_features, s.n_classes) == ((1, 5, 4), 20, 3)
    xs = torch.cat([s.x_train, s.x_val, s.x_test])
    ys = torch.cat([s.y_train, s.y_val, s.y_test])
    assert sorted(ys.tolist()) == sorted(np.searchsorted([3, 5, 9], y).tolist())
    assert float(xs.max()) <= 1.0 and float(xs.max()) > 0.9  # uint8 pixels divided by 255
    first = xs[(ys == 2).nonzero()[0, 0]]  # a "9": its pixels are one of the rows of x with y=9
    assert any(torch.equal(first, torch.from_numpy(r.reshape(-1)).float() / 255) for r in x[y == 9])


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((20, 2)), y=np.arange(20) % 2)
    a = _files(path, normalize="none")
    assert _files(path, normalize="none").x_train is a.x_train  # cached
    np.savez(path, x=np.full((20, 2), 7.0), y=np.arange(20) % 2)
    os.utime(path, ns=(1, 1))  # a different modification time even on a coarse clock
    b = _files(path, normalize="none")
    assert float(b.x_train.max()) == 7.0


# --------------------------------------------------------------------------- bad files


def _npz(tmp_path: Path, **arrays: object) -> Path:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return path


X10 = np.zeros((10, 3))
Y10 = np.arange(10) % 2

BAD = {
    "missing file": (lambda t: t / "nowhere.npz", "no such file or folder"),
    "unknown kind": (
        lambda t: (t / "data.txt").write_text("1,2") and t / "data.txt",
        "unknown kind of file (.txt)",
    ),
    "not an npz": (
        lambda t: (t / "data.npz").write_text("hello") and t / "data.npz",
        "could not be read as a .npz",
    ),
    "x/y lengths": (lambda t: _npz(t, x=X10, y=Y10[:9]), "x has 10 rows but y has 9 labels"),
    "fractional labels": (lambda t: _npz(t, x=X10, y=Y10 + 0.5), "labels must be integers"),
    "text labels": (
        lambda t: _npz(t, x=X10, y=np.array(["cat", "dog"] * 5)),
        "labels must be integers",
    ),
    "NaN features": (
        lambda t: _npz(t, x=np.where(np.eye(10, 3) > 0, np.nan, 0.0), y=Y10),
        "x has 3 NaN or infinite value(s)",
    ),
    "single class": (lambda t: _npz(t, x=X10, y=np.full(10, 4)), "a single class"),
    "no y": (lambda t: _npz(t, x=X10, labels=Y10), "missing y; unknown array(s) labels"),
    "x_val alone": (lambda t: _npz(t, x=X10, y=Y10, x_val=X10), "x_val without y_val"),
    "csv label column": (lambda t: _csv(t, "a,b,label\n1,2,0\n3,4,1\n"), "no label column 'y'"),
    "csv text labels": (lambda t: _csv(t, "a,y\n1,cat\n2,dog\n"), "labels must be integers"),
    "csv missing label": (
        lambda t: _csv(t, "a,y\n1,0\n2,\n3,1\n"),
        "holds nan at row 1 (counting from 0)",
    ),
    "csv inf feature": (lambda t: _csv(t, "a,b,y\n1,2,0\n3,inf,1\n"), "first at row 1"),
    "csv text feature": (lambda t: _csv(t, "a,b,y\n1,x,0\n3,z,1\n"), "column(s) b are not numeric"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_file_is_a_clear_data_error_naming_the_file(tmp_path: Path, case: str) -> None:
    make, expected = BAD[case]
    path = make(tmp_path)
    with pytest.raises(DataError) as info:
        _files(path, label="y")
    message = str(info.value)
    assert expected in message, message
    assert str(path) in message


def test_data_path_is_required_with_data_files_and_refused_without() -> None:
    cfg = AppConfig()
    cfg.data.name = "files"
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    assert info.value.problems == [
        "data.path=None: allowed a .npz or .csv file or an image folder (data=files reads the "
        "file it names)"
    ]
    cfg.data.name, cfg.data.path = "digits", "x.npz"
    with pytest.raises(ConfigError, match=r"data\.path='x\.npz': allowed null unless data=files"):
        validate(cfg)


# --------------------------------------------------------------------------- image folders


def _write_pngs(
    root: Path, sizes: dict[str, list[tuple[int, int]]], mode: str = "RGB"
) -> dict[str, list[np.ndarray]]:
    from PIL import Image

    rng = np.random.default_rng(2)
    written: dict[str, list[np.ndarray]] = {}
    for cls, dims in sizes.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i, (w, h) in enumerate(dims):
            shape = (h, w, 3) if mode == "RGB" else (h, w)
            pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
            Image.fromarray(pixels, mode=mode).save(root / cls / f"{i:03d}.png")
            written.setdefault(cls, []).append(pixels)
    return written


def test_image_folder_round_trip_with_real_png_files(tmp_path: Path) -> None:
    written = _write_pngs(
        tmp_path / "imgs", {"cat": [(6, 5)] * 6, "dog": [(6, 5)] * 5, "emu": [(6, 5)] * 4}
    )
    s = _files(tmp_path / "imgs", normalize="none", val_fraction=0.2, test_fraction=0.2)
    assert (s.input_shape, s.n_features, s.n_classes) == ((3, 5, 6), 90, 3)
    xs = torch.cat([s.x_train, s.x_val, s.x_test])
    ys = torch.cat([s.y_train, s.y_val, s.y_test])
    assert torch.bincount(ys).tolist() == [6, 5, 4]  # classes in sorted folder order
    expected = {
        (c, torch.from_numpy(p.transpose(2, 0, 1).reshape(-1)).float().div(255).sum().item())
        for c, ps in enumerate(written.values())
        for p in ps
    }
    got = {(int(y), float(x.sum())) for x, y in zip(xs, ys, strict=True)}
    assert {(c, round(v, 3)) for c, v in got} == {(c, round(v, 3)) for c, v in expected}
    # CHW order: feature c*H*W + r*W + col is channel c of pixel (r, col)
    cat0 = torch.from_numpy(written["cat"][0].transpose(2, 0, 1).reshape(-1)).float() / 255
    assert any(torch.equal(row, cat0) for row in xs)


def test_grayscale_images_have_one_channel(tmp_path: Path) -> None:
    _write_pngs(tmp_path / "g", {"a": [(4, 4)] * 3, "b": [(4, 4)] * 3}, mode="L")
    s = _files(tmp_path / "g", val_fraction=0.2, test_fraction=0.2)
    assert s.input_shape == (1, 4, 4)


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ({"a": [(4, 4), (4, 4)], "b": [(4, 4), (5, 4)]}, "images differ in size"),
        ({"only": [(4, 4)] * 4}, "one class subfolder ('only')"),
    ],
)
def test_bad_image_folders_are_data_errors(tmp_path: Path, layout: dict, expected: str) -> None:
    _write_pngs(tmp_path / "bad", layout)
    with pytest.raises(DataError, match=expected.replace("(", r"\(").replace(")", r"\)")) as info:
        _files(tmp_path / "bad")
    assert str(tmp_path / "bad") in str(info.value)


def test_an_empty_folder_is_not_an_image_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not an image folder"):
        _files(tmp_path / "empty")


def test_the_cli_reports_a_bad_file_and_exits_2(tmp_path: Path) -> None:
    from tests.helpers import child_env, run_cli

    path = _csv(tmp_path, "a,b,target\n1,2,0\n3,4,0\n")
    proc = run_cli(
        ["data=files", f"data.path={path}", "data.label=target", "trainer.epochs=1"],
        cwd=tmp_path,
        env=child_env(),
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{path}: every label is 0: a single class" in proc.stdout + proc.stderr
