"""Workshop mode in the app: nothing without the passcode, a participant's own runs first and only theirs to change,
the server's files out of reach, hostile names shown as text, and the host view."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bert_lab.config import RunConfig
from bert_lab.runs import workshop
from bert_lab.runs.describe import run_label
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.workshop import Actor, Settings
from lab_ui import page

OpenPage = Callable[..., AppTest]
pytestmark = pytest.mark.usefixtures("each_store")  # every test here runs on SQLite, then on PostgreSQL
ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "<b>Eve</b> **bold** [x](http://e.vil)"
TINY = RunConfig(model="tiny", dataset="sms_spam").to_dict()


@pytest.fixture(autouse=True)
def passcodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(workshop.PASSCODE_ENV, "tulip-42")
    monkeypatch.setenv(workshop.HOST_PASSCODE_ENV, "host-only-7")


def everything_said(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "title", "info", "warning") for e in at.get(kind))


def test_no_page_content_without_the_passcode(lab: Lab) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception and "BERT Lab workshop" in everything_said(at)
    assert "Launch a fine-tuning run" not in everything_said(at) and [b for b in at.button if b.key == "launch"] == []
    at.text_input(key="_passcode").input("tulip-41")
    at.text_input(key="_name").input("Ana")
    at.button[0].click().run()
    assert "not this workshop's" in "\n".join(str(e.value) for e in at.error)
    at.text_input(key="_passcode").input("tulip-42")
    at.button[0].click().run()
    assert at.session_state[page.ACTOR_KEY] == Actor("Ana")
    assert "Launch a fine-tuning run" in everything_said(at) and "Launched as **Ana**" in everything_said(at)


def test_the_launch_page_keeps_participants_off_the_servers_files(open_page: OpenPage) -> None:
    at = open_page(
        "app.py", {page.ACTOR_KEY: Actor("Ana"), "source": "CSV file on the server", "model_choice": "folder"}
    )
    assert at.radio(key="source").options == ["Bundled dataset", "Upload a CSV"]
    assert len(at.radio(key="model_choice").options) == 2  # bundled MiniLM and the tiny BERT: no folder box
    assert not any("local model folder" in option for option in at.radio(key="model_choice").options)
    assert at.radio(key="source").value == "Bundled dataset" and at.radio(key="model_choice").value == "minilm"


def test_a_participant_sees_their_own_runs_and_changes_only_those(open_page: OpenPage, lab: Lab) -> None:
    ana = lab.store.create_run(TINY, owner="Ana", name="ana's")
    eve = lab.store.create_run(TINY, owner=HOSTILE, name=HOSTILE)
    at = open_page(page.RUNS_PAGE, {page.ACTOR_KEY: Actor("Ana")})
    assert list(at.dataframe[0].value["run"]) == [run_label(ana)]
    at.toggle(key="everyone").set_value(True).run()
    assert list(at.dataframe[0].value["run"]) == [run_label(eve), run_label(ana)]  # as typed: a cell is plain text
    at.session_state["_selected_ids"] = [eve.id]
    at.run()
    [cancel] = [b for b in at.button if b.label == "Cancel"]
    said = everything_said(at)  # the name escaped: markdown shows it as typed
    assert cancel.disabled and f"This run {page.md(f'belongs to {HOSTILE}: only {HOSTILE} or the host')}" in said
    host = open_page(page.RUNS_PAGE, {page.ACTOR_KEY: Actor("host", host=True), "_selected_ids": [eve.id]})
    host.toggle(key="everyone").set_value(True).run()
    [cancel] = [b for b in host.button if b.label == "Cancel"]
    assert not cancel.disabled
    cancel.click().run()
    assert lab.store.get_run(eve.id).status == Status.CANCELLED


def test_the_host_view_shows_the_queue_participants_and_leaderboard(open_page: OpenPage, lab: Lab) -> None:
    for owner, accuracy in (("Ana", 0.81), (HOSTILE, 0.77), ("Ana", 0.79)):
        run = lab.store.create_run(TINY, owner=owner)
        lab.store.claim_run(run.id, pid=1)
        lab.store.add_metrics(run.id, [(10, 1.0, 5.0, "accuracy", accuracy), (10, 1.0, 5.0, "f1", accuracy - 0.05)])
        lab.store.set_status(run.id, Status.FINISHED)
    lab.store.create_run(TINY, owner="Ben")
    refused = open_page(page.HOST_PAGE, {page.ACTOR_KEY: Actor("Ana")})
    assert "Only the workshop's host" in everything_said(refused) and not refused.dataframe
    at = open_page(page.HOST_PAGE, {page.ACTOR_KEY: Actor("host", host=True)})
    said = everything_said(at)
    assert [str(h.value) for h in at.subheader][0] == "Queue: 0 of 1 slot(s) in use, 1 waiting"
    queue, people, board = (frame.value for frame in at.dataframe)
    assert list(queue["participant"]) == ["Ben"]
    assert list(people["participant"]) == ["Ana", HOSTILE, "Ben"] and list(people["finished"]) == [2, 1, 0]
    assert list(board["participant"]) == ["Ana", HOSTILE] and list(board["accuracy"]) == [0.81, 0.77]
    assert "tiny · adamw lr 1e-04" in board["settings"][0]
    assert f"**{page.md('sms_spam')}**" in said  # the dataset heads its board
    at.toggle(key="paused").set_value(True).run()
    at.number_input(key="queue_cap").set_value(5).run()
    assert Settings.read(lab.data) == Settings(queue_cap=5, paused=True)
    assert json.loads(lab.data.workshop.read_text()) == {"queue_cap": 5, "paused": True}


def test_the_host_view_names_a_run_without_an_owner_and_gives_it_no_link(open_page: OpenPage, lab: Lab) -> None:
    """A run launched from the command line has no owner: the host view names it "nobody", not a blank cell, and
    gives it no "their runs" link (the Runs page filters by a name: an empty one would open everyone's runs)."""
    for owner in ("", "Ana"):
        run = lab.store.create_run(TINY, owner=owner)
        lab.store.claim_run(run.id, pid=1)
        lab.store.add_metrics(run.id, [(10, 1.0, 5.0, "accuracy", 0.8), (10, 1.0, 5.0, "f1", 0.75)])
        lab.store.set_status(run.id, Status.FINISHED)
    lab.store.create_run(TINY, owner="")
    at = open_page(page.HOST_PAGE, {page.ACTOR_KEY: Actor("host", host=True)})
    queue, people, board = (frame.value for frame in at.dataframe)
    assert list(queue["participant"]) == ["nobody"]
    assert list(people["participant"]) == ["nobody", "Ana"] and list(people["runs"]) == [2, 1]
    assert list(people["their runs"]) == ["", "/Runs?owner=Ana"]
    assert sorted(board["participant"]) == ["Ana", "nobody"]


def test_the_host_view_and_sidebar_show_the_workers_of_every_machine(
    open_page: OpenPage, lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers on two machines, known by their leases in the store: the queue counts both machines' slots, and a
    worker whose lease expired (a lost machine) counts no more."""
    lab.store.create_run(TINY, owner="Ben")
    host = {page.ACTOR_KEY: Actor("host", host=True)}
    at = open_page(page.HOST_PAGE, host)
    assert "No background worker is serving this lab" in everything_said(at)
    lab.store.renew_worker("gpu-a", 11, slots=2)
    lab.store.renew_worker("gpu-b", 12, slots=4)
    at = open_page(page.HOST_PAGE, host)
    assert [str(h.value) for h in at.subheader][0] == "Queue: 0 of 6 slot(s) in use, 1 waiting"
    workers = at.dataframe[1].value
    assert list(workers["worker"]) == ["gpu-a (pid 11)", "gpu-b (pid 12)"] and list(workers["slots"]) == [2, 4]
    said = everything_said(at)
    assert page.md("2 background workers: gpu-a (2 slots), gpu-b (4 slots)") in said
    now = time.time()
    with monkeypatch.context() as clock:  # gpu-b's machine was lost a minute ago: its last renewal is that old
        clock.setattr(time, "time", lambda: now - 60)
        lab.store.renew_worker("gpu-b", 12, slots=4)
    at = open_page(page.HOST_PAGE, host)
    assert [str(h.value) for h in at.subheader][0] == "Queue: 0 of 2 slot(s) in use, 1 waiting"
    assert page.md("Background worker on gpu-a (2 slots)") in everything_said(at)


def test_the_host_views_link_opens_one_participants_runs(open_page: OpenPage, lab: Lab) -> None:
    ana, _ = (lab.store.create_run(TINY, owner=owner) for owner in ("Ana", "Ben"))
    at = open_page(page.RUNS_PAGE, {page.ACTOR_KEY: Actor("host", host=True), "everyone": True})
    assert len(at.dataframe[0].value) == 2
    at.query_params["owner"] = "Ana"
    at.run()
    assert not at.exception and list(at.dataframe[0].value["run"]) == [run_label(ana)]


def test_the_playground_keeps_a_participants_upload_to_themselves(
    open_page: OpenPage, lab: Lab, tmp_path: Path
) -> None:
    from bert_lab.model import load_model, load_tokenizer, save_model

    saved = save_model(load_model(RunConfig(model="tiny"), ["ham", "spam"]), load_tokenizer("tiny"), tmp_path / "m")

    def finished_with_model(owner: str, dataset: str) -> int:
        run = lab.store.create_run({**TINY, "dataset": dataset}, owner=owner)
        shutil.copytree(saved, lab.data.run(run.id).create().model)
        return run.id

    anas_upload = finished_with_model("Ana", str(lab.data.uploads / "secret-0123.csv"))
    anas_bundled, bens = finished_with_model("Ana", "sms_spam"), finished_with_model("Ben", "sms_spam")
    at = open_page(page.PLAYGROUND_PAGE, {page.ACTOR_KEY: Actor("Ben")})
    shown = set(at.selectbox(key="run_a").options)
    assert any(f"#{bens} " in o for o in shown) and any(f"#{anas_bundled} " in o for o in shown)
    assert not any(f"#{anas_upload} " in o for o in shown)
    host = open_page(page.PLAYGROUND_PAGE, {page.ACTOR_KEY: Actor("host", host=True)})
    assert any(f"#{anas_upload} " in o for o in host.selectbox(key="run_a").options)
