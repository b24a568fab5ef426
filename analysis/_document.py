"""The report as a list of blocks (headings, paragraphs, tables, figures), in reading order, and
the :class:`Report` they are built from.

Built once, rendered twice (Markdown and HTML), so both say the same thing in the same order:
the answer first, then the forest plot and the effects table, then the study and the search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analysis._answer import Answer
from analysis._figures import FIGURE_TITLES
from analysis._format import metric_label, p_text
from analysis._plots_effects import VERDICT_WORDS, forest_rows

if TYPE_CHECKING:
    from analysis._load import StudyData

__all__ = ["Block", "Report", "document", "effects_view"]


@dataclass
class Report:
    """What :func:`build_report` wrote and computed.

    Attributes:
        figures: Figure stem → PNG path, for the figures with something to show.
        skipped: Figure stem → the sentence the report writes instead of an empty figure.
        summary: What ``python -m analysis`` prints: the answer, then ``search_summary``.
        search_summary: Trial counts and each family's single runs (top run and spread).
        answer: The report's opening (effects with their uncertainty, or how to get them).
    """

    out_dir: Path
    study: str
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    summary: str = ""
    search_summary: str = ""
    facts: list[tuple[str, str | list[str]]] = field(default_factory=list)
    answer: Answer = field(default_factory=lambda: Answer(""))
    objectives: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Block:
    """One piece of the report.

    ``kind``: ``h2``/``h3`` (``text``), ``p`` (``text``), ``code`` (``text``), ``items`` (one
    bullet per line of ``text``), ``table`` (``frame`` and a ``text`` caption), ``figure``
    (``stem``, ``text`` title) or ``facts`` (the report's study facts).
    """

    kind: str
    text: str = ""
    frame: pd.DataFrame | None = None
    stem: str = ""


def _ci(mean: float, lo: float, hi: float, scale: float, signed: bool = False) -> str:
    if math.isnan(mean):
        return ""
    fmt = "{:+.1f}" if signed and scale == 100 else ("{:.1f}" if scale == 100 else "{:.3g}")
    text = fmt.format(mean * scale)
    if math.isnan(lo):
        return text
    return (
        f"{text} ({lo * scale:.1f} to {hi * scale:.1f})"
        if scale == 100
        else (f"{text} ({lo:.3g} to {hi:.3g})")
    )


def effects_view(effects: pd.DataFrame) -> pd.DataFrame:
    """The effects table as the report shows it: accuracies in percent, intervals in words."""
    rows = forest_rows(effects)
    ref = effects[effects["verdict"] == "baseline"]
    if rows.empty and ref.empty:
        return pd.DataFrame()
    decide = str(effects["decided_on"].iloc[0])
    scale = 100.0 if decide.endswith("_acc") else 1.0
    shown = pd.concat([rows, ref.assign(name=ref["family"])], ignore_index=True)
    unit = " %" if scale == 100 else ""
    out = pd.DataFrame(
        {
            "finalist": shown["name"],
            "seeds (paired)": [
                f"{int(a)} ({int(b)})"
                for a, b in zip(shown["n_seeds"], shown["n_pairs"].fillna(0), strict=True)
            ],
            f"{metric_label(decide)}{unit} (95% CI)": [
                _ci(r[f"{decide}_mean"], r[f"{decide}_ci_low"], r[f"{decide}_ci_high"], scale)
                for _, r in shown.iterrows()
            ],
            f"Δ vs baseline{' (points)' if scale == 100 else ''} (simultaneous 95% CI)": [
                _ci(
                    r[f"delta_{decide}"],
                    r[f"delta_{decide}_ci_low"],
                    r[f"delta_{decide}_ci_high"],
                    scale,
                    signed=True,
                )
                for _, r in shown.iterrows()
            ],
            "Δ gap (points) (95% CI)": [
                _ci(
                    r["delta_gap_acc"],
                    r["delta_gap_acc_ci_low"],
                    r["delta_gap_acc_ci_high"],
                    100,
                    signed=True,
                )
                for _, r in shown.iterrows()
            ],
            "test accuracy % (reported only)": [
                _ci(v, math.nan, math.nan, 100) for v in shown["test_acc_mean"]
            ],
            "smallest detectable Δ (80% power)": [
                "" if math.isnan(float(v)) else f"±{float(v) * scale:.2g}" for v in shown["mde"]
            ],
            "p (Bonferroni)": [
                p_text(float(p)).removeprefix("p=") if not math.isnan(float(p)) else ""
                for p in shown["p_value"]
            ],
            "verdict": [VERDICT_WORDS.get(str(v), str(v)) for v in shown["verdict"]],
            "notes": shown["notes"],
        }
    )
    if shown["delta_sparsity"].notna().any():  # records without weights' figures: no column
        out.insert(
            5,
            "Δ sparsity (points) (95% CI)",
            [
                _ci(
                    r["delta_sparsity"],
                    r["delta_sparsity_ci_low"],
                    r["delta_sparsity_ci_high"],
                    100,
                    signed=True,
                )
                for _, r in shown.iterrows()
            ],
        )
    return out


_EFFECTS_CAPTION = (
    "One row per finalist of the search, re-trained on several seeds together with its baseline "
    "(the same configuration with every regularizer off). Δ = finalist − baseline, paired by "
    "seed over the seeds where both completed. The Δ intervals are Student-t at 1 − 0.05/m, m "
    "the finalists compared (Bonferroni), so they hold together at 95%; p from the paired "
    "t-test, Bonferroni-adjusted. Verdict, read off that interval: helps / hurts when it "
    "excludes 0 (sign by the validation metric), no detectable difference when it does not "
    "(the smallest detectable Δ says how large a change that rules out), same as baseline "
    "when every seed trained alike, not explored when the search could not explore the family "
    "(see notes). The finalist's own mean has a plain 95% interval. Test "
    "accuracy and Δ sparsity (the share of weights within 0.05% of the largest |w|, in points) "
    "are reported only, never used to decide. Full table: tables/effects.csv."
)
_TABLES = (
    (
        "family_summary",
        "Search: each family's single runs",
        "Final-model metrics of the search trials, one seed each: the top run (what confirmation "
        "re-trains) and the spread over the family. Not a verdict: close values can swap on "
        "another seed. Sparsity and dead units leave out collapsed trials (n_collapsed).",
    ),
    ("pareto_front", "Pareto front", "Completed trials no other trial beats in every objective."),
    (
        "top_trials",
        "Top trials",
        "Completed trials ranked by the final model's validation metric "
        "(single runs); best_epoch_* are hindsight figures, for comparison only.",
    ),
    (
        "gap_by_param",
        "Gap against each searched parameter",
        "Final-model accuracy gap per parameter bin (completed trials).",
    ),
    (
        "pruning_summary",
        "Pruning",
        "Epochs saved = Σ over pruned trials of (epochs_max − epochs_run).",
    ),
    ("state_summary", "Trial states", "Every trial, including interrupted / over-budget ones."),
    (
        "param_importances",
        "Parameter importances",
        "PED-ANOVA importances (normalized) for the final model's validation accuracy and gap: how "
        "the parameters of the best n_top of n_trials completed single runs differ from all of "
        "them. Under 50 runs, a hint, not a ranking (see Notes).",
    ),
)


def _answer_blocks(report: Report) -> list[Block]:
    blocks = [Block("h2", "Answer"), Block("p", report.answer.text)]
    if report.answer.command:
        blocks.append(Block("code", report.answer.command))
    if "effects" in report.figures:
        blocks.append(Block("figure", FIGURE_TITLES["effects"], stem="effects"))
        blocks.append(
            Block("table", _EFFECTS_CAPTION, frame=effects_view(report.tables["effects"]))
        )
    return blocks


def document(report: Report, data: StudyData) -> list[Block]:
    """Every block of the report, in order."""
    out = [
        *_answer_blocks(report),
        Block("h2", "Study"),
        Block("facts"),
        Block("code", report.search_summary),
    ]
    first, *rest = _TABLES
    out += [Block("h2", first[1]), Block("table", first[2], frame=report.tables[first[0]])]
    out.append(Block("h2", "Figures"))
    for stem, title in FIGURE_TITLES.items():
        if stem == "effects":
            continue
        if stem in report.figures:
            out += [Block("h3", title), Block("figure", title, stem=stem)]
        elif stem in report.skipped:
            out += [Block("h3", title), Block("p", report.skipped[stem])]
    for stem, heading, caption in rest:
        if stem in report.tables:
            out += [Block("h2", heading), Block("table", caption, frame=report.tables[stem])]
    if report.notes:
        out += [Block("h2", "Notes"), Block("items", "\n".join(report.notes))]
    out.append(
        Block(
            "p",
            "Every table is in the tables folder (CSV and Parquet), every figure "
            "in the figures folder (PNG and SVG).",
        )
    )
    return out
