"""The report's figures: each one drawn when it has something to show, else the sentence
that says why it is missing (an empty placeholder image would look like a result)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.figure import Figure

from analysis import _plotdata as pdata
from analysis import _plots as plots
from analysis import _plots_search as splots
from analysis import _tables as tables
from analysis._heatmap import param_scales
from analysis._plots_dose import plot_dose
from analysis._plots_effects import plot_effects

if TYPE_CHECKING:
    from analysis._load import StudyData

__all__ = ["FIGURE_TITLES", "report_figures"]

FIGURE_TITLES = {
    "effects": "Effect of each finalist vs its unregularized baseline (confirmation, paired by seed)",
    "dose_response": "Dose-response: each family's effect along its strength (confirmation seeds)",
    "gap_vs_strength": "Generalization gap vs λ (final model)",
    "dropout": "Gap and validation accuracy vs dropout p (final model)",
    "heatmap_val_acc": "Validation accuracy over two searched parameters",
    "loss_curves": "Train vs validation loss: top run per family vs unregularized",
    "sparsity_vs_lambda": "Weight sparsity and dead units vs λ: L1 vs L2",
    "pareto_front": "Pareto front of the objectives",
    "history": "Optimization history (pruned trials marked)",
    "intermediate": "Intermediate values",
}
"""Every figure the report can hold, in the order it shows them, with its heading."""


def _val_importance(importances: pd.DataFrame | None) -> dict[str, float] | None:
    if importances is None or importances.empty:
        return None
    rows = importances[importances["target"] == "val_acc"]
    return dict(zip(rows["param"], rows["importance"].astype(float), strict=True)) or None


def report_figures(
    data: StudyData,
    trials: pd.DataFrame,
    curves: pd.DataFrame,
    frames: dict[str, pd.DataFrame],
) -> tuple[dict[str, Figure], dict[str, str]]:
    """The figures with something to show, by file stem, and for each other figure the
    sentence that says why it is missing.

    ``frames`` (:func:`analysis.report_tables`) gives the effects, the baseline reference and
    the importances that pick the heatmap's two parameters.
    """
    ref = frames["baseline_reference"]
    figs: dict[str, Figure] = {}
    skipped: dict[str, str] = {}

    def add(stem: str, shown: bool, draw: Callable[[], Figure], why: str) -> None:
        if shown:
            figs[stem] = draw()
        else:
            skipped[stem] = why

    effects = frames["effects"]
    add(
        "effects",
        effects["baseline"].notna().any() and effects["n_pairs"].gt(0).any(),
        lambda: plot_effects(effects),
        "No forest plot: no finalist has confirmation runs paired with its baseline yet "
        "(see the answer above).",
    )
    dose = frames["dose_response"]
    add(
        "dose_response",
        not dose.empty and dose["delta_val_acc"].notna().any(),
        lambda: plot_dose(dose),
        "No dose-response figure: the confirmation study ran no strength path "
        "(hydra.sweeper.confirm.dose_points=0, or no finalist has a strength of its own).",
    )
    gap = pdata.gap_vs_strength_data(trials)
    unshown = pdata.strength_families_unshown(trials)
    add(
        "gap_vs_strength",
        not gap.empty,
        lambda: plots.plot_gap_vs_strength(gap, ref, unshown),
        "No gap-vs-λ figure: no regularization strength (λ) varies over the completed trials"
        + (f" ({', '.join(unshown)}: no completed trial)." if unshown else "."),
    )
    drop = pdata.dropout_data(trials)
    add(
        "dropout",
        not drop.empty,
        lambda: plots.plot_dropout(drop, ref),
        "No dropout figure: no completed trial used dropout (p > 0).",
    )
    heat = pdata.heatmap_data(
        trials,
        importance=_val_importance(frames["param_importances"]),
        scales=param_scales(data.trials),
    )
    add(
        "heatmap_val_acc",
        not heat.empty,
        lambda: splots.plot_heatmap(heat),
        "No heatmap: no two searched parameters vary together in the same completed trials.",
    )
    loss = pdata.best_curves_data(trials, curves)
    add(
        "loss_curves",
        not loss.empty,
        lambda: splots.plot_best_curves(loss, list(tables.unjudged_families(trials))),
        "No loss curves: no completed trial stored its curves.",
    )
    sparse = pdata.sparsity_data(trials)
    left = int(sparse.attrs.get("collapsed_left_out", 0))
    add(
        "sparsity_vs_lambda",
        not sparse.empty,
        lambda: plots.plot_sparsity(sparse),
        "No sparsity figure: no completed trial with an L1 or L2 λ that varies"
        + (f" that did not collapse to chance level ({left} collapsed)." if left else "."),
    )
    if len(data.directions) >= 2:
        front = pdata.pareto_data(trials, data.objectives, data.directions)
        add(
            "pareto_front",
            not front.empty,
            lambda: splots.plot_pareto(front, data.objectives, data.directions),
            "No Pareto front: no completed trial has a value for every objective.",
        )
    hist = pdata.history_data(trials, maximize=(data.directions or ["maximize"])[0] == "maximize")
    add(
        "history",
        not hist.empty,
        lambda: splots.plot_history(hist, metric=data.objectives[0]),
        "No optimization history: no completed, pruned or failed trial yet.",
    )
    inter = pdata.intermediate_data(trials, curves)
    add(
        "intermediate",
        not inter.empty,
        lambda: splots.plot_intermediate(inter, metric=data.metric),
        "No intermediate values: no trial reported any (multi-objective studies report none).",
    )
    return figs, skipped
