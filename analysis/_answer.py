"""The answer a report opens with: effects in one sentence with their uncertainty, or, without
a confirmation study, a plain warning and the command that confirms."""

from __future__ import annotations

import contextlib
import math
import shlex
from dataclasses import dataclass

import pandas as pd

from analysis._audit import audit_sentence
from analysis._dose import dose_summary
from analysis._effects import SAME_LOSS_RTOL, diverged_of
from analysis._format import delta_text, in_points, metric_label, p_text, signed_text
from analysis._plots_effects import forest_rows

__all__ = ["Answer", "answer", "confirm_command"]


@dataclass(frozen=True)
class Answer:
    """What the report says first.

    Attributes:
        text: One or two sentences in plain words.
        command: The command that confirms (or finishes confirming) the search; None when the
            confirmation answered.
    """

    text: str
    command: str | None = None

    def lines(self) -> list[str]:
        """The answer as printed lines (the command indented on its own line)."""
        return [self.text, *([f"  {self.command}"] if self.command else [])]


def _storage_arg(storage: str) -> str:
    if "://" in storage:
        from sqlalchemy.engine import make_url

        with contextlib.suppress(Exception):  # not an SQLAlchemy URL: leave it as given
            storage = make_url(storage).render_as_string(hide_password=True)
    return shlex.quote(storage)


def confirm_command(storage: str, study: str) -> str:
    """``python -m sweep -m ... hydra.sweeper.confirm.only=true`` for ``study`` in ``storage``
    (a password in the URL is masked: put yours back, or use the sweeper's own way to pass it)."""
    return (
        f"python -m sweep -m hydra.sweeper.storage={_storage_arg(storage)} "
        f"hydra.sweeper.study_name={shlex.quote(study)} hydra.sweeper.confirm.only=true"
    )


def _interval(lo: float, hi: float, metric: str) -> str:
    if in_points(metric):
        return f"{lo * 100:.1f} to {hi * 100:.1f}"
    return f"{lo:.3g} to {hi:.3g}"


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _effect_part(row: pd.Series, decide: str) -> str:
    delta = float(row[f"delta_{decide}"])
    verb = "raises" if delta > 0 else "lowers"
    lo, hi = float(row[f"delta_{decide}_ci_low"]), float(row[f"delta_{decide}_ci_high"])
    ci = _interval(lo, hi, decide) if delta > 0 else _interval(-hi, -lo, decide)  # magnitudes
    # a finalist that collapsed on some seeds says so in its name (forest_rows), once
    return (
        f"{row['name']} {verb} {metric_label(decide)} by {delta_text(delta, decide)} "
        f"(simultaneous 95% CI {ci}, n={int(row['n_pairs'])} seeds, Bonferroni-adjusted "
        f"{p_text(float(row['p_value']))})"
    )


def _mde_text(rows: pd.DataFrame, decide: str) -> str:
    """The smallest change the seeds of finalists with no detectable difference would have
    detected (80 % power, at the same adjusted level): what "no difference" rules out."""
    spans = [
        (str(r["plain_name"]), float(r["mde"]))
        for _, r in rows.iterrows()
        if not math.isnan(float(r["mde"]))
    ]
    if not spans:
        return ""
    each = ", ".join(f"{n} ±{delta_text(v, decide).lstrip('+')}" for n, v in spans)
    return f"; the smallest change these seeds detect with 80% power: {each}"


CHANCE_ONLY = (
    "ended at chance level on validation: on this data the network learned nothing "
    "that generalizes (random labels, for instance), so validation accuracy cannot "
    "tell the regularizers apart."
)
"""Said when no completed run rose above chance (:func:`analysis._chance.nothing_learned`):
after "Every run, the baseline's included," with a confirmation, "Every completed search run"
without."""


WEIGHTS_MIN_CHANGE = 0.01
"""The smallest change of sparsity the answer names (1 % of the weights): paired seeds detect
changes of 0.1 points, too small to matter, which the effects table still shows."""


def _weights(rows: pd.DataFrame, alpha: float = 0.05) -> str:
    """Finalists whose weights' sparsity differs from their baselines' (Bonferroni-adjusted across
    finalists, as the verdicts are) by at least :data:`WEIGHTS_MIN_CHANGE`, with the change
    and its interval; "" when none does."""
    parts = []
    shown = rows["p_sparsity"].lt(alpha) & rows["delta_sparsity"].abs().ge(WEIGHTS_MIN_CHANGE)
    for _, r in rows[shown].iterrows():
        delta = float(r["delta_sparsity"])
        lo, hi = float(r["delta_sparsity_ci_low"]), float(r["delta_sparsity_ci_high"])
        ci = _interval(lo, hi, "sparsity") if delta > 0 else _interval(-hi, -lo, "sparsity")
        parts.append(
            f"{r['plain_name']} {'raises' if delta > 0 else 'lowers'} it by "
            f"{delta_text(delta, 'sparsity')} (simultaneous 95% CI {ci}, "
            f"n={int(r['n_pairs'])} seeds, Bonferroni-adjusted "
            f"{p_text(float(r['p_sparsity']))})"
        )
    if not parts:
        return ""
    return (
        " On the weights (the share within 0.05 % of the largest |w|, as 000's notes count "
        "them), " + "; ".join(parts) + "."
    )


def _confirmed(rows: pd.DataFrame) -> str:
    decide = str(rows["decided_on"].iloc[0])
    kind = rows["verdict"].astype(str)
    parts = [_effect_part(r, decide) for _, r in rows[kind == "helps"].iterrows()]
    none = rows[kind == "no_difference"]
    if not none.empty:
        names = [str(n) for n in none["name"]]
        n = sorted({int(v) for v in none["n_pairs"]})
        at = f"n={n[0]}" if len(n) == 1 else "n=" + "/".join(map(str, n))
        verb = "show" if len(names) > 1 else "shows"
        parts.append(
            f"{_names(names)} {verb} no detectable difference at {at}"
            f"{_open(none, decide)}{_mde_text(none, decide)}"
        )
    unexplored = rows[kind == "not_explored"]
    for _, r in unexplored.iterrows():
        parts.append(f"{r['name']} was not explored ({r['notes']}), so no verdict")
    same = rows[kind == "same_as_baseline"]
    if not same.empty:
        parts.append(_same_part(same))
    parts += [_effect_part(r, decide) for _, r in rows[kind == "hurts"].iterrows()]
    return "Against the unregularized baseline, " + "; ".join(parts) + "."


def _chosen_on_validation(rows: pd.DataFrame) -> str:
    """Finalists whose final weights early stopping restored from the epoch that did best on
    the validation split (``n_restored``): that split then scores them, so their validation
    figures are the best of many noisy epochs. Each gets its paired Δ on the test split, which
    took no part in the choice; "" when no finalist restored an epoch."""
    text = ""
    for _, r in rows[rows["n_restored"] > 0].iterrows():
        d = [float(r[f"delta_test_acc{end}"]) for end in ("", "_ci_low", "_ci_high")]
        if math.isnan(d[0]):
            test = ", and it has no test accuracy paired with its baseline's"
        else:
            lo, hi = (signed_text(v, "test_acc") for v in d[1:])
            test = (
                f"; on the test split, which chose nothing, it changes test accuracy by "
                f"{signed_text(d[0], 'test_acc')} points (simultaneous 95% CI {lo} to {hi}, "
                f"n={int(r['n_pairs'])} seeds)"
            )
        text += (
            f" For {r['plain_name']}, training kept the epoch that did best on the "
            f"validation split that scores it (an earlier epoch restored on "
            f"{int(r['n_restored'])} of {int(r['n_seeds'])} seeds), so its validation "
            f"figures may flatter it{test}."
        )
    return text


def _diverged(rows: pd.DataFrame) -> str:
    """Finalists or baselines with runs that diverged: those seeds are missing from the pairs
    (no model to compare), yet staying finite is an effect of its own (what clipping is for);
    "" when no run diverged."""
    parts = []
    for _, r in rows.iterrows():
        (own, n_own), (base, n_base) = diverged_of(r)
        name = str(r["plain_name"])
        if own and base:
            parts.append(
                f"{name} diverged on {own} of {n_own} seeds and its baseline on {base} of {n_base}"
            )
        elif own:
            parts.append(f"{name} diverged on {own} of {n_own} seeds and its baseline on none")
        elif base:
            parts.append(
                f"{name}'s baseline diverged on {base} of {n_base} seeds and {name} on none"
            )
    if not parts:
        return ""
    return (
        " A run that diverged left no model to compare, so its seed is missing from the "
        "pairs above: " + "; ".join(parts) + "."
    )


def _open(rows: pd.DataFrame, decide: str) -> str:
    """How large a change the seeds leave open for finalists with no detectable difference:
    each one's 95% interval of its paired Δ (one to ±1 point and one to ±15 differ, though both
    read "no detectable difference")."""
    spans = [
        (
            str(r["plain_name"]),
            float(r[f"delta_{decide}_ci_low"]),
            float(r[f"delta_{decide}_ci_high"]),
        )
        for _, r in rows.iterrows()
    ]
    spans = [(n, lo, hi) for n, lo, hi in spans if not (math.isnan(lo) or math.isnan(hi))]
    if not spans:
        return ""
    label = metric_label(decide)
    unit = f"points of {label}" if in_points(decide) else label
    text = [f"{signed_text(lo, decide)} to {signed_text(hi, decide)}" for _, lo, hi in spans]
    if len(rows) == 1:
        return f" (simultaneous 95% CI {text[0]} {'' if in_points(decide) else 'in '}{unit})"
    each = ", ".join(f"{n} {t}" for (n, _, _), t in zip(spans, text, strict=True))
    return f" (simultaneous 95% CIs, in {unit}: {each})"


def _settings(label: str) -> list[str]:
    """The ``key=value`` items of an arm's label: ``l1 (learning rate=0.05, L1 λ=1e-06)``."""
    inside = label.partition("(")[2].removesuffix(")").removeprefix("baseline at ")
    return [item for item in inside.split(", ") if "=" in item]


def _same_part(rows: pd.DataFrame) -> str:
    """Finalists that trained as their baselines did on every seed, and at which strengths (the
    settings in a finalist's label that its baseline's lacks)."""
    names = [str(n) for n in rows["name"]]
    strengths = []
    for _, r in rows.iterrows():
        shared = set(_settings(str(r["baseline_label"])))
        strengths += [", ".join(i for i in _settings(str(r["label"])) if i not in shared)]
    one = len(names) == 1
    chosen = "; ".join(x for x in strengths if x)
    which = f" ({chosen})" if chosen else ""
    return (
        f"{_names(names)} trained as {'its baseline' if one else 'their baselines'} did on "
        f"every seed (the same validation accuracy, validation loss within "
        f"{SAME_LOSS_RTOL * 100:g} %): at the {'strength' if one else 'strengths'} the search "
        f"chose{which} {'it' if one else 'they'} had no measurable effect"
    )


def _unconfirmed(family: pd.DataFrame, unjudged: list[str] | None, chance_only: bool) -> str:
    text = (
        "No confirmation yet: this ranking comes from single runs (one seed, one validation "
        "split each) and is noise-prone; close values can swap on another seed."
    )
    ranked = family.dropna(subset=["top_val_acc"])
    if not ranked.empty:
        tops = ", ".join(f"{r.family} {r.top_val_acc:.3f}" for r in ranked.itertuples())
        text += f" Top single run per family (final validation accuracy): {tops}."
    if chance_only:
        text += f" Every completed search run {CHANCE_ONLY}"
    return (
        text
        + _unjudged(unjudged)
        + (
            " Confirm it (re-trains each family's finalist and its unregularized "
            "baseline on several seeds; seeds via hydra.sweeper.confirm.seeds, "
            "default 5):"
        )
    )


def answer(
    effects: pd.DataFrame,
    family: pd.DataFrame,
    *,
    has_confirm: bool,
    storage: str,
    study: str,
    unjudged: list[str] | None = None,
    chance_only: bool = False,
    dose: pd.DataFrame | None = None,
    audit: pd.DataFrame | None = None,
) -> Answer:
    """The report's opening: the effects in one sentence, or why there are none yet.

    Args:
        effects: :func:`analysis.effects_data` of the confirmation study.
        family: :func:`analysis.family_summary` of the search (single runs).
        has_confirm: Whether the storage holds the study's confirmation study.
        storage: The storage as opened (for the command).
        study: The search study's name.
        unjudged: Families the search tried but never completed (every trial pruned or
            failed): named, since no answer can judge them.
        chance_only: Whether every completed run ended at chance level (:data:`CHANCE_ONLY`
            is said).
        dose: :func:`analysis.dose_data` of the confirmation study: each family's path.
        audit: :func:`analysis.audit_data` of the search: how often pruning was wrong.
    """
    command = confirm_command(storage, study)
    audited = audit_sentence(audit) if audit is not None else ""
    if not has_confirm:
        return Answer(_unconfirmed(family, unjudged, chance_only) + audited, command)
    rows = forest_rows(effects)
    if rows.empty or not rows["n_pairs"].gt(0).any():
        return Answer(
            f"The confirmation study {study}.confirm has no finalist with completed "
            "runs paired with its baseline yet; run (or resume) it with:",
            command,
        )
    chance = f" Every run, the baseline's included, {CHANCE_ONLY}" if chance_only else ""
    paths = dose_summary(dose) if dose is not None else ""
    return Answer(
        _confirmed(rows)
        + _diverged(rows)
        + _chosen_on_validation(rows)
        + paths
        + chance
        + _weights(rows)
        + _unjudged(unjudged)
        + audited
    )


def _unjudged(families: list[str] | None) -> str:
    if not families:
        return ""
    verb = "is" if len(families) == 1 else "are"
    return (
        f" {_names(families)} {verb} not judged: no search trial of "
        f"{'its' if len(families) == 1 else 'theirs'} completed (all pruned or failed)."
    )
