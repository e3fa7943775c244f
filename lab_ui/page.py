"""Page set-up, navigation and hand-offs between pages.

Every page starts with `lab = page.start()`: it opens the lab named by `$BERT_LAB_HOME` / `$BERT_LAB_STORE` (else
`./lab_data`), starts the background worker when none is alive (so `make run` brings up the whole system) and draws
the sidebar. Set `BERT_LAB_NO_AUTOSTART=1` to keep the pages from starting a worker (the AppTests do: they must not
train). No torch here: the pages that import this module stay light.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec

import streamlit as st

from bert_lab.core.layout import DataFolder
from bert_lab.core.text import md
from bert_lab.processes import worker
from bert_lab.runs import workshop
from bert_lab.runs.describe import Note, counts_line, describe_workers, notice
from bert_lab.runs.records import Run
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.store import StoreUnavailable
from bert_lab.runs.workshop import Actor
from lab_ui.live import script_cpu_s, typical_cost, watch

P = ParamSpec("P")
NO_AUTOSTART_ENV = "BERT_LAB_NO_AUTOSTART"
WORKER_NICE = 10  # the worker and its runs yield the CPU to the app, so pages draw at once even while a run trains
LAUNCH_PAGE, RUNS_PAGE, PLAYGROUND_PAGE = "app.py", "pages/1_Runs.py", "pages/2_Playground.py"
GROUPS_PAGE, LESSONS_PAGE, HOST_PAGE = "pages/3_Groups.py", "pages/4_Lessons.py", "pages/5_Host.py"
ACTOR_KEY = "_actor"  # the signed-in workshop participant or host (workshop.Actor), per browser session
TOKEN_KEY = "_token"  # its sign-in token (workshop.token), also kept in the address so a reload or new tab has it
CLONE_KEY = "_clone_config"  # session-state hand-off from the Runs page's "Clone" to the launch page
PAGE_PATIENCE_S = 5.0  # how long a page's store call waits for a store that is away (then: UNREACHABLE)
UNREACHABLE = "The run store is unreachable, retrying…"
UNREACHABLE_RETRY_S = 3.0  # the page tries the store again this often
LAUNCHED_KEY = "_launched"  # the ids of the runs this browser launched that had not ended at the last look
NOTICE_EVERY_S = 5.0  # how often a page looks whether one of them has ended
COUNTS_COST_KEY = "_counts_cost_s"  # the sidebar's run counts: their typical refresh cost, in CPU seconds
NOTICE_ICONS = {Status.FINISHED: ":material/check_circle:", Status.INTERRUPTED: ":material/pause_circle:"}


def start(*, run_counts: bool = True) -> Lab:
    """Page config, the workshop sign-in (nothing else is drawn until it passes), lab, worker, sidebar.
    `run_counts=False` leaves the run counts to a live fragment."""
    st.set_page_config(page_title="BERT Lab", page_icon=":material/science:", layout="wide")
    if workshop.enabled() and resume_sign_in() is None:
        render_sign_in()
        st.stop()
    try:
        lab = open_lab()
        render_sidebar(lab, worker_starting=ensure_worker(lab))
        if run_counts:
            with st.sidebar:
                render_live_run_counts(lab.store.list_runs())
        if st.session_state.get(LAUNCHED_KEY):
            watch_launched()
    except StoreUnavailable:
        render_unreachable()
        st.stop()
    return lab


def actor() -> Actor | None:
    """Who this browser session is in a workshop (None outside workshop mode: one person, acting on every run)."""
    return st.session_state.get(ACTOR_KEY) if workshop.enabled() else None


def resume_sign_in() -> Actor | None:
    """Who this browser is, from its token (this session's, else the address's: a reload, a new tab); the token is
    put back in the address, which Streamlit clears on each page change. A token that no longer holds (a released
    name, a restarted workshop) signs the browser out."""
    token = st.session_state.get(TOKEN_KEY) or st.query_params.get(workshop.TOKEN_PARAM, "")
    who = workshop.signed_in(DataFolder.default(), token) if token else None
    if who is None:
        forget_sign_in()
        return None
    st.session_state[ACTOR_KEY], st.session_state[TOKEN_KEY] = who, token
    if st.query_params.get(workshop.TOKEN_PARAM) != token:
        st.query_params[workshop.TOKEN_PARAM] = token
    return who


def forget_sign_in() -> None:
    """Sign this browser out: its session and the token in its address (the name stays claimed: see Sign out)."""
    for key in (ACTOR_KEY, TOKEN_KEY):
        st.session_state.pop(key, None)
    if workshop.TOKEN_PARAM in st.query_params:
        del st.query_params[workshop.TOKEN_PARAM]


def client_address() -> str:
    """The browser's network address, which wrong passcodes are counted by ("" on this machine, or unknown)."""
    address = st.context.ip_address
    return address if isinstance(address, str) else ""


def token_query() -> dict[str, str]:
    """The sign-in token as a query parameter, for links this browser opens in a new tab ({} outside a workshop)."""
    token = st.session_state.get(TOKEN_KEY)
    return {workshop.TOKEN_PARAM: token} if actor() is not None and token else {}


def owner() -> str:
    """The owner of the runs this session launches: the signed-in name in a workshop, else nobody in particular."""
    who = actor()
    return "" if who is None else who.name


def render_sign_in() -> None:
    st.title(":material/science: BERT Lab workshop")
    st.caption(
        "Enter the workshop's passcode and your name. Your name marks the runs you launch and is yours for the "
        "workshop: this page's address keeps you signed in (reloads, new tabs)."
    )
    with st.form("sign_in"):
        passcode = st.text_input("Passcode", type="password", key="_passcode")
        name = st.text_input("Your name", key="_name", max_chars=workshop.MAX_NAME)
        if st.form_submit_button("Enter", type="primary"):
            data = DataFolder.default()
            try:
                who = workshop.sign_in(passcode, name, data, client=client_address())
            except ValueError as exc:
                st.error(md(str(exc)))
            else:
                st.session_state.pop("_passcode", None)
                st.session_state[TOKEN_KEY] = workshop.token(data, who)
                st.rerun()


def open_lab() -> Lab:
    """A fresh handle for this script run (SQLite connections are per thread; Streamlit reruns on new ones). A call
    to a store that is away waits `PAGE_PATIENCE_S` (saying so in a toast), then raises StoreUnavailable."""
    toasted = False

    def say_waiting(waited_s: float, error: BaseException) -> None:
        nonlocal toasted
        if not toasted:
            st.toast(UNREACHABLE, icon=":material/cloud_off:")
            toasted = True

    return Lab.open(patience_s=PAGE_PATIENCE_S, on_wait=say_waiting)


def live(run_every: float | None) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """`st.fragment(run_every=…)` for a page's live part: while the store is away it says so in place of a traceback
    and tries again at its next refresh (the page around it stays as it was)."""

    def wrap(body: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(body)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
            try:
                body(*args, **kwargs)
            except StoreUnavailable:
                st.warning(f"**{UNREACHABLE}** This part refreshes once it is back.", icon=":material/cloud_off:")

        return st.fragment(run_every=run_every)(guarded)

    return wrap


def render_unreachable() -> None:
    """The page in place of a traceback while the store is away; it comes back by itself once the store does."""
    st.warning(
        f"**{UNREACHABLE}** Runs keep training meanwhile and catch up once it is back.", icon=":material/cloud_off:"
    )

    @st.fragment(run_every=UNREACHABLE_RETRY_S)
    def retry() -> None:
        try:
            Lab.open(patience_s=0.0).close()
        except StoreUnavailable:
            return
        st.rerun()

    retry()


def ensure_worker(lab: Lab) -> bool:
    """Start the background worker unless one is alive or `$BERT_LAB_NO_AUTOSTART` is set; True if started."""
    if os.environ.get(NO_AUTOSTART_ENV, "").strip() not in ("", "0"):
        return False
    return worker.ensure_worker(lab, nice=WORKER_NICE)


# --- notices: the runs this browser launched --------------------------------------------------------------------------
def remember_launched(*run_ids: int) -> None:
    """Tell this browser when these runs end, on whatever page it is then (`watch_launched`)."""
    st.session_state.setdefault(LAUNCHED_KEY, set()).update(run_ids)


@st.fragment(run_every=NOTICE_EVERY_S)
def watch_launched() -> None:
    """A toast for each run this browser launched that has finished, failed, diverged or been interrupted since the
    last look (`describe.notice`); a run that ended is looked at no more."""
    waiting: set[int] = st.session_state.get(LAUNCHED_KEY) or set()
    if not waiting:
        return
    try:
        with open_lab() as lab:
            runs = lab.store.list_runs(ids=waiting)
            latest = lab.store.latest_metrics([r.id for r in runs if r.status == Status.FINISHED])
    except StoreUnavailable:
        return  # the next look will tell
    waiting &= {r.id for r in runs}  # a run deleted meanwhile is looked at no more
    for run in runs:
        if not run.is_active:
            waiting.discard(run.id)
            if said := notice(run, latest.get(run.id, {})):
                st.toast(md(said), icon=NOTICE_ICONS.get(run.status, ":material/error:"), duration="long")


def render_run_counts(runs: Sequence[Run], *, paused: bool = False) -> None:
    """How many runs are in each status, and, while the host has paused the queue (`paused`), that queued runs wait
    for them. Drawn once: a live part of a page calls it at each refresh, else `render_live_run_counts`."""
    counts = Counter(str(r.status) for r in runs)
    st.caption(f"Runs: {counts_line(counts)}" if runs else "No runs yet.")
    if paused:
        st.caption(":orange[●] **Queue paused by the host.** Queued runs start once the host resumes it.")


def render_live_run_counts(runs: Sequence[Run]) -> None:
    """The run counts, kept current (`runs`: the store's runs now): a fragment that reads them again at the live pace
    of the shared refresh budget (`live.watch`) while runs are queued or running, and every `live.IDLE_REFRESH_S`
    otherwise (a run launched elsewhere still shows up)."""
    every = watch(st.session_state.get(COUNTS_COST_KEY, 0.0), active=any(r.is_active for r in runs))
    live(every)(refresh_run_counts)()


def refresh_run_counts() -> None:
    started = script_cpu_s()
    with open_lab() as lab:
        runs = lab.store.list_runs()
        paused = workshop.Settings.read(lab.data).paused
    render_run_counts(runs, paused=paused)
    cost_s = typical_cost(COUNTS_COST_KEY, script_cpu_s() - started)  # (its own refreshes: a full run costs more)
    watch(cost_s, active=any(r.is_active for r in runs))  # keeps this tab's place in the shared budget


def render_sidebar(lab: Lab, *, worker_starting: bool = False) -> None:
    who = actor()
    with st.sidebar:
        st.markdown("## :material/science: BERT Lab")
        st.page_link(LAUNCH_PAGE, label="Launch a run", icon=":material/rocket_launch:")
        st.page_link(RUNS_PAGE, label="Runs: watch and compare", icon=":material/monitoring:")
        st.page_link(GROUPS_PAGE, label="Groups: sweeps and seeds", icon=":material/stacked_line_chart:")
        st.page_link(PLAYGROUND_PAGE, label="Playground: try a model", icon=":material/chat:")
        st.page_link(LESSONS_PAGE, label="Lessons: one idea at a time", icon=":material/school:")
        if who is None or who.host:
            st.page_link(HOST_PAGE, label="Host view: queue and leaderboard", icon=":material/admin_panel_settings:")
        st.divider()
        if who is not None:
            st.caption(f"Signed in as **{md(who.name)}**" + (" (host)" if who.host else ""))
            # Signing out ends this browser's session only: the name stays claimed, so nobody else can take it (and
            # with it these runs). To come back, its owner asks the host to release it (Host view), then signs in.
            if st.button("Sign out", key="sign_out", help="Your name stays yours: only the host can release it."):
                forget_sign_in()
                st.rerun()
            if not who.host:
                return  # a participant needs neither the worker's state nor paths on the server
        workers = [] if worker_starting else worker.live_workers(lab.store)
        if worker_starting:
            st.caption(":orange[●] Starting the background worker: queued runs start in a moment.")
        elif workers:
            st.caption(f":green[●] {md(describe_workers(workers))}: queued runs start as slots free up.")
        else:
            st.caption(
                ":red[●] No background worker: queued runs wait. Start one with "
                f"`bert-lab worker --home {lab.data.path}`."
            )
        st.caption(f"Data folder: `{short_path(lab.data.path)}`", help=f"`{lab.data.path}`")


def short_path(path: os.PathLike[str] | str, parts: int = 2) -> str:
    """A folder as a narrow sidebar shows it: the home folder as `~`, only its last `parts` parts after "…/" (the
    whole path goes in a tooltip)."""
    text = str(path)
    home = os.path.expanduser("~")
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        text = "~" + text[len(home) :]
    names = text.split(os.sep)
    return text if len(names) <= parts + 1 else "…" + os.sep + os.sep.join(names[-parts:])


# --- user text --------------------------------------------------------------------------------------------------------
def render_note(note: Note) -> None:
    getattr(st, note.level)(f"**{md(note.headline)}** {md(note.detail)}")


# --- clone hand-off ---------------------------------------------------------------------------------------------------
def request_clone(config: dict[str, Any], name: str = "") -> None:
    """Open the launch page with its widgets set from `config` and its name box from `name` (the cloned run's name;
    empty: none), the Runs page's "Clone" button."""
    st.session_state[CLONE_KEY] = (dict(config), name)
    st.switch_page(LAUNCH_PAGE)


def take_clone() -> tuple[dict[str, Any], str] | None:
    """The (config, name of the cloned run) handed over by `request_clone`, once."""
    return st.session_state.pop(CLONE_KEY, None)
