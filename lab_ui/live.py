"""Reading metric points for live charts: incrementally, per browser session."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from bert_lab import plots
from bert_lab.export import metrics_frame
from bert_lab.runs.records import Run
from bert_lab.runs.store import RunStore
from lab_ui.page import open_lab

REFRESH_S, IDLE_REFRESH_S = 2.0, 10.0  # while runs are queued or running; otherwise (new runs still show up)
# A tab spends at most 1/BUDGET of a core on refreshing: a refresh that took 0.3 s waits 6 s for the next. Ten tabs
# watching on a 2-core machine then leave most of it to training (bench/workshop.py).
REFRESH_BUDGET = 20


def refresh_interval(cost_s: float, *, active: bool) -> float:
    """Seconds between live refreshes of a page whose last refresh took `cost_s`."""
    return max(REFRESH_S, REFRESH_BUDGET * cost_s) if active else IDLE_REFRESH_S


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
    with open_lab() as lab:
        return metrics_frame(lab.store.read_metrics(list(run_ids))).to_csv(index=False)
