"""Reading metric points for live charts: incrementally, per browser session."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from bert_lab.figures import curves
from bert_lab.figures.export import metrics_frame, spreadsheet_csv
from bert_lab.runs.records import MetricPoint, Run
from bert_lab.runs.store import RunStore
from lab_ui.page import open_lab

REFRESH_S, IDLE_REFRESH_S = 2.0, 10.0  # while runs are queued or running; otherwise (new runs still show up)
# All the tabs watching runs train share this part of the machine's CPU (server and browsers together), so watching
# stays nearly free: two tabs on a 2-core machine cost training under 10% (bench/watched.py).
WATCH_SHARE = 0.05
# What one second of a refresh's measured script time costs in all, per party (bench/watched.py, 2-core EPYC, two
# headless-Chromium tabs, 37 refreshes of ~0.04 s each): the server ~3 s more (turning elements into messages and
# sending them: 4.4 CPU-s in all), a browser on this machine ~10 s (drawing the table and charts: 15.0 CPU-s); a
# browser on another machine costs this one nothing.
SERVER_FACTOR, BROWSER_FACTOR = 3.0, 10.0
_watching: dict[str, tuple[float, float]] = {}  # tab (session id) → (its last refresh, its interval); this server
_watching_lock = threading.Lock()


def refresh_interval(cost_s: float, *, active: bool, watchers: int = 1, local: bool = True) -> float:
    """Seconds between live refreshes of a tab whose last refresh took the server `cost_s`, while `watchers` tabs
    (this one included) watch runs train, the browser on this machine or (`local=False`) elsewhere."""
    if not active:
        return IDLE_REFRESH_S
    per_refresh_s = cost_s * (SERVER_FACTOR + (BROWSER_FACTOR if local else 0))
    return max(REFRESH_S, watchers * per_refresh_s / (WATCH_SHARE * (os.cpu_count() or 1)))


def interval_moved(current_s: float | None, wanted_s: float | None) -> bool:
    """Whether a live view refreshing every `current_s` (None: not at all) should be redrawn to refresh every
    `wanted_s`: only when it starts or stops refreshing, or the interval moved more than twofold (a new interval
    takes a whole-page redraw)."""
    if current_s is None or wanted_s is None:
        return current_s != wanted_s
    return not current_s / 2 <= wanted_s <= 2 * current_s


def typical_cost(key: str, cost_s: float) -> float:
    """A tab's refresh cost, smoothed over its refreshes (kept in session state under `key`): one slow refresh
    must not swing the interval, since a changed interval redraws the whole page."""
    state = st.session_state
    state[key] = cost_s if key not in state else 0.8 * state[key] + 0.2 * cost_s
    return state[key]


def watch(cost_s: float, *, active: bool) -> float:
    """This tab's refresh interval: counts it among the tabs watching (those that refreshed within twice their
    interval) so that they share the watching budget."""
    ctx = get_script_run_ctx()
    tab = ctx.session_id if ctx is not None else ""
    ip = st.context.ip_address  # None for a browser on localhost
    local = not isinstance(ip, str) or ip in ("127.0.0.1", "::1")
    now = time.monotonic()
    with _watching_lock:
        for other, (seen, every) in list(_watching.items()):
            if now - seen > 2 * every + 1:
                del _watching[other]  # closed, or no longer watching a run train
        _watching.pop(tab, None)
        interval = refresh_interval(cost_s, active=active, watchers=len(_watching) + 1, local=local)
        if active:
            _watching[tab] = (now, interval)
    return interval


def load_points(store: RunStore, runs: Iterable[Run]) -> pd.DataFrame:
    """The long points frame of `runs`, read incrementally: a per-session cache keeps what was read and asks the
    store only for newer points (a status or resume change re-reads that run, since a resumed run rewrites its tail)."""
    cache: dict[int, dict[str, Any]] = st.session_state.setdefault("_points_cache", {})
    entries = {}
    for run in runs:
        key = (run.status, run.resume_count)
        entry = cache.get(run.id)
        if entry is None or entry["key"] != key:
            entry = {"key": key, "last_id": 0, "frame": curves.points_frame([])}
        entries[run.id] = entry
    new: dict[int, list[MetricPoint]] = {}
    for point in store.read_metrics(list(entries), since_id={i: e["last_id"] for i, e in entries.items()}):
        new.setdefault(point.run_id, []).append(point)  # one question to the store for every run shown
    frames = []
    for run_id, entry in entries.items():
        if points := new.get(run_id):
            frame = curves.points_frame(points)
            if entry["last_id"]:  # a tail: the newest point of a step wins (a resumed run writes some again)
                frame = pd.concat([entry["frame"], frame], ignore_index=True).drop_duplicates(
                    ["name", "step"], keep="last"
                )
            entry["frame"], entry["last_id"] = frame, points[-1].id
        cache[run_id] = entry
        frames.append(entry["frame"])
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else curves.points_frame([])


def curves_csv(run_ids: Sequence[int]) -> str:
    """Every metric point of `run_ids` as CSV (one row per run and step); called when the user clicks download."""
    with open_lab() as lab:
        names = {run.id: run.name for run in map(lab.store.get_run, run_ids)}
        return spreadsheet_csv(metrics_frame(lab.store.read_metrics(list(run_ids)), names))
