"""Host view: the queue and the workers serving it, on every machine, with their slots (pause the queue, set the cap
on each participant's queued runs), the names taken (release one), runs per participant with a link to each one's
runs (it carries the host's sign-in, so the new tab is signed in), and a leaderboard per dataset. In a workshop only
the host sees it."""

from __future__ import annotations

import time
from urllib.parse import quote, urlencode

import pandas as pd
import streamlit as st

from bert_lab.core.metrics import METRICS
from bert_lab.processes import worker
from bert_lab.runs import names, workshop
from bert_lab.runs.describe import counts_line, owner_label, queue_places, row, worker_facts
from bert_lab.runs.records import WorkerLease
from bert_lab.runs.status import Status
from bert_lab.runs.workshop import Settings
from bert_lab.sweeps.report import read_group
from bert_lab.teaching import classroom, predictions
from bert_lab.teaching.lessons import LESSONS, reading
from lab_ui import page, predict

lab = page.start()
st.title(":material/admin_panel_settings: Host view")
who = page.actor()
if workshop.enabled() and (who is None or not who.host):
    st.warning("Only the workshop's host sees this page (sign in with the host passcode).")
    st.stop()
st.caption("The queue, who is running what, and the best result so far on each dataset. Refreshed every 5 s.")

settings = Settings.read(lab.data)
left, middle, right = st.columns([1.2, 1, 1], vertical_alignment="bottom")
paused = left.toggle(
    "Pause the queue",
    value=settings.paused,
    key="paused",
    help="Running runs go on; no queued run starts until you resume (the worker reads this every pass).",
)
cap = middle.number_input(
    "Queued runs per participant",
    min_value=1,
    max_value=1000,
    value=settings.queue_cap,
    step=1,
    key="queue_cap",
    help="A participant's launch past this many queued runs is refused with a message (24 fits 8 configs × 3 seeds).",
)
if (paused, cap) != (settings.paused, settings.queue_cap):
    settings = settings.update(lab.data, paused=paused, queue_cap=int(cap))
    st.toast("Saved: the worker and every page use it from now on.")


def render_names() -> None:
    """The names taken in this workshop, and a button that releases one."""
    claimed = sorted(c.name for c in names.claims(lab.data).values())
    with st.expander(f"Names taken ({len(claimed)})", icon=":material/badge:"):
        st.caption(
            "A name belongs to the browser that claimed it (look-alikes count as the same name). Release one whose "
            "owner signed out or lost their page: whoever holds it is signed out, and the next to sign in with it "
            "owns its runs."
        )
        pick, go = st.columns([3, 1], vertical_alignment="bottom")
        name = pick.selectbox("Name", claimed, index=None, placeholder="Pick a name", key="release_name")
        if go.button("Release", key="release", disabled=name is None, width="stretch") and name is not None:
            workshop.release(lab.data, name)
            st.toast(f"Released {page.md(name)}: it can be claimed again.")
            st.rerun()


if workshop.enabled():
    render_names()


def render_class_lesson() -> None:
    """Open a lesson for the whole room, watch the predictions come in, run it once, reveal it to everyone."""
    st.subheader("Class lesson")
    found = classroom.class_lesson(lab)
    who = page.actor()
    if found is None:
        st.caption(
            "Pick a lesson for the room: it opens on every participant's Lessons page with a prediction form; you run "
            "it once (a participant who runs it too is answered from the cache) and reveal the result to all at once."
        )
        choices = [slug for slug, lesson in LESSONS.items() if len(lesson.arms) >= 2]
        pick, model, go = st.columns([5, 3, 3], vertical_alignment="bottom")
        slug = pick.selectbox("Lesson", choices, format_func=lambda s: LESSONS[s].title, key="class_pick")
        size = model.radio("Model", ["minilm", "tiny"], horizontal=True, key="class_model")
        if go.button("Open for the class", type="primary", icon=":material/groups:", key="class_open", width="stretch"):
            classroom.open_class(lab, LESSONS[slug], actor=who, model=None if size == "minilm" else size)
            st.rerun()
        return
    group, lesson = found
    settings = Settings.read(lab.data)
    queued = bool(lab.store.list_runs(group_id=group.id))
    st.markdown(f"**{page.md(lesson.title)}** · " + ("revealed to the room" if settings.revealed else "hidden"))
    run, show, end = st.columns(3)
    try:
        first = "secondary" if queued else "primary"  # the next step is the one coloured
        if run.button(
            "Run it", type=first, icon=":material/play_arrow:", disabled=queued, key="class_run", width="stretch"
        ):
            page.remember_launched(*(r.id for r in classroom.run_class(lab, actor=who)))
            page.ensure_worker(lab)
            st.rerun()
        if show.button(
            "Reveal to the room",
            type="primary" if queued else "secondary",
            icon=":material/visibility:",
            disabled=settings.revealed,
            key="class_reveal",
            width="stretch",
            help="Every participant's Lessons page shows the result with their prediction and the class's.",
        ):
            classroom.reveal(lab, actor=who)
            st.rerun()
        if end.button("Close it", icon=":material/close:", key="class_close", width="stretch"):
            classroom.close_class(lab, actor=who)
            st.rerun()
    except ValueError as exc:
        st.error(page.md(exc))
    page.live(3.0)(render_class_state)(group.id)


def render_class_state(group_id: str) -> None:
    """Live: how many have predicted, the class's predictions, the runs, and the reading once they finish."""
    report = read_group(lab.store, group_id)
    everyone = lab.store.list_predictions(group_id)
    settings = Settings.read(lab.data)
    signed = sum(not claim.host for claim in names.claims(lab.data).values())
    counts = counts_line(report.counts, empty="not run yet")
    made = sum(p.owner != page.owner() for p in everyone)  # the host may predict too, but is not counted
    st.caption(f"**{made} of {signed} participant(s) predicted.** Runs: {counts}.")
    if everyone:
        predict.render_class(report, everyone, key="host", revealed=settings.revealed)
    lesson = LESSONS[report.group.spec["lesson"]]
    if report.runs and not any(r.is_active for r in report.runs):
        lines = reading(lesson, report)
        st.success("**What happened**\n\n" + "\n".join(f"- {page.md(line)}" for line in lines))
    if not predictions.is_open(report):
        st.caption("Predictions are closed: a run has its result.")


if workshop.enabled():
    render_class_lesson()


@page.live(5.0)
def render_state() -> None:
    with page.open_lab() as live:
        runs = live.store.list_runs()
        latest = live.store.latest_metrics([r.id for r in runs if r.status == Status.FINISHED], names=METRICS)
        workers = worker.live_workers(live.store)
    slots = worker.total_slots(workers)
    running = [r for r in runs if r.status == Status.RUNNING]
    held = Settings.read(lab.data).paused  # then no queued run is "next": each waits for the host
    places = queue_places(runs, slots=slots, now=time.time(), paused=held)
    queued = sorted((r for r in runs if r.id in places), key=lambda r: places[r.id][0])
    paused = " — paused: nothing new starts" if held else ""
    st.subheader(f"Queue: {len(running)} of {slots} slot(s) in use, {len(queued)} waiting{paused}")
    if queued:
        shown = [row(r, {}, place=places[r.id]) for r in queued]
        rows = [{"place": places[r.id][0], "run": r.run, "participant": r.owner, "when": r.eta} for r in shown]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=min(300, 38 + 35 * len(rows)))
    render_workers(workers)
    if running:
        on = {r.id: f" on {r.host}" if r.host else "" for r in running}
        st.caption("Training now: " + "; ".join(page.md(f"#{r.id} {owner_label(r.owner)}{on[r.id]}") for r in running))

    st.subheader("Participants")
    people = workshop.participants(runs)
    if not people:
        st.info("No runs yet.")
        return
    table = pd.DataFrame(people)
    # The Runs page filters by a name: runs without an owner have no page of their own there.
    signed = page.token_query()  # the new tab opens signed in as the host
    table["their runs"] = [
        f"/Runs?{urlencode({'owner': p['participant'], **signed}, quote_via=quote)}" if p["participant"] else ""
        for p in people
    ]
    table["participant"] = table["participant"].map(owner_label)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={"their runs": st.column_config.LinkColumn(display_text="open their runs")},
    )

    st.subheader("Leaderboard")
    boards = workshop.leaderboard(runs, latest)
    if not boards:
        st.info("No finished run yet.")
    for dataset, rows in boards.items():
        st.markdown(f"**{page.md(dataset)}**")
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            width="stretch",
            column_config={
                **{
                    name: st.column_config.NumberColumn(METRICS[name].label, format="%.3f")
                    for name in workshop.RANKED_BY
                },
                "run": st.column_config.NumberColumn(format="#%d"),
            },
        )


def render_workers(workers: list[WorkerLease]) -> None:
    """Which machines train the queue: every worker whose lease is current, with its slots."""
    if not workers:
        st.warning("No background worker is serving this lab: queued runs wait until one starts.")
        return
    st.caption(
        f"Workers, on every machine (one that stops renewing its lease drops out within {worker.LEASE_S:.0f} s):"
    )
    now = time.time()
    st.dataframe(pd.DataFrame([worker_facts(w, now) for w in workers]), hide_index=True, width="stretch")


render_state()
