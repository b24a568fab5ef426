"""``python -m analysis``: write the report of a study and print a short summary."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from analysis._report import build_report
from analysis._storage import DEFAULT_STORAGE, AnalysisError

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    p = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Which regularization helps, and by how much: the effects of a regsweep "
        "study's confirmed finalists against their baselines (simultaneous 95 percent CIs, Bonferroni-adjusted p), "
        "generalization-gap tables as CSV/Parquet, figures as PNG/SVG, report.md and a "
        "self-contained report.html.",
    )
    p.add_argument(
        "--storage",
        default=None,
        help=f"storage URL or file path (SQLite .db, journal .log/.jsonl); "
        f"default {DEFAULT_STORAGE} under the current directory",
    )
    p.add_argument(
        "--study",
        default=None,
        help="search study S (or its confirmation study S.confirm: both read S with S.confirm); "
        "default the search study whose latest search trial started last",
    )
    p.add_argument("--out", default=None, help="report directory; default outputs/reports/<study>")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (2 for a missing storage or unknown study)."""
    args = parser().parse_args(argv)
    try:
        report = build_report(args.storage, args.study, args.out)
    except AnalysisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary)
    print(
        f"report written to {report.out_dir.resolve()}/report.html (and report.md, "
        "tables/, figures/)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
