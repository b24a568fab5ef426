"""Builders of synthetic studies for tests and benchmarks (not used by the analysis itself):
real Optuna storages holding trials with the records a sweep writes, so the analysis can be
tested and timed without training anything."""

from analysis.testing.synthetic import record_trial, synthetic_study
from analysis.testing.synthetic_confirm import add_confirm_study, confirm_trial, plan_entry

__all__ = ["add_confirm_study", "confirm_trial", "plan_entry", "record_trial", "synthetic_study"]
