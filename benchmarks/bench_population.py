"""Population training, the sweeper's cost, pruning and workers (issue "Population training").

Every arm is a real ``python -m sweep -m`` run (sweeper, launcher, SQLite storage and reporting
included) in a temp dir, except the direct arm of (2). Throughput is read from the study: the
trial-epochs trained (each trial's ``epochs_run``) over the span from the first counted trial's
``datetime_start`` (its ask) to the last one's ``datetime_complete``; interpreter start-up and
imports come before the first ask, so they are in no figure. Arms are interleaved, the order
rotated each round, ratios formed within a round and the median over rounds reported.

0. **Peak.** The population step's FLOP/s at each K against this machine's single-precision
   GEMM peak at the same threads (:mod:`benchmarks._peak`). Target on CPU ≥ 40 % of the peak at
   K = 128; on a GPU, K ∈ {1, 64, 256, 1024} and the share reported.
1. **Populations.** The same sweep (digits, MLP 64-64, 20 epochs, the learning rate searched by
   TPE, no pruner, no confirmation) with ``hydra.sweeper.population`` K ∈ {1, 8, 32, 128}
   (K = 1: one trial per job); trial-epochs/s at each K over K = 1. Target ≥ 15× at the best K
   on CPU; on a GPU, K ∈ {1, 64, 256, 1024} and the target is ≥ 100× at K = 256.
2. **Framework cost per trial with populations.** The sweep with ``search=none`` (every trial
   ``regularizer=none``, 20 epochs), population 32, no pruner, its first population (which
   loads the data) not counted: the counted trials' span over the time the sweep's process
   spent in the population's training step, evaluation and test (:data:`_TIMED`), − 1. Target
   ≤ 5 %. The former side-by-side ratio (:func:`sweep.run.run_population` on 32 copies of the
   config in a process of its own) is kept in the JSON: on a shared machine its arms see
   different machines.
3. **Pruning.** The default study (``python -m sweep -m``: the families search, population 8,
   40 trials) with its median pruner vs ``pruner.name=none``, TPE seeds 0–4, confirmation off:
   wall time of the search and the best validation accuracy. Targets: ≥ 2.5× faster, best value
   within 0.5 points, and the wall time saved ≥ 0.85 × the epochs saved (refill: a pruned
   member's place takes the next trial at once).
4. **Workers.** Two joblib workers (``hydra/launcher=joblib``, 2 jobs of 8 at a time) vs one,
   and the two workers while a third process keeps one core busy vs on a quiet machine.
   Steady-state throughput: the first launch (which starts the worker processes) is not
   counted. Targets: two workers ≥ 1.05× one; busy ≥ 0.5× quiet.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import ROOT, Target, median, result
from ._peak import peak_share

NAME = "population"
EPOCHS = 20
LR_SEARCH = "optimizer.lr=tag(log, interval(0.01, 0.1))"
SEARCH_ONLY = (
    "hydra.sweeper.pruner.name=none",
    "hydra.sweeper.confirm.seeds=0",
    "hydra.sweeper.sampler.seed=0",
    f"trainer.epochs={EPOCHS}",
)
TRIALS_PER_K = {1: 16, 8: 64, 32: 128, 64: 128, 128: 256, 256: 512, 1024: 2048}


# ---------------------------------------------------------------------------------- helpers


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


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


def sweep(
    args: Sequence[str], *, tmp: Path, tag: str, timed: Path | None = None
) -> tuple[float, list[Any]]:
    """Run ``python -m sweep -m <args>`` into ``tmp/<tag>.db``; its wall seconds and trials.
    With ``timed``, the sweep's process writes there when it was training (:data:`_TIMED`)."""
    import optuna

    db = tmp / f"{tag}.db"
    env = _env()
    start = ["-m", "sweep"] if timed is None else ["-c", _TIMED, str(timed)]
    cmd = [
        sys.executable,
        *start,
        "-m",
        *args,
        f"hydra.sweeper.storage=sqlite:///{db}",
        f"hydra.sweeper.study_name={tag}",
        f"hydra.sweep.dir={tmp / tag}",
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise RuntimeError(f"{tag}: `{' '.join(cmd)}` exited with {proc.returncode}:\n{tail}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=tag, storage=f"sqlite:///{db}")
    return wall, sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)


def throughput(trials: Sequence[Any], *, skip: int = 0) -> dict[str, float]:
    """Trial-epochs per second of the trials numbered ``skip`` and up (ask → last tell)."""
    counted = [t for t in trials if t.number >= skip and t.datetime_complete is not None]
    if not counted:
        raise RuntimeError(f"no finished trial numbered ≥ {skip}")
    epochs = sum(int(t.user_attrs.get("epochs_run", len(t.intermediate_values))) for t in counted)
    start = min(t.datetime_start for t in counted)
    span = (max(t.datetime_complete for t in counted) - start).total_seconds()
    return {
        "trials": len(counted),
        "trial_epochs": epochs,
        "span_seconds": span,
        "trial_epochs_per_s": epochs / span if span > 0 else float("nan"),
    }


def rotated(names: Sequence[str], r: int) -> list[str]:
    k = r % len(names)
    return [*names[k:], *names[:k]]


# ---------------------------------------------------------------------------------- 1. K


def populations(*, quick: bool) -> tuple[list[Target], dict[str, Any]]:
    gpu = _cuda()
    ks = [1, 8, 32] if quick else [1, 8, 32, 128]
    if gpu:
        ks = [1, 64, 256] if quick else [1, 64, 256, 1024]
    n_trials = {k: (TRIALS_PER_K[k] // 2 if quick else TRIALS_PER_K[k]) for k in ks}
    rounds = 1 if quick else 3
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="regsweep-bench-") as d:
        tmp = Path(d)
        for r in range(rounds):
            row: dict[str, Any] = {}
            for k in rotated([str(k) for k in ks], r):
                args = [
                    "search=none",
                    LR_SEARCH,
                    *SEARCH_ONLY,
                    f"hydra.sweeper.population={k}",
                    f"hydra.sweeper.n_trials={n_trials[int(k)]}",
                ]
                wall, trials = sweep(args, tmp=tmp, tag=f"pop-r{r}-k{k}")
                row[k] = {**throughput(trials), "process_wall_seconds": wall}
                print(
                    f"  populations round {r + 1}/{rounds}: K={k:>3}: "
                    f"{row[k]['trial_epochs_per_s']:7.1f} trial-epochs/s "
                    f"({n_trials[int(k)]} trials in {row[k]['span_seconds']:.1f}s)",
                    flush=True,
                )
            base = row["1"]["trial_epochs_per_s"]
            row["ratio_vs_k1"] = {k: row[k]["trial_epochs_per_s"] / base for k in map(str, ks)}
            rows.append(row)
    ratio = {k: median([row["ratio_vs_k1"][str(k)] for row in rows]) for k in ks}
    best_k = max(ks, key=lambda k: ratio[k])
    targets = [
        Target(
            f"trial-epochs/s at the best K (K={best_k}) / one trial per job, CPU",
            ratio[best_k],
            ">=",
            15.0,
        )
    ]
    if gpu:
        targets = [
            Target("trial-epochs/s at K=256 / one trial per job, GPU", ratio[256], ">=", 100.0)
        ]
    summary = {
        "device": "cuda" if gpu else "cpu",
        "n_trials": n_trials,
        "median_ratio_vs_k1": ratio,
        "median_trial_epochs_per_s": {
            k: median([row[str(k)]["trial_epochs_per_s"] for row in rows]) for k in ks
        },
        "best_k": best_k,
        "rounds": rows,
    }
    return targets, summary


# ---------------------------------------------------------------------------------- 2. cost


_TIMED = """
import atexit, json, runpy, sys, time
import sweep.population as P, sweep.run as R, sweep.train as T
out, spans = sys.argv.pop(1), []
def timed(owner, name):
    f = getattr(owner, name)
    def g(*a, **k):
        t = time.time()
        try:
            return f(*a, **k)
        finally:
            spans.append((t, time.time()))
    setattr(owner, name, g)
timed(P.Population, "train_epoch"); timed(P.Population, "measure"); timed(T, "_finish")
timed(R._Train, "_joining"); timed(R, "summarize")
atexit.register(lambda: open(out, "w").write(json.dumps(spans)))
sys.argv[0] = "sweep"
runpy.run_module("sweep", run_name="__main__", alter_sys=True)
"""
"""A sweep whose process records when it was in the work ``run_population`` does with or without
a sweep around it: building members (networks, data rows, settings), the population's training
step, evaluation and final test, and the summaries. The rest of the sweep's span is the
framework's."""


def attributed(trials: Sequence[Any], spans_file: Path, *, skip: int) -> dict[str, float]:
    """Seconds per trial of the counted trials' span, and of the training inside it."""
    import json

    counted = [t for t in trials if t.number >= skip and t.datetime_complete is not None]
    t0 = min(t.datetime_start for t in counted).timestamp()
    t1 = max(t.datetime_complete for t in counted).timestamp()
    spans = json.loads(spans_file.read_text())
    training = sum(max(0.0, min(b, t1) - max(a, t0)) for a, b in spans)
    n = len(counted)
    return {
        "span_per_trial": (t1 - t0) / n,
        "training_per_trial": training / n,
        "cost_pct": 100.0 * ((t1 - t0) / training - 1.0),
    }


_DIRECT = """
import json, sys, time
from benchmarks.bench_population import compose
from sweep.run import run_population
k, n = int(sys.argv[1]), int(sys.argv[2])
cfgs = [compose(sys.argv[3:])] * k
run_population(cfgs)  # warm-up: the data cache, first-call costs
out = []
for _ in range(n):
    t0 = time.perf_counter()
    run_population(cfgs)
    out.append((time.perf_counter() - t0) / k)
print(json.dumps(out))
"""


def _env() -> dict[str, str]:
    """A sweep's environment: the product as a user runs it. The runner's ``--threads`` pins
    this process's arms, but a job's ``trainer.threads=auto`` picks its own threads (an
    inherited OMP_NUM_THREADS=1 / MKL_NUM_THREADS=1 held a 32-member population to one)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)
    return env


def framework_cost(*, quick: bool) -> tuple[list[Target], dict[str, Any]]:
    import json

    k, n_trials = 32, (64 if quick else 128)
    rounds, n_direct = (1, 2) if quick else (3, 3)
    overrides = ["regularizer=none", "trainer.progress=false"]

    def direct() -> list[float]:
        """Seconds per member of ``run_population`` on 32 copies of the config, in a process
        of its own with a sweep's environment (so the same automatic threads)."""
        args = [str(k), str(n_direct), *overrides, f"trainer.epochs={EPOCHS}"]
        proc = subprocess.run(
            [sys.executable, "-c", _DIRECT, *args],
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"direct arm exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        return [float(x) for x in json.loads(proc.stdout.strip().splitlines()[-1])]

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="regsweep-bench-") as d:
        tmp = Path(d)
        for r in range(rounds):
            row: dict[str, Any] = {}
            for arm in rotated(["direct", "framework"], r):
                if arm == "direct":
                    row["direct_seconds_per_member"] = direct()
                    continue
                args = [
                    "search=none",
                    *overrides,
                    *SEARCH_ONLY,
                    f"hydra.sweeper.population={k}",
                    f"hydra.sweeper.n_trials={n_trials}",
                ]
                spans = tmp / f"cost-r{r}.json"
                _, trials = sweep(args, tmp=tmp, tag=f"cost-r{r}", timed=spans)
                row["framework"] = throughput(trials, skip=k)
                row["in_process"] = attributed(trials, spans, skip=k)
            per_trial = row["framework"]["span_seconds"] / row["framework"]["trials"]
            row["framework_seconds_per_trial"] = per_trial
            row["cost_pct"] = 100.0 * (per_trial / median(row["direct_seconds_per_member"]) - 1)
            rows.append(row)
            inside = row["in_process"]
            print(
                f"  framework cost round {r + 1}/{rounds}: in the sweep's process "
                f"{1000 * inside['span_per_trial']:.1f} ms/trial, of which training "
                f"{1000 * inside['training_per_trial']:.1f} → {inside['cost_pct']:+.1f}%; "
                f"side by side: direct {1000 * median(row['direct_seconds_per_member']):.1f} "
                f"ms/member, sweep {1000 * per_trial:.1f} ms/trial → {row['cost_pct']:+.1f}%",
                flush=True,
            )
    measured = median([row["in_process"]["cost_pct"] for row in rows])
    side_by_side = median([row["cost_pct"] for row in rows])
    target = Target(
        f"framework cost per trial, population {k}, 20-epoch digits", measured, "<=", 5.0, "%"
    )
    return [target], {
        "population": k,
        "n_trials": n_trials,
        "cost_pct": measured,
        "cost_pct_side_by_side": side_by_side,
        "rounds": rows,
    }


# ---------------------------------------------------------------------------------- 3. pruning


def pruning(*, quick: bool) -> tuple[list[Target], dict[str, Any]]:
    """Each seed's two arms run twice, in the order A B B A, and each arm's span is its faster
    run: a study of one seed does the same work every time (`epochs_per_run` in the JSON), so
    the slower run is the one another process on this shared machine interrupted (one arm's
    span moved by up to ±30 % from run to run when each ran once)."""
    from optuna.trial import TrialState

    n_trials = 24 if quick else 40
    seeds = [0] if quick else [0, 1, 2, 3, 4]
    repeats = 1 if quick else 2
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="regsweep-bench-") as d:
        tmp = Path(d)
        for r, seed in enumerate(seeds):
            row: dict[str, Any] = {"sampler_seed": seed}
            order = rotated(["median", "none"], r)
            runs: dict[str, list[dict[str, Any]]] = {"median": [], "none": []}
            for rep in range(repeats):
                for arm in order if rep % 2 == 0 else order[::-1]:
                    args = [
                        f"hydra.sweeper.n_trials={n_trials}",
                        "hydra.sweeper.confirm.seeds=0",
                        f"hydra.sweeper.sampler.seed={seed}",
                    ]
                    if arm == "none":
                        args.append("hydra.sweeper.pruner.name=none")
                    wall, trials = sweep(args, tmp=tmp, tag=f"prune-{arm}-s{seed}-r{rep}")
                    values = [t.value for t in trials if t.state == TrialState.COMPLETE]
                    runs[arm].append(
                        {
                            **throughput(trials),
                            "process_wall_seconds": wall,
                            "pruned": sum(t.state == TrialState.PRUNED for t in trials),
                            "best_val_acc": max(values) if values else float("nan"),
                        }
                    )
            for arm, done in runs.items():
                row[arm] = {
                    **min(done, key=lambda x: x["span_seconds"]),
                    "span_seconds_per_run": [x["span_seconds"] for x in done],
                    "epochs_per_run": [x["trial_epochs"] for x in done],
                }
            row["speedup"] = row["none"]["span_seconds"] / row["median"]["span_seconds"]
            row["epochs_ratio"] = row["none"]["trial_epochs"] / row["median"]["trial_epochs"]
            row["best_lost_points"] = 100 * (
                row["none"]["best_val_acc"] - row["median"]["best_val_acc"]
            )
            rows.append(row)
            spans = {
                arm: "/".join(f"{x:.1f}" for x in row[arm]["span_seconds_per_run"])
                for arm in ("none", "median")
            }
            print(
                f"  pruning seed {seed}: search {row['none']['span_seconds']:.1f}s → "
                f"{row['median']['span_seconds']:.1f}s ({row['speedup']:.2f}×; runs: none "
                f"{spans['none']}s, median {spans['median']}s; {row['median']['pruned']} "
                f"pruned, epochs {row['epochs_ratio']:.2f}× fewer); best val acc "
                f"{row['none']['best_val_acc']:.4f} vs {row['median']['best_val_acc']:.4f}",
                flush=True,
            )
    speedup = median([row["speedup"] for row in rows])
    lost = median([row["best_lost_points"] for row in rows])
    # of the epochs pruning saved, the share that came back as wall time (refill: a pruned
    # member's place trains the next trial at once instead of idling to the population's end)
    for row in rows:
        row["wall_saved_over_epochs_saved"] = (1 - 1 / row["speedup"]) / max(
            1 - 1 / row["epochs_ratio"], 1e-9
        )
    returned = median([row["wall_saved_over_epochs_saved"] for row in rows])
    targets = [
        Target(
            f"default {n_trials}-trial study: search wall time, no pruner / median pruner",
            speedup,
            ">=",
            2.5,
        ),
        Target(
            "best val acc lost to pruning (no pruner − median), median over seeds",
            lost,
            "<=",
            0.5,
            " points",
        ),
        Target("wall time saved by pruning / epochs saved", returned, ">=", 0.85),
    ]
    return targets, {
        "n_trials": n_trials,
        "speedup": speedup,
        "best_lost_points": lost,
        "wall_saved_over_epochs_saved": returned,
        "rounds": rows,
    }


# ---------------------------------------------------------------------------------- 4. workers


def _busy_core() -> subprocess.Popen[bytes]:
    """A process that keeps one core busy until it is killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def workers(*, quick: bool) -> tuple[list[Target], dict[str, Any]]:
    pop, n_trials = 8, (48 if quick else 96)
    rounds = 1 if quick else 3
    arms: dict[str, tuple[int, bool]] = {
        "one": (1, False),
        "two": (2, False),
        "two_busy": (2, True),
    }
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="regsweep-bench-") as d:
        tmp = Path(d)
        for r in range(rounds):
            row: dict[str, Any] = {}
            for arm in rotated(list(arms), r):
                jobs, hogged = arms[arm]
                args = [
                    "search=none",
                    LR_SEARCH,
                    *SEARCH_ONLY,
                    "hydra/launcher=joblib",
                    f"hydra.launcher.n_jobs={jobs}",
                    f"hydra.sweeper.n_jobs={jobs}",
                    f"hydra.sweeper.population={pop}",
                    f"hydra.sweeper.n_trials={n_trials}",
                ]
                hog = _busy_core() if hogged else None
                try:
                    wall, trials = sweep(args, tmp=tmp, tag=f"workers-{arm}-r{r}")
                finally:
                    if hog is not None:
                        hog.kill()
                        hog.wait()
                row[arm] = {**throughput(trials, skip=pop * jobs), "process_wall_seconds": wall}
            row["two_vs_one"] = row["two"]["trial_epochs_per_s"] / row["one"]["trial_epochs_per_s"]
            row["busy_vs_quiet"] = (
                row["two_busy"]["trial_epochs_per_s"] / row["two"]["trial_epochs_per_s"]
            )
            rows.append(row)
            print(
                f"  workers round {r + 1}/{rounds}: one {row['one']['trial_epochs_per_s']:.1f}, "
                f"two {row['two']['trial_epochs_per_s']:.1f}, two with a busy core "
                f"{row['two_busy']['trial_epochs_per_s']:.1f} trial-epochs/s",
                flush=True,
            )
    two = median([row["two_vs_one"] for row in rows])
    busy = median([row["busy_vs_quiet"] for row in rows])
    targets = [
        Target("two joblib workers / one, 2 cores", two, ">=", 1.05),
        Target("two workers with a third process busy / quiet", busy, ">=", 0.5),
    ]
    return targets, {
        "population": pop,
        "n_trials": n_trials,
        "two_vs_one": two,
        "busy_vs_quiet": busy,
        "rounds": rows,
    }


# ---------------------------------------------------------------------------------- entry


def peak(*, quick: bool) -> tuple[list[Target], dict[str, Any]]:
    return peak_share(quick=quick, gpu=_cuda(), env=_env())


PARTS: dict[str, Callable[..., tuple[list[Target], dict[str, Any]]]] = {
    "peak": peak,
    "populations": populations,
    "framework_cost": framework_cost,
    "pruning": pruning,
    "workers": workers,
}


PARTS_ENV = "REGSWEEP_BENCH_PARTS"
"""Comma-separated parts to run (default all): ``peak,populations`` for the GPU proof."""


def run(*, quick: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    targets: list[Target] = []
    measurements: dict[str, Any] = {}
    chosen = [p for p in os.environ.get(PARTS_ENV, "").split(",") if p] or list(PARTS)
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        raise ValueError(
            f"{PARTS_ENV}={','.join(chosen)}: unknown part(s) {', '.join(unknown)}; "
            f"allowed {', '.join(PARTS)}"
        )
    for name in chosen:
        part = PARTS[name]
        print(f"  -- {name}", flush=True)
        t, m = part(quick=quick)
        targets += t
        measurements[name] = m
    return result(
        NAME,
        command="python -m benchmarks population" + (" --quick" if quick else ""),
        targets=targets,
        measurements=measurements,
        method=(
            "Real sweeps (python -m sweep -m, SQLite) in temp dirs; throughput = trial-epochs "
            "(epochs_run) / (last datetime_complete − first datetime_start) of the counted "
            "trials; arms interleaved with the order rotated per round; ratios within a round, "
            "median over rounds. Threads: trainer.threads auto (the product's default; the "
            "runner's OMP_NUM_THREADS is not passed to the sweeps or the direct arm)."
        ),
        quick=quick,
        seconds=time.perf_counter() - started,
    )


def main() -> dict[str, Any]:
    return run()
