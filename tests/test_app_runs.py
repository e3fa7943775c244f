"""AppTests of the Runs page (`pages/1_Runs.py`): runs and their metric points are made directly in the test's store
(nothing trains), then the page is drawn and clicked; the checks read what it shows and what the store holds."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from page_view import array, figures, titles
from streamlit.testing.v1 import AppTest

from bert_lab.core.config import RunConfig
from bert_lab.processes.executor import pid_alive
from bert_lab.runs import service
from bert_lab.runs.describe import QUEUE_PAUSED, QUEUE_PAUSED_DETAIL, run_label
from bert_lab.runs.records import Run, RunSummary
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.workshop import Settings
from lab_ui import live, page

ROOT = Path(__file__).resolve().parents[1]
OpenPage = Callable[..., AppTest]
pytestmark = pytest.mark.usefixtures("each_store")  # every test here runs on SQLite, then on PostgreSQL
HOSTILE = "**bold** [x](http://e) <b>hi</b> `code` :red[alarm] $x$"
ESCAPED = re.compile(r"\\[!-/:-@\[-`{-~]")  # a backslash-escaped ASCII punctuation character (CommonMark)


def texts(elements: Any) -> str:
    return "\n".join(str(e.value) for e in elements)


def click(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.button if b.label == label).click().run()


def make_run(
    lab: Lab,
    status: Status = Status.FINISHED,
    *,
    steps: int = 40,
    error: str | None = None,
    name: str = "",
    **changes: Any,
) -> Run:
    """A run in `status` with `steps` of per-step points and an evaluation every 10 steps (no training)."""
    store = lab.store
    run = store.create_run(RunConfig(**changes).to_dict(), name=name, owner="tester")
    if status == Status.QUEUED:
        return run
    if status == Status.CANCELLED:
        return service.cancel(lab, run.id)
    assert store.claim_run(run.id, pid=os.getpid(), device="cpu")
    lr = run.config["lr"]
    points = []
    for s in range(1, steps + 1):
        loss = 0.7 * math.exp(-s / 20) + 0.1
        points += [
            (s, s / steps, s * 0.5, "train_loss", loss),
            (s, s / steps, s * 0.5, "lr", lr * (1 - s / steps)),
            (s, s / steps, s * 0.5, "grad_norm", 1.0),
            (s, s / steps, s * 0.5, "samples_per_s", 30.0),
        ]
        if s % 10 == 0:
            points += [
                (s, s / steps, s * 0.5, name, value)
                for name, value in (
                    ("eval_loss", loss),
                    ("accuracy", 0.8),
                    ("precision", 0.8),
                    ("recall", 0.7),
                    ("f1", 0.75),
                    ("weight_norm", 276.0 - s / 100),
                    ("near_zero", 0.02),
                )
            ]
    store.add_metrics(run.id, points)
    store.update_run(run.id, progress=1.0 if status != Status.RUNNING else 0.5, summary=RunSummary(total_steps=steps))
    if status != Status.RUNNING:
        store.set_status(run.id, status, error=error)
    return store.get_run(run.id)


def unescape(markdown: str) -> str:
    """What markdown shows for backslash-escaped text: the characters without their backslashes."""
    return ESCAPED.sub(lambda m: m.group()[1], markdown)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process in its own process group (like a run's), killed at the end of the test."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


def test_runs_page_without_runs_points_to_the_launch_page(open_page: OpenPage) -> None:
    at = open_page(page.RUNS_PAGE)
    assert "No runs yet" in texts(at.info)
    [link] = at.main.get("page_link")  # the sidebar has its own links to every page
    assert link.proto.label == "Launch a run"
    target = at._registered_pages[link.proto.page_script_hash]  # the page a click opens (AppTest's page registry)
    assert Path(target["script_path"]).resolve() == ROOT / page.LAUNCH_PAGE


def test_runs_page_draws_curves_hyperparameters_and_why_runs_stopped(open_page: OpenPage, lab: Lab) -> None:
    make_run(lab, Status.FINISHED, lr=1e-4, name="base")
    make_run(lab, Status.DIVERGED, lr=1e-1, error="loss became nan at step 12", name="hot")
    make_run(lab, Status.FAILED, lr=1e-4, dropout=0.3, error="out of memory: lower the batch size", name="oom")
    at = open_page(page.RUNS_PAGE)
    shown = titles(at)
    for title in (
        "Training loss",
        "Eval loss",
        "Accuracy",
        "F1 (macro)",
        "Learning rate",
        "Gradient norm",
        "Latest evaluation",
    ):
        assert any(title in t for t in shown), title
    loss = next(f for f in figures(at) if "Training loss" in f["layout"]["title"]["text"])
    lines = {t["name"] for t in loss["data"] if not t["name"].endswith(("(raw)", "note"))}
    assert lines == {"#1 base", "#2 hot", "#3 oom"}
    assert [t["name"] for t in loss["data"] if t["name"].endswith("note")] == ["#2 note"]  # the divergence, marked
    notes = unescape(texts(at.error))
    assert "#2 hot diverged" in notes and "loss became nan at step 12" in notes
    assert "#3 oom failed." in notes and "out of memory: lower the batch size" in notes
    table = at.dataframe[0].value
    assert list(table["run"]) == ["#3 oom", "#2 hot", "#1 base"] and "progress" in table.columns
    diff = at.dataframe[1].value  # the hyperparameters that differ
    assert set(diff.index) == {"lr", "dropout"}


def test_runs_page_controls_and_side_by_side_view(open_page: OpenPage, lab: Lab) -> None:
    make_run(lab, Status.FINISHED, lr=1e-4)
    make_run(lab, Status.FINISHED, lr=3e-4)
    at = open_page(page.RUNS_PAGE)
    at.radio(key="x_axis").set_value("epoch")
    at.slider(key="smoothing").set_value(0.0)
    at.toggle(key="log_loss").set_value(True).run()
    loss = next(f for f in figures(at) if "Training loss" in f["layout"]["title"]["text"])
    assert loss["layout"]["xaxis"]["title"]["text"] == "Epoch" and loss["layout"]["yaxis"]["type"] == "log"
    assert len(loss["data"]) == 2 and array(loss["data"][0]["x"]).max() == 1.0  # no smoothing: no raw lines
    at.radio(key="view").set_value("Side by side").run()
    assert not at.exception
    loss = next(f for f in figures(at) if "Training loss" in f["layout"]["title"]["text"])
    assert len(loss["data"]) == 2 and {"xaxis", "xaxis2", "yaxis2"} <= set(loss["layout"])  # a panel per run


def test_cancel_resume_and_delete_change_the_store(open_page: OpenPage, lab: Lab) -> None:
    store = lab.store
    running = make_run(lab, Status.RUNNING, name="live")
    queued = make_run(lab, Status.QUEUED, name="waiting")
    at = open_page(page.RUNS_PAGE, {"_selected_ids": [running.id, queued.id], "action_run": running.id})
    click(at, "Cancel")
    assert store.get_run(running.id).cancel_requested and store.get_run(running.id).status == Status.RUNNING
    at.selectbox(key="action_run").set_value(queued.id).run()
    click(at, "Cancel")
    assert store.get_run(queued.id).status == Status.CANCELLED
    click(at, "Resume")
    assert store.get_run(queued.id).status == Status.QUEUED and store.get_run(queued.id).resume_count == 1
    click(at, "Delete…")
    assert "cannot be undone" in texts(at.warning) and store.get_run(queued.id)  # asks first
    click(at, "Yes, delete it")
    assert [r.id for r in store.list_runs()] == [running.id]
    assert not at.exception


def test_resume_requeues_a_cancelled_run_and_only_a_resumable_one(open_page: OpenPage, lab: Lab) -> None:
    done = make_run(lab, Status.FINISHED, name="done")
    stopped = make_run(lab, Status.CANCELLED, name="stopped")
    at = open_page(page.RUNS_PAGE, {"_selected_ids": [done.id, stopped.id], "action_run": done.id})
    assert next(b for b in at.button if b.label == "Resume").disabled  # a finished run has nothing to resume
    at.selectbox(key="action_run").set_value(stopped.id).run()
    click(at, "Resume")
    run = lab.store.get_run(stopped.id)
    assert (run.status, run.resume_count, run.cancel_requested) == (Status.QUEUED, 1, False)
    assert next(b for b in at.button if b.label == "Resume").disabled  # queued again: nothing more to resume
    assert "was cancelled" not in texts(at.warning)  # the note follows the store
    assert lab.store.get_run(done.id).status == Status.FINISHED and not at.exception


def test_the_page_never_recovers_nor_kills_runs(
    open_page: OpenPage, lab: Lab, sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the worker decides a run lost its process: the page shows a run marked running as running, even with a
    dead process and a silent heartbeat, and its Cancel only asks (the process keeps running until it stops itself)."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    an_hour_ago = time.time() - 3600
    with monkeypatch.context() as clock:  # started, and last heard from, an hour ago: what the worker calls lost
        clock.setattr(time, "time", lambda: an_hour_ago)
        lost = make_run(lab, Status.RUNNING, name="lost")
        silent = make_run(lab, Status.RUNNING, name="silent")
    lab.store.update_run(lost.id, pid=dead.pid)
    lab.store.update_run(silent.id, pid=sleeper.pid)
    assert {lab.store.get_run(i).heartbeat_at for i in (lost.id, silent.id)} == {an_hour_ago}
    at = open_page(page.RUNS_PAGE, {"action_run": silent.id})
    click(at, "Cancel")
    at.run()
    assert not at.exception
    assert [lab.store.get_run(i).status for i in (lost.id, silent.id)] == [Status.RUNNING, Status.RUNNING]
    assert lab.store.get_run(silent.id).cancel_requested and lab.store.get_run(silent.id).pid == sleeper.pid
    assert pid_alive(sleeper.pid) and sleeper.poll() is None
    assert list(at.dataframe[0].value["status"]) == ["▶ running", "▶ running"]


def test_queued_runs_show_their_place_in_the_fair_queue(open_page: OpenPage, lab: Lab) -> None:
    running = make_run(lab, Status.RUNNING, model="tiny")  # "tester", started just now
    ana = [lab.store.create_run(RunConfig(model="tiny").to_dict(), owner="ana").id for _ in range(2)]
    mine = lab.store.create_run(RunConfig(model="tiny").to_dict(), owner="tester").id
    table = open_page(page.RUNS_PAGE).dataframe[0].value.set_index("run")
    steps = {run_id: table.loc[run_label(lab.store.get_run(run_id)), "steps"] for run_id in (*ana, mine)}
    # Ana has nothing running, so her first run goes first; then the tester's (their start is older than Ana's
    # turn), then Ana's second: turns, not the order of submission.
    assert steps == {ana[0]: "#1 in queue", mine: "#2 in queue", ana[1]: "#3 in queue"}
    assert table.loc[run_label(lab.store.get_run(ana[0])), "ETA"].startswith("starts in ")
    assert running.status == Status.RUNNING
    warned = open_page(page.RUNS_PAGE, {"_selected_ids": [ana[0]]}).warning
    assert any("no background worker" in str(w.value) for w in warned)  # no worker's lease in the store
    lab.store.renew_worker("gpu-a", 1, slots=2)  # a worker on another machine, with a slot free
    at = open_page(page.RUNS_PAGE, {"_selected_ids": [ana[0]]})
    assert not any("no background worker" in str(w.value) for w in at.warning)
    table = at.dataframe[0].value.set_index("run")
    assert table.loc[run_label(lab.store.get_run(ana[0])), "ETA"] == "next"  # its slots count


def test_a_cached_run_is_marked_and_run_again_trains_a_new_seed(open_page: OpenPage, lab: Lab) -> None:
    repeat = service.submit(lab, RunConfig(model="tiny", dataset="sms_spam", seed=7))
    lab.store.claim_run(repeat.id, pid=1)
    lab.store.set_status(repeat.id, Status.FINISHED)
    cached = service.submit(lab, RunConfig(model="tiny", dataset="sms_spam", seed=7), name="cached")
    at = open_page(page.RUNS_PAGE, {"_selected_ids": [cached.id]})
    table = at.dataframe[0].value.set_index("run")
    assert table.loc[run_label(cached), "steps"] == f"cached from #{repeat.id}"
    [again_button] = [b for b in at.button if b.label == "Run again"]
    again_button.click().run()
    again = lab.store.list_runs()[0]
    assert (again.status, again.config["seed"], again.cached_from) == (Status.QUEUED, 8, None)


def test_tabs_watching_runs_share_one_small_budget(
    open_page: OpenPage, lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Server and browsers together spend at most WATCH_SHARE of the machine on refreshing: a dearer refresh, more
    tabs, or a browser on this machine (it draws too) each make the interval longer; a cheap one stays at 2 s. (The
    arithmetic by hand, and idle CPUs widening the budget: tests/test_live.py.)"""
    monkeypatch.setattr(live, "spare_cpus", lambda: 0.0)  # a machine with no idle CPU: the share alone
    budget = live.WATCH_SHARE * os.cpu_count()
    here, elsewhere = live.SERVER_FACTOR + live.BROWSER_FACTOR, live.SERVER_FACTOR  # where the browser draws
    assert live.refresh_interval(0.3, active=True) == pytest.approx(max(2.0, 0.3 * here / budget))
    assert live.refresh_interval(0.3, active=True, watchers=3) == pytest.approx(max(2.0, 3 * 0.3 * here / budget))
    assert live.refresh_interval(0.3, active=True, local=False) == pytest.approx(max(2.0, 0.3 * elsewhere / budget))
    assert live.refresh_interval(1e-4, active=True, watchers=3) == 2.0  # the floor: live enough to feel live
    assert live.refresh_interval(0.3, active=False) == 10.0  # nothing running: new runs still show up
    make_run(lab, Status.RUNNING)
    live._watching.clear()  # tabs of earlier tests in this process
    # The live part's own refreshes measured 0.05 CPU-s (AppTest runs whole pages only, which leave it as it is:
    # tests/test_live.py); the page refreshes at the pace that cost allows.
    cost = 0.05
    first = open_page(page.RUNS_PAGE, {"_refresh_cost_s": cost})
    assert len(live._watching) == 1 and first.session_state["_refresh_cost_s"] == cost
    assert live._watching["test session id"][1] == live.refresh_interval(cost, active=True)
    assert within_twice(shown_interval(first), live.refresh_interval(cost, active=True))
    # 50 other tabs watched a second ago (AppTest has one session id, so they are entered as the page enters a tab);
    # one that last refreshed a minute ago has been closed and no longer counts.
    now = time.monotonic()
    live._watching.update({f"tab {i}": (now - 1, 2.0) for i in range(50)} | {"a closed tab": (now - 60, 2.0)})
    second = open_page(page.RUNS_PAGE, {"_refresh_cost_s": cost})
    assert "a closed tab" not in live._watching and len(live._watching) == 51
    interval = live._watching["test session id"][1]
    assert interval > 2.0 and interval == pytest.approx(live.refresh_interval(cost, active=True, watchers=51))
    assert within_twice(shown_interval(second), interval)  # it redraws itself when it moves further


def within_twice(shown_s: float, interval_s: float) -> bool:
    """The page's own rule (`live.interval_moved`): the interval its caption shows, measured at the refresh before,
    is redrawn once the interval moves more than twofold; the caption rounds to the second."""
    return (shown_s - 0.5) / 2 <= interval_s <= 2 * (shown_s + 0.5)


def shown_interval(at: AppTest) -> float:
    """The refresh interval the Runs page says it keeps."""
    return float(re.search(r"refreshed every (\d+) s", texts(at.caption)).group(1))


def test_hostile_run_names_are_shown_as_typed(open_page: OpenPage, lab: Lab) -> None:
    """User text goes through markdown escaped: the note reads exactly the name and error, and adds no bold, link,
    HTML, code or colour of its own."""
    run = make_run(lab, Status.FAILED, name=HOSTILE, error=f"because {HOSTILE}")
    at = open_page(page.RUNS_PAGE, {"_confirm_delete": run.id})
    [note] = at.error
    body = note.proto.body
    assert unescape(body) == f"**#{run.id} {HOSTILE} failed.** because {HOSTILE}"
    live = ESCAPED.sub("", body)  # the markdown left once escaped characters are taken out
    assert live.count("**") == 2 and not set(live) & set("[]()<>`:$")  # only the headline's own bold
    [warning] = at.warning  # the delete confirmation names the run the same way
    assert unescape(warning.proto.body).startswith(f"Delete **#{run.id} {HOSTILE}** with its curves")
    live = ESCAPED.sub("", warning.proto.body)
    assert live.count("**") == 2 and not set(live) & set("[]()<>`:$")
    [log] = at.expander  # so does the label of its event log
    assert unescape(log.label).startswith(f"What happened to #{run.id} {HOSTILE} (")
    assert list(at.dataframe[0].value["run"]) == [f"#{run.id} {HOSTILE}"]  # a table cell is plain text


def test_downloads_and_clone_into_the_launch_page(open_page: OpenPage, lab: Lab) -> None:
    run = make_run(
        lab,
        Status.FINISHED,
        lr=2.5e-5,
        schedule="step",
        step_size=50,
        gamma=0.3,
        optimizer="momentum",
        nesterov=True,
        model="tiny",
        dataset="trec",
        max_length=64,
        name="original",
    )
    at = open_page(page.RUNS_PAGE)
    files = {b.label: b for b in at.download_button}
    assert set(files) == {"Curves CSV", "Config JSON", "Model (zip, with its model card)"}
    assert files["Model (zip, with its model card)"].proto.disabled  # made in the store only: it saved no model
    assert not files["Curves CSV"].proto.disabled
    click(at, "Clone")
    assert not at.exception
    assert at.title[0].value.endswith("Launch a fine-tuning run")
    assert at.select_slider(key="lr").value == 2.5e-5  # between the usual stops: kept exactly
    assert (at.selectbox(key="schedule").value, at.number_input(key="step_size").value) == ("step", 50)
    assert (at.radio(key="model_choice").value, at.selectbox(key="bundled").value) == ("tiny", "trec")
    at.switch_page(page.LAUNCH_PAGE)  # a browser's URL follows st.switch_page; AppTest's page must be told
    at.button(key="launch").click().run()
    clone = lab.store.list_runs()[0]
    assert clone.id != run.id and clone.config == run.config


def test_a_cli_run_cloned_and_launched_again_has_the_same_config(open_page: OpenPage, lab: Lab) -> None:
    """Nothing the launch page adds on its own (dropout included) tells a clone apart from its original."""
    cli = [
        sys.executable,
        "-m",
        "bert_lab",
        "submit",
        "--home",
        str(lab.data.path),
        "--model",
        "tiny",
        "--dataset",
        "sms_spam",
        "--lr",
        "3e-4",
        "--train-size",
        "300",
        "--batch-size",
        "16",
        "--name",
        "from-cli",
    ]
    done = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    original = lab.store.get_run(int(done.stdout.split()[-1]))
    assert original.config["dropout"] is None
    at = open_page(page.RUNS_PAGE)
    click(at, "Clone")
    at.switch_page(page.LAUNCH_PAGE)
    at.button(key="launch").click().run()
    assert not at.exception
    clone = lab.store.list_runs()[0]
    assert clone.id != original.id and clone.config == original.config


def test_runs_page_overlays_ten_long_runs(open_page: OpenPage, lab: Lab) -> None:
    """Ten runs of 2000 steps render (and re-render incrementally) without error; the speed of this is measured by
    bench/dashboard.py, not asserted here."""
    for i in range(10):
        make_run(lab, Status.FINISHED, steps=2000, lr=1e-4 * (i + 1))
    at = open_page(page.RUNS_PAGE, {"_selected_ids": [r.id for r in lab.store.list_runs()]})
    assert len(figures(at)) == 7  # six curves and the results
    at.run()
    assert not at.exception
    train_loss = next(f for f in figures(at) if "Training loss" in json.dumps(f.get("layout", {}).get("title", "")))
    assert all(len(t["x"]) <= 500 for t in train_loss["data"])


def test_weight_norm_charts_appear_when_a_compared_run_decays_weights(open_page: OpenPage, lab: Lab) -> None:
    plain, decayed = make_run(lab, name="plain"), make_run(lab, name="decayed", weight_decay=10.0)
    at = open_page(page.RUNS_PAGE, {"_selected_ids": [plain.id]})
    assert "Weight norm" not in titles(at)
    at = open_page(page.RUNS_PAGE, {"_selected_ids": [plain.id, decayed.id]})
    assert {"Weight norm", "Near-zero weights"} <= set(titles(at))
    assert "Share of those weights with |w| < 0.001" in unescape(texts(at.caption))


def test_curves_carry_notes_on_what_they_show(open_page: OpenPage, lab: Lab) -> None:
    healthy = make_run(lab, name="healthy")
    stuck = make_run(lab, name="stuck")
    lab.store.update_run(
        stuck.id, summary=RunSummary(confusion=[[58, 0], [42, 0]], labels=["fresh", "rotten"], eval_step=40)
    )
    at = open_page(page.RUNS_PAGE)
    said = unescape(texts(at.markdown))
    assert "What the curves show" in said
    assert f"#{stuck.id} at step 40: collapse: every evaluation example was predicted 'fresh'" in said
    assert f"#{healthy.id} at step" not in said
    [f1] = [fig for fig in figures(at) if fig["layout"].get("title", {}).get("text") == "F1 (macro)"]
    notes = [t for t in f1["data"] if t.get("name") == f"#{stuck.id} note"]
    assert len(notes) == 1 and array(notes[0]["x"]).tolist() == [40] and "collapse" in notes[0]["hovertext"][0]


def test_filters_narrow_the_table_and_live_in_the_address(open_page: OpenPage, lab: Lab) -> None:
    keep = make_run(lab, Status.FINISHED, name="kept", dataset="trec")
    lab.store.update_run(keep.id, tags=["keep", "<b>x</b>"])
    make_run(lab, Status.FAILED, error="boom", name="failed one")
    make_run(lab, Status.QUEUED, name="waiting", dataset="trec")
    at = open_page(page.RUNS_PAGE)
    assert len(at.dataframe[0].value) == 3
    at.multiselect(key="filter_dataset").set_value(["trec"]).run()
    assert sorted(at.dataframe[0].value["run"]) == [f"#{keep.id} kept", f"#{keep.id + 2} waiting"]
    at.multiselect(key="filter_tag").set_value(["keep"]).run()
    table = at.dataframe[0].value
    assert list(table["run"]) == [f"#{keep.id} kept"] and list(table["tags"][0]) == ["keep", "<b>x</b>"]
    assert (at.query_params["dataset"], at.query_params["tag"]) == ("trec", "keep")  # AppTest: one value, a str
    fresh = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()  # the address, opened elsewhere
    fresh.switch_page(page.RUNS_PAGE).query_params.update({"status": "failed"})
    fresh.run()
    assert list(fresh.dataframe[0].value["run"]) == [f"#{keep.id + 1} failed one"]
    assert fresh.multiselect(key="filter_status").value == ["failed"]
    at.multiselect(key="filter_status").set_value(["failed"]).run()  # with the data set and tag chosen: none
    assert "No run matches these filters" in texts(at.info) and not at.dataframe


def test_a_run_is_renamed_tagged_and_noted_from_its_edit_box(open_page: OpenPage, lab: Lab) -> None:
    run = make_run(lab, Status.RUNNING, name="first")

    def save(at: AppTest, name: str, tags: list[str], note: str) -> AppTest:
        next(t for t in at.text_input if t.label == "Name").set_value(name)
        next(m for m in at.multiselect if m.label == "Tags").set_value(tags)
        next(t for t in at.text_area if t.label == "Note").set_value(note)
        return click(at, "Save")

    at = save(open_page(page.RUNS_PAGE), HOSTILE, ["baseline", "lr"], "warmup <b>helped</b>")
    assert not at.exception and not at.error
    saved = lab.store.get_run(run.id)
    assert (saved.name, saved.tags, saved.note) == (HOSTILE, ("baseline", "lr"), "warmup <b>helped</b>")
    assert "Tags: baseline, lr — warmup \\<b\\>helped\\</b\\>" in texts(at.caption)  # shown as typed
    at = save(at, "   ", ["baseline"], "")
    assert "a run needs a name" in texts(at.error)
    assert lab.store.get_run(run.id) == saved  # nothing written


def test_the_actions_sit_in_a_row_that_wraps_instead_of_cutting_their_words(open_page: OpenPage, lab: Lab) -> None:
    """Seven equal columns cut the buttons' words at 1280 px ("Ca…", "Re…", "Clo…"): the actions sit in one row that
    wraps when full, each as wide as its words (a real browser at 1280×720 shows them whole)."""
    run = make_run(lab, Status.FINISHED)
    at = open_page(page.RUNS_PAGE, {"_selected_ids": [run.id]})
    row = parent_of(at.main, next(b for b in at.button if b.label == "Cancel"))
    assert row is not None and row.proto.flex_container.direction == row.proto.flex_container.HORIZONTAL
    assert row.proto.flex_container.wrap
    shown = [child.label if child.type == "button" else child.proto.popover.label for child in row.children.values()]
    assert shown == ["Cancel", "Resume", "Run again", "Clone", "Delete…", "Edit", "Files"]
    popovers = [child for child in row.children.values() if child.type == "popover"]
    assert all(p.proto.width_config.use_content for p in popovers)


def parent_of(block: Any, element: Any) -> Any:
    """The block of an AppTest tree that holds `element` directly (None if none does)."""
    for child in getattr(block, "children", {}).values():
        if child is element:
            return block
        if (found := parent_of(child, element)) is not None:
            return found
    return None


def test_a_paused_queue_is_said_instead_of_a_start_time(open_page: OpenPage, lab: Lab) -> None:
    """While the host has paused the queue, a queued run has no time to start: its ETA, its note and the sidebar say
    it waits for the host."""
    make_run(lab, Status.RUNNING, model="tiny")
    queued = lab.store.create_run(RunConfig(model="tiny").to_dict(), owner="ana")
    lab.store.renew_worker("gpu-a", 1, slots=1)
    state = {"_selected_ids": [queued.id]}
    table = open_page(page.RUNS_PAGE, state).dataframe[0].value.set_index("run")
    assert table.loc[run_label(queued), "ETA"].startswith("starts in ")
    Settings().update(lab.data, paused=True)
    at = open_page(page.RUNS_PAGE, state)
    table = at.dataframe[0].value.set_index("run")
    assert (table.loc[run_label(queued), "steps"], table.loc[run_label(queued), "ETA"]) == ("#1 in queue", QUEUE_PAUSED)
    assert f"{run_label(queued)} is waiting:** {QUEUE_PAUSED_DETAIL}" in unescape(texts(at.info))
    assert "**Queue paused by the host.**" in texts(at.sidebar.caption)
    launch = open_page(page.LAUNCH_PAGE)  # every page's sidebar says so
    assert "**Queue paused by the host.**" in texts(launch.sidebar.caption)


def test_the_sidebar_run_counts_refresh_themselves(
    open_page: OpenPage, lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sidebar's counts ("25 queued") are a fragment that reads the store again at the live pace of the shared
    budget while runs are active, and every 10 s otherwise: they follow the queue on pages that draw them once."""
    made: list[tuple[str, float | None]] = []
    fragment = st.fragment

    def recording(func: Any = None, *, run_every: float | None = None, **options: Any) -> Any:
        if func is None:  # st.fragment(run_every=…)(body)
            return lambda body: recording(body, run_every=run_every, **options)
        made.append((func.__name__, run_every))
        return fragment(func, run_every=run_every, **options)

    monkeypatch.setattr(st, "fragment", recording)
    monkeypatch.setattr(live, "spare_cpus", lambda: 0.0)
    lab.store.create_run(RunConfig(model="tiny").to_dict(), owner="ana")
    for shown in (page.LAUNCH_PAGE, page.GROUPS_PAGE):
        made.clear()
        at = open_page(shown)
        assert "Runs: 1 queued" in texts(at.sidebar.caption)
        every = [s for name, s in made if name == "refresh_run_counts"][-1]  # (another page: the launch page first)
        assert every is not None and every <= 3.0  # a queued run: the live pace (cheap counts: the 2 s floor)
    lab.store.set_status(lab.store.list_runs()[0].id, Status.CANCELLED)
    made.clear()
    at = open_page(page.GROUPS_PAGE)
    assert "Runs: 1 cancelled" in texts(at.sidebar.caption)
    assert [s for name, s in made if name == "refresh_run_counts"][-1] == live.IDLE_REFRESH_S


def test_the_sidebar_shows_the_data_folder_short_and_whole_in_its_tooltip(open_page: OpenPage, lab: Lab) -> None:
    at = open_page(page.RUNS_PAGE)
    [folder] = [c for c in at.sidebar.caption if str(c.value).startswith("Data folder:")]
    path = str(lab.data.path)
    assert folder.value == f"Data folder: `{page.short_path(path)}`" and path in folder.proto.help
    assert page.short_path("/tmp/pytest-of-root/pytest-7/test_x0/lab_data") == "…/test_x0/lab_data"
    assert page.short_path("/srv/lab") == "/srv/lab"
    assert page.short_path(os.path.expanduser("~/lab_data")) == "~/lab_data"
