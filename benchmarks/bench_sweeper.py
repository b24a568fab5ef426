"""The sweeper's cost and the pruner's savings (issue "Sweeper", section 6).

1. **Framework overhead per trial.** ``direct``: :func:`sweep.run.run` on the composed default
   config (``regularizer=none trainer.epochs=20 trainer.progress=false``), in this process.
   ``framework``: ``python -m sweep -m`` with ``search=none`` (no parameter searched: every trial
   is that same config), no pruner, a fresh SQLite study in a temp dir. The per-trial cycle is
   read from the study itself: the time between consecutive trials' ``datetime_start`` (set by
   ``study.ask()``) covers ask → launch the Hydra job → job reconnects to its trial, trains,
   reports each epoch to the storage, stores its record and tells → the sweeper settles and
   accounts → next ask. Interpreter start-up and imports happen before the first ask, so they
   are not in any gap; the gap after trial 0 (which loads the data) is dropped. Overhead% =
   (median gap − median direct run) / median direct run, per round, median over rounds.
   Cross-check from outside: (wall of an N-trial sweep − wall of a 1-trial sweep) / (N − 1).
   Target ≤ 5 %.
2. **Pruning savings.** The default study (digits, ``search=regularization``, TPE seed 0) run
   twice, with the median pruner (the default) and with ``pruner.name=none``; total epochs
   trained (``epochs_run`` of each trial) and the best validation accuracy of each study.
   Target: ≥ 2× fewer epochs with the best validation accuracy within 0.5 points.
"""

from __future__ import annotations

import itertools
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import ROOT, Target, median, result

NAME = "sweeper"
DIRECT_OVERRIDES = ("regularizer=none", "trainer.epochs=20", "trainer.progress=false")
_PROGRESS = re.compile(r"\d+/\d+ done")


# ---------------------------------------------------------------------------------- helpers


def compose(overrides: Sequence[str]) -> Any:
    """The validated typed config ``python -m sweep <overrides>`` would run (Hydra compose API)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from sweep.config import AppConfig, register_configs, validate

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=list(overrides))
    app = OmegaConf.to_object(cfg)
    assert isinstance(app, AppConfig), type(app)
    return validate(app)


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def sweep_cli(
    args: Sequence[str], *, cwd: Path, label: str, echo_progress: bool = False
) -> tuple[float, float]:
    """Run ``python -m sweep -m <args>`` in ``cwd``; return its wall and CPU seconds."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "sweep", "-m", *args]
    tail: list[str] = []
    c0, t0 = _children_cpu(), time.perf_counter()
    with subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = [*tail[-40:], line.rstrip()]
            if echo_progress and _PROGRESS.search(line) and "[HYDRA]" in line:
                print(f"    {label}: {line.split('[HYDRA]')[-1].strip()}", flush=True)
        rc = proc.wait()
    seconds, cpu = time.perf_counter() - t0, _children_cpu() - c0
    if rc != 0:
        body = "\n".join(tail)
        raise RuntimeError(f"{label}: `{' '.join(cmd)}` exited with {rc}:\n{body}")
    return seconds, cpu


def load_trials(db: Path, study: str) -> list[Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.load_study(study_name=study, storage=f"sqlite:///{db}")
    return sorted(s.get_trials(deepcopy=False), key=lambda t: t.number)


def _study_args(db: Path, study: str, sweep_dir: Path) -> list[str]:
    return [
        f"hydra.sweeper.storage=sqlite:///{db}",
        f"hydra.sweeper.study_name={study}",
        f"hydra.sweep.dir={sweep_dir}",
    ]


# ---------------------------------------------------------------------------------- overhead


def _direct_runs(cfg: Any, n: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``n`` calls of ``sweep.run.run(cfg)`` in this process."""
    from sweep.run import run

    wall, cpu = [], []
    for _ in range(n):
        c0, t0 = time.process_time(), time.perf_counter()
        run(cfg)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def _framework_sweep(tmp: Path, tag: str, n_trials: int) -> tuple[float, float, list[Any]]:
    db = tmp / f"{tag}.db"
    args = [
        "search=none", *DIRECT_OVERRIDES,
        f"hydra.sweeper.n_trials={n_trials}", "hydra.sweeper.pruner.name=none",
        *_study_args(db, tag, tmp / tag),
    ]  # fmt: skip
    wall, cpu = sweep_cli(args, cwd=tmp, label=tag)
    return wall, cpu, load_trials(db, tag)


def _gaps(trials: Sequence[Any]) -> list[float]:
    """Seconds from one trial's ask to the next one's, after the warm-up trial 0."""
    starts = [t.datetime_start for t in trials]
    return [(b - a).total_seconds() for a, b in itertools.pairwise(starts[1:])]


def overhead(*, quick: bool) -> tuple[list[Target], dict[str, Any]]:
    rounds, n_trials, n_direct = (2, 6, 4) if quick else (3, 12, 8)
    cfg = compose(DIRECT_OVERRIDES)
    print(f"  overhead: {rounds} rounds of {n_direct} direct runs, {n_trials}- and 1-trial sweeps")
    _direct_runs(cfg, 1)  # warm-up: data cache, first-call costs
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="regsweep-bench-") as d:
        tmp = Path(d)
        for r in range(rounds):
            direct, direct_cpu = _direct_runs(cfg, n_direct)
            wall_n, cpu_n, trials = _framework_sweep(tmp, f"overhead-r{r}-n{n_trials}", n_trials)
            wall_1, cpu_1, _ = _framework_sweep(tmp, f"overhead-r{r}-n1", 1)
            states = {t.state.name for t in trials}
            if states != {"COMPLETE"} or len(trials) != n_trials:
                raise RuntimeError(f"overhead sweep: want {n_trials} COMPLETE trials, got {states}")
            gaps = _gaps(trials)
            row: dict[str, Any] = {
                "direct_seconds": direct,
                "direct_cpu_seconds": direct_cpu,
                "gap_seconds": gaps,
                "job_seconds": [(t.datetime_complete - t.datetime_start).total_seconds()
                                for t in trials],
                "fit_seconds_in_job": [t.user_attrs.get("run_seconds") for t in trials],
                "sweep_wall_n": wall_n,
                "sweep_wall_1": wall_1,
                "sweep_cpu_n": cpu_n,
                "sweep_cpu_1": cpu_1,
                "overhead_pct": 100.0 * (median(gaps) / median(direct) - 1.0),
                "diff_per_trial": (wall_n - wall_1) / (n_trials - 1),
                "cpu_diff_per_trial": (cpu_n - cpu_1) / (n_trials - 1),
            }  # fmt: skip
            row["diff_overhead_pct"] = 100.0 * (row["diff_per_trial"] / median(direct) - 1.0)
            row["cpu_diff_overhead_pct"] = 100.0 * (
                row["cpu_diff_per_trial"] / median(direct_cpu) - 1.0
            )
            rows.append(row)
            print(
                f"  round {r + 1}/{rounds}: direct {median(direct):.3f}s, framework cycle "
                f"{median(gaps):.3f}s → overhead {row['overhead_pct']:+.1f}% "
                f"(wall difference {row['diff_overhead_pct']:+.1f}%, "
                f"CPU difference {row['cpu_diff_overhead_pct']:+.1f}%)",
                flush=True,
            )
    all_direct = [x for row in rows for x in row["direct_seconds"]]
    all_gaps = [x for row in rows for x in row["gap_seconds"]]
    all_job = [x for row in rows for x in row["job_seconds"][1:]]
    all_fit = [x for row in rows for x in row["fit_seconds_in_job"][1:] if x is not None]
    measured = median([row["overhead_pct"] for row in rows])
    summary = {
        "n_trials_per_sweep": n_trials,
        "direct_runs_per_round": n_direct,
        "rounds": rounds,
        "median_direct_seconds": median(all_direct),
        "median_framework_cycle_seconds": median(all_gaps),
        "median_overhead_seconds": median(all_gaps) - median(all_direct),
        "overhead_pct_per_round": [row["overhead_pct"] for row in rows],
        "overhead_pct": measured,
        "wall_difference_overhead_pct": median([row["diff_overhead_pct"] for row in rows]),
        "cpu_difference_overhead_pct": median([row["cpu_diff_overhead_pct"] for row in rows]),
        # Where the cycle goes: inside the job (ask → tell, datetime_complete − datetime_start)
        # vs fit() itself (run_seconds); the rest of the cycle is launcher + sweeper bookkeeping.
        "median_job_seconds": median(all_job),
        "median_fit_seconds_in_job": median(all_fit),
        "rows": rows,
    }
    name = "framework per-trial overhead vs direct run(cfg), 20-epoch digits"
    target = Target(name, measured, "<=", 5.0, "%")
    return [target], summary


# ---------------------------------------------------------------------------------- pruning


def _study_summary(trials: Sequence[Any]) -> dict[str, Any]:
    from optuna.trial import TrialState

    epochs = [int(t.user_attrs.get("epochs_run", len(t.intermediate_values))) for t in trials]
    complete = [t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    return {
        "n_trials": len(trials),
        "states": states,
        "total_epochs": sum(epochs),
        "epochs_per_trial": epochs,
        "best_val_acc": max(complete) if complete else float("nan"),
    }


def pruning(*, quick: bool) -> tuple[list[Target], dict[str, Any]]:
    n_trials, epochs = (12, 10) if quick else (40, 20)
    extra = [f"hydra.sweeper.n_trials={n_trials}", f"trainer.epochs={epochs}"]
    arms: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="regsweep-bench-") as d:
        tmp = Path(d)
        for arm, pruner in (("median", []), ("none", ["hydra.sweeper.pruner.name=none"])):
            db = tmp / f"pruning-{arm}.db"
            print(f"  pruning: default study, {n_trials} trials, ≤{epochs} epochs, pruner={arm}")
            wall, _ = sweep_cli(
                [*extra, *pruner, *_study_args(db, arm, tmp / arm)],
                cwd=tmp, label=f"pruner={arm}", echo_progress=True,
            )  # fmt: skip
            arms[arm] = {**_study_summary(load_trials(db, arm)), "wall_seconds": wall}
    saved = arms["none"]["total_epochs"] / max(arms["median"]["total_epochs"], 1)
    drop = 100.0 * (arms["none"]["best_val_acc"] - arms["median"]["best_val_acc"])
    targets = [
        Target("epochs without pruner / with median pruner", saved, ">=", 2.0),
        Target("best val acc lost to pruning (no pruner − median)", drop, "<=", 0.5, " points"),
    ]
    print(
        f"  pruning: {arms['none']['total_epochs']} vs {arms['median']['total_epochs']} epochs "
        f"({saved:.2f}×); best val acc {arms['none']['best_val_acc']:.4f} vs "
        f"{arms['median']['best_val_acc']:.4f} ({drop:+.2f} points)",
        flush=True,
    )
    return targets, {"n_trials": n_trials, "max_epochs": epochs, "arms": arms}


# ---------------------------------------------------------------------------------- entry


def run(*, quick: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    t1, m1 = overhead(quick=quick)
    t2, m2 = pruning(quick=quick)
    return result(
        NAME,
        command="python -m benchmarks sweeper" + (" --quick" if quick else ""),
        targets=[*t1, *t2],
        measurements={"overhead": m1, "pruning": m2},
        method=(
            "overhead: per-trial cycle = gap between consecutive trials' datetime_start in the "
            "study (trial 0 dropped), vs direct sweep.run.run(cfg) in-process, interleaved by "
            "round; cross-check (wall N trials − wall 1 trial)/(N−1). pruning: default study with "
            "median pruner vs pruner.name=none, same TPE seed; epochs from each trial's epochs_run."
        ),
        quick=quick,
        seconds=time.perf_counter() - started,
    )


def main() -> dict[str, Any]:
    return run()
