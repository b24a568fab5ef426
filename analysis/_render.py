"""Render the report's blocks as Markdown (images linked) and self-contained HTML."""

from __future__ import annotations

import base64
import html
import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from analysis._document import Block, Report, document

if TYPE_CHECKING:
    from analysis._load import StudyData

__all__ = ["markdown_table", "render_html", "render_markdown"]

_MAX_ROWS = 30


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
    lines = [
        "| " + " | ".join(map(str, shown.columns)) + " |",
        "| " + " | ".join("---" for _ in shown.columns) + " |",
    ]
    lines += [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in shown.itertuples(index=False)
    ]
    if len(frame) > max_rows:
        lines.append(f"\n_{len(frame) - max_rows} more rows in the CSV._")
    return "\n".join(lines)


def _md_fact(label: str, value: str | list[str]) -> list[str]:
    if isinstance(value, list):
        return [f"- **{label}**:", *(f"  - `{v}`" for v in value)]
    code = label in ("command", "pruner")
    return [f"- **{label}**: " + (f"`{value}`" if code else value.replace("|", "\\|"))]


def _md_block(block: Block, report: Report) -> list[str]:
    kind, text = block.kind, block.text
    if kind == "h2":
        return [f"## {text}", ""]
    if kind == "h3":
        return [f"### {text}", ""]
    if kind == "p":
        return [text, ""]
    if kind == "code":
        return ["```", text, "```", ""]
    if kind == "items":
        return [*(f"- {line}" for line in text.splitlines()), ""]
    if kind == "facts":
        return [line for label, value in report.facts for line in _md_fact(label, value)] + [""]
    if kind == "table":
        frame = block.frame if block.frame is not None else pd.DataFrame()
        return [text, "", markdown_table(frame), ""]
    if kind == "figure":
        return [f"![{text}](figures/{block.stem}.png)", ""]
    raise ValueError(f"unknown block kind {kind!r}")


def render_markdown(report: Report, data: StudyData) -> str:
    """``report.md``: tables inline, figures linked from ``figures/``."""
    out = [f"# regsweep report: {data.name}", ""]
    for block in document(report, data):
        out += _md_block(block, report)
    return "\n".join(out)


def _html_table(frame: pd.DataFrame | None) -> str:
    if frame is None or frame.empty:
        return "<p><em>(no rows)</em></p>"
    return frame.head(_MAX_ROWS).to_html(
        index=False, na_rep="", float_format="{:.4g}".format, border=0, classes="t"
    )


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
        elif label in ("command", "pruner"):
            cell = f"<code>{html.escape(value)}</code>"
        else:
            cell = html.escape(value)
        rows.append(f"<tr><th>{html.escape(label)}</th><td>{cell}</td></tr>")
    return "<table class='t facts'>" + "".join(rows) + "</table>"


def _html_block(block: Block, report: Report) -> str:
    esc, kind, text = html.escape, block.kind, block.text
    if kind in ("h2", "h3"):
        return f"<{kind}>{esc(text)}</{kind}>"
    if kind == "p":
        return f"<p>{esc(text)}</p>"
    if kind == "code":
        return f"<pre>{esc(text)}</pre>"
    if kind == "items":
        return "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in text.splitlines()) + "</ul>"
    if kind == "facts":
        return _html_facts(report)
    if kind == "table":
        return f"<p>{esc(text)}</p>" + _html_table(block.frame)
    if kind == "figure":
        return _img(report, block.stem, text)
    raise ValueError(f"unknown block kind {kind!r}")


_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
    "table.t{border-collapse:collapse;font-size:13px}table.t td,table.t th"
    "{border:1px solid #ccc;padding:2px 6px}table.facts th{text-align:left}img{max-width:100%}"
    "pre{background:#f4f4f4;white-space:pre-wrap}"
)


def render_html(report: Report, data: StudyData) -> str:
    """``report.html``: one self-contained file, figures embedded as base64 PNG."""
    esc = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>regsweep report: "
        f"{esc(data.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>regsweep report: {esc(data.name)}</h1>",
    ]
    parts += [_html_block(b, report) for b in document(report, data)]
    parts.append("</body></html>")
    return "\n".join(parts)
