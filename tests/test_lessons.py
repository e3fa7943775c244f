"""Lessons: every definition is valid and queues as one group; the reading puts a finished group in numbers and says
when a gap is within seed noise; the Lessons page opens one by `?lesson=` and queues it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from streamlit.testing.v1 import AppTest

from bert_lab.runs.records import RunSummary
from bert_lab.runs.service import Lab, fitted
from bert_lab.runs.status import Status
from bert_lab.sweeps.report import read_group
from bert_lab.teaching.lessons import LESSONS, launch, reading
from lab_ui import page

OpenPage = Callable[..., AppTest]


def test_every_lesson_is_a_valid_group_that_reads_well(lab: Lab) -> None:
    for lesson in LESSONS.values():
        assert lesson.title and lesson.concept and lesson.formula and lesson.look_for
        configs = lesson.configs()
        assert len(configs) == len(lesson.arms) * lesson.seeds and len(configs) <= 6  # minutes, not hours
        group = launch(lab, lesson, owner="ana")
        runs = sorted(lab.store.list_runs(group_id=group.id), key=lambda r: r.id)
        assert (group.method, group.spec["lesson"], group.metric) == ("lesson", lesson.slug, lesson.metric)
        assert [r.name for r in runs] == [fitted(f"{lesson.title}: {label}") for label, _ in configs]  # ≤ 80 chars
        assert [r.config for r in runs] == [c.to_dict() for _, c in configs]


def finish(lab: Lab, run_id: int, accuracy: float, **more: float) -> None:
    lab.store.claim_run(run_id, pid=1)
    values = {"accuracy": accuracy, "f1": accuracy - 0.02, "eval_loss": 0.5, **more}
    points = [(50, 1.0, 9.0, name, value) for name, value in values.items()]
    lab.store.add_metrics(run_id, points)
    lab.store.update_run(run_id, summary=RunSummary(confusion=[[55, 5], [10, 30]]))
    lab.store.set_status(run_id, Status.FINISHED)


def test_the_reading_names_each_arm_and_the_verdict(lab: Lab) -> None:
    lesson = LESSONS["learning-rate"]
    group = launch(lab, lesson)
    for run, accuracy in zip(sorted(lab.store.list_runs(group_id=group.id), key=lambda r: r.id), (0.55, 0.78, 0.58)):
        finish(lab, run.id, accuracy)
    lines = reading(lesson, read_group(lab.store, group.id))
    assert lines[0] == "right (2e-4): accuracy 0.780, F1 0.760, eval loss 0.500"
    assert (
        lines[-1] == "F1 (macro): right (2e-4) beats too large (3e-3) by 20.0 points (one run each): "
        "a gap this large is the lesson."
    )
    noise = LESSONS["seed-noise"]
    group = launch(lab, noise)
    for run, accuracy in zip(lab.store.list_runs(group_id=group.id), (0.75, 0.58, 0.70, 0.72, 0.74)):
        finish(lab, run.id, accuracy)
    [line] = reading(noise, read_group(lab.store, group.id))
    assert line.startswith("lr 2e-4: accuracy 0.698") and "(seeds from 0.580 to 0.750)" in line


def test_a_lesson_whose_runs_all_learned_nothing_says_so_once(lab: Lab) -> None:
    lesson = LESSONS["learning-rate"]
    group = launch(lab, lesson)
    for run in lab.store.list_runs(group_id=group.id):  # every arm at the majority class: 60 of 100
        lab.store.claim_run(run.id, pid=1)
        lab.store.add_metrics(run.id, [(50, 1.0, 9.0, "accuracy", 0.6), (50, 1.0, 9.0, "f1", 0.375)])
        lab.store.update_run(run.id, summary=RunSummary(confusion=[[60, 0], [40, 0]]))
        lab.store.set_status(run.id, Status.FINISHED)
    last = reading(lesson, read_group(lab.store, group.id))[-1]
    assert last.endswith(": every run learned nothing, so neither is better (each run's notes say why).")
    assert "one run each" not in last and "seed noise" not in last


def test_the_reading_tells_arms_apart_by_every_knob_and_gives_the_metrics_the_lesson_shows(lab: Lab) -> None:
    lesson = LESSONS["regularization"]  # its first arm changes nothing: it is told apart by the others' knobs
    group = launch(lab, lesson)
    runs = sorted(lab.store.list_runs(group_id=group.id), key=lambda r: r.id)
    for run, (accuracy, norm, near_zero) in zip(
        runs, [(0.74, 276.4, 0.0166), (0.66, 260.5, 0.087), (0.64, 259.0, 0.064), (0.73, 262.9, 0.0174)]
    ):
        finish(lab, run.id, accuracy, weight_norm=norm, near_zero=near_zero)
    lines = reading(lesson, read_group(lab.store, group.id))
    assert lines[:4] == [
        "no penalty: accuracy 0.740, F1 0.720, eval loss 0.500; weight norm 276.4; near-zero weights 1.7%",
        "weight decay (10): accuracy 0.730, F1 0.710, eval loss 0.500; weight norm 262.9; near-zero weights 1.7%",
        "L1 (λ 1e-4): accuracy 0.660, F1 0.640, eval loss 0.500; weight norm 260.5; near-zero weights 8.7%",
        "L2 (λ 1e-2): accuracy 0.640, F1 0.620, eval loss 0.500; weight norm 259.0; near-zero weights 6.4%",
    ]


def test_a_lesson_weighs_its_best_arm_against_the_arm_it_names_and_says_when_a_gap_is_small(lab: Lab) -> None:
    lesson = LESSONS["schedules"]  # eval loss: lower is better; weighed against constant, not the runner-up
    group = launch(lab, lesson)
    runs = sorted(lab.store.list_runs(group_id=group.id), key=lambda r: r.id)
    for run, loss in zip(runs, (0.627, 0.592, 0.583, 0.584)):
        finish(lab, run.id, 0.7, eval_loss=loss)
    lines = reading(lesson, read_group(lab.store, group.id))
    assert lines[-1] == (
        "Eval loss: exponential decay (×0.5 every 10 steps) beats constant by 0.044 (one run each): "
        "a gap this large is the lesson."
    )
    optimizers = LESSONS["optimizers"]  # no arm named: the two best, here a small gap
    group = launch(lab, optimizers)
    runs = sorted(lab.store.list_runs(group_id=group.id), key=lambda r: r.id)
    for run, loss in zip(runs, (0.649, 0.594, 0.526, 0.530)):
        finish(lab, run.id, 0.7, eval_loss=loss)
    assert reading(optimizers, read_group(lab.store, group.id))[-1] == (
        "Eval loss: Adam (lr 1e-4) beats AdamW (lr 1e-4, decay 0.01) by 0.004 (one run each): "
        "a gap this small can be seed noise."
    )


def test_the_lessons_page_opens_by_link_and_queues_the_lesson(lab: Lab, open_page: OpenPage) -> None:
    at = open_page(page.LESSONS_PAGE)
    assert at.selectbox(key="lesson").value == "optimizers"  # the first concept: the gradient step
    assert "\\sqrt{\\hat v}" in at.get("latex")[0].proto.body
    at.selectbox(key="lesson").set_value("accuracy-vs-f1").run()
    assert at.query_params["lesson"] == "accuracy-vs-f1"
    at.button(key="lesson_run").click().run()
    [group] = lab.store.list_groups()
    assert group.spec["lesson"] == "accuracy-vs-f1" and len(lab.store.list_runs(group_id=group.id)) == 2
    assert "Runs: 2 queued." in "\n".join(str(c.value) for c in at.caption)
    for run in lab.store.list_runs(group_id=group.id):
        finish(lab, run.id, 0.9)
    at.run()
    legends = {
        t["name"] for chart in at.get("plotly_chart") for t in json.loads(chart.proto.spec)["data"] if t.get("name")
    }
    assert {"says ham to everything (lr 3e-3) (n=1)", "learned (lr 1e-4) (n=1)"} <= legends  # arms, not knob values


def test_a_lesson_link_on_the_app_opens_the_lesson() -> None:
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
    at.query_params["lesson"] = "seed-noise"
    at.run()
    assert not at.exception and at.selectbox(key="lesson").value == "seed-noise"


def test_the_batch_size_lesson_charts_against_epochs(lab: Lab, open_page: OpenPage) -> None:
    """Batches of 8 and of 64 take 100 and 13 steps an epoch: side by side only against the examples seen."""
    lesson = LESSONS["batch-size"]
    group = launch(lab, lesson)
    for run in lab.store.list_runs(group_id=group.id):
        finish(lab, run.id, 0.7)
    at = open_page(page.LESSONS_PAGE, {"lesson": "batch-size"})
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    assert charts and all(c["layout"]["xaxis"]["title"]["text"] == "Epoch" for c in charts)
