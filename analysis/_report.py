"""Study → report directory: tables (CSV, Parquet), figures (PNG, SVG), report.md/.html."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import optuna
import pandas as pd
from matplotlib.figure import Figure

from analysis import _plotdata as pdata
from analysis import _plots as plots
from analysis import _tables as tables
from analysis._facts import study_facts
from analysis._importance import param_importances
from analysis._load import StudyData, curves_frame, read_study, trials_frame
from analysis._render import render_html, render_markdown

__all__ = ["Report", "build_report", "report_figures", "report_tables", "summary_text"]


@dataclass
class Report:
    """What :func:`build_report` wrote and computed."""

    out_dir: Path
    study: str
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    summary: str = ""
    facts: list[tuple[str, str | list[str]]] = field(default_factory=list)


def report_tables(
    data: StudyData, trials: pd.DataFrame
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Every result table of the report, by file stem, and notes on skipped parts."""
    maximize = (data.directions or ["maximize"])[0] == "maximize"
    importances, notes = param_importances(data.trials)
    out = {
        "top_trials": tables.top_trials(trials, metric=data.metric, maximize=maximize),
        "family_summary": tables.family_summary(trials),
        "gap_by_param": tables.gap_by_param(trials),
        "pruning_summary": tables.pruning_summary(trials),
        "state_summary": tables.state_summary(trials),
        "param_importances": importances,
    }
    return out, notes


def _val_importance(importances: pd.DataFrame | None) -> dict[str, float] | None:
    if importances is None or importances.empty:
        return None
    rows = importances[importances["target"] == "val_acc"]
    return dict(zip(rows["param"], rows["importance"].astype(float), strict=True)) or None


def report_figures(
    data: StudyData,
    trials: pd.DataFrame,
    curves: pd.DataFrame,
    *,
    importances: pd.DataFrame | None = None,
) -> dict[str, Figure]:
    """Every figure of the report, by file stem.

    ``importances`` (the ``param_importances`` table) picks the heatmap's two parameters.
    """
    maximize = (data.directions or ["maximize"])[0] == "maximize"
    heat = pdata.heatmap_data(trials, importance=_val_importance(importances))
    return {
        "gap_vs_strength": plots.plot_gap_vs_strength(pdata.gap_vs_strength_data(trials)),
        "dropout": plots.plot_dropout(pdata.dropout_data(trials)),
        "heatmap_val_acc": plots.plot_heatmap(heat),
        "loss_curves": plots.plot_best_curves(pdata.best_curves_data(trials, curves)),
        "sparsity_vs_lambda": plots.plot_sparsity(pdata.sparsity_data(trials)),
        "history": plots.plot_history(pdata.history_data(trials, maximize=maximize),
                                      metric=data.metric),
        "intermediate": plots.plot_intermediate(pdata.intermediate_data(trials, curves),
                                                metric=data.metric),
    }  # fmt: skip


def summary_text(study: str, trials: pd.DataFrame, family: pd.DataFrame) -> str:
    """A few lines: trial counts and the best trial per family with its gap."""
    lines = [f"study {study!r}: {len(trials)} trials, "
             f"{int((trials['state'] == 'COMPLETE').sum())} complete, "
             f"{int((trials['state'] == 'PRUNED').sum())} pruned"]  # fmt: skip
    if family.empty:
        lines.append("no completed trial to summarize")
    for row in family.itertuples(index=False):
        lines.append(f"  {row.family:<13} best trial {row.best_trial}: "
                     f"val_acc {row.best_val_acc:.4f}, test_acc {row.test_acc_at_best:.4f}, "
                     f"gap {row.gap_at_best:+.4f} (median gap {row.gap_median:+.4f}, "
                     f"n={row.n})")  # fmt: skip
    return "\n".join(lines)


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype) in ("str", "string"):
            out[col] = out[col].map(lambda v: None if v is None or v is pd.NA else str(v))
    return out


def _write_tables(out_dir: Path, frames: dict[str, pd.DataFrame]) -> None:
    folder = out_dir / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
        _parquet_safe(frame).to_parquet(folder / f"{name}.parquet", index=False)


def _write_figures(out_dir: Path, figures: dict[str, Figure]) -> dict[str, Path]:
    folder = out_dir / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, fig in figures.items():
        fig.savefig(folder / f"{name}.png", dpi=100)
        with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: smaller, faster
            fig.savefig(folder / f"{name}.svg")
        paths[name] = folder / f"{name}.png"
    return paths


def build_report(
    storage: str | os.PathLike[str] | None = None,
    study: str | None = None,
    out: str | os.PathLike[str] | None = None,
) -> Report:
    """Read a study once and write the whole report directory.

    Args:
        storage: URL or path (see :func:`resolve_storage`); default ``outputs/studies.db``.
        study: study name; default the most recent study.
        out: report directory; default ``outputs/reports/<study>``.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = read_study(storage, study)
    out_dir = Path(out) if out is not None else Path("outputs") / "reports" / data.name
    out_dir.mkdir(parents=True, exist_ok=True)
    trials = trials_frame(data.trials)
    curves = curves_frame(data.trials, objective=data.metric)
    frames, notes = report_tables(data, trials)
    frames["trials"] = trials.drop(columns=["datetime_start"])
    _write_tables(out_dir, frames)
    figures = _write_figures(
        out_dir, report_figures(data, trials, curves, importances=frames["param_importances"])
    )
    report = Report(out_dir=out_dir, study=data.name, tables=frames, figures=figures,
                    notes=notes, summary=summary_text(data.name, trials,
                                                      frames["family_summary"]),
                    facts=study_facts(data, trials))  # fmt: skip
    (out_dir / "report.md").write_text(render_markdown(report, data), encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(report, data), encoding="utf-8")
    return report
