"""Groups page: read a sweep, a lesson or seed replicates as a whole, and say whether a difference is real.

Pick a group; everything below is one fragment that re-reads it while its runs train: each config's mean curve over
seeds with a band, the results table (n, mean, 95% interval; the best marked), the verdict between the two best
configs or any two picked, runs that learned nothing, parallel coordinates and which knob mattered. Reading the group
is library code (`bert_lab.sweeps.report`); this page only draws it.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from bert_lab.core.metrics import HEADLINE, METRICS, label
from bert_lab.figures import curves, group_charts
from bert_lab.runs import service
from bert_lab.runs.describe import counts_line
from bert_lab.runs.status import Status
from bert_lab.runs.store import StoreError
from bert_lab.runs.workshop import NotAllowedError, Settings
from bert_lab.sweeps.report import (
    REPORTED,
    ConfigResult,
    GroupReport,
    Stats,
    importance,
    importance_missing,
    read_group,
)
from lab_ui import page, predict, present

lab = page.start()
presenting = present.render_toggle()
REFRESH_S, IDLE_REFRESH_S = 3.0, 30.0
GROUP_KEY = "group"  # the selected group id; also `?group=` in the address, so a group can be linked to

if not presenting:
    st.title(":material/stacked_line_chart: Groups: sweeps and seeds")
hidden = Settings.read(lab.data).hides(page.actor())  # the class lesson, until the host reveals it
groups = [g for g in lab.store.list_groups() if g.id not in hidden]
if not groups:
    st.info("No groups yet. Launch a sweep from the launch page (**Launch as a sweep**) or the command line.")
    st.page_link(page.LAUNCH_PAGE, label="Launch a sweep", icon=":material/rocket_launch:")
    st.stop()

names = {g.id: f"{g.name} · {g.method} · {g.id}" for g in groups}
wanted = st.query_params.get(GROUP_KEY)
if wanted in names and st.session_state.get(GROUP_KEY) is None:
    st.session_state[GROUP_KEY] = wanted
group_id = present.choice("Group", list(names), format_func=names.get, key=GROUP_KEY)
st.query_params[GROUP_KEY] = group_id


def stats_cell(stats: Stats, share: bool) -> str:
    if not stats.n:
        return "–"
    scale, digits = (100, 1) if share else (1, 4)
    mean, std, (low, high) = stats.mean * scale, stats.std * scale, (v * scale for v in stats.ci95)
    if stats.n == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}  [{low:.{digits}f}, {high:.{digits}f}]"


def results_frame(report: GroupReport) -> pd.DataFrame:
    rows = []
    for config in report.configs:
        counts = config.counts
        rows.append(
            {
                "": report.mark(config),  # "★ best", or "= tied best" on an exact tie
                "config": config.label,
                "n": config.stats(report.metric).n,
                **{
                    f"{label(m)}{' %' if METRICS[m].share else ''}": stats_cell(config.stats(m), METRICS[m].share)
                    for m in REPORTED
                },
                "degenerate": config.degenerate,
                "runs": ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
            }
        )
    return pd.DataFrame(rows)


def render_verdict(report: GroupReport, first: ConfigResult | None = None, second: ConfigResult | None = None) -> None:
    verdict = report.verdict(first, second)
    if verdict is None:
        st.info("The verdict appears once two configs have finished runs.")
        return
    show = st.success if verdict.real else st.warning
    show(page.md(verdict.words), icon=":material/check_circle:" if verdict.real else ":material/help:")


def render_degenerate(report: GroupReport) -> None:
    stuck = [c for c in report.configs if c.degenerate]
    if stuck:
        st.warning(
            "**Degenerate runs** learned nothing (accuracy at or below always answering the most common class, or "
            "the loss blew up): "
            + "; ".join(f"{page.md(c.label)}: {c.degenerate} of {len(c.runs)}" for c in stuck)
            + ". Their config's mean includes them: that is the honest average, but look at the spread.",
            icon=":material/warning:",
        )


def render_actions(report: GroupReport) -> None:
    active = any(r.is_active for r in report.runs)
    running = any(r.status == Status.RUNNING for r in report.runs)
    resumable = any(r.status.is_resumable for r in report.runs) or report.group.stopped
    who = page.actor()
    if who is not None and not who.may_change(report.group.owner):
        st.caption(f"{page.md(report.group.owner or 'Nobody')}'s group: only they or the host can change it.")
        return
    a, b, c = st.columns(3)
    try:
        if a.button("Cancel the group", icon=":material/stop_circle:", disabled=not active, width="stretch"):
            service.cancel_group(lab, report.group.id, actor=who)
            st.rerun()
        if b.button("Resume the group", icon=":material/play_circle:", disabled=not resumable, width="stretch"):
            service.resume_group(lab, report.group.id, actor=who)
            st.rerun()
        confirm = c.checkbox("Delete: I am sure", key=f"confirm_delete_{report.group.id}", disabled=running)
        if c.button("Delete the group", icon=":material/delete:", disabled=running or not confirm, width="stretch"):
            service.delete_group(lab, report.group.id, actor=who)
            st.session_state.pop(GROUP_KEY, None)
            st.query_params.clear()
            st.rerun()
    except (StoreError, NotAllowedError) as exc:
        st.error(page.md(exc))


def render_group(group_id: str) -> None:
    try:
        report = read_group(lab.store, group_id)
    except StoreError as exc:
        st.error(page.md(exc))
        return
    g, spec = report.group, report.group.spec
    counts = counts_line(report.counts, empty="no runs yet")
    seeds = spec.get("seeds")
    st.caption(
        f"**{page.md(g.name)}**: {g.method}{' (stopped)' if g.stopped else ''} over "
        f"{', '.join(report.knobs) or 'no knobs'}"
        + (f", {seeds} seed(s) per config" if seeds else "")
        + f"; judged by {label(g.metric)}. Runs: {counts}."
    )
    if presenting:
        render_presented(report)
        return
    render_actions(report)
    predict.render_form(report, key="group")
    if not report.runs:
        st.info("No runs yet: the search asks for its first trial as soon as the worker has a free slot.")
        return
    predict.render_outcome(report, show_class=True, key="group")

    st.subheader("Is the difference real?")
    render_verdict(report)
    render_degenerate(report)
    st.dataframe(results_frame(report), hide_index=True, width="stretch")
    st.caption(
        "n: finished runs. Each score: mean ± std [95% interval for the mean, Student's t]. One run gives no "
        "interval; two give a wide one. The verdict compares two configs with Welch's t-test."
    )
    scored = report.scored
    if len(scored) > 2:
        with st.expander("Compare any two configs"):
            labels = [c.label for c in scored]
            left, right = st.columns(2)
            first = left.selectbox("First", labels, index=0, key="verdict_a")
            second = right.selectbox("Second", labels, index=min(2, len(labels) - 1), key="verdict_b")
            if first != second:
                by_label = {c.label: c for c in scored}
                render_verdict(report, by_label[first], by_label[second])

    st.subheader("Curves: mean over seeds")
    left, right = st.columns([1, 1])
    shown = [*sorted(HEADLINE, key=lambda m: m != "f1"), "train_loss"]  # F1 first: the default
    curve = left.selectbox("Curve", shown, format_func=label, key="band_metric")
    band = right.radio(
        "Band", list(group_charts.BANDS), format_func=group_charts.BANDS.get, horizontal=True, key="band"
    )
    points = curves.points_frame(lab.store.read_metrics([r.id for r in report.runs], names=[curve]))
    st.plotly_chart(group_charts.band_figure(report, points, curve, band=band), key="band_chart")

    st.subheader("Which knob mattered")
    left, right = st.columns([3, 2])
    if sum(len(c.values.get(report.metric, [])) for c in scored) >= 2:
        left.plotly_chart(group_charts.parallel_figure(report), key="parallel")
    method, shares = importance(report)
    if shares:
        right.plotly_chart(group_charts.importance_figure(method, shares), key="importance")
        if method.startswith("main"):
            noise = shares.get("seed noise", math.nan)
            right.caption(
                f"Share of the variance of {label(report.metric)} between runs explained by each knob alone; "
                f"seed noise is what varies between seeds of one config ({noise:.0%} here)."
            )
        else:
            right.caption("Optuna's PED-ANOVA: how much each knob's values differ between the best configs and all.")
    else:
        right.info(importance_missing(report) or "No knob importance to show for this group.")

    views = group_charts.search_figures(report, shares)
    if views:
        st.subheader("As Optuna Dashboard shows it")
        st.caption(
            f"Each config is one trial, scored by its mean {label(report.metric)} over seeds, in launch order: the "
            "history (each trial, and the best so far), the metric against each knob, and the two knobs that "
            "mattered most together."
        )
        names = {"history": "Optimisation history", "slice": "Slice", "contour": "Contour"}
        for tab, (key, figure) in zip(st.tabs([names[k] for k in views]), views.items()):
            tab.plotly_chart(figure, key=f"optuna_{key}")


def render_presented(report: GroupReport) -> None:
    """The presenter view: the two curves that tell the story, large, then the verdict; nothing to operate."""
    for col, metric in zip(st.columns(2), (report.metric, "train_loss")):
        points = curves.points_frame(lab.store.read_metrics([r.id for r in report.runs], names=[metric]))
        col.plotly_chart(present.projected(group_charts.band_figure(report, points, metric)), key=f"present_{metric}")
    render_verdict(report)


active = any(r.is_active for r in lab.store.list_runs(group_id=group_id))
page.live(REFRESH_S if active else IDLE_REFRESH_S)(render_group)(group_id)
