"""Shared pieces of the Streamlit pages: page set-up, the store, the worker, status words, the clone hand-off.

Every page starts with `store = start_page()`: it opens the store named by `$BERT_LAB_HOME` (else `./lab_data`),
starts the background worker when none is alive (so `make run` brings up the whole system) and draws the sidebar.
Set `BERT_LAB_NO_AUTOSTART=1` to keep the pages from starting a worker (the AppTests do: they must not train).
No torch here: the pages that import this module stay light.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from bert_lab import data, jobs, plots
from bert_lab.schedules import count_steps
from bert_lab.store import Run, RunStore

NO_AUTOSTART_ENV = "BERT_LAB_NO_AUTOSTART"
LAUNCH_PAGE, RUNS_PAGE, PLAYGROUND_PAGE = "app.py", "pages/1_Runs.py", "pages/2_Playground.py"
CLONE_KEY = "_clone_config"  # session-state hand-off from the Runs page's "Clone" to the launch page
STATUS_BADGES: dict[str, str] = {
    "queued": "… queued", "running": "▶ running", "finished": "✓ finished", "failed": "✗ failed",
    "cancelled": "■ cancelled", "diverged": "✗ diverged", "interrupted": "‖ interrupted",
}


# --- page set-up ------------------------------------------------------------------------------------------------------
def open_store() -> RunStore:
    """A fresh store handle for this script run (SQLite connections are per thread; Streamlit reruns on new ones)."""
    return RunStore.open()



def ensure_worker(store: RunStore) -> bool:
    """Start the background worker unless one is alive or `$BERT_LAB_NO_AUTOSTART` is set; True if started."""
    if os.environ.get(NO_AUTOSTART_ENV, "").strip() not in ("", "0"):
        return False
    return jobs.ensure_worker(store.home)


def start_page(*, run_counts: bool = True) -> RunStore:
    """Page config, store, worker, sidebar. `run_counts=False` leaves the run counts to a live fragment."""
    st.set_page_config(page_title="BERT Lab", page_icon=":material/science:", layout="wide")
    store = open_store()
    jobs.recover_lost_runs(store)  # runs whose process died show as interrupted (resumable), not running forever
    render_sidebar(store, worker_starting=ensure_worker(store))
    if run_counts:
        with st.sidebar:
            render_run_counts(store.list_runs())
    return store


def render_run_counts(runs: Sequence[Run]) -> None:
    counts = pd.Series([r.status for r in runs], dtype=object).value_counts()
    st.caption("Runs: " + " · ".join(f"{n} {status}" for status, n in counts.items()) if len(runs) else "No runs yet.")


def render_sidebar(store: RunStore, *, worker_starting: bool = False) -> None:
    with st.sidebar:
        st.markdown("## :material/science: BERT Lab")
        st.page_link(LAUNCH_PAGE, label="Launch a run", icon=":material/rocket_launch:")
        st.page_link(RUNS_PAGE, label="Runs: watch and compare", icon=":material/monitoring:")
        st.page_link(PLAYGROUND_PAGE, label="Playground: try a model", icon=":material/chat:")
        st.divider()
        if worker_starting:
            st.caption(":orange[●] Starting the background worker: queued runs start in a moment.")
        elif jobs.worker_alive(store.home):
            st.caption(":green[●] Background worker is running: queued runs start one after another.")
        else:
            st.caption(":red[●] No background worker: queued runs wait. Start one with "
                       f"`python -m bert_lab worker --home {store.home}`.")
        st.caption(f"Data folder: `{store.home}`")


# --- words ------------------------------------------------------------------------------------------------------------
def run_label(run: Run) -> str:
    return f"#{run.id} {run.name}"


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def eta_s(run: Run) -> float | None:
    """Seconds left, from the share done so far and the time it took (running runs past 2% only)."""
    elapsed = run.elapsed_s
    if run.status != "running" or elapsed is None or run.progress < 0.02:
        return None
    return elapsed * (1 - run.progress) / run.progress


def explain(run: Run, *, worker_alive: bool = True) -> tuple[str, str] | None:
    """(level, plain words) on where a run stands, for runs that need one; level is error, warning or info."""
    error = (run.error or "").strip()
    if run.status == "failed":
        return "error", f"**{run_label(run)} failed.** {error or 'No reason was recorded.'}"
    if run.status == "diverged":
        return "error", (f"**{run_label(run)} diverged**: the loss blew up, so training stopped "
                         f"({error or 'loss became NaN or huge'}).")
    if run.status in ("interrupted", "cancelled"):
        why = ("its process stopped (the app or the machine restarted?)" if run.status == "interrupted"
               else error or "it was stopped on request")
        return "warning", (f"**{run_label(run)} was {run.status}**: {why}. **Resume** continues from its last "
                           "checkpoint.")
    if run.status == "running" and run.cancel_requested:
        return "info", f"**{run_label(run)} is stopping**: it ends at its current step and saves a checkpoint."
    if run.status == "queued" and not worker_alive:
        return "warning", f"**{run_label(run)} is waiting**, but no background worker is running to start it."
    return None


# --- clone hand-off ---------------------------------------------------------------------------------------------------
def request_clone(config: dict[str, Any]) -> None:
    """Open the launch page with its widgets set from `config` (the Runs page's "Clone" button)."""
    st.session_state[CLONE_KEY] = dict(config)
    st.switch_page(LAUNCH_PAGE)


def take_clone() -> dict[str, Any] | None:
    """The config handed over by `request_clone`, once."""
    return st.session_state.pop(CLONE_KEY, None)


# --- metric points ----------------------------------------------------------------------------------------------------
def load_points(store: RunStore, runs: Iterable[Run]) -> pd.DataFrame:
    """The long points frame of `runs`, read incrementally: a per-session cache keeps what was read and asks the
    store only for newer points (a status or resume change re-reads that run, since a resumed run rewrites its tail)."""
    cache: dict[int, dict[str, Any]] = st.session_state.setdefault("_points_cache", {})
    frames = []
    for run in runs:
        key = (run.status, run.resume_count)
        entry = cache.get(run.id)
        if entry is None or entry["key"] != key:
            entry = {"key": key, "last_id": 0, "frame": plots.points_frame([])}
        new = store.read_metrics(run.id, since_id=entry["last_id"])
        if new:
            frame = pd.concat([entry["frame"], plots.points_frame(new)], ignore_index=True)
            entry["frame"] = frame.drop_duplicates(["name", "step"], keep="last") if entry["last_id"] else frame
            entry["last_id"] = new[-1].id
        cache[run.id] = entry
        frames.append(entry["frame"])
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else plots.points_frame([])


def curves_csv(run_ids: Sequence[int]) -> str:
    """Every metric point of `run_ids` as CSV (one row per run and step); called when the user clicks download."""
    from bert_lab.export import metrics_frame

    with open_store() as store:
        return metrics_frame(store.read_metrics(list(run_ids))).to_csv(index=False)


def train_examples(train_size: int, eval_size: int, available: int | None) -> int:
    """How many training examples a run gets (as `data.split_dataset` caps them)."""
    return train_size if available is None else data.split_sizes(available, train_size, eval_size)[0]


def planned_steps(n_train: int, batch_size: int, grad_accum_steps: int, num_epochs: float) -> int:
    """Optimizer steps of a single-process run (as training counts them)."""
    return count_steps(n_train, batch_size, grad_accum_steps, num_epochs)[1]
