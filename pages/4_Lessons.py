"""Lessons page: one concept at a time — the idea in plain words, its formula, what to look for, one click that queues
the runs that show it, and once they finish, what happened in numbers. `?lesson=SLUG` opens a lesson directly."""

from __future__ import annotations

import streamlit as st

from bert_lab.figures import curves, group_charts
from bert_lab.runs.describe import estimate_run_s, format_duration
from bert_lab.runs.workshop import QueueFullError, ServerPathError
from bert_lab.sweeps.report import read_group
from bert_lab.teaching.lessons import LESSONS, Lesson, launch, reading
from lab_ui import page

lab = page.start()
LESSON_KEY = "lesson"

st.title(":material/school: Lessons")
st.caption("Each lesson queues a few short runs that show one idea; they train in the background like any run.")
wanted = st.query_params.get(LESSON_KEY)
if wanted in LESSONS and st.session_state.get(LESSON_KEY) is None:
    st.session_state[LESSON_KEY] = wanted
slug = st.selectbox("Lesson", list(LESSONS), format_func=lambda s: LESSONS[s].title, key=LESSON_KEY)
st.query_params[LESSON_KEY] = slug
lesson = LESSONS[slug]


def latest_group(lesson: Lesson) -> str | None:
    """The newest group that ran this lesson (so a person finds their lesson again after leaving the page)."""
    mine = lab.store.list_groups(owner=page.owner()) if page.actor() else lab.store.list_groups()  # a workshop: mine
    return next((g.id for g in mine if g.spec.get("lesson") == lesson.slug), None)


def render_lesson_runs(group_id: str) -> None:
    report = read_group(lab.store, group_id)
    counts = " · ".join(f"{n} {status}" for status, n in sorted(report.counts.items()))
    st.caption(f"Runs: {counts}.")
    if any(r.is_active for r in report.runs):
        st.info("The runs are training; the reading appears when they finish.", icon=":material/hourglass_top:")
    lines = reading(lesson, report)
    if lines and not any(r.is_active for r in report.runs):
        st.success("**What happened**\n\n" + "\n".join(f"- {page.md(line)}" for line in lines))
    charts = ["train_loss", lesson.metric, *lesson.shows, *lesson.charts]
    points = curves.points_frame(lab.store.read_metrics([r.id for r in report.runs], names=charts))
    for pair in (charts[i : i + 2] for i in range(0, len(charts), 2)):
        for col, metric in zip(st.columns(2), pair):
            figure = group_charts.band_figure(report, points, metric, name_of=lesson.arm_of, x=lesson.x)
            col.plotly_chart(figure, key=f"lesson_{metric}")
    st.page_link(
        page.GROUPS_PAGE,
        label="Read it on the Groups page",
        icon=":material/stacked_line_chart:",
        query_params={"group": group_id},
    )


st.subheader(lesson.title)
st.markdown(page.md(lesson.concept))
st.latex(lesson.formula)
st.info(f"**What to look for.** {page.md(lesson.look_for)}", icon=":material/visibility:")
MODELS = {
    "minilm": "Bundled MiniLM: shows the effect",
    "tiny": "Tiny demo BERT: seconds, shows the mechanics only (random weights learn little)",
}
model = st.radio("Model", list(MODELS), format_func=MODELS.get, key="lesson_model", horizontal=True)
configs = lesson.configs(model)
past = lab.store.list_runs()
estimates = [estimate_run_s(past, config.to_dict()) for _, config in configs]
st.caption(
    f"{len(configs)} runs of {model} on {lesson.base.dataset}, {lesson.base.train_size} examples each: "
    f"about {format_duration(sum(s for s, _ in estimates))} on this machine ({estimates[0][1]}). Arms: "
    + "; ".join(page.md(label) for label, _ in lesson.arms)
    + "."
)
if st.button("Run this lesson", type="primary", icon=":material/play_arrow:", key="lesson_run"):
    try:
        model_ = None if model == lesson.base.model else model
        group = launch(lab, lesson, owner=page.owner(), model=model_, actor=page.actor())
    except (QueueFullError, ServerPathError) as exc:
        st.error(page.md(exc))
    else:
        page.remember_launched(*(r.id for r in lab.store.list_runs(group_id=group.id)))
        page.ensure_worker(lab)
group_id = latest_group(lesson)
if group_id is not None:
    active = any(r.is_active for r in lab.store.list_runs(group_id=group_id))
    page.live(3.0 if active else None)(render_lesson_runs)(group_id)
