"""Study → report directory: tables (CSV, Parquet), figures (PNG, SVG), report.md/.html."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib
import optuna
import pandas as pd
from matplotlib.figure import Figure

from analysis import _plotdata as pdata
from analysis import _tables as tables
from analysis._answer import answer
from analysis._audit import audit_data
from analysis._chance import nothing_learned
from analysis._confirm import arms_frame, confirm_frame
from analysis._document import Report
from analysis._dose import dose_data
from analysis._effects import effects_data, explored_counts
from analysis._facts import study_facts
from analysis._figures import report_figures
from analysis._importance import param_importances
from analysis._load import StudyData, curves_frame, read_study, trials_frame
from analysis._reference import baseline_reference
from analysis._render import render_html, render_markdown
from sweep.record import StopReason

__all__ = ["Report", "build_report", "report_figures", "report_tables", "summary_text"]


def _maximize(data: StudyData) -> bool:
    return (data.directions or ["maximize"])[0] == "maximize"


def report_tables(
    data: StudyData, trials: pd.DataFrame
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Every result table of the report, by file stem, and notes on skipped parts.

    ``effects`` and ``confirm_runs`` come from the confirmation study (empty, with their
    columns, without one); ``pareto_front`` only for multi-objective studies.
    """
    importances, notes = param_importances(data.trials)
    confirm = data.confirm
    runs = confirm_frame(confirm.trials if confirm else [], confirm.confirm_plan if confirm else [])
    arms = arms_frame(confirm.confirm_plan) if confirm else None
    out = {
        "effects": effects_data(
            runs,
            arms,
            metric=data.metric,
            searched=explored_counts(trials) if data.user_attrs else None,
        ),
        "dose_response": dose_data(runs, arms),
        "pruning_audit": audit_data(trials, maximize=_maximize(data)),
        "confirm_runs": runs,
        "baseline_reference": baseline_reference(trials, runs),
        "family_summary": tables.family_summary(trials),
        "top_trials": tables.top_trials(trials, metric=data.metric, maximize=_maximize(data)),
        "gap_by_param": tables.gap_by_param(trials),
        "pruning_summary": tables.pruning_summary(trials),
        "state_summary": tables.state_summary(trials),
        "param_importances": importances,
    }
    if len(data.directions) >= 2:
        front = pdata.pareto_data(trials, data.objectives, data.directions)
        out["pareto_front"] = front[front["on_front"].astype(bool)].drop(columns="on_front")
    return out, notes


def summary_text(
    study: str,
    trials: pd.DataFrame,
    family: pd.DataFrame,
    pruned_finalists: dict[str, tuple[int, int | None]] | None = None,
) -> str:
    """Trial counts and each family's single runs: the top run and the spread; for a family
    none of whose trials completed, how they ended and whether the confirmation judges it
    (``pruned_finalists``: :func:`pruned_finalists` of its plan; None without one)."""
    lines = [
        f"search {study!r}: {len(trials)} trials, "
        f"{int((trials['state'] == 'COMPLETE').sum())} complete, "
        f"{int((trials['state'] == 'PRUNED').sum())} pruned; single runs per family "
        "(final model):"
    ]
    if family.empty:
        lines.append("  no completed trial to summarize")
    # a diverged trial has no final model, but it is a result: say how many beside the spread
    diverged = trials[trials["stop_reason"] == StopReason.DIVERGED].groupby("family").size()
    for row in family.itertuples(index=False):
        spread = (
            "its only completed run"
            if row.n == 1
            else f"over n={row.n}: median val_acc {row.val_acc_median:.4f} "
            f"(IQR {row.val_acc_q25:.4f}–{row.val_acc_q75:.4f})"
        )
        k = int(diverged.get(row.family, 0))
        lines.append(
            f"  {row.family:<13} top run {row.top_trial}: val_acc {row.top_val_acc:.4f},"
            f" gap {row.top_gap_acc:+.4f}; {spread}"
            f"{f'; {k} diverged' if k else ''}"
        )
    for name, how in tables.unjudged_families(trials).items():
        head = f"  {name:<13} no completed trial ({how}): no top run"
        source = (pruned_finalists or {}).get(name)
        if source is not None:
            after = f", pruned after epoch {source[1]}" if source[1] is not None else ""
            lines.append(
                f"{head}; the confirmation re-trains its furthest pruned trial "
                f"({source[0]}{after}) to the end"
            )
        elif pruned_finalists is None and "pruned" in how:
            lines.append(
                f"{head}; a confirmation re-trains its furthest pruned trial to the "
                "end and judges it"
            )
        else:
            lines.append(f"{head}, no finalist to confirm, so the answer cannot judge it")
    return "\n".join(lines)


def pruned_finalists(plan: list[dict[str, Any]]) -> dict[str, tuple[int, int | None]]:
    """Family → (search trial, epochs it trained) of each confirmation finalist that comes from
    a pruned search trial (a family none of whose trials completed)."""
    out: dict[str, tuple[int, int | None]] = {}
    for a in plan:
        if a.get("role") != "finalist" or a.get("source_state") != "PRUNED":
            continue
        epochs = a.get("source_epochs")
        out.setdefault(
            str(a.get("family")),
            (int(a.get("source_trial", -1)), int(epochs) if epochs is not None else None),
        )
    return out


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
    """Read a study (and its confirmation study) once and write the whole report directory.

    Args:
        storage: URL or path (see :func:`resolve_storage`); default ``outputs/studies.db``.
        study: ``S`` or ``S.confirm``; default the most recent search study.
        out: report directory; default ``outputs/reports/<study>``.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = read_study(storage, study)
    out_dir = Path(out) if out is not None else Path("outputs") / "reports" / data.name
    out_dir.mkdir(parents=True, exist_ok=True)
    trials = trials_frame(data.trials, objectives=data.objectives)
    curves = curves_frame(data.trials, objective=data.metric)
    frames, notes = report_tables(data, trials)
    figures, skipped = report_figures(data, trials, curves, frames)
    frames["trials"] = trials.drop(columns=["datetime_start"])
    _write_tables(out_dir, frames)
    pruned = pruned_finalists(data.confirm.confirm_plan) if data.confirm is not None else None
    unjudged = [f for f in tables.unjudged_families(trials) if f not in (pruned or {})]
    chance_only = nothing_learned(frames["confirm_runs"] if data.confirm is not None else trials)
    opening = answer(
        frames["effects"],
        frames["family_summary"],
        has_confirm=data.confirm is not None,
        storage=data.storage,
        study=data.name,
        unjudged=unjudged,
        chance_only=chance_only,
        dose=frames["dose_response"],
        audit=frames["pruning_audit"],
    )
    search = summary_text(data.name, trials, frames["family_summary"], pruned)
    report = Report(
        out_dir=out_dir,
        study=data.name,
        tables=frames,
        figures=_write_figures(out_dir, figures),
        skipped=skipped,
        notes=notes,
        summary="\n".join([*opening.lines(), "", search]),
        search_summary=search,
        facts=study_facts(data, trials),
        answer=opening,
        objectives=data.objectives,
    )
    (out_dir / "report.md").write_text(render_markdown(report, data), encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(report, data), encoding="utf-8")
    return report
