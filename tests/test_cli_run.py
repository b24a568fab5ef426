"""End-to-end: ``python -m sweep`` single runs in a subprocess (output, metrics.json, errors)."""

from __future__ import annotations

import json
import math
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from sweep.record import CURVE_KEYS
from tests.helpers import ROOT

Cli = Callable[..., subprocess.CompletedProcess[str]]

# Keys a trial stores that a single run has no use for: no trial to group by family, no owner,
# no population, no confirmation arm.
TRIAL_ONLY = {"family", "population", "confirm", "owner", "end", "audit"}


def _record_keys() -> tuple[set[str], set[str], set[str]]:
    """(trial user-attribute keys, curve names, hparams names) as docs/trial-record.md has them."""
    text = (ROOT / "docs" / "trial-record.md").read_text()
    trial = text.split("Trial user attributes", 1)[1]
    keys: set[str] = set()
    rows = {}
    for line in trial.splitlines():
        if not line.startswith("| `"):
            continue
        first, _, rest = line[2:].partition(" | ")
        names = re.findall(r"`(?:regsweep:)?([a-z_0-9]+)`", first)
        keys.update(names)
        for name in names:
            rows[name] = rest
    curves = set(re.findall(r"`([a-z_0-9]+)`", rows["curves"].split(". ", 1)[0]))
    hparams = set(re.findall(r"`([a-z_0-9]+)`", rows["hparams"]))
    return keys, curves, hparams


def _explain(proc: subprocess.CompletedProcess[str]) -> str:
    out, err = proc.stdout[-3000:], proc.stderr[-3000:]
    return f"exit {proc.returncode}\n--- stdout\n{out}\n--- stderr\n{err}"


def test_single_run_prints_table_and_writes_metrics(cli: Cli, tmp_path: Path) -> None:
    proc = cli("trainer.epochs=2", timeout=120)
    assert proc.returncode == 0, _explain(proc)
    lines = proc.stdout.splitlines()
    header = [i for i, line in enumerate(lines) if line.split()[:3] == ["epoch", "tr", "loss"]]
    assert len(header) == 1, proc.stdout
    rows = [line for line in lines if re.match(r"\s*\d+\s+-?\d+\.\d{4}\s", line)]
    assert [r.split()[0] for r in rows] == ["1", "2"], proc.stdout
    assert lines.index(rows[0]) == header[0] + 1

    found = list((tmp_path / "outputs" / "runs").glob("*/metrics.json"))
    assert len(found) == 1, found
    assert str(found[0]) in proc.stdout  # the summary says where the metrics are
    m = json.loads(found[0].read_text())

    keys, curve_names, hparam_names = _record_keys()
    assert {"curves", "best_epoch", "stop_reason", "hparams", "choices"} <= keys  # doc parsed
    assert keys - TRIAL_ONLY <= set(m), sorted(keys - TRIAL_ONLY - set(m))
    assert curve_names == set(CURVE_KEYS)
    assert set(m["curves"]) == curve_names
    assert all(len(v) == 2 for v in m["curves"].values()), m["curves"]
    assert m["curves"]["epoch"] == [1, 2]
    assert hparam_names <= set(m["hparams"])

    # the numbers agree with each other and with the printed table
    assert (m["epochs_run"], m["epochs_max"], m["stop_reason"]) == (2, 2, "completed")
    assert m["device"] == "cpu" or m["device"].startswith("cuda")
    vals = m["curves"]["val_acc"]
    # the final model is the last epoch's; the best epoch is kept as a secondary figure
    assert m["final_epoch"] == 2 and m["val_acc"] == vals[-1]
    assert m["best_epoch"] in (1, 2) and m["best_epoch_val_acc"] == vals[m["best_epoch"] - 1]
    for row, acc, loss in zip(rows, vals, m["curves"]["train_loss"], strict=True):
        assert f"{acc:.4f}" in row.split() and f"{loss:.4f}" in row.split(), row
    assert m["gap_acc"] == m["curves"]["train_acc"][-1] - vals[-1]
    assert f"val acc {vals[-1]:.4f}" in proc.stdout
    assert 0.0 <= m["test_acc"] <= 1.0 and math.isfinite(m["test_loss"])
    assert m["choices"] == {
        "data": "digits",
        "model": "mlp",
        "regularizer": "none",
        "optimizer": "sgd",
        "scheduler": "none",
    }
    assert m["config"]["trainer"]["epochs"] == 2
    assert m["hparams"]["lr"] == m["config"]["optimizer"]["lr"]


def test_bad_range_exits_2_with_one_line_per_problem(cli: Cli, tmp_path: Path) -> None:
    proc = cli("regularizer=dropout", "regularizer.dropout=1.5", "trainer.epochs=0", timeout=120)
    assert proc.returncode == 2, _explain(proc)
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out
    bad = [line for line in out.splitlines() if "regularizer.dropout=1.5" in line]
    assert len(bad) == 1 and "[0.0, 1.0)" in bad[0], out
    epochs = [line for line in out.splitlines() if "trainer.epochs=0" in line]
    assert len(epochs) == 1 and epochs != bad, out
    assert "2 problem(s)" in out
    assert not list(tmp_path.glob("outputs/**/metrics.json"))


def test_missing_dataset_names_the_path_and_the_fix(cli: Cli, tmp_path: Path) -> None:
    nowhere = tmp_path / "nowhere"
    proc = cli("data=mnist", f"data.root={nowhere}", "trainer.epochs=1", timeout=120)
    assert proc.returncode != 0, _explain(proc)
    out = proc.stdout + proc.stderr
    assert str(nowhere) in out and "data.download=true" in out, out
    assert not nowhere.exists()  # nothing was downloaded or created there
    assert not list(tmp_path.glob("outputs/**/metrics.json"))


def test_a_diverged_run_writes_strict_json(cli: Cli, tmp_path: Path) -> None:
    """NaN and Infinity are not JSON (RFC 8259; jq and JavaScript refuse them): a diverged
    run's non-finite losses are null in its metrics.json."""
    proc = cli("optimizer.lr=1e9", "trainer.epochs=2", "trainer.progress=false", timeout=120)
    assert proc.returncode == 0, _explain(proc)
    (found,) = (tmp_path / "outputs" / "runs").glob("*/metrics.json")
    text = found.read_text()
    m = json.loads(text, parse_constant=lambda token: pytest.fail(f"{token} in {found}"))
    assert m["stop_reason"] == "diverged" and None in m["curves"]["train_loss"]
    assert text.startswith('{\n  "')  # indented, as before
