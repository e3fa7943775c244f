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

from bert_lab.core.config import RunConfig
from bert_lab.core.layout import DataFolder
from bert_lab.runs import names, workshop
from bert_lab.runs.describe import QUEUE_PAUSED, run_label
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.workshop import Actor, Settings
from lab_ui import page

OpenPage = Callable[..., AppTest]
pytestmark = pytest.mark.usefixtures("each_store")  # every test here runs on SQLite, then on PostgreSQL
ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "<b>Eve</b> **bold** [x](http://e.vil)"
TINY = RunConfig(model="tiny", dataset="sms_spam").to_dict()
HOST = ""  # the host signs in without a name: "host"


@pytest.fixture(autouse=True)
def passcodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(workshop.PASSCODE_ENV, "tulip-42")
    monkeypatch.setenv(workshop.HOST_PASSCODE_ENV, "host-only-7")


def signed(name: str) -> dict[str, str]:
    """The session of a browser signed in as `name` (`HOST`: the host), as the sign-in form leaves it: its token,
    which the page checks on every run (the name claimed once; the same name again is the same browser's)."""
    data = DataFolder.default()
    who = (
        Actor(held.name, held.host)
        if (held := names.holder(data, name or "host"))
        else workshop.sign_in("host-only-7" if name == HOST else "tulip-42", name, data)
    )
    return {page.TOKEN_KEY: workshop.token(data, who)}


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


def test_the_launch_page_keeps_participants_off_the_servers_files(open_page: OpenPage, lab: Lab) -> None:
    at = open_page("app.py", {**signed("Ana"), "source": "CSV file on the server", "model_choice": "folder"})
    assert at.radio(key="source").options == ["Bundled dataset", "Upload a CSV"]
    assert len(at.radio(key="model_choice").options) == 2  # bundled MiniLM and the tiny BERT: no folder box
    assert not any("local model folder" in option for option in at.radio(key="model_choice").options)
    assert at.radio(key="source").value == "Bundled dataset" and at.radio(key="model_choice").value == "minilm"


def test_a_participant_sees_their_own_runs_and_changes_only_those(open_page: OpenPage, lab: Lab) -> None:
    ana = lab.store.create_run(TINY, owner="Ana", name="ana's")
    eve = lab.store.create_run(TINY, owner=HOSTILE, name=HOSTILE)
    at = open_page(page.RUNS_PAGE, {**signed("Ana")})
    assert list(at.dataframe[0].value["run"]) == [run_label(ana)]
    at.toggle(key="everyone").set_value(True).run()
    assert list(at.dataframe[0].value["run"]) == [run_label(eve), run_label(ana)]  # as typed: a cell is plain text
    at.session_state["_selected_ids"] = [eve.id]
    at.run()
    [cancel] = [b for b in at.button if b.label == "Cancel"]
    said = everything_said(at)  # the name escaped: markdown shows it as typed
    assert cancel.disabled and f"This run {page.md(f'belongs to {HOSTILE}: only {HOSTILE} or the host')}" in said
    host = open_page(page.RUNS_PAGE, {**signed(HOST), "_selected_ids": [eve.id]})
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
    refused = open_page(page.HOST_PAGE, {**signed("Ana")})
    assert "Only the workshop's host" in everything_said(refused) and not refused.dataframe
    at = open_page(page.HOST_PAGE, {**signed(HOST)})
    said = everything_said(at)
    assert (
        next(str(h.value) for h in at.subheader if str(h.value).startswith("Queue"))
        == "Queue: 0 of 1 slot(s) in use, 1 waiting"
    )
    queue, people, board = (frame.value for frame in at.dataframe)
    assert list(queue["participant"]) == ["Ben"]
    assert list(people["participant"]) == ["Ana", HOSTILE, "Ben"] and list(people["finished"]) == [2, 1, 0]
    assert list(board["participant"]) == ["Ana", HOSTILE] and list(board["accuracy"]) == [0.81, 0.77]
    assert "tiny · adamw lr 1e-04" in board["settings"][0]
    assert f"**{page.md('sms_spam')}**" in said  # the dataset heads its board
    at.toggle(key="paused").set_value(True).run()
    at.number_input(key="queue_cap").set_value(5).run()
    assert Settings.read(lab.data) == Settings(queue_cap=5, paused=True)
    assert json.loads(lab.data.workshop.read_text()) == {
        "queue_cap": 5,
        "paused": True,
        "class_group": None,
        "revealed": False,
    }


def test_the_host_view_names_a_run_without_an_owner_and_gives_it_no_link(open_page: OpenPage, lab: Lab) -> None:
    """A run launched from the command line has no owner: the host view names it "nobody", not a blank cell, and
    gives it no "their runs" link (the Runs page filters by a name: an empty one would open everyone's runs)."""
    for owner in ("", "Ana"):
        run = lab.store.create_run(TINY, owner=owner)
        lab.store.claim_run(run.id, pid=1)
        lab.store.add_metrics(run.id, [(10, 1.0, 5.0, "accuracy", 0.8), (10, 1.0, 5.0, "f1", 0.75)])
        lab.store.set_status(run.id, Status.FINISHED)
    lab.store.create_run(TINY, owner="")
    at = open_page(page.HOST_PAGE, {**signed(HOST)})
    queue, people, board = (frame.value for frame in at.dataframe)
    assert list(queue["participant"]) == ["nobody"]
    assert list(people["participant"]) == ["nobody", "Ana"] and list(people["runs"]) == [2, 1]
    token = signed(HOST)[page.TOKEN_KEY]  # the link opens a new tab signed in as the host
    assert list(people["their runs"]) == ["", f"/Runs?owner=Ana&{workshop.TOKEN_PARAM}={token}"]
    assert sorted(board["participant"]) == ["Ana", "nobody"]


def test_the_host_view_and_sidebar_show_the_workers_of_every_machine(
    open_page: OpenPage, lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers on two machines, known by their leases in the store: the queue counts both machines' slots, and a
    worker whose lease expired (a lost machine) counts no more."""
    lab.store.create_run(TINY, owner="Ben")
    host = {**signed(HOST)}
    at = open_page(page.HOST_PAGE, host)
    assert "No background worker is serving this lab" in everything_said(at)
    lab.store.renew_worker("gpu-a", 11, slots=2)
    lab.store.renew_worker("gpu-b", 12, slots=4)
    at = open_page(page.HOST_PAGE, host)
    assert (
        next(str(h.value) for h in at.subheader if str(h.value).startswith("Queue"))
        == "Queue: 0 of 6 slot(s) in use, 1 waiting"
    )
    workers = at.dataframe[1].value
    assert list(workers["worker"]) == ["gpu-a (pid 11)", "gpu-b (pid 12)"] and list(workers["slots"]) == [2, 4]
    said = everything_said(at)
    assert page.md("2 background workers: gpu-a (2 slots), gpu-b (4 slots)") in said
    now = time.time()
    with monkeypatch.context() as clock:  # gpu-b's machine was lost a minute ago: its last renewal is that old
        clock.setattr(time, "time", lambda: now - 60)
        lab.store.renew_worker("gpu-b", 12, slots=4)
    at = open_page(page.HOST_PAGE, host)
    assert (
        next(str(h.value) for h in at.subheader if str(h.value).startswith("Queue"))
        == "Queue: 0 of 2 slot(s) in use, 1 waiting"
    )
    assert page.md("Background worker on gpu-a (2 slots)") in everything_said(at)


def test_the_host_views_link_opens_one_participants_runs(open_page: OpenPage, lab: Lab) -> None:
    ana, _ = (lab.store.create_run(TINY, owner=owner) for owner in ("Ana", "Ben"))
    at = open_page(page.RUNS_PAGE, {**signed(HOST), "everyone": True})
    assert len(at.dataframe[0].value) == 2
    at.query_params["owner"] = "Ana"
    at.run()
    assert not at.exception and list(at.dataframe[0].value["run"]) == [run_label(ana)]


def test_the_playground_keeps_a_participants_upload_to_themselves(
    open_page: OpenPage, lab: Lab, tmp_path: Path
) -> None:
    from bert_lab.engine.model import load_model, load_tokenizer, save_model

    saved = save_model(load_model(RunConfig(model="tiny"), ["ham", "spam"]), load_tokenizer("tiny"), tmp_path / "m")

    def finished_with_model(owner: str, dataset: str) -> int:
        run = lab.store.create_run({**TINY, "dataset": dataset}, owner=owner)
        shutil.copytree(saved, lab.data.run(run.id).create().model)
        return run.id

    anas_upload = finished_with_model("Ana", str(lab.data.uploads / "secret-0123.csv"))
    anas_bundled, bens = finished_with_model("Ana", "sms_spam"), finished_with_model("Ben", "sms_spam")
    at = open_page(page.PLAYGROUND_PAGE, {**signed("Ben")})
    shown = set(at.selectbox(key="run_a").options)
    assert any(f"#{bens} " in o for o in shown) and any(f"#{anas_bundled} " in o for o in shown)
    assert not any(f"#{anas_upload} " in o for o in shown)
    host = open_page(page.PLAYGROUND_PAGE, {**signed(HOST)})
    assert any(f"#{anas_upload} " in o for o in host.selectbox(key="run_a").options)


def sign_in_form(name: str, passcode: str = "tulip-42") -> AppTest:
    """A new browser at the sign-in form, after entering `passcode` and `name`."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.text_input(key="_passcode").input(passcode)
    at.text_input(key="_name").input(name)
    return at.button[0].click().run()


def reopened(token: str, script: str = "app.py") -> AppTest:
    """A reload or a new tab (on `script`): a new session with only the address's token."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if script != "app.py":  # AppTest starts at the entry page: go to `script` before anything runs signed in
        at.run()
        at.switch_page(script)
    at.query_params[workshop.TOKEN_PARAM] = token
    return at.run()


def test_a_name_belongs_to_the_browser_that_claimed_it(lab: Lab) -> None:
    ana = sign_in_form("ana")
    token = ana.session_state[page.TOKEN_KEY]
    assert ana.session_state[page.ACTOR_KEY] == Actor("ana") and ana.query_params[workshop.TOKEN_PARAM] == token
    again = reopened(token)  # a reload keeps the browser signed in
    assert not again.exception and again.session_state[page.ACTOR_KEY] == Actor("ana")
    assert "Launched as **ana**" in everything_said(again)
    for other in ("ana", "Ana ", "ana\u200b", "\u0430na"):  # the same name, a zero-width space, a Cyrillic а
        ben = sign_in_form(other)
        assert page.ACTOR_KEY not in ben.session_state and "Launch a fine-tuning run" not in everything_said(ben)
        assert "the name 'ana' is taken" in "\n".join(str(e.value) for e in ben.error)
    assert not reopened("forged." + token).session_state.get(page.ACTOR_KEY)


def test_the_host_releases_a_name_and_its_old_token_signs_nobody_in(open_page: OpenPage, lab: Lab) -> None:
    token = sign_in_form("ana").session_state[page.TOKEN_KEY]
    host = open_page(page.HOST_PAGE, signed(HOST))
    host.selectbox(key="release_name").set_value("ana").run()
    host.button(key="release").click().run()
    assert names.holder(lab.data, "ana") is None
    gone = reopened(token)
    assert page.ACTOR_KEY not in gone.session_state and "BERT Lab workshop" in everything_said(gone)
    assert sign_in_form("ana").session_state[page.ACTOR_KEY] == Actor("ana")  # the name can be claimed again


def test_sign_out_ends_the_session_and_keeps_the_name(lab: Lab) -> None:
    ana = sign_in_form("ana")
    ana.button(key="sign_out").click().run()
    assert page.ACTOR_KEY not in ana.session_state and workshop.TOKEN_PARAM not in ana.query_params
    assert "BERT Lab workshop" in everything_said(ana)
    assert "is taken" in "\n".join(str(e.value) for e in sign_in_form("ana").error)


def test_wrong_passcodes_slow_the_sign_in_down(lab: Lab) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.text_input(key="_name").input("eve")
    errors = []
    for _ in range(workshop.FREE_TRIES + 1):
        at.text_input(key="_passcode").input("guess")
        at.button[0].click().run()
        errors.append(str(at.error[0].value))
    assert all("not this workshop's" in e for e in errors[:-1]) and "try again in 5 s" in errors[-1]
    at.text_input(key="_passcode").input("tulip-42")
    at.button[0].click().run()  # even the right passcode waits
    assert page.ACTOR_KEY not in at.session_state and "try again in" in str(at.error[0].value)


def test_the_host_views_link_signs_the_new_tab_in_as_the_host(open_page: OpenPage, lab: Lab) -> None:
    lab.store.create_run(TINY, owner="Ana")
    host = open_page(page.HOST_PAGE, signed(HOST))
    link = host.dataframe[1].value["their runs"][0]
    query = dict(pair.split("=") for pair in link.split("?")[1].split("&"))
    tab = reopened(query[workshop.TOKEN_PARAM], "pages/1_Runs.py")
    assert not tab.exception and tab.session_state[page.ACTOR_KEY] == Actor("host", host=True)


@pytest.mark.parametrize("kind", ["another lab's run folder", "/etc", "a path that does not exist"])
def test_the_sweep_builder_refuses_a_server_path_as_a_model(
    open_page: OpenPage, lab: Lab, tmp_path: Path, kind: str
) -> None:
    """The browser walk's attack: a sweep over the knob `model` with a folder of the server. Refused before anything
    is queued, with the same words whatever the path, and no path in any run's name."""
    other = tmp_path / "other_lab" / "runs" / "7" / "model"
    other.mkdir(parents=True)
    (other / "config.json").write_text("{}")
    path = {"/etc": "/etc", "a path that does not exist": "/no/such/model"}.get(kind, str(other))
    at = open_page("app.py", {**signed("Ana"), "model_choice": "tiny"})
    at.toggle(key="sweep_mode").set_value(True).run()
    at.multiselect(key="sweep_knobs").set_value(["model"]).run()
    at.text_input(key="sweep_values_model").input(f"tiny, {path}").run()
    said = "\n".join(str(e.value) for e in at.error)
    assert "This sweep can't be queued" in said and "a workshop offers minilm and tiny only" in said
    assert path not in said and not [b for b in at.button if b.key == "sweep_ask"]
    assert lab.store.list_runs() == [] and lab.store.list_groups() == []


def test_a_link_cannot_bring_a_server_path_into_the_launch_page(lab: Lab) -> None:
    token = signed("Ana")[page.TOKEN_KEY]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update({workshop.TOKEN_PARAM: token, "model": "/etc", "dataset": "/etc/passwd.csv"})
    at.run()
    assert not at.exception and at.radio(key="model_choice").value == "minilm"
    assert at.radio(key="source").value == "Bundled dataset"
    assert at.query_params[workshop.TOKEN_PARAM] == token  # the settings in the address keep the sign-in


def test_a_launch_past_the_queue_cap_says_so_plainly_and_clears_the_last_launch(open_page: OpenPage, lab: Lab) -> None:
    Settings().update(lab.data, queue_cap=1)
    at = open_page("app.py", {**signed("Ana"), "model_choice": "tiny", "bundled": "sms_spam"})
    at.button(key="launch").click().run()
    assert "Queued run" in at.success[0].value
    at.button(key="launch").click().run()
    said = " ".join(e.value for e in at.error).replace("\\", "")
    assert "Nothing was queued: Ana already has 1 run queued and the workshop allows 1 at a time" in said
    assert "this run would be the 2nd. Wait for one to start, or ask the host" in said and "these 1" not in said
    assert not at.success and len(lab.store.list_runs()) == 1  # no box saying a run was queued


def test_a_paused_queue_has_no_next_run_on_the_host_view_and_participants_are_told(
    open_page: OpenPage, lab: Lab
) -> None:
    lab.store.create_run(TINY, owner="Ben")
    at = open_page(page.HOST_PAGE, {**signed(HOST)})
    [queue] = [frame.value for frame in at.dataframe if "when" in frame.value.columns]
    assert list(queue["when"]) == ["next"]
    at.toggle(key="paused").set_value(True).run()
    [queue] = [frame.value for frame in at.dataframe if "when" in frame.value.columns]
    assert list(queue["when"]) == [QUEUE_PAUSED]  # not "next": nothing starts until the host resumes
    ben = open_page(page.RUNS_PAGE, {**signed("Ben")})
    assert list(ben.dataframe[0].value["ETA"]) == [QUEUE_PAUSED]
    assert "**Queue paused by the host.**" in "\n".join(str(c.value) for c in ben.sidebar.caption)
