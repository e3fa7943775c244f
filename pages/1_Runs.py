"""Runs page: every run with its progress; select runs to compare live curves, hyperparameters and results.

Everything below the title is one fragment that re-reads the store every couple of seconds, so runs launched in
another tab, or by the CLI, show up and their curves grow without reloading the page.
"""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from bert_lab.core.metrics import EVAL_METRICS, IN_TABLES, METRICS, charted
from bert_lab.core.text import shorten
from bert_lab.figures import curves, run_charts, tables
from bert_lab.processes import worker
from bert_lab.runs import service, takehome, workshop
from bert_lab.runs.describe import badge, explain, format_duration, owner_label, queue_places, row, run_label
from bert_lab.runs.filters import DIMENSIONS, RunFilter, choices, group_names
from bert_lab.runs.records import Run
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.store import RunStore, StoreError
from bert_lab.runs.workshop import NotAllowedError, QueueFullError, ServerPathError, Settings, whose
from bert_lab.teaching.annotate import Annotation, annotate
from lab_ui import live, page, present

lab = page.start(run_counts=False)  # the live fragment below keeps them current
presenting = present.render_toggle()
hidden = Settings.read(lab.data).hides(page.actor())  # the class lesson's runs, until the host reveals them
PRESENTED_RUNS = 8  # the presenter view without a selection: the active runs and the newest, this many at most
FULL_RUN_KEY = "_runs_full_run"  # true while the whole page runs, false in the live part's own refreshes
SHOWN_KEY, SETTLED_KEY = "_runs_shown", "_runs_settled"  # the selected runs; what the settled part last drew
FILTER_KEY = "_filter"  # the filter this page last wrote into its address
COST_KEY = "_refresh_cost_s"  # the live part's typical refresh cost, in seconds
SETTLE_EVERY_S = 20.0  # new evaluations redraw the settled part at most this often


active = any(r.is_active for r in lab.store.list_runs())
refresh_s = live.watch(st.session_state.get(COST_KEY, 0.0), active=active)
if not presenting:
    st.title(":material/monitoring: Runs")
    st.caption(
        f"Every run in the data folder, refreshed every {refresh_s:.0f} s. Tick rows "
        "in the table to compare runs: their curves, their hyperparameters and their results appear below."
    )


def runs_frame(
    runs: list[Run], latest: dict[int, dict[str, float]], groups: dict[str, str], everyone: list[Run], paused: bool
) -> pd.DataFrame:
    """The table's rows: `runs`, with queued runs placed in the queue of `everyone`'s runs (`paused`: by the host)."""
    slots = worker.total_slots(worker.live_workers(lab.store))
    places = queue_places(everyone, slots=slots, now=time.time(), paused=paused)
    rows = []
    for run in runs:
        r = row(run, latest.get(run.id, {}), place=places.get(run.id), group=groups.get(run.group_id or "", ""))
        c = run.config
        rows.append(
            {
                "run": r.run,
                "tags": list(run.tags),
                "status": r.status,
                "progress": r.progress,
                "steps": r.steps,
                "elapsed": r.elapsed,
                "ETA": r.eta,
                **{METRICS[name].label: value for name, value in r.scores.items()},
                "dataset": r.dataset,
                "model": r.model,
                "optimizer": c.get("optimizer"),
                "lr": f"{c.get('lr', 0):.2g}",
                "schedule": c.get("schedule"),
                "owner": r.owner,
                "group": r.group,
                "device": r.device,
                "host": r.host,
                "created": pd.Timestamp(run.created_at, unit="s"),
            }
        )
    return pd.DataFrame(rows)


def remember_selection() -> None:
    """Table rows → run ids (rows move when runs are added or deleted; ids don't)."""
    rows = st.session_state["runs_table"]["selection"]["rows"]
    shown = st.session_state.get("_table_ids", [])
    st.session_state["_selected_ids"] = [shown[r] for r in rows if r < len(shown)]


def render_table(
    runs: list[Run], latest: dict[int, dict[str, float]], everyone: list[Run], groups: dict[str, str], paused: bool
) -> list[int]:
    """The runs table; returns the ids of the selected runs (by default the newest three, plus any new run)."""
    state, ids = st.session_state, [r.id for r in runs]
    if "_selected_ids" not in state:
        state["_selected_ids"] = ids[:3]
    new = [i for i in ids if i > state.get("_seen_max_id", max(ids))]
    state["_selected_ids"] = [i for i in ids if i in state["_selected_ids"] or i in new]
    state["_seen_max_id"] = max(ids)
    rows = [ids.index(i) for i in state["_selected_ids"]]
    current = state.get("runs_table")
    if current is None or list(current["selection"]["rows"]) != rows:
        state["runs_table"] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    state["_table_ids"] = ids
    number = st.column_config.NumberColumn
    st.dataframe(
        runs_frame(runs, latest, groups, everyone, paused),
        key="runs_table",
        on_select=remember_selection,
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
        height=min(400, 38 + 35 * len(runs)),
        placeholder="–",
        column_config={
            "run": st.column_config.TextColumn(width="medium"),
            "tags": st.column_config.ListColumn(),
            "status": st.column_config.TextColumn(width=100),
            "progress": st.column_config.ProgressColumn(
                "progress", min_value=0.0, max_value=1.0, format="percent", width=110
            ),
            "steps": st.column_config.TextColumn(width=95),
            "elapsed": st.column_config.TextColumn(width=75),
            "ETA": st.column_config.TextColumn(
                width=130,
                help="Running: time left, from the progress so far. Queued: when it should start, from the fair "
                "queue (owners take turns), the time left of the runs ahead and the length of finished runs like "
                "it; while the host has paused the queue, nothing starts until they resume it.",
            ),
            "group": st.column_config.TextColumn(help="The sweep it belongs to: read it whole on the Groups page"),
            **{METRICS[name].label: number(format="%.3f" if METRICS[name].share else "%.4f") for name in IN_TABLES},
            "created": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm"),
        },
    )
    return list(state["_selected_ids"])


def act(action: str, run_id: int) -> None:
    """Button callbacks: they run before the rerun, so the table below already shows the result."""
    try:
        with page.open_lab() as acting:
            who = page.actor()
            if action == "cancel":
                service.cancel(acting, run_id, actor=who)
            elif action == "resume":
                page.remember_launched(service.resume(acting, run_id, actor=who).id)
                page.ensure_worker(acting)
            elif action == "delete":
                service.delete(acting, run_id, actor=who)
                st.session_state.pop("_confirm_delete", None)
            elif action == "again":
                page.remember_launched(service.run_again(acting, run_id, actor=who).id)
                page.ensure_worker(acting)
    except (StoreError, NotAllowedError, QueueFullError, ServerPathError) as exc:
        st.session_state["_action_error"] = str(exc)


def render_edit(where: Any, run: Run, mine: bool, known_tags: list[str]) -> None:
    """Its name, tags and note, in a popover (`service.edit`: every bad field named, nothing half-written)."""
    with where.popover("Edit", icon=":material/edit:", width="content", disabled=not mine):
        with st.form(f"edit_{run.id}", border=False):
            name = st.text_input("Name", run.name, max_chars=service.MAX_RUN_NAME)
            tags = st.multiselect(
                "Tags",
                sorted(set(known_tags) | set(run.tags)),
                default=list(run.tags),
                accept_new_options=True,
                help="Type a new tag and press Enter.",
            )
            note = st.text_area("Note", run.note, max_chars=service.MAX_NOTE, placeholder="What you saw, what next")
            if st.form_submit_button("Save", type="primary"):
                try:
                    with page.open_lab() as editing:
                        service.edit(editing, run.id, name=name, tags=tags, note=note, actor=page.actor())
                except (ValueError, StoreError, NotAllowedError) as exc:
                    st.error(page.md(exc))
                else:
                    st.rerun()


def render_log(store: RunStore, run: Run) -> None:
    events = store.read_events(run.id)
    with st.expander(f"What happened to {page.md(run_label(run))} ({len(events)} events)"):
        lines = [f"{time.strftime('%H:%M:%S', time.localtime(e.time))}  {e.message}" for e in events]
        st.code("\n".join(lines) or "nothing yet", language=None)


def render_actions(lab: Lab, selected: list[Run], known_tags: list[str]) -> None:
    store = lab.store
    by_id = {r.id: r for r in selected}
    if st.session_state.get("action_run") not in by_id:
        st.session_state["action_run"] = selected[-1].id
    pick = st.columns([2, 3])[0]  # the run on its own line, the actions below it
    # Each action as wide as its words, in a row that wraps when full: whole labels at any width (seven equal columns
    # cut them to "Ca…", "Re…" at 1280 px).
    bar = st.container(horizontal=True, gap="small")
    run = by_id[pick.selectbox("Act on run", list(by_id), format_func=lambda i: run_label(by_id[i]), key="action_run")]
    who = page.actor()
    mine = who is None or who.may_change(run.owner)  # in a workshop: your own runs (the host: every run)
    if not mine:
        pick.caption(f"This run {page.md(whose(run.owner))} can change it.")
    verbs = (  # label, icon, action, disabled, help
        ("Cancel", "stop_circle", "cancel", not mine or not run.is_active or run.cancel_requested,
         "Stop it at its current step; it saves a checkpoint so it can be resumed."),
        ("Resume", "play_circle", "resume", not mine or not run.status.is_resumable,
         "Continue a cancelled or interrupted run."),
        ("Run again", "replay", "again", run.is_active,
         "Train the same settings again with a new seed: a cached run's own result, or another sample of seed "
         "noise. (The same seed again would be answered from the cache.)"),
    )  # fmt: skip
    for label, icon, action, disabled, help_ in verbs:
        bar.button(
            label,
            icon=f":material/{icon}:",
            on_click=act,
            args=(action, run.id),
            width="content",
            disabled=disabled,
            help=help_,
        )
    if bar.button(
        "Clone",
        icon=":material/content_copy:",
        width="content",
        help="Open the launch page with this run's settings, to change one knob and launch.",
    ):
        page.request_clone(run.config, run.name)
    if bar.button(
        "Delete…",
        icon=":material/delete:",
        width="content",
        disabled=not mine or run.status == Status.RUNNING,
        help="Delete the run with its curves and files (cancel a running run first).",
    ):
        st.session_state["_confirm_delete"] = run.id
    render_edit(bar, run, mine, known_tags)
    downloads = bar.popover("Files", icon=":material/download:", width="content")
    downloads.download_button(
        "Curves CSV",
        partial(live.curves_csv, [run.id]),
        f"run-{run.id}-curves.csv",
        "text/csv",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
    )
    downloads.download_button(
        "Model (zip, with its model card)",
        partial(takehome.model_zip, lab.data, run),
        f"{takehome.folder_name(run)}.zip",
        "application/zip",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
        disabled=not lab.data.folder_of(run).has_model or not (who is None or who.may_read(run)),
        help="The model folder `transformers` loads, with its card, config and evaluation: a run saves it when it "
        "finishes or is cancelled (a participant: of a bundled dataset, or of their own upload).",
    )
    downloads.download_button(
        "Config JSON",
        json.dumps(run.config, indent=2, sort_keys=True),
        f"run-{run.id}-config.json",
        "application/json",
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
    )
    if run.tags or run.note:
        tags = f"Tags: {', '.join(map(page.md, run.tags))}" if run.tags else ""
        st.caption(" — ".join(filter(None, [tags, page.md(run.note)])))
    if st.session_state.get("_confirm_delete") == run.id:
        st.warning(
            f"Delete **{page.md(run_label(run))}** with its curves, checkpoints and model? This cannot be undone."
        )
        yes, no, _ = st.columns([1, 1, 4])
        yes.button("Yes, delete it", type="primary", on_click=act, args=("delete", run.id))
        no.button("Keep it", on_click=lambda: st.session_state.pop("_confirm_delete", None))
    if message := st.session_state.pop("_action_error", None):
        st.error(message)
    render_log(store, run)


def log_axis(metric: str, log_loss: bool) -> bool:
    """Log y axis for metrics that span decades, and for losses when the person asks for it."""
    return METRICS[metric].log_scale or (log_loss and METRICS[metric].field == "loss")


def notes_of(run: Run, frame: pd.DataFrame) -> list[tuple[int, Annotation]]:
    """What `run`'s curves show; read again only when its points or status changed (a per-session cache: reading
    ten long runs costs ~0.3 s, and the live and settled parts both ask)."""
    cache: dict[int, tuple[tuple, list]] = st.session_state.setdefault("_notes_cache", {})
    key = (run.status, run.resume_count, int((frame["run_id"] == run.id).sum()))
    if (hit := cache.get(run.id)) is None or hit[0] != key:
        hit = cache[run.id] = (key, [(run.id, a) for a in annotate(run, frame)])
    return hit[1]


def render_controls() -> dict:
    """The curves' layout, x axis, smoothing and log-scale controls; returns their values."""
    view_col, x_col, smooth_col, log_col = st.columns([1.2, 1.6, 1.6, 1], vertical_alignment="bottom")
    view_col.radio(
        "Layout",
        ["Overlaid", "Side by side"],
        horizontal=True,
        key="view",
        help="Overlaid: one chart per metric, a line per run. Side by side: a small panel per run.",
    )
    x_col.radio("X axis", list(curves.X_LABELS), format_func=curves.X_LABELS.get, horizontal=True, key="x_axis")
    smooth_col.slider(
        "Smoothing (EMA)",
        0.0,
        0.99,
        0.6,
        0.01,
        key="smoothing",
        help="Exponential moving average of the noisy per-step curves (training loss, "
        "gradient norm); the faint line is the raw data. 0 shows raw data only.",
    )
    log_col.toggle("Log-scale loss", key="log_loss")
    return chart_options()


def chart_options() -> dict:
    state = st.session_state
    return {
        "view": state.get("view", "Overlaid"),
        "x": state.get("x_axis", next(iter(curves.X_LABELS))),
        "smoothing": state.get("smoothing", 0.6),
        "log_loss": state.get("log_loss", False),
    }


def render_curves(
    frame: pd.DataFrame, labels: dict[int, str], notes: list[tuple[int, Annotation]], curves: list[str], options: dict
) -> None:
    """The `curves` (metric names) of the runs in `frame`: overlaid two per row, or a panel per run."""
    x, smoothing = options["x"], options["smoothing"]
    if options["view"] == "Overlaid":
        for pair in (curves[i : i + 2] for i in range(0, len(curves), 2)):
            for col, metric in zip(st.columns(2), pair):
                marks = [(run_id, a.step, note_text(run_id, a)) for run_id, a in notes if a.metric == metric]
                figure = run_charts.curve_figure(
                    frame, metric, labels, x=x, smoothing=smoothing, log_y=log_axis(metric, options["log_loss"]),
                    marks=marks,
                )  # fmt: skip
                col.plotly_chart(figure, key=f"chart_{metric}")
                col.caption(METRICS[metric].caption)
    else:
        for metric in curves:
            log_y = log_axis(metric, options["log_loss"])
            st.plotly_chart(
                run_charts.small_multiples_figure(frame, metric, labels, x=x, smoothing=smoothing, log_y=log_y),
                key=f"panels_{metric}",
            )
            st.caption(METRICS[metric].caption)


def note_text(run_id: int, note: Annotation) -> str:
    return f"#{run_id} at step {note.step}: {note.hint}"


def render_hyperparameters(selected: list[Run], labels: dict[int, str]) -> None:
    st.subheader("Hyperparameters")
    several = len(selected) > 1
    only = st.toggle("Only the ones that differ", value=several, disabled=not several, key="only_diff")
    table = tables.config_diff({labels[r.id]: r.config for r in selected}, only_differences=only and several)
    if table.empty:
        st.info("The selected runs have the same hyperparameters.")
        return
    st.dataframe(tables.style_diff(table), width="stretch")
    st.caption("Shaded rows differ between the selected runs." if several else "Select more runs to compare.")


def render_results(
    selected: list[Run], latest: dict[int, dict[str, float]], frame: pd.DataFrame, labels: dict[int, str]
) -> None:
    st.subheader("Results")
    rows = []
    for run in selected:
        m = latest.get(run.id, {})
        f1 = frame[(frame["run_id"] == run.id) & (frame["name"] == "f1")]["value"]
        rows.append(
            {
                "run_id": run.id,
                "label": labels[run.id],
                "status": badge(run.status),
                "train_loss": m.get("train_loss"),
                **{e.name: m.get(e.name) for e in EVAL_METRICS},
                "best F1": f1.max() if len(f1) else None,
                "samples/s": m.get("samples_per_s"),
                "time": format_duration(run.elapsed_s),
            }
        )
    table = pd.DataFrame(rows)
    evaluated = table[table["accuracy"].notna()]
    chart, numbers = st.columns([1, 1.3])
    if evaluated.empty:
        chart.info("No evaluation yet: runs evaluate about five times, the first after ~20% of their steps.")
    else:
        chart.plotly_chart(run_charts.final_metrics_figure(evaluated), key="final_metrics")
    scores = ["train_loss", *(e.name for e in EVAL_METRICS)]
    shown = table.drop(columns=["run_id"]).rename(columns={"label": "run", **{n: METRICS[n].label for n in scores}})
    numbers.dataframe(
        shown,
        hide_index=True,
        placeholder="–",
        column_config={
            c: st.column_config.NumberColumn(format="%.4f") for c in [*(METRICS[n].label for n in scores), "best F1"]
        },
    )
    numbers.caption("The latest evaluation of each run on its held-out set, and its throughput.")


def shown_runs(everyone: list[Run], groups: dict[str, str]) -> list[Run]:
    """The runs the table lists: in a workshop a participant's own unless they ask for everyone's, then the filters
    (which the page's address keeps: the host view links to one person's runs with `?owner=NAME`)."""
    who = page.actor()
    mine = who is not None and not st.query_params.get_all("owner")
    if mine and not st.toggle("Everyone's runs", key="everyone", help="Off: only the runs you launched."):
        everyone = [r for r in everyone if r.owner == who.name]
    return render_filters(everyone, groups).apply(everyone)


def render_filters(runs: list[Run], groups: dict[str, str]) -> RunFilter:
    """One box per dimension (status, dataset, group, owner, tag); what is chosen is written into the page's address,
    so that the same list opens from a link."""
    chosen = RunFilter.from_query(st.query_params.get_all)
    from_address = chosen != st.session_state.get(FILTER_KEY)  # a link opened, or the address edited: it wins
    options = choices(runs, chosen)
    shown_as = {"group": group_names(groups)}
    picked = {}
    for column, name in zip(st.columns(len(DIMENSIONS)), DIMENSIONS):
        key = f"filter_{name}"
        if from_address or key not in st.session_state or set(st.session_state[key]) - set(options[name]):
            st.session_state[key] = sorted(getattr(chosen, name))
        picked[name] = frozenset(
            column.multiselect(name, options[name], key=key, format_func=shown_as.get(name, str), placeholder="any")
        )
    wanted = RunFilter(**picked)
    query = wanted.to_query()
    for name in DIMENSIONS:
        values = query.get(name, [])
        if values and st.query_params.get_all(name) != values:
            st.query_params[name] = values
        elif not values and name in st.query_params:
            del st.query_params[name]
    st.session_state[FILTER_KEY] = wanted
    return wanted


def signature(selected: list[Run], latest: dict[int, dict[str, float]]) -> tuple[tuple, tuple]:
    """What the settled part of the page shows depends on: (the runs, whether each has ended, and the chart
    controls; their latest evaluations)."""
    runs = tuple((r.id, r.is_active, r.resume_count) for r in selected)
    evals = tuple(tuple(latest.get(r.id, {}).get(e.name) for e in EVAL_METRICS) for r in selected)
    return (runs, tuple(chart_options().values())), evals


def settled_is_stale(selected: list[Run], latest: dict[int, dict[str, float]]) -> bool:
    """Whether the settled part must be redrawn (which redraws the whole page): at once for another selection, a
    run that ended or another control; for new evaluations at most every SETTLE_EVERY_S (a whole page costs a
    browser on this machine about a second of CPU, taken from training)."""
    drawn = st.session_state.get(SETTLED_KEY)
    if drawn is None:
        return True
    drawn_at, (drawn_runs, drawn_evals) = drawn
    runs, evals = signature(selected, latest)
    return runs != drawn_runs or (evals != drawn_evals and time.monotonic() - drawn_at >= SETTLE_EVERY_S)


@page.live(refresh_s)
def render_live() -> None:
    """The part of the page that changes at every step: the runs table, the actions and the per-step curves."""
    started = live.script_cpu_s()
    changed = render_runs()
    wanted = live.watch(live.typical_cost(COST_KEY, live.script_cpu_s() - started), active=active)
    if changed and not st.session_state.get(FULL_RUN_KEY):
        st.rerun()  # an evaluation, a status or the selection changed: redraw the settled part below too
    if live.interval_moved(refresh_s, wanted):
        st.rerun()  # the refresh got far cheaper or dearer: redraw the page with an interval to match


def render_runs() -> bool:
    """Draws the live part; True when what the settled part shows has changed since it was drawn."""
    state = st.session_state
    with page.open_lab() as live_lab:
        store = live_lab.store
        everyone = store.list_runs()
        if any(r.is_active for r in everyone) != active:
            st.rerun()  # a run started or all ended: redraw the page with the matching refresh interval
        paused = Settings.read(live_lab.data).paused  # by the host: queued runs wait for them
        with st.sidebar:
            page.render_run_counts(everyone, paused=paused)
        groups = {g.id: g.name for g in store.list_groups() if g.id not in hidden}  # the filters' and the table's
        visible = [r for r in everyone if r.group_id not in hidden]
        runs = shown_runs(visible, groups)
        state[SHOWN_KEY] = []
        if not runs and visible:
            st.info("No run matches these filters: clear a box above to see more.")
            return state.get(SETTLED_KEY) is not None
        if not runs:
            st.info("No runs yet. Launch one and it appears here, with its curves growing as it trains.")
            st.page_link(page.LAUNCH_PAGE, label="Launch a run", icon=":material/rocket_launch:")
            return state.get(SETTLED_KEY) is not None
        latest = store.latest_metrics([r.id for r in runs], names=METRICS)
        selected_ids = render_table(runs, latest, everyone, groups, paused)
        selected = sorted((r for r in runs if r.id in selected_ids), key=lambda r: r.id)
        if not selected:
            st.info("Tick one or more runs in the table (the boxes on the left) to see their curves.")
            return state.get(SETTLED_KEY) is not None
        waiting = any(r.status == Status.QUEUED for r in selected)
        alive = bool(worker.live_workers(store)) if waiting else True
        for run in selected:
            if note := explain(run, worker_alive=alive, paused=paused):
                page.render_note(note)
        render_actions(live_lab, selected, sorted({t for r in visible for t in r.tags}))
        labels = {r.id: run_label(r) for r in selected}
        frame = live.load_points(store, selected)
        state[SHOWN_KEY] = [r.id for r in selected]
        if frame.empty:
            st.info("No points yet: a run reports its first step a few seconds after it starts.")
            return settled_is_stale(selected, latest)
        st.subheader("Curves")
        options = render_controls()
        notes = [note for run in selected for note in notes_of(run, frame)]
        per_step = [m for m in charted([run.config for run in selected]) if METRICS[m].per == "step"]
        render_curves(frame, labels, notes, per_step, options)
        return settled_is_stale(selected, latest)


def render_settled() -> None:
    """The part that changes only at an evaluation: the evaluation curves, what the curves show, the
    hyperparameters and the results. Drawn in a whole-page run only (the live part asks for one when needed)."""
    ids = st.session_state.get(SHOWN_KEY) or []
    with page.open_lab() as settled_lab:
        selected = sorted(settled_lab.store.list_runs(ids=ids), key=lambda r: r.id)
        if not selected:
            st.session_state[SETTLED_KEY] = None
            return
        latest = settled_lab.store.latest_metrics(ids, names=METRICS)
        frame = live.load_points(settled_lab.store, selected)
    labels = {r.id: run_label(r) for r in selected}
    if not frame.empty:
        notes = [note for run in selected for note in notes_of(run, frame)]
        per_eval = [m for m in charted([run.config for run in selected]) if METRICS[m].per == "eval"]
        render_curves(frame, labels, notes, per_eval, chart_options())
        if notes:
            st.markdown(
                "**What the curves show** (★ markers on the charts):\n"
                + "\n".join(f"- {page.md(note_text(run_id, a))}" for run_id, a in notes)
            )
    render_hyperparameters(selected, labels)
    render_results(selected, latest, frame, labels)
    st.session_state[SETTLED_KEY] = (time.monotonic(), signature(selected, latest))


@page.live(refresh_s)
def render_presented() -> None:
    """The presenter view: the selected runs (else the active and newest ones), training loss and the evaluation
    score, large and live; in a workshop each run is named by its owner."""
    with page.open_lab() as live_lab:
        everyone = [r for r in live_lab.store.list_runs() if r.group_id not in hidden]
        picked = set(st.session_state.get(SHOWN_KEY) or [])
        runs = [r for r in everyone if r.id in picked] or sorted(everyone, key=lambda r: (not r.is_active, -r.id))
        runs = sorted(runs[:PRESENTED_RUNS], key=lambda r: r.id)
        frame = live.load_points(live_lab.store, runs)
    if not runs:
        st.info("No runs yet: launch one and its curves appear here as it trains.")
        return
    named = workshop.enabled()
    labels = {
        r.id: f"{owner_label(r.owner)} · #{r.id}" if named else shorten(run_label(r), present.LABEL_CHARS) for r in runs
    }
    for col, (metric, smoothing) in zip(st.columns(2), (("train_loss", 0.9), ("f1", 0.0))):
        figure = run_charts.curve_figure(frame, metric, labels, smoothing=smoothing)
        col.plotly_chart(present.projected(figure), key=f"present_{metric}")


if presenting:
    render_presented()
    st.stop()
st.session_state[FULL_RUN_KEY] = True
render_live()
render_settled()
st.session_state[FULL_RUN_KEY] = False
