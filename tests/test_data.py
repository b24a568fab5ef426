"""Unit tests for ``sweep.data``: splits, formats round trips, errors, normalization, cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from sweep.config import DataConfig
from sweep.data import DataError, Splits, clear_cache, load_splits

try:  # tests/ as a package or as a plain folder on sys.path
    from tests.formats import write_cifar10, write_mnist
except ImportError:
    from formats import write_cifar10, write_mnist  # type: ignore[no-redef]

CPU = torch.device("cpu")
N_DIGITS = 1797


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def _load(**kw: object) -> Splits:
    return load_splits(DataConfig(**kw), device=CPU)  # type: ignore[arg-type]


def _canonical(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort (row, label) pairs into an order that depends only on their values."""
    xy = torch.cat([x.double(), y.double()[:, None]], dim=1)
    weights = torch.from_numpy(np.random.default_rng(123).standard_normal(xy.shape[1]))
    order = torch.argsort(xy @ weights)
    return x[order], y[order]


def _assert_same_multiset(
    x: torch.Tensor, y: torch.Tensor, x_ref: torch.Tensor, y_ref: torch.Tensor
) -> None:
    xs, ys = _canonical(x, y)
    xr, yr = _canonical(x_ref, y_ref)
    torch.testing.assert_close(xs, xr, rtol=0, atol=0)
    assert torch.equal(ys, yr)


# ----------------------------------------------------------------------------- digits / noise


def test_digits_split_sizes_shapes_and_partition() -> None:
    s = _load(name="digits", normalize="none", val_fraction=0.2, test_fraction=0.1)
    assert (s.input_shape, s.n_features, s.n_classes, s.name) == ((1, 8, 8), 64, 10, "digits")
    assert (len(s.y_val), len(s.y_test)) == (round(0.2 * N_DIGITS), round(0.1 * N_DIGITS))
    assert len(s.y_train) == N_DIGITS - len(s.y_val) - len(s.y_test)
    for x, y in ((s.x_train, s.y_train), (s.x_val, s.y_val), (s.x_test, s.y_test)):
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape == (len(y), 64)
    # Together the three splits are the bundled data scaled to [0, 1], each example once.
    bunch = load_digits()
    x_ref = torch.from_numpy(bunch.data).float() / 16
    y_ref = torch.from_numpy(bunch.target).long()
    _assert_same_multiset(
        torch.cat([s.x_train, s.x_val, s.x_test]),
        torch.cat([s.y_train, s.y_val, s.y_test]),
        x_ref,
        y_ref,
    )
    assert float(s.x_train.max()) == 1.0 and float(s.x_train.min()) == 0.0


def test_digits_split_is_deterministic_by_seed() -> None:
    a = _load(name="digits", split_seed=3)
    clear_cache()
    b = _load(name="digits", split_seed=3)
    c = _load(name="digits", split_seed=4)
    assert a.x_train is not b.x_train  # recomputed, not cached
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert a.x_train.shape == c.x_train.shape and not torch.equal(a.y_train, c.y_train)


def test_noise_is_deterministic_and_standard_normal() -> None:
    kw: dict[str, object] = {"name": "noise", "n_samples": 2000, "n_features": 7, "n_classes": 3}
    a = _load(**kw, split_seed=1, normalize="none")
    clear_cache()
    b = _load(**kw, split_seed=1, normalize="none")
    c = _load(**kw, split_seed=2, normalize="none")
    assert (a.input_shape, a.n_features, a.n_classes) == ((7,), 7, 3)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_val, c.x_val)
    x = torch.cat([a.x_train, a.x_val, a.x_test])
    y = torch.cat([a.y_train, a.y_val, a.y_test])
    assert x.shape == (2000, 7)
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05
    counts = torch.bincount(y, minlength=3)
    assert counts.numel() == 3 and int(counts.min()) > 550  # about 667 each


def test_noise_symmetric_applies_the_formula() -> None:
    raw = _load(name="noise", normalize="none")
    sym = _load(name="noise", normalize="symmetric")
    torch.testing.assert_close(sym.x_val, (raw.x_val - 0.5) / 0.5)


# ----------------------------------------------------------------------------- torchvision files


@pytest.mark.parametrize(("name", "kind"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_round_trip(tmp_path: Path, name: str, kind: str) -> None:
    w = write_mnist(tmp_path, 200, 50, kind=kind, seed=7)
    s = _load(name=name, root=str(tmp_path), normalize="none", val_fraction=0.15, test_fraction=0.4)
    assert (s.input_shape, s.n_features, s.n_classes) == ((1, 28, 28), 784, 10)
    # The source's own test split, in file order; test_fraction is ignored.
    expected_test = torch.from_numpy(w.x_test.reshape(50, -1)).float() / 255
    torch.testing.assert_close(s.x_test, expected_test, rtol=0, atol=0)
    assert torch.equal(s.y_test, torch.from_numpy(w.y_test))
    # Validation is carved from the training file; together they are that file.
    assert (len(s.y_val), len(s.y_train)) == (30, 170)
    _assert_same_multiset(
        torch.cat([s.x_train, s.x_val]),
        torch.cat([s.y_train, s.y_val]),
        torch.from_numpy(w.x_train.reshape(200, -1)).float() / 255,
        torch.from_numpy(w.y_train),
    )


def test_cifar10_round_trip_in_chw_order(tmp_path: Path) -> None:
    w = write_cifar10(tmp_path, 20, 15, seed=5)
    s = _load(name="cifar10", root=str(tmp_path), normalize="none", verify_checksums=False)
    assert (s.input_shape, s.n_features, s.n_classes) == ((3, 32, 32), 3072, 10)
    torch.testing.assert_close(s.x_test, torch.from_numpy(w.x_test).float() / 255, rtol=0, atol=0)
    assert torch.equal(s.y_test, torch.from_numpy(w.y_test))
    # Feature 0..1023 is the red plane: pixel (row 1, col 2) of channel c is feature c*1024+32+2.
    img = torch.from_numpy(w.x_test[3]).reshape(3, 32, 32)
    for c in range(3):
        assert round(float(s.x_test[3, c * 1024 + 32 + 2]) * 255) == int(img[c, 1, 2])
    assert (len(s.y_val), len(s.y_train)) == (15, 85)
    _assert_same_multiset(
        torch.cat([s.x_train, s.x_val]),
        torch.cat([s.y_train, s.y_val]),
        torch.from_numpy(w.x_train).float() / 255,
        torch.from_numpy(w.y_train),
    )


def test_cifar10_checksum_mismatch_is_an_error_when_verifying(tmp_path: Path) -> None:
    write_cifar10(tmp_path, 4, 4)
    with pytest.raises(DataError, match="checksum") as info:
        _load(name="cifar10", root=str(tmp_path), verify_checksums=True)
    assert "corrupted" in str(info.value) and "data.verify_checksums=false" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)  # torchvision's error is kept as cause


@pytest.mark.parametrize(
    ("name", "folder", "a_file"),
    [
        ("mnist", os.path.join("MNIST", "raw"), "train-images-idx3-ubyte"),
        ("fashion_mnist", os.path.join("FashionMNIST", "raw"), "t10k-labels-idx1-ubyte"),
        ("cifar10", "cifar-10-batches-py", "data_batch_1"),
    ],
)
def test_missing_files_say_where_and_how_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, folder: str, a_file: str
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # root "~/nowhere" must expand to this home
    with pytest.raises(DataError) as info:
        _load(name=name, root="~/nowhere", download=False)
    msg = str(info.value)
    assert os.path.join(str(tmp_path), "nowhere", folder) in msg
    assert a_file in msg and "data.download=true" in msg and "data.root=" in msg


def test_partly_missing_mnist_names_the_missing_file(tmp_path: Path) -> None:
    w = write_mnist(tmp_path, 10, 10)
    (w.folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"missing: t10k-labels-idx1-ubyte\."):
        _load(name="mnist", root=str(tmp_path))


def test_truncated_mnist_file_is_a_data_error(tmp_path: Path) -> None:
    w = write_mnist(tmp_path, 10, 10)
    path = w.folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match=str(w.folder)):
        _load(name="mnist", root=str(tmp_path))


# ----------------------------------------------------------------------------- preparation


def test_standardization_uses_training_statistics_only() -> None:
    raw = _load(name="digits", normalize="none", split_seed=2)
    std = _load(name="digits", normalize="standard", split_seed=2)
    mean_tr = raw.x_train.mean(0)
    sd_tr = raw.x_train.std(0, correction=0)
    constant = sd_tr == 0
    assert constant.any()  # digits has always-blank pixels
    torch.testing.assert_close(std.x_train.mean(0), torch.zeros(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        std.x_train.std(0, correction=0), (~constant).float(), atol=1e-4, rtol=0
    )
    scale = torch.where(constant, torch.ones_like(sd_tr), sd_tr)
    torch.testing.assert_close(std.x_val, (raw.x_val - mean_tr) / scale)
    assert float(std.x_val.mean(0).abs().max()) > 1e-3  # val was not standardized on its own
    assert all(torch.isfinite(t).all() for t in (std.x_train, std.x_val, std.x_test))


def test_a_feature_constant_in_training_stays_bounded_in_every_split() -> None:
    """With 300 training examples some digits pixels are always blank in training but not in
    validation; dividing by a floored std multiplied them by ~1e6 (epoch-1 val loss 8.46).
    Like scikit-learn's StandardScaler, a zero-variance feature is only centred."""
    raw = _load(name="digits", normalize="none", n_train=300)
    std = _load(name="digits", normalize="standard", n_train=300)
    constant = raw.x_train.std(0, correction=0) == 0
    varies_elsewhere = constant & (raw.x_val.std(0) > 0)
    assert varies_elsewhere.any()  # the case that used to blow up
    for raw_x, std_x in ((raw.x_val, std.x_val), (raw.x_test, std.x_test)):
        shift = raw.x_train[0, constant]  # the constant training value
        torch.testing.assert_close(std_x[:, constant], raw_x[:, constant] - shift)
        assert float(std_x[:, constant].abs().max()) <= 1.0  # pixels in [0, 1] stay bounded


def test_the_seed_draws_the_validation_split_and_never_the_test_split() -> None:
    a = load_splits(DataConfig(name="digits", normalize="none"), seed=0, device=CPU)
    b = load_splits(DataConfig(name="digits", normalize="none"), seed=1, device=CPU)
    # the same test examples, in the same order, for every seed
    torch.testing.assert_close(a.x_test, b.x_test, rtol=0, atol=0)
    assert torch.equal(a.y_test, b.y_test)
    # another validation split of the same size, drawn from the same non-test examples
    assert a.x_val.shape == b.x_val.shape and not torch.equal(a.x_val, b.x_val)
    _assert_same_multiset(
        torch.cat([a.x_train, a.x_val]),
        torch.cat([a.y_train, a.y_val]),
        torch.cat([b.x_train, b.x_val]),
        torch.cat([b.y_train, b.y_val]),
    )
    c = load_splits(DataConfig(name="digits", normalize="none", split_seed=5), seed=0, device=CPU)
    assert not torch.equal(a.y_test, c.y_test)  # split_seed moves the test split


def test_symmetric_normalization_maps_unit_interval_to_plus_minus_one() -> None:
    raw = _load(name="digits", normalize="none")
    sym = _load(name="digits", normalize="symmetric")
    torch.testing.assert_close(sym.x_test, raw.x_test * 2 - 1)
    assert float(sym.x_train.min()) == -1.0 and float(sym.x_train.max()) == 1.0


def test_label_noise_changes_train_labels_only() -> None:
    clean = _load(name="digits", split_seed=1)
    noisy = _load(name="digits", split_seed=1, label_noise=0.3)
    n = len(clean.y_train)
    assert int((noisy.y_train != clean.y_train).sum()) == round(0.3 * n)
    assert int(noisy.y_train.min()) >= 0 and int(noisy.y_train.max()) <= 9
    assert torch.equal(noisy.x_train, clean.x_train)
    assert torch.equal(noisy.y_val, clean.y_val) and torch.equal(noisy.y_test, clean.y_test)


def test_n_train_takes_a_prefix_of_the_shuffled_training_split() -> None:
    full = _load(name="digits", normalize="none")
    sub = _load(name="digits", normalize="none", n_train=100)
    assert torch.equal(sub.x_train, full.x_train[:100])
    assert torch.equal(sub.y_train, full.y_train[:100]) and torch.equal(sub.x_val, full.x_val)


def test_n_train_too_large_names_the_setting() -> None:
    with pytest.raises(DataError, match=r"data\.n_train=5000: only 1257 training examples"):
        _load(name="digits", n_train=5000)


def test_unknown_dataset_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"data\.name='svhn'"):
        _load(name="svhn")


# ----------------------------------------------------------------------------- cache and device


def test_cache_returns_the_same_tensors_without_rereading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets.mnist as tv_mnist

    write_mnist(tmp_path, 40, 10)
    reads: list[str] = []
    real_read = tv_mnist.read_image_file

    def counting_read(path: str) -> torch.Tensor:
        reads.append(path)
        return real_read(path)

    monkeypatch.setattr(tv_mnist, "read_image_file", counting_read)
    a = _load(name="mnist", root=str(tmp_path))
    b = _load(name="mnist", root=str(tmp_path), download=True)  # download does not matter
    assert len(reads) == 2  # train and test images, once
    assert b.x_train is a.x_train and b.y_val is a.y_val
    c = _load(name="mnist", root=str(tmp_path), label_noise=0.5)  # re-prepared from cached raw
    assert len(reads) == 2 and c.y_train is not a.y_train
    clear_cache()
    d = _load(name="mnist", root=str(tmp_path))
    assert len(reads) == 4 and d.x_train is not a.x_train and torch.equal(d.x_train, a.x_train)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_splits_live_on_the_requested_device() -> None:
    s = load_splits(DataConfig(name="digits"), device=torch.device("cuda"))
    assert all(t.is_cuda for t in (s.x_train, s.y_train, s.x_val, s.y_val, s.x_test, s.y_test))


def test_cifar10_writer_uses_python2_string_keys_like_the_real_files(tmp_path: Path) -> None:
    import pickle

    w = write_cifar10(tmp_path, 3, 2)
    with open(w.folder / "test_batch", "rb") as f:
        as_bytes = pickle.load(f, encoding="bytes")
    with open(w.folder / "batches.meta", "rb") as f:
        meta = pickle.load(f, encoding="latin1")
    assert set(as_bytes) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert np.array_equal(as_bytes[b"data"], w.x_test) and as_bytes[b"labels"] == list(w.y_test)
    assert meta["label_names"][0] == "airplane" and meta["num_vis"] == 3072


def test_bundled_digits_are_read_as_scikit_learn_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The file read directly (no sklearn.datasets import) and scikit-learn's own loader (the
    fallback where the file is elsewhere) give the same examples in the same order."""
    from sweep.data import _bundled

    bunch = load_digits()
    assert _bundled._digits_file() is not None and _bundled._digits_file("no_such_pkg") is None
    direct = _bundled.load_digits()
    monkeypatch.setattr(_bundled, "_digits_file", lambda package="sklearn": None)
    fallback = _bundled.load_digits()
    for raw in (direct, fallback):
        assert raw.x.dtype == torch.float32 and raw.y.dtype == torch.int64
        assert torch.equal(raw.x, torch.from_numpy(bunch.data).float())
        assert torch.equal(raw.y, torch.from_numpy(bunch.target).long())
        assert raw.x.shape == (N_DIGITS, 64) and raw.scale == 16.0 and raw.n_classes == 10
