"""Predict first (teaching/predictions.py) and the class lesson (teaching/classroom.py), on a real store: a
prediction's checks, who may predict, when predictions close, the reading of a prediction beside the result, and the
class lesson's open → run → reveal → close with what a participant may see at each step."""

from __future__ import annotations

import pytest

from bert_lab.runs import workshop
from bert_lab.runs.records import Prediction, RunSummary
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.store import StoreError
from bert_lab.runs.workshop import Actor, NotAllowedError, Settings
from bert_lab.sweeps.report import read_group
from bert_lab.teaching import classroom, predictions
from bert_lab.teaching.lessons import LESSONS, launch

LR = LESSONS["learning-rate"]  # arms: too small (1e-6), right (2e-4), too large (3e-3); judged by F1
HOST, ANA, BO = Actor("host", host=True), Actor("ana"), Actor("bo")


def finish(lab: Lab, run_id: int, f1: float, status: Status = Status.FINISHED) -> None:
    lab.store.claim_run(run_id, pid=1)
    points = [
        (50, 1.0, 9.0, name, value) for name, value in {"accuracy": f1 + 0.02, "f1": f1, "eval_loss": 0.5}.items()
    ]
    lab.store.add_metrics(run_id, points)
    lab.store.update_run(run_id, summary=RunSummary(confusion=[[55, 5], [10, 30]]))
    lab.store.set_status(run_id, status)


def lesson_runs(lab: Lab, group_id: str) -> list[int]:
    """The lesson's run ids in its arms' order."""
    return [r.id for r in sorted(lab.store.list_runs(group_id=group_id), key=lambda r: r.id)]


def test_a_prediction_names_an_arm_and_an_optional_range_each_bad_field_named(lab: Lab) -> None:
    group = launch(lab, LR, model="tiny")
    report = read_group(lab.store, group.id)
    assert predictions.arms(group, report) == ["too small (1e-6)", "right (2e-4)", "too large (3e-3)"]
    assert predictions.predictable(group, report) and predictions.is_open(report)
    with pytest.raises(ValueError) as bad:
        predictions.predict(lab, report, arm="huge", low=0.9, high=1.5)
    assert str(bad.value) == (
        "arm: 'huge' is not one of this group's: too small (1e-6), right (2e-4), too large (3e-3); "
        "high: F1 (macro) 1.5 is not between 0 and 1"
    )
    with pytest.raises(ValueError, match="^range: give both ends, or neither$"):
        predictions.predict(lab, report, arm="right (2e-4)", low=0.5)
    with pytest.raises(ValueError, match="^range: low 0.8 is above high 0.6$"):
        predictions.predict(lab, report, arm="right (2e-4)", low=0.8, high=0.6)
    assert lab.store.list_predictions(group.id) == []  # nothing written
    made = predictions.predict(lab, report, arm="right (2e-4)", low=0.6, high=0.8, owner="me")
    assert (made.owner, made.arm, made.low, made.high) == ("me", "right (2e-4)", 0.6, 0.8)
    assert lab.store.list_predictions(group.id) == [made]


def test_one_arm_or_a_search_has_nothing_to_predict(lab: Lab) -> None:
    two = launch(lab, LESSONS["dropout"], model="tiny")  # two arms are enough to predict between
    assert predictions.predictable(two, read_group(lab.store, two.id))
    noise = launch(lab, LESSONS["seed-noise"], model="tiny")
    assert not predictions.predictable(noise, read_group(lab.store, noise.id))
    search = lab.store.create_group(name="s", method="search", metric="f1", spec={}, runs=[({"lr": 1e-4}, "a", None)])
    report = read_group(lab.store, search.id)
    assert not predictions.predictable(search, report)
    with pytest.raises(ValueError, match="^group: a search chooses its configs as it goes"):
        predictions.predict(lab, report, arm=report.configs[0].label)


def test_a_participant_predicts_as_themselves_on_their_own_groups_only(lab: Lab) -> None:
    group = launch(lab, LR, owner="ana", model="tiny")
    report = read_group(lab.store, group.id)
    made = predictions.predict(lab, report, arm="right (2e-4)", owner="someone else", actor=ANA)
    assert made.owner == "ana"  # the actor's name, whatever the page passed
    with pytest.raises(NotAllowedError, match="belongs to ana: only ana or the host can predict on it"):
        predictions.predict(lab, report, arm="right (2e-4)", actor=BO)
    predictions.predict(lab, report, arm="too large (3e-3)", actor=HOST)
    assert [p.owner for p in lab.store.list_predictions(group.id)] == ["ana", "host"]


def test_predictions_close_when_a_run_has_its_result_and_the_outcome_reads_it(lab: Lab) -> None:
    group = launch(lab, LR, model="tiny")
    small, right, large = lesson_runs(lab, group.id)
    report = read_group(lab.store, group.id)
    wrong = predictions.predict(lab, report, arm="too large (3e-3)", low=0.7, high=0.9, owner="a")
    held = predictions.predict(lab, report, arm="right (2e-4)", low=0.7, high=0.8, owner="b")
    assert predictions.outcome(held, report) == []  # no result yet: nothing to say
    finish(lab, right, 0.78)
    report = read_group(lab.store, group.id)
    assert predictions.outcome(wrong, report) == [
        "You predicted too large (3e-3) would end best on F1 (macro).",
        "too large (3e-3) has no result (its runs did not finish); right (2e-4) ended at 78.0%.",
    ]
    report = read_group(lab.store, group.id)
    assert not predictions.is_open(report)
    with pytest.raises(StoreError, match="predictions are closed"):
        predictions.predict(lab, report, arm="right (2e-4)", owner="c")
    finish(lab, small, 0.40)
    finish(lab, large, 0.36)
    report = read_group(lab.store, group.id)
    assert predictions.outcome(held, report) == [
        "You predicted right (2e-4) would end best on F1 (macro).",
        "It did: right (2e-4) ended at 78.0%; the gap of 38.0 points to too small (1e-6) rests on one run each: it "
        "may be seed noise (the seed-noise lesson measures how much).",
        "Your range for its F1 (macro), 70.0% to 80.0%, held it: it ended at 78.0%.",
    ]
    assert predictions.outcome(wrong, report) == [
        "You predicted too large (3e-3) would end best on F1 (macro).",
        "It did not: right (2e-4) ended at 78.0%, too large (3e-3) ended at 36.0%; the gap of 42.0 points to too "
        "large (3e-3) rests on one run each: it may be seed noise (the seed-noise lesson measures how much).",
        "Your range for its F1 (macro), 70.0% to 90.0%, missed it: it ended at 36.0%.",
    ]
    assert predictions.tally(lab.store.list_predictions(group.id), predictions.arms(group, report)) == {
        "too small (1e-6)": 0,
        "right (2e-4)": 1,
        "too large (3e-3)": 1,
    }


def test_the_outcome_says_real_or_noise_with_seeds_and_names_a_tie(lab: Lab) -> None:
    runs = [({"lr": lr, "seed": s}, "", None) for lr in (1e-4, 3e-4) for s in (1, 2, 3)]
    group = lab.store.create_group(name="g", method="grid", metric="f1", spec={"knobs": ["lr"]}, runs=runs)
    ids = lesson_runs(lab, group.id)
    report = read_group(lab.store, group.id)
    [a, b] = predictions.arms(group, report)
    guess = predictions.predict(lab, report, arm=b)
    for run_id, f1 in zip(ids, (0.70, 0.71, 0.72, 0.80, 0.81, 0.82)):
        finish(lab, run_id, f1)
    lines = predictions.outcome(guess, read_group(lab.store, group.id))
    assert lines[1].startswith(f"It did: {b} ended at 81.0%; the gap of 10.0 points to {a} is real at 95%")
    noisy = lab.store.create_group(name="n", method="grid", metric="f1", spec={"knobs": ["lr"]}, runs=runs)
    for run_id, f1 in zip(lesson_runs(lab, noisy.id), (0.70, 0.80, 0.60, 0.72, 0.62, 0.82)):
        finish(lab, run_id, f1)
    lines = predictions.outcome(Prediction(noisy.id, "", a, None, None, 0.0), read_group(lab.store, noisy.id))
    assert lines[1].endswith("is within seed noise: on other seeds it could have gone the other way.")
    assert len(lines) == 2  # no range given, none read
    tied = lab.store.create_group(name="t", method="grid", metric="f1", spec={"knobs": ["lr"]}, runs=runs[::3])
    for run_id in lesson_runs(lab, tied.id):
        finish(lab, run_id, 0.75)
    lines = predictions.outcome(Prediction(tied.id, "", a, None, None, 0.0), read_group(lab.store, tied.id))
    assert lines[1] == f"It tied for best: {a} ended at 75.0%, {b} ended at 75.0%."


def test_a_class_lesson_is_hidden_from_participants_until_the_host_reveals_it(lab: Lab) -> None:
    with pytest.raises(NotAllowedError, match="only the host can open a class lesson"):
        classroom.open_class(lab, LR, actor=ANA)
    assert classroom.class_lesson(lab) is None
    with pytest.raises(ValueError, match="no class lesson is open"):
        classroom.run_class(lab, actor=HOST)
    group = classroom.open_class(lab, LR, actor=HOST, model="tiny")
    assert classroom.class_lesson(lab) == (group, LR)
    assert (group.owner, group.spec["model"], lab.store.list_runs(group_id=group.id)) == ("host", "tiny", [])
    settings = Settings.read(lab.data)
    assert settings.hides(ANA) == {group.id} and settings.hides(HOST) == set() and settings.hides(None) == set()
    report = read_group(lab.store, group.id)
    assert predictions.arms(group, report) == [label for label, _ in LR.arms]  # known before any run exists
    predictions.predict(lab, report, arm="right (2e-4)", actor=ANA)  # the class lesson: anyone predicts on it
    predictions.predict(lab, report, arm="too large (3e-3)", low=0.5, high=0.6, actor=BO)
    with pytest.raises(NotAllowedError, match="only the host can run the class lesson"):
        classroom.run_class(lab, actor=ANA)
    runs = classroom.run_class(lab, actor=HOST)
    assert [r.config["lr"] for r in runs] == [1e-6, 2e-4, 3e-3] and {r.owner for r in runs} == {"host"}
    assert {r.config["model"] for r in runs} == {"tiny"}
    with pytest.raises(ValueError, match="already queued"):
        classroom.run_class(lab, actor=HOST)
    with pytest.raises(NotAllowedError, match="only the host can reveal"):
        classroom.reveal(lab, actor=ANA)
    assert Settings.read(lab.data).hides(ANA) == {group.id}
    classroom.reveal(lab, actor=HOST)
    assert Settings.read(lab.data).hides(ANA) == set() and Settings.read(lab.data).revealed
    again = classroom.open_class(lab, LESSONS["dropout"], actor=HOST)  # a new class lesson: hidden again
    assert Settings.read(lab.data).hides(BO) == {again.id} and not Settings.read(lab.data).revealed
    with pytest.raises(NotAllowedError):
        predictions.predict(lab, read_group(lab.store, group.id), arm="right (2e-4)", actor=ANA)  # no longer class
    classroom.reveal(lab, actor=HOST)
    classroom.close_class(lab, actor=HOST)
    assert classroom.class_lesson(lab) is None and Settings.read(lab.data).hides(BO) == set()
    assert Settings.read(lab.data) == Settings(class_group=None, revealed=False)  # the next one starts hidden


def test_settings_from_before_the_class_lesson_read_with_none_open(lab: Lab) -> None:
    lab.data.workshop.parent.mkdir(parents=True, exist_ok=True)
    lab.data.workshop.write_text('{"queue_cap": 5, "paused": true}')
    assert Settings.read(lab.data) == Settings(queue_cap=5, paused=True, class_group=None, revealed=False)
    workshop.Settings(class_group="abc").write(lab.data)
    assert Settings.read(lab.data).class_group == "abc" and classroom.class_lesson(lab) is None  # no such group
    sweep = lab.store.create_group(name="s", method="grid", metric="f1", spec={"lesson": "no-such-lesson"})
    workshop.Settings(class_group=sweep.id).write(lab.data)
    assert classroom.class_lesson(lab) is None  # a group that is no lesson is no class lesson
