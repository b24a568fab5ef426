"""Render a computed report as Markdown (images linked) and self-contained HTML."""

from __future__ import annotations

import base64
import html
import math
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from analysis._load import StudyData
    from analysis._report import Report

__all__ = ["markdown_table", "render_html", "render_markdown"]

_MAX_ROWS = 30
# (table stem, heading, caption)
_TABLES = (
    ("family_summary", "Per regularizer family",
     "Best validation accuracy per family, test accuracy of that trial, and the accuracy gap "
     "(train − val) over all completed trials of the family."),
    ("top_trials", "Top trials", "Completed trials ranked by the validation metric."),
    ("gap_by_param", "Gap against each searched parameter",
     "Accuracy gap per parameter bin (completed trials)."),
    ("pruning_summary", "Pruning",
     "Epochs saved = Σ over pruned trials of (epochs_max − epochs_run)."),
    ("state_summary", "Trial states", "Every trial, including interrupted / over-budget ones."),
    ("param_importances", "Parameter importances",
     "PED-ANOVA importances (normalized) for validation accuracy and for the accuracy gap."),
)  # fmt: skip
_FIGURES = (
    ("gap_vs_strength", "Generalization gap vs λ"),
    ("dropout", "Gap and validation accuracy vs dropout p"),
    ("heatmap_val_acc", "Validation accuracy over two searched parameters"),
    ("loss_curves", "Train vs validation loss: best trial per family vs unregularized"),
    ("sparsity_vs_lambda", "Sparsity vs λ: L1 vs L2"),
    ("history", "Optimization history (pruned trials marked)"),
    ("intermediate", "Intermediate values"),
)


def _cell(value: Any) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|")


def markdown_table(frame: pd.DataFrame, max_rows: int = _MAX_ROWS) -> str:
    """A GitHub-flavoured Markdown table (floats to 4 significant digits)."""
    if frame.empty:
        return "_(no rows)_"
    shown = frame.head(max_rows)
    lines = ["| " + " | ".join(map(str, shown.columns)) + " |",
             "| " + " | ".join("---" for _ in shown.columns) + " |"]  # fmt: skip
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |"
              for row in shown.itertuples(index=False)]  # fmt: skip
    if len(frame) > max_rows:
        lines.append(f"\n_{len(frame) - max_rows} more rows in the CSV._")
    return "\n".join(lines)


def _md_fact(label: str, value: str | list[str]) -> list[str]:
    if isinstance(value, list):
        return [f"- **{label}**:", *(f"  - `{v}`" for v in value)]
    code = label in ("command", "pruner")
    return [f"- **{label}**: " + (f"`{value}`" if code else value.replace("|", "\\|"))]


def _header(report: Report) -> list[str]:
    lines = ["## Study", ""]
    for label, value in report.facts:
        lines += _md_fact(label, value)
    return [*lines, "", "```", report.summary, "```"]


def render_markdown(report: Report, data: StudyData) -> str:
    """``report.md``: tables inline, figures linked from ``figures/``."""
    out = [f"# regsweep report: {data.name}", "", *_header(report), ""]
    for stem, heading, caption in _TABLES[:1]:
        out += [f"## {heading}", "", caption, "", markdown_table(report.tables[stem]), ""]
    out += ["## Figures", ""]
    for stem, title in _FIGURES:
        out += [f"### {title}", "", f"![{title}](figures/{stem}.png)", ""]
    for stem, heading, caption in _TABLES[1:]:
        out += [f"## {heading}", "", caption, "", markdown_table(report.tables[stem]), ""]
    if report.notes:
        out += ["## Notes", "", *(f"- {n}" for n in report.notes), ""]
    out += ["Tables: `tables/*.csv` and `tables/*.parquet`; figures: `figures/*.png|svg`.", ""]
    return "\n".join(out)


def _html_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p><em>(no rows)</em></p>"
    return frame.head(_MAX_ROWS).to_html(index=False, na_rep="", float_format="{:.4g}".format,
                                         border=0, classes="t")  # fmt: skip


def _img(report: Report, stem: str, title: str) -> str:
    path = report.figures.get(stem)
    if path is None or not path.is_file():
        return ""
    b64 = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{b64}">'
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
    )


def _html_facts(report: Report) -> str:
    rows = []
    for label, value in report.facts:
        if isinstance(value, list):
            cell = "<br>".join(f"<code>{html.escape(v)}</code>" for v in value)
        else:
            cell = (
                f"<code>{html.escape(value)}</code>"
                if label in ("command", "pruner")
                else html.escape(value)
            )
        rows.append(f"<tr><th>{html.escape(label)}</th><td>{cell}</td></tr>")
    return "<table class='t facts'>" + "".join(rows) + "</table>"


_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
    "table.t{border-collapse:collapse;font-size:13px}table.t td,table.t th"
    "{border:1px solid #ccc;padding:2px 6px}table.facts th{text-align:left}img{max-width:100%}pre{background:#f4f4f4}"
)


def render_html(report: Report, data: StudyData) -> str:
    """``report.html``: one self-contained file, figures embedded as base64 PNG."""
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>regsweep report: "
             f"{esc(data.name)}</title><style>{_CSS}</style></head><body>",
             f"<h1>regsweep report: {esc(data.name)}</h1>", "<h2>Study</h2>",
             _html_facts(report), f"<pre>{esc(report.summary)}</pre>"]  # fmt: skip
    stem, heading, caption = _TABLES[0]
    parts += [f"<h2>{esc(heading)}</h2><p>{esc(caption)}</p>", _html_table(report.tables[stem])]
    parts.append("<h2>Figures</h2>")
    parts += [f"<h3>{esc(t)}</h3>{_img(report, s, t)}" for s, t in _FIGURES]
    for stem, heading, caption in _TABLES[1:]:
        parts += [f"<h2>{esc(heading)}</h2><p>{esc(caption)}</p>",
                  _html_table(report.tables[stem])]  # fmt: skip
    if report.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in report.notes)
                     + "</ul>")  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts)
