"""The launch page's sweep builder: method, 1–3 knobs with their values or ranges, seeds, the metric; then "N runs
will be queued, about T minutes on this machine" and a confirmation before anything is queued.

Values and ranges are typed as on the command line (`1e-4, 3e-4`; `1e-5:1e-3`) and parsed by the same functions,
so the page and `bert-lab sweep` accept and refuse exactly the same sweeps.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from bert_lab.core.config import RunConfig
from bert_lab.core.metrics import HEADLINE, label
from bert_lab.runs.describe import estimate_run_s, format_duration
from bert_lab.runs.service import Lab
from bert_lab.sweeps.launch import allow_for, launch
from bert_lab.sweeps.spec import (
    KNOBS,
    LOG_KNOBS,
    MAX_RUNS,
    MAX_SEEDS,
    SweepError,
    SweepSpec,
    check,
    choices_of,
    format_value,
    is_numeric,
    parse_range,
    parse_values,
)
from lab_ui import page

METHODS = {
    "grid": "Grid: every combination of the values",
    "random": "Random: N configs drawn from ranges",
    "search": "Search: Bayesian (Optuna TPE), with pruning",
}
# What a first sweep of a knob usually tries (the app's defaults; anything the config accepts can be typed).
GRID_DEFAULTS = {
    "lr": "3e-5, 1e-4, 3e-4",
    "batch_size": "16, 32, 64",
    "dropout": "0, 0.1, 0.3",
    "weight_decay": "0, 0.01, 0.1",
    "l2": "0, 1e-4, 1e-2",
    "l1": "0, 1e-5, 1e-4",
    "warmup_steps": "0, 10, 50",
    "max_length": "32, 64, 128",
    "num_epochs": "1, 2",
}
RANGE_DEFAULTS = {
    "lr": "1e-5:1e-3",
    "dropout": "0:0.3",
    "weight_decay": "1e-4:0.3",
    "l2": "1e-6:1e-2",
    "l1": "1e-6:1e-3",
}
PENDING = "_sweep_pending"  # (spec, base) waiting for the confirmation


def render_knob(method: str, knob: str, base: RunConfig) -> tuple[list[Any] | None, Any]:
    """The widget for one knob → (grid values, range); raises SweepError for what was typed."""
    choices = choices_of(knob)
    if choices:
        picked = st.multiselect(
            f"{knob}: choices", list(choices), default=list(choices[:2]), key=f"sweep_choices_{method}_{knob}"
        )
        text = ",".join(picked)
        return (parse_values(knob, text), None) if method == "grid" else (None, parse_range(knob, text))
    if method == "grid" or not is_numeric(knob):
        default = GRID_DEFAULTS.get(knob, format_value(getattr(base, knob)))
        text = st.text_input(f"{knob}: values, comma-separated", default, key=f"sweep_values_{knob}")
        return parse_values(knob, text), None
    default = RANGE_DEFAULTS.get(knob, f"{format_value(getattr(base, knob))}:{format_value(getattr(base, knob))}")
    hint = " (log scale)" if knob in LOG_KNOBS else ""
    text = st.text_input(f"{knob}: range LOW:HIGH{hint}", default, key=f"sweep_range_{knob}")
    return None, parse_range(knob, text)


def sweep_spec(lab: Lab, base: RunConfig) -> SweepSpec:
    """The sweep the widgets describe; raises SweepError naming what is wrong (in a workshop, a value that names a
    file or folder of the server, as `launch` would)."""
    method = st.radio("Method", list(METHODS), format_func=METHODS.get, key="sweep_method", horizontal=True)
    left, middle, right = st.columns([2, 1, 1])
    knobs = left.multiselect("Knobs to vary (1 to 3)", list(KNOBS), default=["lr"], max_selections=3, key="sweep_knobs")
    seeds = middle.slider("Seeds per config", 1, MAX_SEEDS, 3, key="sweep_seeds")
    judged = sorted(HEADLINE, key=lambda m: m != "f1")  # F1 first: the default
    metric = right.selectbox("Judged by", judged, format_func=label, key="sweep_metric")
    trials = 0
    if method != "grid":
        trials = int(
            middle.number_input("Configs to try", 1, MAX_RUNS, 8 if method == "random" else 12, key="sweep_trials")
        )
    sweep_seed = 0
    if method != "grid":
        sweep_seed = int(right.number_input("Sweep seed (draws again the same)", 0, 2**31, 0, key="sweep_seed"))
    grid, ranges = {}, {}
    columns = st.columns(max(1, len(knobs)))
    for column, knob in zip(columns, knobs):
        with column:
            values, span = render_knob(method, knob, base)
        if values is not None:
            grid[knob] = values
        else:
            ranges[knob] = span
    spec = SweepSpec(
        method=method, grid=grid, ranges=ranges, seeds=seeds, trials=trials, metric=metric, sweep_seed=sweep_seed
    )
    check(base, spec, allow=allow_for(lab, page.actor()))
    return spec


def render_sweep_form(lab: Lab, base: RunConfig | None, *, name: str, owner: str, problem: str | None) -> None:
    """Build, count, confirm and queue a sweep around `base` (the settings above are every run's starting point)."""
    if base is None or problem:
        st.info("The sweep builder needs valid settings above: they are the base config every run starts from.")
        return
    st.caption(
        "Every run starts from the settings above; the sweep varies the knobs you pick and runs every config with "
        "several seeds, so the Groups page can tell a real difference from seed noise."
    )
    try:
        spec = sweep_spec(lab, base)
    except SweepError as exc:
        st.error(f"**This sweep can't be queued**: {page.md(exc)}")
        return
    run_s, basis = estimate_run_s(lab.store.list_runs(), base.to_dict())
    total = spec.num_runs * run_s
    upto = "up to " if spec.method == "search" else ""
    summary = (
        f"**{upto}{spec.num_runs} runs will be queued** ({spec.num_configs} configs × {spec.seeds} seeds), "
        f"about **{format_duration(total)}** on this machine, one after another "
        f"(about {format_duration(run_s)} a run; {basis})."
    )
    pending = st.session_state.get(PENDING)
    if pending is None or pending[0] != spec or pending[1] != base:
        st.markdown(summary)
        if st.button(f"Queue {upto}{spec.num_runs} runs…", icon=":material/playlist_add:", key="sweep_ask"):
            st.session_state[PENDING] = (spec, base)
            st.rerun()
        return
    with st.container(border=True):
        st.warning(f"Queue this sweep? {summary}", icon=":material/help:")
        yes, no = st.columns(2)
        if no.button("Back", key="sweep_back", width="stretch"):
            st.session_state.pop(PENDING, None)
            st.rerun()
        if yes.button("Queue them", type="primary", key="sweep_confirm", width="stretch"):
            from bert_lab.engine.data import DataError
            from bert_lab.runs.workshop import QueueFullError, ServerPathError

            st.session_state.pop(PENDING, None)
            try:
                group = launch(lab, base, spec, name=name, owner=owner, actor=page.actor())
            except (SweepError, DataError, QueueFullError, ServerPathError) as exc:
                st.error(f"Nothing was queued: {page.md(exc)}")
                return
            st.session_state["_last_group"] = (group.id, group.name)
            page.remember_launched(*(r.id for r in lab.store.list_runs(group_id=group.id)))
            page.ensure_worker(lab)
            st.rerun()


def render_last_group() -> None:
    if last := st.session_state.get("_last_group"):
        st.success(
            f"Queued sweep **{page.md(last[1])}**. Before its first result is in, predict which config ends best: the "
            "Groups page asks, and reads your guess beside the result.",
            icon=":material/check_circle:",
        )
        st.page_link(
            page.GROUPS_PAGE,
            label="Predict, then read it on the Groups page",
            icon=":material/stacked_line_chart:",
            query_params={"group": last[0]},
        )
