"""The run this tab just launched, live on the launch page: its place in the queue, then its loss as it trains.

The answer to a Launch click should not need a second page: the first loss point is drawn here as soon as the run
writes it. Until then the view polls quickly (a run's first point comes ~1.5 s after the click with a warm worker);
while it trains, at the Runs page's adaptive interval; once it has ended, not at all.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bert_lab.core.metrics import METRICS
from bert_lab.figures import launch_charts
from bert_lab.runs.describe import QUEUE_PAUSED_DETAIL, badge, eta_s, format_duration, run_label
from bert_lab.runs.records import Run
from bert_lab.runs.status import Status
from bert_lab.runs.store import UnknownRunError
from bert_lab.runs.workshop import Settings
from lab_ui import live, page

LAUNCHED_KEY = "_last_launched"  # (run id, name) of the run this tab launched last
FIRST_POINT_POLL_S = 0.25  # until the run's first loss point is drawn
COST_KEY = "_launched_cost_s"


def interval_s(run: Run, has_points: bool, cost_s: float) -> float | None:
    """Seconds between refreshes of the launched run's view; None once it has ended (nothing changes any more)."""
    if not run.is_active:
        return None
    return live.watch(cost_s, active=True) if has_points else FIRST_POINT_POLL_S


def render_launched() -> None:
    """The view of the run this tab launched last, if any (each refresh re-reads only its new points)."""
    last = st.session_state.get(LAUNCHED_KEY)
    if last is None:
        return
    with page.open_lab() as lab:
        try:
            run = lab.store.get_run(last[0])
        except UnknownRunError:  # deleted meanwhile
            st.session_state.pop(LAUNCHED_KEY, None)
            return
        has_points = not live.load_points(lab.store, [run]).empty
    every = interval_s(run, has_points, st.session_state.get(COST_KEY, 0.0))
    page.live(every)(render_live)(run.id, every)


def render_live(run_id: int, every: float | None) -> None:
    started = live.script_cpu_s()
    with page.open_lab() as lab:
        run = lab.store.get_run(run_id)
        frame = live.load_points(lab.store, [run])
        paused = run.status == Status.QUEUED and Settings.read(lab.data).paused
    st.caption(status_line(run, frame, paused=paused))
    if not frame.empty:  # not before: an empty chart redrawn at every quick poll takes CPU from the starting run
        st.altair_chart(launch_charts.loss_chart(frame, run.id), key="launched_curve")
    wanted = interval_s(run, not frame.empty, live.typical_cost(COST_KEY, live.script_cpu_s() - started))
    if live.interval_moved(every, wanted):
        st.rerun(scope="app")  # the first point came, the run ended, or refreshing got dearer: a new interval


def status_line(run: Run, frame: pd.DataFrame, *, paused: bool = False) -> str:
    """`#12 lr 3e-4 · 🟢 running · step 40 of 63 · training loss 0.612 · 12s left`: what a person reads at a glance;
    `paused`: the host has paused the queue (a queued run then waits for them)."""
    parts = [page.md(run_label(run)), badge(run.status)]
    if run.cached_from is not None:
        parts.append(f"answered from the cache (run #{run.cached_from} had the same settings)")
    latest = frame.sort_values("step").groupby("name")["value"].last() if not frame.empty else pd.Series(dtype=float)
    if "train_loss" in latest:
        steps = run.summary.total_steps
        last_step = int(frame.loc[frame["name"] == "train_loss", "step"].max())
        parts += [f"step {last_step}" + (f" of {steps}" if steps else ""), f"training loss {latest['train_loss']:.3f}"]
    if not run.is_active:
        parts += [f"{METRICS[m].label} {latest[m]:.3f}" for m in ("accuracy", "f1") if m in latest]
    elif (left := eta_s(run)) is not None:
        parts.append(f"{format_duration(left)} left")
    elif paused:
        parts.append(QUEUE_PAUSED_DETAIL)
    elif "train_loss" not in latest:
        parts.append("its first loss point appears here within seconds of its start")
    return " · ".join(parts)
