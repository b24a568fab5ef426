"""`make`'s first step, scripts/check-disk: a disk too small for torch is named before pip starts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

SCRIPT = ROOT / "scripts" / "check-disk"


def _check(venv: Path, gib: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REGSWEEP_INSTALL_GIB": gib, "TMPDIR": str(tmp)}
    return subprocess.run(
        ["bash", str(SCRIPT), str(venv)], env=env, capture_output=True, text=True, check=False
    )


def _free_gib(path: Path) -> float:
    return shutil.disk_usage(path).free / 2**30


def test_a_disk_without_room_for_torch_is_named_with_its_free_space(tmp_path: Path) -> None:
    venv = tmp_path / "fresh" / ".venv"  # not there yet: its nearest existing folder is measured
    ask = int(_free_gib(tmp_path)) + 1000
    done = _check(venv, str(ask), tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1  # .venv and pip's downloads on one disk: said once
    free = float(re.search(r"([0-9.]+) GiB free at (\S+);", lines[0]).group(1))  # type: ignore[union-attr]
    assert abs(free - _free_gib(tmp_path)) < 1.0
    assert f"needs about {ask} GiB" in lines[0]
    assert "REGSWEEP_INSTALL_GIB" in lines[0] and "VENV=" in lines[0]
    assert not venv.parent.exists()  # nothing created


def test_a_disk_with_room_passes_quietly(tmp_path: Path) -> None:
    done = _check(tmp_path / ".venv", "0", tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


def test_a_venv_that_already_has_torch_asks_for_no_room(tmp_path: Path) -> None:
    venv = Path(sys.executable).parent.parent  # the tests' own environment imports torch
    done = _check(venv, str(int(_free_gib(tmp_path)) + 1000), tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


def test_a_bad_amount_is_named(tmp_path: Path) -> None:
    done = _check(tmp_path / ".venv", "lots", tmp_path)
    assert done.returncode == 2
    assert "REGSWEEP_INSTALL_GIB='lots'" in done.stderr and "whole number" in done.stderr


def test_make_checks_the_disk_before_it_makes_the_venv(tmp_path: Path) -> None:
    plan = subprocess.run(
        ["make", "--dry-run", "setup", f"VENV={tmp_path / 'v'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    check = next(i for i, line in enumerate(plan) if "scripts/check-disk" in line)
    venv = next(i for i, line in enumerate(plan) if "-m venv" in line)
    assert check < venv
