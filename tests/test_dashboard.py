"""End to end: a study made by the sweeper reads back through optuna-dashboard's JSON API.

The sweep runs as ``python -m sweep -m`` into a SQLite file; the dashboard runs as its own
process (the ``optuna-dashboard`` command) on a free port of 127.0.0.1 and is stopped afterwards.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import pytest

HOST = "127.0.0.1"
EPOCHS = 2
N_TRIALS = 2
STUDY = "dash-e2e"
START_TIMEOUT_S = 30.0

Cli = Callable[..., subprocess.CompletedProcess[str]]

# Straight to loopback, whatever http_proxy says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _dashboard_command() -> list[str]:
    script = Path(sys.executable).with_name("optuna-dashboard")
    if script.exists():
        return [str(script)]
    found = shutil.which("optuna-dashboard")
    if found:
        return [found]
    pytest.skip("optuna-dashboard is not installed (pip install -e '.[dev]')")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def get_json(base: str, path: str, timeout: float = 10.0) -> Any:
    with _OPENER.open(base + path, timeout=timeout) as resp:
        assert resp.status == 200, (path, resp.status)
        return json.loads(resp.read().decode())


@contextmanager
def dashboard(storage_url: str, log: Path, attempts: int = 3) -> Iterator[str]:
    """Start optuna-dashboard on a free loopback port; yield its base URL once it answers."""
    last = ""
    for _ in range(attempts):  # the free port may be taken before the server binds it
        port = _free_port()
        cmd = [
            *_dashboard_command(),
            storage_url,
            "--host",
            HOST,
            "--port",
            str(port),
            "--server",
            "wsgiref",
        ]
        with log.open("w") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            base = f"http://{HOST}:{port}"
            deadline = time.monotonic() + START_TIMEOUT_S
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    get_json(base, "/api/meta", timeout=2.0)
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    time.sleep(0.2)
                    continue
                yield base
                return
            last = log.read_text(errors="replace")[-3000:]
            if proc.poll() is None:
                raise AssertionError(
                    f"optuna-dashboard did not answer in {START_TIMEOUT_S} s:\n{last}"
                )
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
    raise AssertionError(f"optuna-dashboard exited before answering ({attempts} tries):\n{last}")


def test_dashboard_shows_sweep_trials_and_curves(cli: Cli, tmp_path: Path) -> None:
    db = tmp_path / "studies" / "dash.db"
    url = f"sqlite:///{db}"
    proc = cli(
        "-m",
        f"hydra.sweeper.storage={url}",
        f"hydra.sweeper.study_name={STUDY}",
        f"hydra.sweeper.n_trials={N_TRIALS}",
        f"trainer.epochs={EPOCHS}",
        "search=none",
        "regularizer=l2",
        "regularizer.l2=tag(log, interval(1e-6, 1e-2))",
        "hydra.sweeper.confirm.seeds=2",
        timeout=240,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    stored = optuna.load_study(study_name=STUDY, storage=url).get_trials()
    assert len(stored) == N_TRIALS

    with dashboard(url, tmp_path / "dashboard.log") as base:
        summaries = get_json(base, "/api/studies")["study_summaries"]
        # the search study and its confirmation study (the sampler never sees the latter)
        assert [s["study_name"] for s in summaries] == [STUDY, f"{STUDY}.confirm"]
        summary = summaries[0]
        assert summary["directions"] == ["maximize"]
        study_attrs = {a["key"] for a in summary["user_attrs"]}
        assert {"regsweep:search_space", "regsweep:metric"} <= study_attrs

        detail = get_json(base, f"/api/studies/{summary['study_id']}")
        confirm = get_json(base, f"/api/studies/{summaries[1]['study_id']}")

    assert detail["name"] == STUDY
    # the axis is labelled with the metric's name, not "Objective 0"
    assert detail["objective_names"] == ["val_acc"] == confirm["objective_names"]
    arms = [
        json.loads({a["key"]: a["value"] for a in t["user_attrs"]}["confirm"])
        for t in confirm["trials"]
    ]
    assert {a["seed"] for a in arms} == {1, 2} and {a["role"] for a in arms} >= {"finalist"}
    assert detail["has_intermediate_values"] is True
    trials = sorted(detail["trials"], key=lambda t: t["number"])
    assert [t["number"] for t in trials] == [t.number for t in stored]
    for shown, frozen in zip(trials, stored, strict=True):
        epochs_run = frozen.user_attrs["epochs_run"]
        assert 1 <= epochs_run <= EPOCHS
        assert shown["state"] == frozen.state.name.capitalize()
        attrs = {a["key"]: a["value"] for a in shown["user_attrs"]}
        assert attrs["epochs_run"] == str(epochs_run)
        assert attrs["stop_reason"] == frozen.user_attrs["stop_reason"]
        steps = {v["step"]: v["value"] for v in shown["intermediate_values"]}
        assert len(steps) == epochs_run
        assert steps == frozen.intermediate_values
        # The reported metric is val_acc, epoch by epoch, as stored in the curves.
        assert list(steps.values()) == pytest.approx(frozen.user_attrs["curves"]["val_acc"])
        if frozen.values is not None:
            assert shown["values"] == frozen.values
        params = {p["name"]: p["param_external_value"] for p in shown["params"]}
        assert params == {k: str(v) for k, v in frozen.params.items()}
