"""Lessons page: one concept at a time — the idea in plain words, its formula, what to look for, one click that queues
the runs that show it, a prediction before the result is in, and once they finish, what happened in numbers beside the
prediction. `?lesson=SLUG` opens a lesson directly.

In a workshop the host can open a class lesson for the room (Host view): it opens here for every participant with
the prediction form, and its result shows only once the host reveals it (then with the class's predictions)."""

from __future__ import annotations

import streamlit as st

from bert_lab.figures import curves, group_charts
from bert_lab.runs.describe import counts_line, estimate_run_s, format_duration
from bert_lab.runs.records import Group
from bert_lab.runs.workshop import QueueFullError, ServerPathError, Settings
from bert_lab.sweeps.report import GroupReport, read_group
from bert_lab.teaching import classroom
from bert_lab.teaching.lessons import LESSONS, Lesson, launch, reading
from lab_ui import page, predict, present

lab = page.start()
presenting = present.render_toggle()
LESSON_KEY = "lesson"
CLASS_SEEN_KEY = "_class_seen"  # the class lesson this browser was last turned to (it is turned once, then free)
WAIT_S = 3.0  # how often a participant's page looks whether the host has revealed the class lesson

if not presenting:
    st.title(":material/school: Lessons")
    st.caption("Each lesson queues a few short runs that show one idea; they train in the background like any run.")
wanted = st.query_params.get(LESSON_KEY)
if wanted in LESSONS and st.session_state.get(LESSON_KEY) is None:
    st.session_state[LESSON_KEY] = wanted
in_class = classroom.class_lesson(lab)
if in_class is not None and st.session_state.get(CLASS_SEEN_KEY) != in_class[0].id:
    st.session_state[CLASS_SEEN_KEY] = in_class[0].id
    st.session_state[LESSON_KEY] = in_class[1].slug
slug = present.choice("Lesson", list(LESSONS), format_func=lambda s: LESSONS[s].title, key=LESSON_KEY)
st.query_params[LESSON_KEY] = slug
lesson = LESSONS[slug]


def latest_group(lesson: Lesson) -> str | None:
    """The newest group that ran this lesson (so a person finds their lesson again after leaving the page)."""
    mine = lab.store.list_groups(owner=page.owner()) if page.actor() else lab.store.list_groups()  # a workshop: mine
    return next((g.id for g in mine if g.spec.get("lesson") == lesson.slug), None)


def render_lesson_runs(group_id: str, *, show_class: bool = False) -> None:
    report = read_group(lab.store, group_id)
    if presenting:  # the two charts that tell the story first, large; then what happened
        render_charts(report, [lesson.metric, "train_loss"])
        render_reading(report, show_class=show_class)
        return
    counts = counts_line(report.counts, empty="none queued yet")
    predict.render_form(report, key="lesson")
    st.caption(f"Runs: {counts}.")
    if any(r.is_active for r in report.runs):
        st.info("The runs are training; the reading appears when they finish.", icon=":material/hourglass_top:")
    render_reading(report, show_class=show_class)
    render_charts(report, ["train_loss", lesson.metric, *lesson.shows, *lesson.charts])
    if not report.runs:
        return
    st.page_link(
        page.GROUPS_PAGE,
        label="Read it on the Groups page",
        icon=":material/stacked_line_chart:",
        query_params={"group": group_id},
    )


def render_class(group: Group) -> None:
    """The class lesson, as a participant sees it: the prediction form; the result only once the host reveals it."""
    settings = Settings.read(lab.data)
    if group.id != settings.class_group:  # the host closed it or opened another meanwhile
        st.rerun()
    if group.id not in settings.hides(page.actor()):
        render_lesson_runs(group.id, show_class=True)
        return
    report = read_group(lab.store, group.id)
    predict.render_form(report, key="class")
    made = len(lab.store.list_predictions(group.id))
    st.info(
        f"**The result is hidden until your host reveals it to the room.** {made} prediction(s) in so far.",
        icon=":material/visibility_off:",
    )


def render_reading(report: GroupReport, *, show_class: bool) -> None:
    """What happened in numbers once every run has ended, and the prediction(s) beside it."""
    lines = reading(lesson, report)
    if lines and not any(r.is_active for r in report.runs):
        st.success("**What happened**\n\n" + "\n".join(f"- {page.md(line)}" for line in lines))
    predict.render_outcome(report, show_class=show_class, key="lesson")


def render_charts(report: GroupReport, charts: list[str]) -> None:
    """Each arm's curves (mean over seeds, with a band), two per row."""
    if not report.runs:
        return
    points = curves.points_frame(lab.store.read_metrics([r.id for r in report.runs], names=charts))
    for pair in (charts[i : i + 2] for i in range(0, len(charts), 2)):
        for col, metric in zip(st.columns(2), pair):
            figure = group_charts.band_figure(report, points, metric, name_of=lesson.arm_of, x=lesson.x)
            col.plotly_chart(present.projected(figure), key=f"lesson_{metric}")


st.subheader(lesson.title)
if in_class is not None and in_class[1].slug == lesson.slug and not presenting:
    st.caption(":material/groups: **Class lesson**: your host opened it for the whole room.")
if not presenting:  # on a projector the charts speak, and the presenter
    st.markdown(page.md(lesson.concept))
    st.latex(lesson.formula)
    st.info(f"**What to look for.** {page.md(lesson.look_for)}", icon=":material/visibility:")
if in_class is not None and in_class[1].slug == lesson.slug:
    group, _ = in_class
    who = page.actor()
    if who is not None and who.host:
        if not presenting:
            st.caption("You run and reveal it from the Host view; participants see the result only then.")
        page.live(3.0)(render_lesson_runs)(group.id, show_class=True)
    else:
        hidden = group.id in Settings.read(lab.data).hides(who)
        active = any(r.is_active for r in lab.store.list_runs(group_id=group.id))
        page.live(WAIT_S if hidden or active else None)(render_class)(group)
    st.stop()
MODELS = {
    "minilm": "Bundled MiniLM: shows the effect",
    "tiny": "Tiny demo BERT: seconds, shows the mechanics only (random weights learn little)",
}
if not presenting:  # on a projector: no knobs
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
