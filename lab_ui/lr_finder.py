"""The launch page's "Find a learning rate": queue an LR range test built from the current settings, draw its smoothed
loss against the learning rate as it runs, and once it ends, offer its suggestion for the learning-rate slider."""

from __future__ import annotations

import streamlit as st

from bert_lab.core.config import RunConfig
from bert_lab.figures import run_charts
from bert_lab.runs import service
from bert_lab.runs.describe import badge
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.store import UnknownRunError
from bert_lab.runs.workshop import QueueFullError, ServerPathError
from bert_lab.teaching.lr_find import NUM_STEPS, RangeTest, changed_since, range_test_config
from lab_ui import page

FINDER_KEY = "_lr_find_run"  # this tab's range-test run id
BASE_KEY = "_lr_find_base"  # the settings it was launched from (its suggestion holds for these only)
HELP = (
    f"A throwaway run of about {NUM_STEPS} steps whose learning rate rises from 1e-7 to 1 (fastai's lr_find): the "
    "loss first falls, then blows up. The suggestion sits well down the falling slope."
)


def render_find_button(lab: Lab, config: RunConfig | None) -> None:
    if st.button("Find a learning rate", key="lr_find", icon=":material/search:", disabled=config is None, help=HELP):
        assert config is not None
        start_test(lab, config)


def start_test(lab: Lab, config: RunConfig) -> None:
    """Queue a range test of `config`, remembered as this tab's (with the settings it measures)."""
    try:
        test = range_test_config(config)
        run = service.submit(lab, test, name="LR range test", owner=page.owner(), actor=page.actor())
    except (QueueFullError, ServerPathError) as exc:
        st.error(page.md(exc))
        return
    st.session_state[FINDER_KEY], st.session_state[BASE_KEY] = run.id, config.to_dict()
    page.ensure_worker(lab)


def use_lr(lr: float) -> None:
    st.session_state["lr"] = float(f"{lr:.1e}")


def replay(lab: Lab, run_id: int) -> RangeTest:
    """The range test as far as its stored points go (the step records' learning rate and loss)."""
    test = RangeTest()
    steps: dict[int, dict[str, float]] = {}
    for point in lab.store.read_metrics(run_id, names=["lr", "train_loss"]):
        steps.setdefault(point.step, {})[point.name] = point.value
    for step in sorted(steps):
        if len(steps[step]) == 2:
            test.add(steps[step]["lr"], steps[step]["train_loss"])
    return test


def render_curve(test: RangeTest) -> float | None:
    """The loss curve with its suggestions; the suggested learning rate, once there are enough steps."""
    try:
        found = test.suggest()
    except ValueError:
        return None
    marks = {"suggested (valley)": found.suggested_lr, "steepest": found.steep_lr, "minimum ÷ 10": found.min_lr}
    st.plotly_chart(run_charts.lr_find_figure(found.lrs, found.losses, marks), key="lr_find_chart")
    return found.suggested_lr


def render_live(lab: Lab, run_id: int) -> None:
    run = lab.store.get_run(run_id)
    if not run.status.is_active:
        st.rerun(scope="app")  # the finished test offers its suggestion in the page itself
    st.caption(f"LR range test #{run.id}: {badge(run.status)} · {len(replay(lab, run_id).lrs)} steps so far")
    render_curve(replay(lab, run_id))


def render_finder(lab: Lab, config: RunConfig | None) -> None:
    """This tab's range test, live while it runs; then its curve and a button that sets the learning rate, while the
    settings `config` (None: not valid) are those it was measured with; else a button that measures them."""
    run_id = st.session_state.get(FINDER_KEY)
    if run_id is None:
        return
    try:
        run = lab.store.get_run(run_id)
    except UnknownRunError:
        st.session_state.pop(FINDER_KEY, None)
        return
    with st.container(border=True):
        if run.status.is_active:
            page.live(1.5)(render_live)(lab, run_id)
            return
        if run.status != Status.FINISHED:
            st.error(f"The LR range test #{run.id} {run.status}: {page.md(run.error or '')}")
            return
        suggested = render_curve(replay(lab, run_id))
        left, right = st.columns([1, 3], vertical_alignment="center")
        changed = changed_since(st.session_state.get(BASE_KEY, {}), config.to_dict()) if config is not None else {}
        if suggested is not None and config is not None and changed:
            then = ", ".join(f"{k.replace('_', ' ')} {page.md(old)}" for k, (old, _) in changed.items())
            now = ", ".join(page.md(new) for _, new in changed.values())
            if left.button("Find it again", key="lr_find_again", icon=":material/search:", width="stretch"):
                start_test(lab, config)
                st.rerun()
            right.caption(
                f"This suggestion ({suggested:.1e}) was measured with {then}; these settings have {now}. A learning "
                "rate suits the settings it was found with: find it again for these."
            )
            return
        if suggested is not None and config is not None:
            label = f"Use {suggested:.1e}"
            left.button(label, key="lr_use", type="primary", on_click=use_lr, args=(suggested,), width="stretch")
        right.caption(f"{page.md(run.summary.reason or '')}. {HELP}")
