"""The class lesson and predictions in the app (AppTest, on SQLite and PostgreSQL): the host opens a lesson for the
room, participants predict on their Lessons page and see nothing of the result (there, on the Runs, Groups and
Playground pages) until the host reveals it; then each sees the result beside their own prediction and the class's.
Predictions on a person's own lesson and sweep; the presenter view of the Runs, Groups and Lessons pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from bert_lab.runs import workshop
from bert_lab.runs.records import RunSummary
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.workshop import Settings
from bert_lab.teaching import classroom
from bert_lab.teaching.lessons import LESSONS, launch
from lab_ui import page, present
from tests.test_app_workshop import HOST, ROOT, everything_said, signed

OpenPage = Callable[..., AppTest]
pytestmark = pytest.mark.usefixtures("each_store")
LR = LESSONS["learning-rate"]
RIGHT = "right (2e-4)"


@pytest.fixture(autouse=True)
def passcodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(workshop.PASSCODE_ENV, "tulip-42")
    monkeypatch.setenv(workshop.HOST_PASSCODE_ENV, "host-only-7")


def finish_all(lab: Lab, group_id: str, f1s: list[float]) -> None:
    for run, f1 in zip(sorted(lab.store.list_runs(group_id=group_id), key=lambda r: r.id), f1s):
        lab.store.claim_run(run.id, pid=1)
        values = {"accuracy": f1 + 0.02, "f1": f1, "eval_loss": 0.5, "train_loss": 0.6}
        lab.store.add_metrics(run.id, [(20, 1.0, 9.0, name, value) for name, value in values.items()])
        lab.store.update_run(run.id, summary=RunSummary(confusion=[[55, 5], [10, 30]]))
        lab.store.set_status(run.id, Status.FINISHED)


def infos(at: AppTest) -> str:
    """The page's info boxes as a reader sees them (markdown escapes taken out)."""
    return " ".join(str(i.value) for i in at.info).replace("\\", "")


def predict_on(at: AppTest, key: str, group_id: str, arm: str, *, low: int | None = None, high: int = 0) -> AppTest:
    at.radio(key=f"predict_arm_{key}_{group_id}").set_value(arm)
    if low is not None:
        at.checkbox(key=f"predict_ranged_{key}_{group_id}").check()
        at.slider(key=f"predict_range_{key}_{group_id}").set_value((low, high))
    next(b for b in at.button if b.label == "Save my prediction").click()
    return at.run()


def test_a_class_lesson_from_opening_to_reveal(open_page: OpenPage, lab: Lab) -> None:
    host = open_page(page.HOST_PAGE, signed(HOST))
    host.selectbox(key="class_pick").set_value("learning-rate")
    host.radio(key="class_model").set_value("tiny")
    host.button(key="class_open").click().run()
    assert not host.exception
    group, lesson = classroom.class_lesson(lab) or (None, None)
    assert group is not None and lesson == LR and group.spec["model"] == "tiny"

    ana = open_page(page.LESSONS_PAGE, signed("Ana"))  # turned to the class lesson, the form open, no Run button
    said = everything_said(ana)
    assert ana.selectbox(key="lesson").value == "learning-rate" and "Class lesson" in said
    assert "The result is hidden until your host reveals it" in said
    assert [b for b in ana.button if b.key == "lesson_run"] == []
    predict_on(ana, "class", group.id, RIGHT, low=70, high=85)
    bo = predict_on(open_page(page.LESSONS_PAGE, signed("Bo")), "class", group.id, "too large (3e-3)")
    assert not bo.exception
    made = {p.owner: (p.arm, p.low, p.high) for p in lab.store.list_predictions(group.id)}
    assert made == {"Ana": (RIGHT, 0.7, 0.85), "Bo": ("too large (3e-3)", None, None)}

    host = open_page(page.HOST_PAGE, signed(HOST))
    assert "**2 of 2 participant(s) predicted.** Runs: not run yet." in everything_said(host)
    assert len(host.get("plotly_chart")) == 2  # the arms' counts and the predicted scores
    host.button(key="class_run").click().run()
    runs = lab.store.list_runs(group_id=group.id)
    assert len(runs) == 3 and {r.owner for r in runs} == {"host"}
    finish_all(lab, group.id, [0.40, 0.78, 0.36])

    ana = open_page(page.LESSONS_PAGE, signed("Ana"))  # finished, not revealed: nothing shown
    said = everything_said(ana)
    assert "The result is hidden" in said and "What happened" not in said and "Your prediction\n" not in said
    assert not ana.get("plotly_chart") and not [s for s in ana.success]
    assert "predictions are closed" not in said  # the form is gone quietly: its result is in
    assert [b for b in ana.button if b.label == "Save my prediction"] == []
    runs_page = open_page(page.RUNS_PAGE, signed("Ana"))
    assert "No runs yet" in everything_said(runs_page)  # the class lesson's runs are not listed
    groups_page = open_page(page.GROUPS_PAGE, signed("Ana"))
    assert "No groups yet" in everything_said(groups_page)

    host = open_page(page.HOST_PAGE, signed(HOST))
    assert "What happened" in " ".join(str(s.value) for s in host.success)
    host.button(key="class_reveal").click().run()
    assert Settings.read(lab.data).revealed

    ana = open_page(page.LESSONS_PAGE, signed("Ana"))
    assert "What happened" in " ".join(str(s.value) for s in ana.success)
    mine = infos(ana)
    assert "You predicted right (2e-4) would end best on F1 (macro)." in mine
    assert "It did: right (2e-4) ended at 78.0%" in mine and "held it: it ended at 78.0%" in mine
    charts = ana.get("plotly_chart")
    assert len(charts) >= 4  # the class's two charts, and the lesson's curves
    assert "(2 predictions)" in charts[0].proto.spec
    bo = open_page(page.LESSONS_PAGE, signed("Bo"))
    assert "It did not: right (2e-4) ended at 78.0%, too large (3e-3) ended at 36.0%" in infos(bo)
    assert open_page(page.GROUPS_PAGE, signed("Ana")).selectbox(key="group").value == group.id

    host.button(key="class_close").click().run()
    assert classroom.class_lesson(lab) is None
    ana = open_page(page.LESSONS_PAGE, signed("Ana"))
    assert "Class lesson" not in everything_said(ana) and [b for b in ana.button if b.key == "lesson_run"]


def test_a_participant_cannot_open_run_or_reveal_a_class_lesson(open_page: OpenPage, lab: Lab) -> None:
    refused = open_page(page.HOST_PAGE, signed("Ana"))
    assert [b for b in refused.button if b.key in ("class_open", "class_run", "class_reveal")] == []
    host = open_page(page.HOST_PAGE, signed(HOST))
    host.button(key="class_open").click().run()
    assert classroom.class_lesson(lab) is not None and not Settings.read(lab.data).revealed


def test_predict_first_on_ones_own_lesson_and_sweep(
    open_page: OpenPage, lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(workshop.PASSCODE_ENV)
    monkeypatch.delenv(workshop.HOST_PASSCODE_ENV)
    group = launch(lab, LR, model="tiny")
    at = open_page(page.LESSONS_PAGE, {"lesson": "learning-rate"})
    predict_on(at, "lesson", group.id, RIGHT)
    assert "Your prediction: right (2e-4)." in everything_said(at).replace("\\", "")
    predict_on(at, "lesson", group.id, "too small (1e-6)", low=50, high=60)  # changed: one prediction, the new one
    [made] = lab.store.list_predictions(group.id)
    assert (made.owner, made.arm, made.low, made.high) == ("", "too small (1e-6)", 0.5, 0.6)
    finish_all(lab, group.id, [0.40, 0.78, 0.36])
    at = open_page(page.LESSONS_PAGE, {"lesson": "learning-rate"})
    mine = infos(at)
    assert "It did not: right (2e-4) ended at 78.0%, too small (1e-6) ended at 40.0%" in mine
    assert "missed it: it ended at 40.0%" in mine

    runs = [({"lr": lr, "seed": 1}, f"lr {lr}", None) for lr in (1e-4, 3e-4)]
    sweep = lab.store.create_group(name="<b>sweep</b>", method="grid", metric="f1", spec={"knobs": ["lr"]}, runs=runs)
    at = open_page(page.GROUPS_PAGE, {"group": sweep.id})
    arms = at.radio(key=f"predict_arm_group_{sweep.id}").options
    assert arms == ["lr=0.0001", "lr=0.0003"]
    predict_on(at, "group", sweep.id, "lr=0.0003")
    assert lab.store.list_predictions(sweep.id)[0].arm == "lr=0.0003"
    finish_all(lab, sweep.id, [0.70, 0.75])
    at = open_page(page.GROUPS_PAGE, {"group": sweep.id})
    assert "It did: lr=0.0003 ended at 75.0%" in infos(at)


@pytest.mark.parametrize("which", [page.RUNS_PAGE, page.GROUPS_PAGE, page.LESSONS_PAGE])
def test_the_presenter_view_hides_knobs_and_tables_and_draws_large(
    which: str, open_page: OpenPage, lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(workshop.PASSCODE_ENV)
    monkeypatch.delenv(workshop.HOST_PASSCODE_ENV)
    group = launch(lab, LR, model="tiny")
    finish_all(lab, group.id, [0.40, 0.78, 0.36])
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page(which)
    at.query_params[present.PARAM] = "1"
    at.query_params["lesson"] = "learning-rate"
    at.run()
    assert not at.exception and at.toggle(key=present.KEY).value
    assert not at.dataframe and [r for r in at.radio if r.key == "lesson_model"] == []
    assert not [s for s in at.selectbox if s.key == "band_metric"]
    charts = at.get("plotly_chart")
    assert len(charts) == 2, which
    assert all(f'"size":{present.FONT_PX}' in c.proto.spec for c in charts)
    at.toggle(key=present.KEY).set_value(False).run()
    assert present.PARAM not in at.query_params
    assert at.dataframe or [r for r in at.radio if r.key == "lesson_model"]  # the tables and knobs are back
