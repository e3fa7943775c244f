"""Workshop mode in the library: passcodes (spaces are none), signing in (a name claimed once, a token that signs the
same browser in again, wrong passcodes slowed down), who may change which run, the server's files out of a
participant's reach at every verb that stores a config, the cap on queued runs (also on the command line), and the
host pausing the queue."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bert_lab.core.config import RunConfig
from bert_lab.core.layout import DataFolder
from bert_lab.processes.worker import Worker
from bert_lab.runs import service, workshop
from bert_lab.runs.names import NameTakenError
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.workshop import Actor, NotAllowedError, QueueFullError, ServerPathError, Settings, sign_in

TINY = RunConfig(model="tiny", dataset="sms_spam", train_size=32, eval_size=16, max_length=16)


@pytest.fixture
def passcodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(workshop.PASSCODE_ENV, "tulip-42")
    monkeypatch.setenv(workshop.HOST_PASSCODE_ENV, "host-only-7")


def test_sign_in_needs_the_passcode_and_a_name_and_knows_the_host(passcodes: None, tmp_path: Path) -> None:
    data = DataFolder(tmp_path)
    assert workshop.enabled()
    assert sign_in(" tulip-42 ", "  Ana   B ", data) == Actor("Ana B")
    assert sign_in("host-only-7", "", data) == Actor("host", host=True)
    with pytest.raises(ValueError, match="not this workshop's"):
        sign_in("tulip-41", "Cy", data)
    with pytest.raises(ValueError, match="enter your name"):
        sign_in("tulip-42", " \u200b  ", data)  # invisible characters are no name
    with pytest.raises(ValueError, match="at most 40"):
        sign_in("tulip-42", "x" * 41, data)
    with pytest.raises(NameTakenError, match="is the host's"):
        sign_in("tulip-42", "HOST", data)


def test_without_a_passcode_there_is_no_workshop_and_no_way_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(workshop.PASSCODE_ENV, raising=False)
    monkeypatch.delenv(workshop.HOST_PASSCODE_ENV, raising=False)
    assert not workshop.enabled()
    with pytest.raises(ValueError):
        sign_in("", "Ana", DataFolder(tmp_path))  # an empty passcode never matches an unset one


@pytest.mark.parametrize(
    ("participants", "host", "problem"),
    [
        ("   ", "host-only-7", "BERT_LAB_PASSCODE (the participants' passcode) is only spaces"),
        (None, "host-only-7", "BERT_LAB_PASSCODE (the participants' passcode) is not set"),
        ("tulip-42", "\t ", "BERT_LAB_HOST_PASSCODE (the host's passcode) is only spaces"),
        (" tulip-42", "tulip-42 ", "must differ"),
    ],
)
def test_a_passcode_of_spaces_is_no_passcode_and_the_two_must_differ(
    monkeypatch: pytest.MonkeyPatch, participants: str | None, host: str, problem: str
) -> None:
    """One rule for "is a passcode set" (stripped), used by the app, `bert-lab app --workshop` and `lab_ui.serve`."""
    for env, value in ((workshop.PASSCODE_ENV, participants), (workshop.HOST_PASSCODE_ENV, host)):
        monkeypatch.delenv(env, raising=False) if value is None else monkeypatch.setenv(env, value)
    assert workshop.requested() and any(problem in p for p in workshop.problems())
    assert workshop.enabled() == bool((participants or "").strip())
    done = subprocess.run([sys.executable, "-m", "bert_lab", "app", "--workshop"], capture_output=True, text=True)
    assert done.returncode == 2 and problem in done.stderr and "nothing was started" in done.stderr


def test_both_passcodes_set_and_different_make_a_workshop(passcodes: None) -> None:
    assert workshop.problems() == [] and workshop.enabled()


def test_a_name_is_claimed_once_and_look_alikes_are_refused(passcodes: None, tmp_path: Path) -> None:
    data = DataFolder(tmp_path)
    assert sign_in("tulip-42", "ana", data) == Actor("ana")
    for look_alike in ("ana", "Ana", "ana\u200b", "\u0430na", "\u202eana", "ＡＮＡ", "an\u03b1"):
        with pytest.raises(NameTakenError, match="the name 'ana' is taken"):
            sign_in("tulip-42", look_alike, data)
    with pytest.raises(NameTakenError):
        sign_in("host-only-7", "ana", data)  # not even the host takes a participant's name
    assert sign_in("host-only-7", "", data) == sign_in("host-only-7", "", data)  # the host, on two devices


def test_a_token_signs_the_same_name_in_until_the_host_releases_it(
    passcodes: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = DataFolder(tmp_path)
    ana = sign_in("tulip-42", "ana", data)
    token = workshop.token(data, ana)
    assert workshop.signed_in(data, token) == ana
    assert workshop.signed_in(DataFolder(tmp_path), token) == ana  # another process reads the same files
    claim, encoded, mac = token.split(".")
    forged = f"{claim}.{encoded[:-2]}{'A' if encoded[-2] != 'A' else 'B'}{encoded[-1]}.{mac}"
    assert workshop.signed_in(data, forged) is None and workshop.signed_in(data, "junk") is None
    assert oct(data.workshop_secret.stat().st_mode & 0o777) == "0o600"
    monkeypatch.setenv(workshop.PASSCODE_ENV, "tulip-43")  # a new workshop: old tokens sign nobody in
    assert workshop.signed_in(data, token) is None
    monkeypatch.setenv(workshop.PASSCODE_ENV, "tulip-42")
    assert workshop.release(data, "ANA") and not workshop.release(data, "ana")
    assert workshop.signed_in(data, token) is None
    again = sign_in("tulip-42", "ana", data)
    assert workshop.signed_in(data, workshop.token(data, again)) == ana and workshop.token(data, again) != token


def test_wrong_passcodes_make_a_client_wait_longer_each_time(passcodes: None, tmp_path: Path) -> None:
    data, tries = DataFolder(tmp_path), workshop.Tries()
    for _ in range(2):  # two wrong passcodes are free; the third costs 5 s, then each doubles the wait
        tries.failed(data, "10.0.0.9", now=100.0)
    tries.check(data, "10.0.0.9", now=100.0)  # still free
    waits = []
    for _ in range(4):
        tries.failed(data, "10.0.0.9", now=100.0)
        with pytest.raises(workshop.TooManyTriesError, match=r"try again in \d+ s") as refused:
            tries.check(data, "10.0.0.9", now=100.0)
        waits.append(int(str(refused.value).split(" in ")[1].split()[0]))
    assert waits == [5, 10, 20, 40]
    tries.check(data, "10.0.0.8", now=100.0)  # another client is not held up
    with pytest.raises(workshop.TooManyTriesError, match="try again in 1 s"):
        tries.check(data, "10.0.0.9", now=139.5)  # half a second left: rounded up
    tries.check(data, "10.0.0.9", now=140.0)  # the wait is over
    tries.forget(data, "10.0.0.9")
    tries.check(data, "10.0.0.9", now=100.0)


def test_sign_in_refuses_a_waiting_client_even_the_right_passcode(passcodes: None, tmp_path: Path) -> None:
    data = DataFolder(tmp_path)
    for _ in range(3):
        with pytest.raises(ValueError, match="not this workshop's"):
            sign_in("wrong", "eve", data, client="10.1.1.1")
    with pytest.raises(workshop.TooManyTriesError, match="try again in 5 s"):
        sign_in("tulip-42", "eve", data, client="10.1.1.1")
    assert sign_in("tulip-42", "ben", data, client="10.1.1.2") == Actor("ben")


SERVER_PATHS = ["/etc", "/nonexistent/model", "runs/1/model", "../../etc/passwd.csv"]


@pytest.mark.parametrize("path", SERVER_PATHS)
def test_a_participant_names_no_server_path_at_any_verb(lab: Lab, passcodes: None, path: str) -> None:
    """Every way a participant's config reaches the store refuses a model or dataset on the server, before anything is
    stored, with the same words whether the path exists or not (and the path in no run's name)."""
    from bert_lab.sweeps.launch import launch
    from bert_lab.sweeps.spec import SweepError, SweepSpec
    from bert_lab.teaching import lessons
    from bert_lab.teaching.lr_find import range_test_config

    ana = Actor("ana")
    ours = service.submit(lab, TINY, owner="ana", actor=ana)
    model, dataset = RunConfig(**{**TINY.to_dict(), "model": path}), RunConfig(**{**TINY.to_dict(), "dataset": path})
    said = set()
    attempts = [
        lambda: service.submit(lab, model, owner="ana", actor=ana),
        lambda: service.submit(lab, dataset, owner="ana", actor=ana),
        lambda: service.submit(lab, range_test_config(model), owner="ana", actor=ana),
        lambda: service.submit_group(lab, [TINY, model], owner="ana", actor=ana),
        lambda: service.clone(lab, ours.id, changes={"model": path}, owner="ana", actor=ana),
        lambda: launch(lab, TINY, SweepSpec(method="grid", grid={"model": ["tiny", path]}, seeds=1), actor=ana),
        lambda: lessons.launch(lab, next(iter(lessons.LESSONS.values())), owner="ana", model=path, actor=ana),
    ]
    for attempt in attempts:
        with pytest.raises((ServerPathError, SweepError)) as refused:
            attempt()
        said.add(str(refused.value))
    assert [r.id for r in lab.store.list_runs()] == [ours.id] and not lab.store.list_groups()
    assert all(path not in message for message in said)
    host_run = lab.store.create_run(model.to_dict(), owner="host")  # the host may use the server's models
    with pytest.raises(ServerPathError):
        service.run_again(lab, host_run.id, actor=ana)
    assert len(lab.store.list_runs()) == 2
    service.clone(lab, ours.id, changes={"model": "minilm"}, actor=ana)  # an offered model is fine
    grid = SweepSpec(method="grid", grid={"model": [path]}, seeds=1)
    with pytest.raises(SweepError, match="model: a workshop offers minilm and tiny only"):
        launch(lab, TINY, grid, actor=ana)


def test_the_same_refusal_whether_a_path_exists_or_not(lab: Lab, passcodes: None, tmp_path: Path) -> None:
    ana = Actor("ana")
    messages = set()
    for path in (str(lab.data.run(1).path), "/etc", "/no/such/folder", str(tmp_path / "x.csv")):
        for field in ("model", "dataset"):
            with pytest.raises(ServerPathError) as refused:
                workshop.check_config({**TINY.to_dict(), field: path}, lab.data, ana)
            messages.add((field, str(refused.value)))
    assert len(messages) == 2


def test_a_participant_may_train_on_their_own_upload_only(lab: Lab, passcodes: None) -> None:
    csv = b"text,label\n" + b"".join(b"good %d,pos\nbad %d,neg\n" % (i, i) for i in range(20))
    anas = service.stage_upload(lab, csv, "mine.csv", owner="ana")
    assert anas.parent == lab.data.uploads_of("ana") != lab.data.uploads_of("ben")
    config = RunConfig(**{**TINY.to_dict(), "dataset": str(anas)})
    assert service.submit(lab, config, owner="ana", actor=Actor("ana")).config["dataset"] == str(anas)
    with pytest.raises(ServerPathError, match="dataset"):
        service.submit(lab, config, owner="ben", actor=Actor("ben"))
    sneaky = str(lab.data.uploads_of("ben") / ".." / anas.parent.name / anas.name)
    with pytest.raises(ServerPathError, match="dataset"):
        service.submit(lab, RunConfig(**{**TINY.to_dict(), "dataset": sneaky}), owner="ben", actor=Actor("ben"))
    assert service.submit(lab, config, owner="ben", actor=Actor("host", host=True))  # the host may


def test_outside_a_workshop_or_for_the_host_paths_are_fine(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    somewhere = {**TINY.to_dict(), "model": "/some/folder"}
    workshop.check_config(somewhere, lab.data, Actor("ana"))  # no workshop: one person, their own machine
    monkeypatch.setenv(workshop.PASSCODE_ENV, "tulip-42")
    workshop.check_config(somewhere, lab.data, Actor("host", host=True))
    workshop.check_config(somewhere, lab.data, None)  # the operator's command line
    with pytest.raises(ServerPathError):
        workshop.check_config(somewhere, lab.data, Actor("ana"))


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
    full = "ana already has 2 runs queued and the workshop allows 3 .*: these 2 runs would make 4 queued. Wait for some"
    with pytest.raises(QueueFullError, match=full):
        service.submit_group(lab, [TINY, TINY], owner="ana")
    assert len(lab.store.list_runs()) == 2 and lab.store.list_groups() == []
    service.submit(lab, TINY, owner="ana")  # the third fits
    with pytest.raises(QueueFullError, match="has 3 runs queued .*: this run would be the 4th. Wait for one to start"):
        service.submit(lab, TINY, owner="ana")
    Settings().update(lab.data, queue_cap=1)
    service.submit(lab, TINY)  # a run without an owner: "you"
    with pytest.raises(QueueFullError, match="^you already have 1 run queued .*: this run would be the 2nd. "):
        service.submit(lab, TINY)
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


def test_a_participant_edits_only_their_own_runs(lab: Lab) -> None:
    run = lab.store.create_run(TINY.to_dict(), owner="ana", name="mine")
    with pytest.raises(NotAllowedError, match=f"run {run.id} belongs to ana: only ana or the host can edit it"):
        service.edit(lab, run.id, name="taken", actor=Actor("ben"))
    assert service.edit(lab, run.id, tags=["x"], actor=Actor("ana")).tags == ("x",)
    assert service.edit(lab, run.id, note="good", actor=Actor("host", host=True)).note == "good"
    assert lab.store.get_run(run.id).name == "mine"


def test_an_uploads_texts_are_read_only_by_its_owner_and_the_host(lab: Lab) -> None:
    bundled = lab.store.create_run(TINY.to_dict(), owner="ana")
    upload = lab.store.create_run({**TINY.to_dict(), "dataset": "/lab/uploads/x/mine-1a2b.csv"}, owner="ana")
    assert Actor("ben").may_read(bundled) and not Actor("ben").may_read(upload)
    assert Actor("ana").may_read(upload) and Actor("host", host=True).may_read(upload)


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


def finished(lab: Lab, owner: str, accuracy: float, f1: float, **config: object) -> int:
    """A finished run of `owner` whose last evaluation scored `accuracy` and `f1` (no training: the board reads the
    store)."""
    run = lab.store.create_run({**TINY.to_dict(), **config}, owner=owner)
    lab.store.claim_run(run.id, pid=1)
    lab.store.add_metrics(run.id, [(10, 1.0, 5.0, "accuracy", accuracy), (10, 1.0, 5.0, "f1", f1)])
    lab.store.set_status(run.id, Status.FINISHED)
    return run.id


def board_of(lab: Lab) -> dict[str, list[dict[str, object]]]:
    """The leaderboard of every run in the store, listed oldest first (a tie keeps the run listed first)."""
    runs = sorted(lab.store.list_runs(), key=lambda r: r.id)
    return workshop.leaderboard(runs, lab.store.latest_metrics([r.id for r in runs], names=["accuracy", "f1"]))


def test_the_leaderboard_ranks_each_participants_best_finished_run_per_dataset(lab: Lab) -> None:
    first = finished(lab, "ana", 0.80, 0.70)
    finished(lab, "ana", 0.80, 0.70, seed=7)  # a tie with her own earlier run: the one listed first stays
    better_f1 = finished(lab, "ben", 0.80, 0.75)  # the same accuracy as Ana's, a better F1: above her
    finished(lab, "ben", 0.60, 0.60)
    nobody = finished(lab, "", 0.70, 0.65)  # launched without an owner
    upload = finished(lab, "ana", 0.50, 0.40, dataset="/lab/uploads/ana/reviews-1f2e.csv")  # its own board
    for owner, status in (("dan", Status.RUNNING), ("eve", Status.CANCELLED)):  # scored, not finished: left out
        run = lab.store.create_run(TINY.to_dict(), owner=owner)
        lab.store.claim_run(run.id, pid=1)
        lab.store.add_metrics(run.id, [(5, 0.5, 2.0, "accuracy", 0.99), (5, 0.5, 2.0, "f1", 0.99)])
        if status != Status.RUNNING:
            lab.store.set_status(run.id, status)
    board = board_of(lab)
    assert list(board) == ["reviews-1f2e.csv", "sms_spam"]
    assert [(r["participant"], r["run"]) for r in board["reviews-1f2e.csv"]] == [("ana", upload)]
    rows = board["sms_spam"]
    assert [(r["participant"], r["run"], r["accuracy"], r["f1"]) for r in rows] == [
        ("ben", better_f1, 0.80, 0.75),
        ("ana", first, 0.80, 0.70),
        ("nobody", nobody, 0.70, 0.65),
    ]
    assert rows[1]["settings"] == "tiny · adamw lr 1e-04 · linear · batch 32 · 32 examples × 1.0 epoch(s) · seed 42"
    assert workshop.participants(lab.store.list_runs())[:2] == [
        {"participant": "ana", "runs": 3, **{str(s): 3 * (s == Status.FINISHED) for s in Status}},
        {"participant": "ben", "runs": 2, **{str(s): 2 * (s == Status.FINISHED) for s in Status}},
    ]


def test_a_token_survives_every_length_of_name_and_carries_a_128_bit_signature(passcodes: None, tmp_path: Path) -> None:
    data = DataFolder(tmp_path)
    for name in ("Jo", "Eve", "Anna", "Bobby", "Zoë"):  # base64 of 2 to 5 bytes: every amount of stripped padding
        actor = sign_in("tulip-42", name, data)
        token = workshop.token(data, actor)
        assert workshop.signed_in(data, token) == actor and len(token.rpartition(".")[2]) == 32
    assert len(data.workshop_secret.read_bytes()) == 32


def test_a_token_checked_against_a_lab_folder_not_made_yet_signs_nobody_in(passcodes: None, tmp_path: Path) -> None:
    data = DataFolder(tmp_path / "new" / "lab")
    assert workshop.signed_in(data, "claim.QW5h.0123") is None and data.workshop_secret.exists()


def test_actors_and_settings_are_frozen_and_settings_default_to_a_sweep_of_24(tmp_path: Path) -> None:
    import dataclasses

    data = DataFolder(tmp_path)
    for value, name in ((Actor("ana"), "host"), (Settings(), "paused")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, name, True)
    assert Settings.read(data) == Settings(queue_cap=24, paused=False)  # no file yet: 8 configs × 3 seeds fit
    changed = Settings().update(data, queue_cap=5, paused=True)
    assert changed == Settings(queue_cap=5, paused=True) == Settings.read(data)


def test_a_link_in_a_participants_uploads_to_a_file_elsewhere_is_refused(lab: Lab, passcodes: None) -> None:
    csv = b"text,label\n" + b"".join(b"good %d,pos\nbad %d,neg\n" % (i, i) for i in range(20))
    anas = service.stage_upload(lab, csv, "mine.csv", owner="ana")
    link = lab.data.uploads_of("ben") / "mine.csv"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(anas)  # written inside Ben's uploads, but the file is Ana's
    with pytest.raises(ServerPathError, match="dataset"):
        workshop.check_config({**TINY.to_dict(), "dataset": str(link)}, lab.data, Actor("ben"))


def test_participants_with_as_many_runs_are_listed_by_name(lab: Lab) -> None:
    ben = lab.store.create_run(TINY.to_dict(), owner="ben")  # Ben's runs came first: one queued, one cancelled
    lab.store.set_status(ben.id, Status.CANCELLED)
    lab.store.create_run(TINY.to_dict(), owner="ben")
    finished(lab, "ana", 0.7, 0.6)
    finished(lab, "ana", 0.7, 0.6)
    rows = workshop.participants(sorted(lab.store.list_runs(), key=lambda r: r.id))
    assert [(r["participant"], r["runs"], r["queued"], r["cancelled"]) for r in rows] == [
        ("ana", 2, 0, 0),
        ("ben", 2, 1, 1),
    ]


def test_an_lr_range_test_is_not_on_the_leaderboard(lab: Lab) -> None:
    # Its evaluation comes after a learning rate of 1 blew the model up: no participant's best, whatever it scored.
    finished(lab, "ana", 0.90, 0.90, schedule="range_test", lr=1.0, range_start_lr=1e-7)
    trained = finished(lab, "ana", 0.70, 0.60)
    assert [(r["participant"], r["run"]) for r in board_of(lab)["sms_spam"]] == [("ana", trained)]


def test_a_run_with_an_f1_but_no_accuracy_is_not_on_the_leaderboard(lab: Lab) -> None:
    run = lab.store.create_run(TINY.to_dict(), owner="ana")
    lab.store.claim_run(run.id, pid=1)
    lab.store.add_metrics(run.id, [(10, 1.0, 5.0, "f1", 0.9)])
    lab.store.set_status(run.id, Status.FINISHED)
    ben = finished(lab, "ben", 0.6, 0.5)
    assert [r["run"] for r in board_of(lab)["sms_spam"]] == [ben]
