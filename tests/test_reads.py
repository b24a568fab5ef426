"""The sampler's and the pruner's read of a study (``sweep.study._reads``): the same trials as the
storage's own read, with only the user attributes named, and finished trials read once (real
SQLite and journal files)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from sweep.study import open_storage, resolve_storage
from sweep.study._reads import light_trials

BIG = {"trainer": {"epochs": 20}, "curves": list(range(200))}


def _study(path: Path) -> optuna.Study:
    storage = open_storage(resolve_storage(str(path)))
    return optuna.create_study(study_name="s", storage=storage, direction="maximize")


def _trial(study: optuna.Study, family: str, reports: list[float]) -> optuna.trial.Trial:
    trial = study.ask({"lr": FloatDistribution(1e-3, 1.0, log=True)})
    trial.set_user_attr("family", family)
    trial.set_user_attr("config", BIG)
    study._storage.set_trial_system_attr(trial._trial_id, "sampler", {"k": family})
    for step, value in enumerate(reports, start=1):
        trial.report(value, step)
    return trial


@pytest.mark.parametrize("suffix", [".db", ".log"])
def test_light_trials_are_the_stored_trials_with_only_the_named_attributes(
    tmp_path: Path, suffix: str
) -> None:
    study = _study(tmp_path / f"s{suffix}")
    done = _trial(study, "l1", [0.5, 0.7])
    study.tell(done, 0.7)
    pruned = _trial(study, "l2", [0.2])
    study.tell(pruned, state=TrialState.PRUNED)
    _trial(study, "dropout", [0.4, 0.6, 0.65])  # still running

    stored = study._storage.get_all_trials(study._study_id, deepcopy=False)
    light = light_trials(study._storage, study._study_id, ("family",))
    assert [t.number for t in light] == [0, 1, 2]
    for s, t in zip(stored, light, strict=True):
        assert (t.state, t.values, t.params, t.distributions) == (
            s.state,
            s.values,
            s.params,
            s.distributions,
        )
        assert t.intermediate_values == s.intermediate_values
        assert t.system_attrs == s.system_attrs
        assert (t.datetime_start, t.datetime_complete) == (s.datetime_start, s.datetime_complete)
        assert t._trial_id == s._trial_id
        assert t.user_attrs == {"family": s.user_attrs["family"]}
        assert "config" in s.user_attrs
    assert all(t.user_attrs == {} for t in light_trials(study._storage, study._study_id))


def test_finished_trials_are_read_once_running_ones_every_time(tmp_path: Path) -> None:
    study = _study(tmp_path / "s.db")
    done = _trial(study, "l1", [0.5])
    study.tell(done, 0.5)
    running = _trial(study, "l2", [0.3])

    first = light_trials(study._storage, study._study_id, ("family",))
    assert first[1].state == TrialState.RUNNING
    running.report(0.45, 2)
    study.tell(running, 0.45)
    late = _trial(study, "none", [0.1])

    second = light_trials(study._storage, study._study_id, ("family",))
    assert [t.number for t in second] == [0, 1, 2]
    assert second[0] is first[0]  # finished: kept from the first read
    assert second[1].state == TrialState.COMPLETE and second[1].values == [0.45]
    assert second[1].intermediate_values == {1: 0.3, 2: 0.45}
    assert second[2].user_attrs == {"family": "none"} and late.number == 2
    # another set of attributes is another view, not the first one's trials
    bare = light_trials(study._storage, study._study_id)
    assert bare[0] is not first[0] and bare[0].user_attrs == {}


def test_trials_a_job_ends_are_kept_as_a_read_would_return_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A population's members, ended by its job, are not read back by the sampler's next read
    in that process: what it keeps is what a fresh process reads from the file."""
    import math

    from sweep.study import Ending, StudyLink
    from sweep.study import _reads as reads

    path = tmp_path / "s.db"
    study = _study(path)
    asked = [_trial(study, family, []) for family in ("l1", "l2", "dropout", "none")]
    storage = open_storage(resolve_storage(str(path)), create=False)
    link = StudyLink(storage, "s")
    members = [link.member(t.number) for t in asked]
    keys = ("family", "regsweep:end", "stop_reason")
    light_trials(storage, study._study_id)  # the sampler's view and the progress line's ...
    light_trials(storage, study._study_id, keys)  # ... have each seen the running members
    late = _trial(study, "l1", [])  # asked after those reads
    members.append(link.member(late.number))
    members[0].stored({"job_dir": "jobs/0", "family": "l1"})
    for epoch in (1, 2, 3):
        for i, m in enumerate(members):
            m.report(0.1 * epoch + 0.01 * i, epoch)
        if epoch == 2:
            link.flush()
    link.end_many(
        [
            (
                members[0],
                Ending(TrialState.COMPLETE, [0.31], "completed", record={"val_acc": 0.31}),
            ),
            (members[1], Ending(TrialState.PRUNED, None, "pruned", record={"gap": math.inf})),
            (members[2], Ending(TrialState.FAIL, None, "diverged", "lr too high")),
            (members[4], Ending(TrialState.COMPLETE, [0.35], "completed")),
        ]
    )

    reread: list[int] = []
    real_read = reads._read
    monkeypatch.setattr(
        reads, "_read", lambda s, ids, k: (reread.extend(ids), real_read(s, ids, k))[1]
    )
    mine = {attrs: light_trials(storage, study._study_id, attrs) for attrs in ((), keys)}
    ids = {t.number: t._trial_id for t in mine[()]}
    # this process reads again only the trial still running
    assert reread == [ids[3]] * 2
    monkeypatch.undo()
    for attrs, kept in mine.items():
        fresh = light_trials(
            open_storage(resolve_storage(str(path)), create=False), study._study_id, attrs
        )
        assert [t.number for t in kept] == [t.number for t in fresh] == [0, 1, 2, 3, 4]
        for m, f in zip(kept, fresh, strict=True):
            assert (m.state, m.values, m.params, m.distributions) == (
                f.state,
                f.values,
                f.params,
                f.distributions,
            )
            assert m.intermediate_values == f.intermediate_values
            assert (m.user_attrs, m.system_attrs) == (f.user_attrs, f.system_attrs)
            assert m.datetime_start == f.datetime_start
            if f.datetime_complete is not None:
                assert m.datetime_complete is not None
                assert abs((m.datetime_complete - f.datetime_complete).total_seconds()) < 1
    assert mine[keys][1].user_attrs["stop_reason"] == "pruned"
    assert mine[keys][1].values == [0.1 * 3 + 0.01 * 1]  # its last report
