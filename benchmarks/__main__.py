"""``python -m benchmarks [names...] [--quick] [--threads N]``: run, tabulate, write JSON.

Runs every benchmark (or the named ones) in this process, one after another, prints a table of
targets and writes ``outputs/bench/<name>.json`` per benchmark. Exit status 1 when a benchmark
raised or missed a target, 0 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from . import BENCH_DIR, Target, machine

# name -> module; a module that is not there (another engineer's, not written yet) is skipped
BENCHMARKS = {
    "training": "benchmarks.bench_training",
    "population": "benchmarks.bench_population",
    "analysis": "benchmarks.bench_analysis",
}
OPTIONAL = {"analysis"}


def _available() -> dict[str, str]:
    found = {}
    for name, module in BENCHMARKS.items():
        if name in OPTIONAL and importlib.util.find_spec(module) is None:
            continue
        found[name] = module
    return found


def _entry(module: Any, quick: bool) -> tuple[Any, dict[str, Any], list[str] | None]:
    """Ours expose ``run(*, quick)``; others a ``main(argv=None)`` command-line entry."""
    run = getattr(module, "run", None)
    if run is not None and "quick" in inspect.signature(run).parameters:
        return run, {"quick": quick}, None
    main = module.main
    params = inspect.signature(main).parameters
    return main, {}, [] if params else None  # argv=[]: no foreign flags reach its parser


def _synthesize_targets(record: dict[str, Any]) -> None:
    """A record with ``seconds`` and ``target_s`` (bench_analysis) gets a targets list."""
    if record.get("targets") or "seconds" not in record or "target_s" not in record:
        return
    seconds, target = float(record["seconds"]), float(record["target_s"])
    t = Target("report generation time", seconds, "<=", target, "s")
    record["targets"] = [t.as_dict()]
    record.setdefault("pass", t.passed)


def _call(name: str, module_name: str, *, quick: bool, out_dir: Path) -> dict[str, Any]:
    """Run one benchmark and return its JSON record, adapting to what the module exposes."""
    module = importlib.import_module(module_name)
    command = f"python -m benchmarks {name}" + (" --quick" if quick else "")
    started = time.time()
    fn, kwargs, argv_param = _entry(module, quick)
    argv = sys.argv
    sys.argv = [f"python -m benchmarks {name}"]  # a main() that reads sys.argv sees no flags
    try:
        returned = fn(argv_param, **kwargs) if argv_param is not None else fn(**kwargs)
    except SystemExit as exc:
        returned = exc.code
    finally:
        sys.argv = argv
    if isinstance(returned, dict) and "targets" in returned and "benchmark" in returned:
        return returned
    if isinstance(returned, dict):
        return _wrap(name, command, returned, time.time() - started)
    # main() returned an exit status: it wrote its own JSON (here or relative to the cwd)
    for own in (out_dir / f"{name}.json", Path("outputs/bench") / f"{name}.json"):
        if own.is_file() and own.stat().st_mtime >= started - 1:
            record = json.loads(own.read_text())
            record.setdefault("benchmark", name)
            record.setdefault("command", command)
            record.setdefault("machine", machine())
            _synthesize_targets(record)
            record["_written_by_benchmark"] = str(own)
            return record
    if returned not in (None, 0):
        raise RuntimeError(f"{module_name}.{fn.__name__}() returned {returned!r}, wrote no JSON")
    return _wrap(name, command, {"returned": returned}, time.time() - started)


def _wrap(name: str, command: str, measurements: dict[str, Any], seconds: float) -> dict[str, Any]:
    targets = measurements.get("targets", [])
    return {
        "benchmark": name,
        "command": command,
        "pass": all(bool(t.get("pass")) for t in targets) if targets else None,
        "targets": targets,
        "measurements": measurements,
        "machine": machine(),
        "seconds": seconds,
    }


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _table(records: dict[str, dict[str, Any]], errors: dict[str, str]) -> str:
    rows = [("benchmark", "target", "measured", "wanted", "result")]
    for name, rec in records.items():
        quick = " (quick)" if rec.get("quick") else ""
        targets = rec.get("targets") or []
        if not targets:
            rows.append((name + quick, "(no targets reported)", "", "", "-"))
        for t in targets:
            measured = _fmt(t.get("measured")) + str(t.get("unit", ""))
            verdict = "PASS" if t.get("pass") else "FAIL"
            wanted = str(t.get("target", ""))
            rows.append((name + quick, str(t.get("name", "")), measured, wanted, verdict))
    for name, err in errors.items():
        rows.append((name, err.splitlines()[-1][:60], "", "", "ERROR"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    available = _available()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    names_help = f"benchmarks to run (default all): {', '.join(available)}"
    parser.add_argument("names", nargs="*", help=names_help)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads in every arm (default 1: stable timings on a shared machine)",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR, help="JSON folder (outputs/bench)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in available]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; allowed: {', '.join(available)}")
    if args.threads < 1:
        parser.error(f"--threads={args.threads}: allowed an integer >= 1")
    # Same thread count here and in the sweeps the benchmarks start as subprocesses.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["MKL_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for name in args.names or list(available):
        print(f"== {name}", flush=True)
        try:
            record = _call(name, available[name], quick=args.quick, out_dir=args.out)
        except Exception:
            errors[name] = traceback.format_exc()
            print(errors[name], file=sys.stderr)
            continue
        if args.threads != 1:
            record["command"] = f"{record['command']} --threads {args.threads}"
        records[name] = record
        own = record.pop("_written_by_benchmark", None)
        if own:  # the benchmark wrote its JSON itself; leave it as it is
            print(f"   {name} wrote {own}", flush=True)
            continue
        path = args.out / f"{name}.json"
        path.write_text(json.dumps(record, indent=2, default=str, allow_nan=True) + "\n")
        print(f"   wrote {path}", flush=True)
    print()
    print(_table(records, errors))
    failed = errors or any(r.get("pass") is False for r in records.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
