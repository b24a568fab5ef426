"""Study database → tidy DataFrames → effects, generalization-gap tables, figures and a report.

A search study ``S`` is read with its confirmation study ``S.confirm`` when there is one: the
confirmation's runs give each finalist's effect against its baseline, paired by seed, with a
simultaneous (Bonferroni) 95% interval and an adjusted p-value (:func:`effects`). Extraction (database → DataFrame,
DataFrame → plot data) is separate from drawing (DataFrame → :class:`matplotlib.figure.Figure`);
plot functions never open a database.

Example:
    >>> from analysis import effects, load_trials, family_summary
    >>> effects("outputs/studies.db", "mnist")  # doctest: +SKIP
    >>> family_summary(load_trials("outputs/studies.db", "mnist"))  # doctest: +SKIP
"""

from __future__ import annotations

from analysis._audit import audit_data
from analysis._confirm import arms_frame, confirm_frame, load_confirm
from analysis._document import Report
from analysis._dose import dose_data
from analysis._effects import decision_metric, effects, effects_data
from analysis._figures import report_figures
from analysis._importance import param_importances
from analysis._load import (
    StudyData,
    curves_frame,
    load_curves,
    load_trials,
    read_study,
    trials_frame,
)
from analysis._plotdata import (
    best_curves_data,
    dropout_data,
    gap_vs_strength_data,
    heatmap_data,
    history_data,
    intermediate_data,
    pareto_data,
    sparsity_data,
)
from analysis._plots import plot_dropout, plot_gap_vs_strength, plot_sparsity
from analysis._plots_dose import plot_dose
from analysis._plots_effects import plot_effects
from analysis._plots_search import (
    plot_best_curves,
    plot_heatmap,
    plot_history,
    plot_intermediate,
    plot_pareto,
)
from analysis._reference import baseline_reference
from analysis._report import build_report, report_tables
from analysis._storage import (
    DEFAULT_STORAGE,
    AnalysisError,
    StorageNotFoundError,
    StudyNotFoundError,
    list_studies,
    open_storage,
    resolve_storage,
    resolve_study_name,
)
from analysis._tables import (
    family_summary,
    gap_by_param,
    pruning_summary,
    result_trials,
    state_summary,
    top_trials,
)

__all__ = [
    "DEFAULT_STORAGE",
    "AnalysisError",
    "Report",
    "StorageNotFoundError",
    "StudyData",
    "StudyNotFoundError",
    "arms_frame",
    "audit_data",
    "baseline_reference",
    "best_curves_data",
    "build_report",
    "confirm_frame",
    "curves_frame",
    "decision_metric",
    "dose_data",
    "dropout_data",
    "effects",
    "effects_data",
    "family_summary",
    "gap_by_param",
    "gap_vs_strength_data",
    "heatmap_data",
    "history_data",
    "intermediate_data",
    "list_studies",
    "load_confirm",
    "load_curves",
    "load_trials",
    "open_storage",
    "param_importances",
    "pareto_data",
    "plot_best_curves",
    "plot_dose",
    "plot_dropout",
    "plot_effects",
    "plot_gap_vs_strength",
    "plot_heatmap",
    "plot_history",
    "plot_intermediate",
    "plot_pareto",
    "plot_sparsity",
    "pruning_summary",
    "read_study",
    "report_figures",
    "report_tables",
    "resolve_storage",
    "resolve_study_name",
    "result_trials",
    "sparsity_data",
    "state_summary",
    "top_trials",
    "trials_frame",
]
