"""Everything between regsweep and an Optuna storage: opening storages, the one place a trial
ends, trial owners, heartbeats, and a job's link to its trials.

The sweeper plugin, the jobs and the analysis all open storages here, and only
:func:`end_trials` (and :func:`end_trial`, its one-trial form) moves a trial out of RUNNING. Together with the reporter (:class:`MemberLink`)
this package is the only Optuna code under ``sweep/``.
"""

from __future__ import annotations

import warnings

import optuna

from ..record import json_safe, record_json
from ._ask import Pending, ask_owned, ask_pending, ask_suggested
from ._heartbeat import Keeper
from ._lifecycle import (
    Ending,
    end_trial,
    end_trials,
    reap,
    requeue,
    stamp_owner,
    supports_heartbeat,
    write_attrs,
    write_attrs_many,
    write_reports,
)
from ._link import MemberLink, StudyLink, TrialGone
from ._owner import current_owner, owner_is_dead, owner_text
from ._pruner_configs import (
    PRUNER_SETTINGS,
    as_spec,
    own_fields,
    pruner_fields,
    pruner_settings,
    readers_of,
)
from ._pruners import PRUNERS, FamilyStartupPruner, PeerPercentilePruner, make_pruner, reads_rungs
from ._reads import light_trials
from ._storage import (
    JOURNAL_SUFFIXES,
    STORAGE_ENV,
    StorageError,
    StorageSpec,
    mask_secrets,
    mask_url,
    open_storage,
    resolve_storage,
)
from ._writes import ended_among, numbers_without

# Heartbeats and grouped TPE are "experimental" in Optuna, which warns on every use; regsweep
# pins their behaviour with its own tests, so the warnings would only drown the sweep's output.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
optuna.logging.set_verbosity(optuna.logging.WARNING)

__all__ = [
    "JOURNAL_SUFFIXES",
    "PRUNERS",
    "PRUNER_SETTINGS",
    "STORAGE_ENV",
    "Ending",
    "FamilyStartupPruner",
    "Keeper",
    "MemberLink",
    "PeerPercentilePruner",
    "Pending",
    "StorageError",
    "StorageSpec",
    "StudyLink",
    "TrialGone",
    "as_spec",
    "ask_owned",
    "ask_pending",
    "ask_suggested",
    "current_owner",
    "end_trial",
    "end_trials",
    "ended_among",
    "json_safe",
    "light_trials",
    "make_pruner",
    "mask_secrets",
    "mask_url",
    "numbers_without",
    "open_storage",
    "own_fields",
    "owner_is_dead",
    "owner_text",
    "pruner_fields",
    "pruner_settings",
    "readers_of",
    "reads_rungs",
    "reap",
    "record_json",
    "requeue",
    "resolve_storage",
    "stamp_owner",
    "supports_heartbeat",
    "write_attrs",
    "write_attrs_many",
    "write_reports",
]
