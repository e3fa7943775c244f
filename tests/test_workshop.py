"""Workshop mode in the library: signing in, who may change which run, the cap on queued runs (also on the command
line), and the host pausing the queue."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bert_lab.config import RunConfig
from bert_lab.runs import service, workshop
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.workshop import Actor, NotAllowedError, QueueFullError, Settings, sign_in
from bert_lab.worker import Worker

TINY = RunConfig(model="tiny", dataset="sms_spam", train_size=32, eval_size=16, max_length=16)


@pytest.fixture
def passcodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(workshop.PASSCODE_ENV, "tulip-42")
    monkeypatch.setenv(workshop.HOST_PASSCODE_ENV, "host-only-7")


def test_sign_in_needs_the_passcode_and_a_name_and_knows_the_host(passcodes: None) -> None:
    assert workshop.enabled()
    assert sign_in(" tulip-42 ", "  Ana   B ") == Actor("Ana B")
    assert sign_in("host-only-7", "") == Actor("host", host=True)
    with pytest.raises(ValueError, match="not this workshop's"):
        sign_in("tulip-41", "Ana")
    with pytest.raises(ValueError, match="enter your name"):
        sign_in("tulip-42", "   ")
    with pytest.raises(ValueError, match="at most 40"):
        sign_in("tulip-42", "x" * 41)


def test_without_a_passcode_there_is_no_workshop_and_no_way_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(workshop.PASSCODE_ENV, raising=False)
    monkeypatch.delenv(workshop.HOST_PASSCODE_ENV, raising=False)
    assert not workshop.enabled()
    with pytest.raises(ValueError):
        sign_in("", "Ana")  # an empty passcode never matches an unset one


def test_a_participant_changes_only_their_own_runs_and_the_host_any(lab: Lab) -> None:
    ana, ben, host = Actor("ana"), Actor("ben"), Actor("host", host=True)
    run = service.submit(lab, TINY, owner="ana")
    with pytest.raises(NotAllowedError, match=f"run {run.id} belongs to ana: only ana or the host can cancel it"):
        service.cancel(lab, run.id, actor=ben)
    assert lab.store.get_run(run.id).status == Status.QUEUED
    assert service.cancel(lab, run.id, actor=ana).status == Status.CANCELLED
    with pytest.raises(NotAllowedError, match="resume"):
        service.resume(lab, run.id, actor=ben)
    assert service.resume(lab, run.id, actor=host).status == Status.QUEUED
    service.cancel(lab, run.id, actor=host)
    with pytest.raises(NotAllowedError, match="delete"):
        service.delete(lab, run.id, actor=ben)
    again = service.run_again(lab, run.id, actor=ben)  # a new run of the same settings: Ben's own
    assert again.owner == "ben" and again.config["seed"] == TINY.seed + 1
    service.delete(lab, run.id, actor=ana)
    assert [r.id for r in lab.store.list_runs()] == [again.id]
    nobodys = service.submit(lab, TINY)  # from the command line: no owner, so the host's alone
    with pytest.raises(NotAllowedError, match=f"run {nobodys.id} belongs to nobody: only the host can cancel it"):
        service.cancel(lab, nobodys.id, actor=ben)


def test_the_queue_cap_refuses_runs_past_it_and_stores_nothing(lab: Lab, passcodes: None) -> None:
    Settings().update(lab.data, queue_cap=3)
    for _ in range(2):
        service.submit(lab, TINY, owner="ana")
    with pytest.raises(QueueFullError, match="ana already has 2 run\\(s\\) queued; the workshop allows 3"):
        service.submit_group(lab, [TINY, TINY], owner="ana")
    assert len(lab.store.list_runs()) == 2 and lab.store.list_groups() == []
    service.submit(lab, TINY, owner="ana")  # the third fits
    service.submit(lab, TINY, owner="ben")  # the cap is per participant
    Settings.read(lab.data).update(lab.data, queue_cap=5)  # the host raises it
    service.submit_group(lab, [TINY, TINY], owner="ana")
    with pytest.raises(ValueError, match="at least 1"):
        Settings.read(lab.data).update(lab.data, queue_cap=0)
    assert Settings.read(lab.data).queue_cap == 5


def test_the_command_line_answers_a_full_queue_with_exit_code_2(lab: Lab, passcodes: None) -> None:
    Settings().update(lab.data, queue_cap=1)
    service.submit(lab, TINY, owner="ana")
    command = [sys.executable, "-m", "bert_lab", "submit", "--home", str(lab.data.path), "--owner", "ana"]
    flags = ["--model", "tiny", "--dataset", "sms_spam", "--train-size", "32"]
    out = subprocess.run(command + flags, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert out.returncode == 2 and "the workshop allows 1 at a time per participant" in out.stderr
    assert len(lab.store.list_runs()) == 1


def test_a_paused_queue_starts_nothing_until_the_host_resumes_it(lab: Lab) -> None:
    run = service.submit(lab, TINY, owner="ana")
    Settings().update(lab.data, paused=True)
    worker = Worker(lab, max_concurrent=1)
    try:
        worker.step()
        assert lab.store.get_run(run.id).status == Status.QUEUED and not worker.children
        Settings.read(lab.data).update(lab.data, paused=False)
        worker.step()
        assert lab.store.get_run(run.id).status == Status.RUNNING
    finally:
        for child in worker.children.values():
            child.kill()
        worker.executor.close()


def test_a_participant_stops_only_their_own_group(lab: Lab) -> None:
    seeds = [TINY, RunConfig(**{**TINY.to_dict(), "seed": 1})]
    group = service.submit_group(lab, seeds, name="sweep-a", owner="ana")
    with pytest.raises(NotAllowedError, match="group 'sweep-a' belongs to ana: only ana or the host can cancel it"):
        service.cancel_group(lab, group.id, actor=Actor("ben"))
    assert not lab.store.get_group(group.id).stopped
    assert len(service.cancel_group(lab, group.id, actor=Actor("host", host=True))) == 2
    with pytest.raises(NotAllowedError, match="delete"):
        service.delete_group(lab, group.id, actor=Actor("ben"))
    service.delete_group(lab, group.id, actor=Actor("ana"))
    assert lab.store.list_groups() == []
