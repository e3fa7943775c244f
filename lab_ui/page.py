"""Page set-up, navigation and hand-offs between pages.

Every page starts with `lab = page.start()`: it opens the lab named by `$BERT_LAB_HOME` / `$BERT_LAB_STORE` (else
`./lab_data`), starts the background worker when none is alive (so `make run` brings up the whole system) and draws
the sidebar. Set `BERT_LAB_NO_AUTOSTART=1` to keep the pages from starting a worker (the AppTests do: they must not
train). No torch here: the pages that import this module stay light.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from bert_lab import worker
from bert_lab.runs.describe import Note
from bert_lab.runs.records import Run
from bert_lab.runs.service import Lab

NO_AUTOSTART_ENV = "BERT_LAB_NO_AUTOSTART"
WORKER_NICE = 10  # the worker and its runs yield the CPU to the app, so pages draw at once even while a run trains
LAUNCH_PAGE, RUNS_PAGE, PLAYGROUND_PAGE = "app.py", "pages/1_Runs.py", "pages/2_Playground.py"
GROUPS_PAGE, LESSONS_PAGE = "pages/3_Groups.py", "pages/4_Lessons.py"
CLONE_KEY = "_clone_config"  # session-state hand-off from the Runs page's "Clone" to the launch page


def start(*, run_counts: bool = True) -> Lab:
    """Page config, lab, worker, sidebar. `run_counts=False` leaves the run counts to a live fragment."""
    st.set_page_config(page_title="BERT Lab", page_icon=":material/science:", layout="wide")
    lab = open_lab()
    render_sidebar(lab, worker_starting=ensure_worker(lab))
    if run_counts:
        with st.sidebar:
            render_run_counts(lab.store.list_runs())
    return lab


def open_lab() -> Lab:
    """A fresh handle for this script run (SQLite connections are per thread; Streamlit reruns on new ones)."""
    return Lab.open()


def ensure_worker(lab: Lab) -> bool:
    """Start the background worker unless one is alive or `$BERT_LAB_NO_AUTOSTART` is set; True if started."""
    if os.environ.get(NO_AUTOSTART_ENV, "").strip() not in ("", "0"):
        return False
    return worker.ensure_worker(lab, nice=WORKER_NICE)


def render_run_counts(runs: Sequence[Run]) -> None:
    counts = pd.Series([str(r.status) for r in runs], dtype=object).value_counts()
    st.caption("Runs: " + " · ".join(f"{n} {status}" for status, n in counts.items()) if len(runs) else "No runs yet.")


def render_sidebar(lab: Lab, *, worker_starting: bool = False) -> None:
    with st.sidebar:
        st.markdown("## :material/science: BERT Lab")
        st.page_link(LAUNCH_PAGE, label="Launch a run", icon=":material/rocket_launch:")
        st.page_link(RUNS_PAGE, label="Runs: watch and compare", icon=":material/monitoring:")
        st.page_link(GROUPS_PAGE, label="Groups: sweeps and seeds", icon=":material/stacked_line_chart:")
        st.page_link(PLAYGROUND_PAGE, label="Playground: try a model", icon=":material/chat:")
        st.page_link(LESSONS_PAGE, label="Lessons: one idea at a time", icon=":material/school:")
        st.divider()
        if worker_starting:
            st.caption(":orange[●] Starting the background worker: queued runs start in a moment.")
        elif worker.worker_alive(lab.data):
            st.caption(":green[●] Background worker is running: queued runs start one after another.")
        else:
            st.caption(
                ":red[●] No background worker: queued runs wait. Start one with "
                f"`python -m bert_lab worker --home {lab.data.path}`."
            )
        st.caption(f"Data folder: `{lab.data.path}`")


# --- user text --------------------------------------------------------------------------------------------------------
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md(text: str) -> str:
    """`text` escaped so that markdown shows it as typed (run names, owners, CSV cells, errors)."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def render_note(note: Note) -> None:
    getattr(st, note.level)(f"**{md(note.headline)}** {md(note.detail)}")


# --- clone hand-off ---------------------------------------------------------------------------------------------------
def request_clone(config: dict[str, Any]) -> None:
    """Open the launch page with its widgets set from `config` (the Runs page's "Clone" button)."""
    st.session_state[CLONE_KEY] = dict(config)
    st.switch_page(LAUNCH_PAGE)


def take_clone() -> dict[str, Any] | None:
    """The config handed over by `request_clone`, once."""
    return st.session_state.pop(CLONE_KEY, None)
