"""Study database → tidy DataFrames → generalization-gap tables, figures and a report.

Extraction (database → DataFrame, DataFrame → plot data) is separate from drawing
(DataFrame → :class:`matplotlib.figure.Figure`); plot functions never open a database.

Example:
    >>> from analysis import load_trials, family_summary
    >>> trials = load_trials("outputs/studies.db")  # doctest: +SKIP
    >>> family_summary(trials)  # doctest: +SKIP
"""

from __future__ import annotations

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
    sparsity_data,
)
from analysis._plots import (
    plot_best_curves,
    plot_dropout,
    plot_gap_vs_strength,
    plot_heatmap,
    plot_history,
    plot_intermediate,
    plot_sparsity,
)
from analysis._report import Report, build_report, report_figures, report_tables
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
    "best_curves_data",
    "build_report",
    "curves_frame",
    "dropout_data",
    "family_summary",
    "gap_by_param",
    "gap_vs_strength_data",
    "heatmap_data",
    "history_data",
    "intermediate_data",
    "list_studies",
    "load_curves",
    "load_trials",
    "open_storage",
    "param_importances",
    "plot_best_curves",
    "plot_dropout",
    "plot_gap_vs_strength",
    "plot_heatmap",
    "plot_history",
    "plot_intermediate",
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
