"""Reading metric points for live charts: incrementally, per browser session; and how often a live view refreshes.

How often: every tab watching runs train shares one budget of this machine's CPU (`refresh_interval`, `watch`), so
that watching stays nearly free for the runs that train here. What a tab's refresh costs this machine depends on
where its browser is, and the budget tells the two apart:
- a **remote** browser (a participant's laptop, a presenter's machine on the stage) costs this machine only the
  server's part: the refresh's script run, measured in the script thread's own CPU time (`script_cpu_s`: what it took
  from training, not how long it waited for a CPU or the GIL, which grows with the very load the budget is there to
  spare), times `SERVER_FACTOR` for turning its elements into messages and sending them;
- a **local** browser (running on this machine, as on a laptop that trains and presents at once) costs that too and
  its drawing, `BROWSER_FACTOR` times the script's CPU time, on this machine's CPUs.
Which one a tab is, `browser_on_this_machine` says from addresses: a browser is local when it connects from a
loopback address or from one of this machine's own addresses (`http://<its LAN address>:8501` opened on the machine
itself), and when a reverse proxy on this machine forwards it, from the first address of `X-Forwarded-For`. And the
budget is the larger of a small share of the machine (`WATCH_SHARE`: what watching may take from training that uses
every CPU) and half the CPU time the machine has left idle lately (`spare_cpus`: a run training on a GPU, or on fewer
threads than cores, leaves CPUs idle, and refreshing there costs training nothing). So on a machine that is not
starved a view refreshes at the floor (`REFRESH_S`, 2 s); where a run trains on every CPU, a remote browser's tab
refreshes about four times as often as a local one's (its refresh costs this machine 3 parts, not 13), and each slows
down only as far as needed to keep training fast (tests/test_live.py works the numbers by hand).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import threading
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import psutil
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from bert_lab.figures import curves
from bert_lab.figures.export import metrics_frame, spreadsheet_csv
from bert_lab.runs.records import MetricPoint, Run
from bert_lab.runs.service import Lab
from bert_lab.runs.store import RunStore

REFRESH_S, IDLE_REFRESH_S = 2.0, 10.0  # while runs are queued or running; otherwise (new runs still show up)
# All the tabs watching runs train share this part of the machine's CPU (server and browsers together), so watching
# stays nearly free: two tabs on a 2-core machine cost training under 10% (bench/watched.py).
WATCH_SHARE = 0.05
# ... or this part of the CPU time the machine left idle lately, if that is more: the rest stays idle, so that the
# refreshes' own cost, which the next reading counts as busy, settles the interval rather than swinging it.
SPARE_SHARE = 0.5
# A refresh's cost moves the typical cost this part of the way; the first sets it, up to the cap (`typical_cost`).
COST_SMOOTHING, FIRST_COST_CAP_S = 0.2, 0.15
SPARE_EVERY_S, SPARE_SMOOTHING = 5.0, 0.3  # idle CPU is read at most this often, and smoothed (a new reading's weight)
# What one second of a refresh's measured script time costs in all, per party (bench/watched.py, 2-core EPYC, two
# headless-Chromium tabs, 37 refreshes of ~0.04 s each): the server ~3 s more (turning elements into messages and
# sending them: 4.4 CPU-s in all), a browser on this machine ~10 s (drawing the table and charts: 15.0 CPU-s); a
# browser on another machine costs this one nothing. (Measured against the script's wall time, which the budget now
# replaces with its CPU time, at most as long: re-run bench/watched.py to check them before trusting a change.)
SERVER_FACTOR, BROWSER_FACTOR = 3.0, 10.0
DOWNLOAD_PATIENCE_S = 5.0  # how long a download waits for a store that is away (as long as a page waits)
_watching: dict[str, tuple[float, float]] = {}  # tab (session id) → (its last refresh, its interval); this server
_watching_lock = threading.Lock()


def script_cpu_s() -> float:
    """CPU seconds the calling thread (a script run's) has used so far: a refresh's cost is the difference between
    two readings, the CPU it took, however long it waited for a CPU or the GIL meanwhile."""
    return time.thread_time()


def refresh_interval(
    cost_s: float, *, active: bool, watchers: int = 1, local: bool = True, spare_cpus: float = 0.0
) -> float:
    """Seconds between live refreshes of a tab whose last refresh took the server `cost_s` (CPU seconds of its
    script), while `watchers` tabs (this one included) watch runs train, the browser on this machine or
    (`local=False`) elsewhere; `spare_cpus`: the CPUs the machine left idle lately, which watching may share in."""
    if not active:
        return IDLE_REFRESH_S
    per_refresh_s = cost_s * (SERVER_FACTOR + (BROWSER_FACTOR if local else 0))
    budget_cpus = max(WATCH_SHARE * (os.cpu_count() or 1), SPARE_SHARE * spare_cpus)
    return max(REFRESH_S, watchers * per_refresh_s / budget_cpus)


@dataclass
class IdleMeter:
    """The CPUs a machine left idle lately, from readings of its CPUs' idle seconds (all CPUs together) taken at
    least SPARE_EVERY_S apart, smoothed; 0 until two readings are in (unknown: assume the machine is busy)."""

    at_s: float | None = None  # when the last reading was taken (monotonic seconds)
    idle_s: float = 0.0  # the CPUs' idle seconds then
    spare: float | None = None  # idle CPUs, smoothed; None before two readings

    def read(self, now_s: float, idle_s: float) -> float:
        if self.at_s is not None and now_s - self.at_s < SPARE_EVERY_S:
            return self.spare or 0.0  # too soon for a reading that means anything
        if self.at_s is not None:
            lately = max(0.0, idle_s - self.idle_s) / (now_s - self.at_s)
            self.spare = lately if self.spare is None else self.spare + SPARE_SMOOTHING * (lately - self.spare)
        self.at_s, self.idle_s = now_s, idle_s
        return self.spare or 0.0


_idle = IdleMeter()  # this server's; read under _watching_lock


def spare_cpus() -> float:
    """How many of this machine's CPUs were idle lately (`IdleMeter`); 0 where the system does not say."""
    try:
        idle_s = psutil.cpu_times().idle
    except (OSError, AttributeError):
        return 0.0
    return _idle.read(time.monotonic(), idle_s)


def is_local_browser(peer: str | None, forwarded_for: str = "", own: Collection[str] = ()) -> bool:
    """Whether a browser runs on this machine: it connects from `peer` (None: a loopback address, as Streamlit reports
    it), through a reverse proxy on this machine if `forwarded_for` (the `X-Forwarded-For` header) names the browser
    first; `own`: this machine's addresses. A loopback or own address is this machine; any other, another one."""
    address = peer
    if address is None or _is_loopback(address):
        first = forwarded_for.split(",")[0].strip()
        if not first:
            return True  # straight from this machine
        address = first  # a proxy on this machine passed it on: the browser's own address
    return _is_loopback(address) or _normal(address) in {_normal(a) for a in own}


def _normal(address: str) -> str:
    """An address as one spelling: no IPv6 zone (`%eth0`), an IPv4-mapped IPv6 address as IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(_normal(address)).is_loopback
    except ValueError:
        return address == "localhost"


@functools.cache
def own_addresses() -> frozenset[str]:
    """This machine's addresses, on every interface (read once per server)."""
    try:
        return frozenset(a.address for addrs in psutil.net_if_addrs().values() for a in addrs)
    except OSError:
        return frozenset()


def browser_on_this_machine() -> bool:
    """Whether this script run's browser draws on this machine's CPUs (`is_local_browser`)."""
    peer, forwarded = st.context.ip_address, st.context.headers.get("X-Forwarded-For", "")
    peer = peer if isinstance(peer, str) else None  # None for a loopback connection (or none known: count it local)
    return is_local_browser(peer, forwarded if isinstance(forwarded, str) else "", own_addresses())


def interval_moved(current_s: float | None, wanted_s: float | None) -> bool:
    """Whether a live view refreshing every `current_s` (None: not at all) should be redrawn to refresh every
    `wanted_s`: only when it starts or stops refreshing, or the interval moved more than twofold (a new interval
    takes a whole-page redraw)."""
    if current_s is None or wanted_s is None:
        return current_s != wanted_s
    return not current_s / 2 <= wanted_s <= 2 * current_s


def typical_cost(key: str, cost_s: float) -> float:
    """A tab's refresh cost, smoothed over its live part's own refreshes (kept in session state under `key`; 0 until
    the first): each moves it a fifth of the way, so that one slow refresh does not swing the interval (a changed
    interval redraws the whole page). The first counts at most FIRST_COST_CAP_S: a long interval is not corrected
    until it has passed, and a first refresh that cost what a first view does once set a 95 s interval, and the Runs
    page missed a whole tiny run's evaluations. A whole-page run is left out: it is not what repeats every interval,
    and it costs several times more (a new tab's first run reads every point from the start and draws its first
    figures: about 0.7 CPU-s where a refresh took about 0.1 on a 2-core machine)."""
    state = st.session_state
    if in_fragment_rerun():
        if key in state:
            state[key] += COST_SMOOTHING * (cost_s - state[key])
        else:
            state[key] = min(cost_s, FIRST_COST_CAP_S)
    return state.get(key, 0.0)


def in_fragment_rerun() -> bool:
    """Whether this script run is a fragment's own rerun (its `run_every`), not a run of the whole page."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


def watch(cost_s: float, *, active: bool) -> float:
    """This tab's refresh interval: counts it among the tabs watching (those that refreshed within twice their
    interval) so that they share the watching budget."""
    ctx = get_script_run_ctx()
    tab = ctx.session_id if ctx is not None else ""
    local = browser_on_this_machine()
    now = time.monotonic()
    with _watching_lock:
        for other, (seen, every) in list(_watching.items()):
            if now - seen > 2 * every + 1:
                del _watching[other]  # closed, or no longer watching a run train
        _watching.pop(tab, None)
        spare = spare_cpus() if active else 0.0
        interval = refresh_interval(cost_s, active=active, watchers=len(_watching) + 1, local=local, spare_cpus=spare)
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
    """Every metric point of `run_ids` as CSV (one row per run and step); called when the user clicks download,
    outside the script run (where Streamlit ignores its commands: no toast while the store is away)."""
    with Lab.open(patience_s=DOWNLOAD_PATIENCE_S) as lab:
        names = {run.id: run.name for run in map(lab.store.get_run, run_ids)}
        return spreadsheet_csv(metrics_frame(lab.store.read_metrics(list(run_ids)), names))
