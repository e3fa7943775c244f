"""The run store, through its interface: every test above the SQLite section takes a `RunStore` opened from a URL by
`open_store`, once per backend in `BACKENDS`, so a second backend (PostgreSQL) runs the same suite by adding itself
there. The SQLite section at the end tests what only the embedded backend has: its file, WAL mode and migrations."""

from __future__ import annotations

import inspect
import math
import multiprocessing
import os
import pickle
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bert_lab.core.layout import DataFolder
from bert_lab.runs import sqlite as sqlite_module
from bert_lab.runs.backends import open_store, store_url
from bert_lab.runs.records import MetricPoint, Prediction, RunSummary
from bert_lab.runs.sqlite import MIGRATIONS, SQLiteStore
from bert_lab.runs.status import Status
from bert_lab.runs.store import (
    STORE_ENV,
    RunStore,
    StoreError,
    StoreUnavailable,
    UnknownGroupError,
    UnknownRunError,
)

SPAWN = multiprocessing.get_context("spawn")
BACKENDS = ["sqlite", "postgresql"]  # a backend joins the suite by adding its name here and a URL in `url`
ALL_STATUSES = list(Status)


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for a fresh, empty store of each backend (PostgreSQL: a new database on the session's real server)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lab' / 'runs.sqlite'}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture
def store(url: str) -> Iterator[RunStore]:
    with open_store(url) as opened:
        yield opened


def run_in(store: RunStore, status: Status) -> int:
    """A new run brought to `status` through allowed changes only."""
    run_id = store.create_run({}).id
    if status == Status.QUEUED:
        return run_id
    if status == Status.CANCELLED:
        store.request_cancel(run_id)
        return run_id
    assert store.claim_run(run_id, pid=1) is not None
    if status != Status.RUNNING:
        store.set_status(run_id, status)
    return run_id


def parameters(method: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(method).parameters.values()]


# === the interface: every backend ===================================================================================
def test_backend_has_every_method_of_the_protocol_with_its_signature(store: RunStore) -> None:
    names = [n for n in vars(RunStore) if not n.startswith("_") or n in ("__enter__", "__exit__")]
    assert {"create_run", "claim_run", "list_runs", "read_metrics", "url"} <= set(names)
    for name in names:
        expected = vars(RunStore)[name]
        if isinstance(expected, property):
            assert isinstance(getattr(store, name), {"url": str, "reachable_since": float}[name]), name
            continue
        assert parameters(getattr(type(store), name)) == parameters(expected), name


def test_url_opens_the_same_store(store: RunStore, url: str) -> None:
    run = store.create_run({"lr": 0.1}, name="kept")
    assert store.url == url
    with open_store(store.url) as again:
        assert again.get_run(run.id) == run


# --- runs ---------------------------------------------------------------------------------------------------------
def test_create_get_and_list(store: RunStore) -> None:
    first = store.create_run({"lr": 1e-4}, owner="ana", group_id="sweep-1")
    second = store.create_run({"lr": 3e-4}, name="fast")
    assert (first.name, first.status, first.owner, first.group_id) == (f"run-{first.id}", "queued", "ana", "sweep-1")
    assert first.config == {"lr": 1e-4}
    assert (first.progress, first.summary, first.resume_count, first.cancel_requested) == (0.0, RunSummary(), 0, False)
    assert first.started_at is None and first.elapsed_s is None and first.is_active
    assert (first.pid, first.device, first.error, first.finished_at, first.heartbeat_at) == (None,) * 5
    assert store.get_run(second.id) == second and (second.name, second.owner, second.group_id) == ("fast", "", None)
    assert second.id > first.id
    assert [r.id for r in store.list_runs()] == [second.id, first.id]  # newest first
    assert store.list_runs(ids=[first.id]) == [first]
    assert store.list_runs(statuses=[Status.RUNNING]) == [] and store.list_runs(ids=[]) == []


def test_statuses_come_back_as_status(store: RunStore) -> None:
    run = store.create_run({})
    seen = [run, store.get_run(run.id), *store.list_runs()]
    claimed = store.claim_run(run.id, pid=3)
    assert claimed is not None
    seen += [claimed, store.set_status(run.id, Status.FINISHED)]
    other = store.create_run({}).id
    seen += [store.request_cancel(other), store.update_run(other, progress=0.5)]
    assert [type(r.status) for r in seen] == [Status] * len(seen)
    assert [r.status for r in seen] == ["queued"] * 3 + ["running", "finished", "cancelled", "cancelled"]


def test_list_runs_filters_by_owner_group_and_status_together(store: RunStore) -> None:
    a1 = store.create_run({}, owner="ana", group_id="g1").id
    a2 = store.create_run({}, owner="ana", group_id="g2").id
    b1 = store.create_run({}, owner="bo", group_id="g1").id
    a0 = store.create_run({}, owner="ana").id
    nobody = store.create_run({}).id
    store.claim_run(a2, pid=1)
    store.request_cancel(b1)

    def ids(**filters: Any) -> list[int]:
        return [r.id for r in store.list_runs(**filters)]

    assert ids(owner="ana") == [a0, a2, a1]
    assert ids(owner="") == [nobody]
    assert ids(owner="carla") == []
    assert ids(group_id="g1") == [b1, a1]
    assert ids(group_id="g3") == []
    assert ids(statuses=[Status.QUEUED]) == [nobody, a0, a1]
    assert ids(statuses=[Status.RUNNING, Status.CANCELLED]) == [b1, a2]
    assert ids(owner="ana", group_id="g1") == [a1]
    assert ids(owner="ana", statuses=[Status.QUEUED]) == [a0, a1]
    assert ids(group_id="g1", statuses=[Status.CANCELLED]) == [b1]
    assert ids(owner="bo", group_id="g1", statuses=[Status.QUEUED]) == []
    assert ids(owner="ana", ids=[a1, b1, nobody]) == [a1]
    assert ids(statuses=[]) == []


def test_unknown_run_error(store: RunStore) -> None:
    with pytest.raises(UnknownRunError) as info:
        store.get_run(42)
    assert str(info.value) == "no run with id 42" and info.value.run_id == 42
    assert isinstance(info.value, KeyError) and isinstance(info.value, StoreError)
    for call in (
        lambda: store.set_status(42, Status.RUNNING),
        lambda: store.heartbeat(42),
        lambda: store.update_run(42, progress=0.5),
        lambda: store.request_cancel(42),
        lambda: store.delete_run(42),
    ):
        with pytest.raises(UnknownRunError, match="no run with id 42"):
            call()


def test_claim_run_claims_a_queued_run_once(store: RunStore) -> None:
    run, other = store.create_run({}), store.create_run({})
    claimed = store.claim_run(run.id, pid=1234, device="cpu", host="gpu-box-1")
    assert claimed is not None and claimed.id == run.id
    assert (claimed.status, claimed.pid, claimed.device, claimed.host) == (Status.RUNNING, 1234, "cpu", "gpu-box-1")
    assert claimed.started_at is not None and claimed.heartbeat_at is not None and claimed.elapsed_s is not None
    assert store.get_run(run.id) == claimed
    assert store.claim_run(run.id, pid=99, device="cuda:0", host="gpu-box-2") is None  # the first claim stands
    assert store.claim_run(run.id, pid=1234, device="cpu", host="gpu-box-1") is None  # even its own, asked again
    assert (store.get_run(run.id).pid, store.get_run(run.id).device, store.get_run(run.id).host) == (
        1234,
        "cpu",
        "gpu-box-1",
    )
    assert store.get_run(other.id) == other  # the caller picks the run: no other run moves


@pytest.mark.parametrize("status", [s for s in ALL_STATUSES if s != Status.QUEUED])
def test_claim_run_refuses_a_run_that_is_not_queued(store: RunStore, status: Status) -> None:
    run_id = run_in(store, status)
    before = store.get_run(run_id)
    assert store.claim_run(run_id, pid=5) is None
    assert store.get_run(run_id) == before


def test_claim_of_a_resumed_run_keeps_its_start_and_clears_its_past(store: RunStore) -> None:
    run_id = store.create_run({}).id
    first = store.claim_run(run_id, pid=1)
    assert first is not None
    store.request_cancel(run_id)
    store.set_status(run_id, Status.INTERRUPTED, error="worker died")
    store.set_status(run_id, Status.QUEUED)
    again = store.claim_run(run_id, pid=2, device="cpu")
    assert again is not None
    assert (again.started_at, again.pid, again.error, again.cancel_requested) == (first.started_at, 2, None, False)
    assert again.resume_count == 1 and again.finished_at is None


def test_a_run_with_a_finished_runs_cache_key_is_answered_from_it(store: RunStore) -> None:
    source = store.create_run({"lr": 1e-4}, cache_key="k")
    twin = store.create_run({"lr": 1e-4}, cache_key="k")  # the source is not finished yet: queued like any run
    assert (source.cache_key, twin.status, twin.cached_from) == ("k", Status.QUEUED, None)
    assert store.answer_from_cache(twin.id) is None
    store.claim_run(source.id, pid=1, device="cuda:0")
    store.add_metrics(source.id, [(1, 1.0, 1.0, "accuracy", 0.8), (1, 1.0, 1.0, "f1", 0.75)])
    store.update_run(source.id, progress=1.0, summary=RunSummary(total_steps=1))
    store.set_status(source.id, Status.FINISHED)
    answered = store.answer_from_cache(twin.id)
    assert answered is not None and (answered.status, answered.cached_from) == (Status.FINISHED, source.id)
    assert (answered.summary, answered.device, answered.progress) == (RunSummary(total_steps=1), "cuda:0", 1.0)
    later = store.create_run({"lr": 1e-4}, cache_key="k")  # answered at creation
    assert (later.status, later.cached_from) == (Status.FINISHED, source.id)
    assert store.create_run({}, cache_key="other").status == Status.QUEUED
    assert [(p.run_id, p.name, p.value) for p in store.read_metrics([later.id], names=["f1"])] == [
        (later.id, "f1", 0.75)
    ]
    assert store.latest_metrics([later.id, source.id]) == {
        i: {"accuracy": 0.8, "f1": 0.75} for i in (later.id, source.id)
    }
    assert store.delete_run(source.id) == answered.id  # the oldest answered run inherits the points
    assert store.get_run(later.id).cached_from == answered.id and store.get_run(answered.id).cached_from is None
    assert store.latest_metrics([later.id])[later.id] == {"accuracy": 0.8, "f1": 0.75}
    assert store.delete_run(later.id) is None and store.latest_metrics([answered.id])[answered.id]


def test_last_started_by_owner_remembers_each_owners_latest_start(store: RunStore) -> None:
    first, second, third = (store.create_run({}, owner=owner).id for owner in ("ana", "ben", "ana"))
    store.create_run({}, owner="cleo")  # never started: not listed
    assert store.last_started_by_owner() == {}
    for run_id in (first, second, third):
        store.claim_run(run_id, pid=1)
    started = {run_id: store.get_run(run_id).started_at for run_id in (first, second, third)}
    assert store.last_started_by_owner() == {"ana": started[third], "ben": started[second]}


def _child(results: Any, target: Callable[..., Any], *args: Any) -> None:
    """Process entry: put the target's result, or its error, on the results queue."""
    try:
        results.put(("ok", target(*args)))
    except Exception as error:  # e.g. "database is locked": reported to the parent, which fails the test
        results.put(("error", repr(error)))


def _run_children(targets: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
    """Start one spawned process per (target, args) and return their results, failing on any error."""
    results = SPAWN.Queue()
    procs = [SPAWN.Process(target=_child, args=(results, target, *args)) for target, args in targets]
    for proc in procs:
        proc.start()
    try:
        outcomes = [results.get(timeout=120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():  # never leave a child behind (it would hold pytest's exit)
                proc.kill()
    assert [error for kind, error in outcomes if kind == "error"] == []
    assert [proc.exitcode for proc in procs] == [0] * len(procs)
    return [value for _, value in outcomes]


def _claim_all(url: str, run_ids: list[int], barrier: Any) -> tuple[int, list[int]]:
    """Try to claim every run, oldest first, like a worker racing others; return this pid and what it got."""
    with open_store(url) as store:
        barrier.wait(timeout=120)  # a sibling that failed to start breaks the barrier instead of hanging us
        return os.getpid(), [run_id for run_id in run_ids if store.claim_run(run_id, pid=os.getpid()) is not None]


def test_concurrent_claims_across_processes_take_each_run_once(store: RunStore, url: str) -> None:
    ids = sorted(store.create_run({"i": i}).id for i in range(60))
    outcomes = _run_children([(_claim_all, (url, ids, SPAWN.Barrier(4)))] * 4)
    assert sorted(run_id for _, batch in outcomes for run_id in batch) == ids  # every run once, none twice
    claimer = {run_id: pid for pid, batch in outcomes for run_id in batch}
    runs = store.list_runs()
    assert {run.status for run in runs} == {Status.RUNNING}
    assert all(run.pid == claimer[run.id] for run in runs)  # each run is owned by the process that got it


@pytest.mark.parametrize("target", ALL_STATUSES)
@pytest.mark.parametrize("source", ALL_STATUSES)
def test_set_status_follows_the_allowed_transitions(store: RunStore, source: Status, target: Status) -> None:
    run_id = run_in(store, source)
    if source.can_become(target):
        assert store.set_status(run_id, target).status == target
        return
    with pytest.raises(StoreError) as info:
        store.set_status(run_id, target)
    assert str(info.value) == f"run {run_id}: cannot change status from {source} to {target}"
    assert store.get_run(run_id).status == source


def test_status_changes_set_their_columns(store: RunStore) -> None:
    run_id = store.create_run({}).id
    run = store.claim_run(run_id, pid=7)
    assert run is not None and run.started_at is not None
    interrupted = store.set_status(run.id, Status.INTERRUPTED, error="worker died")
    assert (interrupted.error, interrupted.pid, interrupted.is_active) == ("worker died", None, False)
    assert interrupted.finished_at is not None
    resumed = store.set_status(run.id, Status.QUEUED)
    assert (resumed.resume_count, resumed.finished_at, resumed.error, resumed.pid) == (1, None, None, None)
    running = store.set_status(run.id, Status.RUNNING)
    assert running.started_at == run.started_at and running.heartbeat_at is not None
    finished = store.set_status(run.id, Status.FINISHED)
    assert finished.finished_at is not None and finished.elapsed_s == finished.finished_at - run.started_at
    assert finished.error is None


def test_set_status_is_compare_and_set_across_stores(store: RunStore) -> None:
    run = store.create_run({})
    with open_store(store.url) as other:
        assert other.set_status(run.id, Status.RUNNING).status == Status.RUNNING
        with pytest.raises(StoreError, match="from running to running"):
            store.set_status(run.id, Status.RUNNING)
        assert store.claim_run(run.id, pid=1) is None


def test_cancel_queued_and_running(store: RunStore) -> None:
    queued, running = store.create_run({}), store.create_run({})
    store.claim_run(running.id, pid=1)
    assert store.request_cancel(queued.id).status == Status.CANCELLED
    requested = store.request_cancel(running.id)
    assert (requested.status, requested.cancel_requested) == (Status.RUNNING, True)
    store.set_status(running.id, Status.FINISHED)
    with pytest.raises(StoreError, match=f"run {running.id} is finished; only queued or running runs can be cancelled"):
        store.request_cancel(running.id)
    assert store.set_status(queued.id, Status.QUEUED).status == Status.QUEUED


def test_update_and_heartbeat(store: RunStore) -> None:
    run = store.create_run({})
    store.update_run(run.id, summary=RunSummary(total_steps=8, steps=1), name="renamed")
    updated = store.update_run(run.id, progress=0.25, device="cuda:0", pid=99, summary=RunSummary(steps=2))
    assert (updated.name, updated.progress, updated.device, updated.pid) == ("renamed", 0.25, "cuda:0", 99)
    assert updated.summary == RunSummary(total_steps=8, steps=2)  # merged: the fields reported replace
    assert store.update_run(run.id) == updated  # nothing given: nothing changes
    claimed = store.claim_run(run.id, pid=5)
    assert claimed is not None and claimed.heartbeat_at is not None
    time.sleep(0.01)
    store.heartbeat(run.id)
    beat = store.get_run(run.id)
    assert beat.heartbeat_at is not None and beat.heartbeat_at > claimed.heartbeat_at and beat.progress == 0.25
    store.heartbeat(run.id, progress=0.5)
    assert store.get_run(run.id).progress == 0.5


def test_a_runs_name_tags_and_note_are_kept_and_changed_alone(store: RunStore) -> None:
    run = store.create_run({}, name="a")
    assert (run.tags, run.note) == ((), "")
    tagged = store.update_run(run.id, tags=["baseline", "<b>x</b>"], note="line one\nline **two**")
    assert (tagged.name, tagged.tags, tagged.note) == ("a", ("baseline", "<b>x</b>"), "line one\nline **two**")
    renamed = store.update_run(run.id, name="b", progress=0.5)
    assert (renamed.name, renamed.tags, renamed.note, renamed.progress) == ("b", tagged.tags, tagged.note, 0.5)
    assert store.update_run(run.id, tags=[], note="").tags == () and store.get_run(run.id).note == ""


def test_the_schema_version_is_the_backends_own_count_of_migrations(store: RunStore) -> None:
    backend = sys.modules[type(store).__module__]
    assert store.schema_version() == len(backend.MIGRATIONS) >= 6  # PostgreSQL came later, with fewer steps


def test_delete_removes_rows_but_leaves_files_alone(store: RunStore, tmp_path: Path) -> None:
    run, kept = store.create_run({}), store.create_run({})
    folder = DataFolder(tmp_path / "lab").run(run.id).create()
    (folder.path / "model.bin").write_bytes(b"x")
    store.add_metrics(run.id, [(1, 0.1, 1.0, "loss", 2.0)])
    store.add_metrics(kept.id, [(1, 0.1, 1.0, "loss", 3.0)])
    store.add_event(run.id, "started")
    store.delete_run(run.id)
    with pytest.raises(UnknownRunError):
        store.get_run(run.id)
    assert store.read_metrics(run.id) == [] and store.read_events(run.id) == []
    assert (folder.path / "model.bin").read_bytes() == b"x"  # files belong to the service, not the store
    assert [p.value for p in store.read_metrics(kept.id)] == [3.0] and store.list_runs() == [kept]
    store.claim_run(kept.id, pid=1)
    with pytest.raises(StoreError, match=f"run {kept.id} is running; cancel it before deleting it"):
        store.delete_run(kept.id)
    assert store.get_run(kept.id).status == Status.RUNNING
    with pytest.raises(UnknownRunError):
        store.delete_run(run.id)


# --- groups -------------------------------------------------------------------------------------------------------
def test_a_group_is_stored_with_its_runs(store: RunStore) -> None:
    spec = {"knobs": ["lr"], "grid": {"lr": [1e-4, 3e-3]}, "seeds": 2}
    group = store.create_group(
        name="<b>sweep</b>",
        method="grid",
        metric="f1",
        spec=spec,
        owner="ana",
        runs=[({"lr": 1e-4}, "a", None), ({}, "", None)],
    )
    assert (group.name, group.method, group.metric, group.spec, group.owner, group.stopped) == (
        "<b>sweep</b>",
        "grid",
        "f1",
        spec,
        "ana",
        False,
    )
    assert store.get_group(group.id) == group
    runs = sorted(store.list_runs(group_id=group.id), key=lambda r: r.id)
    assert [(r.name, r.owner, r.group_id, r.status) for r in runs] == [
        ("a", "ana", group.id, Status.QUEUED),
        (f"run-{runs[1].id}", "ana", group.id, Status.QUEUED),
    ]
    later = store.create_group(name="b", method="runs", metric="accuracy", spec={})
    assert [g.id for g in store.list_groups()] == [later.id, group.id]
    assert [g.id for g in store.list_groups(owner="ana")] == [group.id]
    assert store.set_group_stopped(group.id, True).stopped and store.get_group(group.id).stopped
    assert not store.set_group_stopped(group.id, False).stopped


def test_unknown_group(store: RunStore) -> None:
    with pytest.raises(UnknownGroupError, match="no group with id 'nope'"):
        store.get_group("nope")
    with pytest.raises(UnknownGroupError):
        store.delete_group("nope")


def test_a_group_is_created_with_all_its_runs_or_none(store: RunStore) -> None:
    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        store.create_group(
            name="g",
            method="grid",
            metric="f1",
            spec={},
            runs=[({}, "ok", None), ({"x": Unserialisable()}, "bad", None)],
        )
    assert store.list_runs() == [] and store.list_groups() == []


def test_delete_group_removes_its_runs_only_when_none_is_running(store: RunStore) -> None:
    group = store.create_group(name="g", method="grid", metric="f1", spec={}, runs=[({}, "a", None), ({}, "b", None)])
    other = store.create_run({})
    first, second = sorted(store.list_runs(group_id=group.id), key=lambda r: r.id)
    store.add_metrics(first.id, [(1, 0.1, 1.0, "loss", 2.0)])
    store.claim_run(first.id, pid=1)
    with pytest.raises(StoreError, match=f"group {group.id}: run\\(s\\) {first.id} running"):
        store.delete_group(group.id)
    assert len(store.list_runs(group_id=group.id)) == 2 and store.get_group(group.id) == group
    store.set_status(first.id, Status.FINISHED)
    assert store.delete_group(group.id) == {}  # no run outside the group was answered from one of its runs
    assert store.list_runs() == [other] and store.list_groups() == [] and store.read_metrics(first.id) == []
    source = store.create_group(name="g", method="grid", metric="f1", spec={}, runs=[({}, "a", "k"), ({}, "b", None)])
    run, _ = sorted(store.list_runs(group_id=source.id), key=lambda r: r.id)
    store.claim_run(run.id, pid=1)
    store.set_status(run.id, Status.FINISHED)
    answered = store.create_run({}, cache_key="k")
    assert store.delete_group(source.id) == {run.id: answered.id}  # the heir outside the group keeps its points


def test_a_prediction_is_one_per_person_changed_until_a_run_has_its_result(store: RunStore) -> None:
    group = store.create_group(name="g", method="runs", metric="f1", spec={}, runs=[({}, "a", None), ({}, "b", None)])
    first, second = sorted(store.list_runs(group_id=group.id), key=lambda r: r.id)
    ana = store.predict(Prediction(group.id, "ana", "<b>high lr</b>", 0.6, 0.8, 10.0))
    store.predict(Prediction(group.id, "bo", "low lr", None, None, 11.0))
    store.predict(Prediction(group.id, "ana", "low lr", 0.7, 0.9, 12.0))  # changed her mind: replaced, not added
    assert store.list_predictions(group.id) == [
        Prediction(group.id, "bo", "low lr", None, None, 11.0),
        Prediction(group.id, "ana", "low lr", 0.7, 0.9, 12.0),
    ]
    assert ana.arm == "<b>high lr</b>"  # stored as typed
    store.claim_run(first.id, pid=1)
    store.set_status(first.id, Status.CANCELLED)  # no result: still open
    store.predict(Prediction(group.id, "cy", "low lr", None, None, 13.0))
    store.claim_run(second.id, pid=1)
    store.set_status(second.id, Status.DIVERGED)  # a result (it diverged): closed
    with pytest.raises(StoreError, match=f"predictions are closed, run {second.id} has its result"):
        store.predict(Prediction(group.id, "ana", "high lr", None, None, 14.0))
    assert [p.owner for p in store.list_predictions(group.id)] == ["bo", "ana", "cy"]
    assert store.list_predictions(group.id)[1].arm == "low lr"  # nothing written
    with pytest.raises(UnknownGroupError):
        store.predict(Prediction("nope", "ana", "x", None, None, 1.0))
    store.delete_group(group.id)
    assert store.list_predictions(group.id) == []
    again = store.create_group(name="g2", method="runs", metric="f1", spec={})  # no runs yet: open
    store.predict(Prediction(again.id, "", "x", None, None, 1.0))
    assert store.list_predictions(again.id) == [Prediction(again.id, "", "x", None, None, 1.0)]


# --- metrics and events -------------------------------------------------------------------------------------------
def test_read_metrics_incrementally(store: RunStore) -> None:
    a, b = store.create_run({}).id, store.create_run({}).id
    store.add_metrics(a, [(1, 0.1, 0.5, "loss", 1.0), (1, 0.1, 0.5, "lr", 1e-4)])
    store.add_metrics(b, [(1, 0.2, 0.7, "loss", 2.0)])
    first = store.read_metrics([a, b])
    assert [(p.run_id, p.name, p.value) for p in first] == [(a, "loss", 1.0), (a, "lr", 1e-4), (b, "loss", 2.0)]
    assert first[0] == MetricPoint(first[0].id, a, 1, 0.1, 0.5, "loss", 1.0)
    assert [p.id for p in first] == sorted({p.id for p in first})  # increasing, no repeats
    assert store.read_metrics([a, b], since_id=first[-1].id) == []
    store.add_metrics(a, [(2, 0.2, 1.0, "loss", 0.5), (2, 0.2, 1.0, "lr", 5e-5)])
    new = store.read_metrics(a, since_id=first[-1].id)
    assert [(p.step, p.name) for p in new] == [(2, "loss"), (2, "lr")]
    assert [p.value for p in store.read_metrics(a, names=["loss"])] == [1.0, 0.5]
    assert store.read_metrics(a, names=[]) == []


def test_one_read_brings_each_run_only_what_its_reader_has_not_seen(store: RunStore) -> None:
    """A page showing several runs asks once, with the last id it saw of each run; a run answered from the cache
    reads its source's points under its own id, from where its own reader stopped."""
    a, b = store.create_run({}, cache_key="k").id, store.create_run({}).id
    store.claim_run(a, pid=1)
    store.add_metrics(a, [(s, 0.0, 0.0, "loss", float(s)) for s in (1, 2)])
    store.add_metrics(b, [(1, 0.0, 0.0, "loss", 10.0)])
    store.add_metrics(a, [(3, 0.0, 0.0, "loss", 3.0)])
    store.add_metrics(b, [(2, 0.0, 0.0, "loss", 20.0)])
    seen = {p.value: p.id for p in store.read_metrics([a, b])}
    new = store.read_metrics([a, b], since_id={a: seen[2.0], b: seen[10.0]})
    assert [(p.run_id, p.value) for p in new] == [(a, 3.0), (b, 20.0)]  # in insertion order, across runs
    assert [p.value for p in store.read_metrics([a, b], since_id={b: seen[20.0]})] == [1.0, 2.0, 3.0]  # a: all
    store.set_status(a, Status.FINISHED)
    twin = store.create_run({}, cache_key="k").id  # answered from a: reads a's points as its own
    both = store.read_metrics([a, twin], since_id={a: seen[3.0], twin: seen[1.0]})
    assert [(p.run_id, p.value) for p in both] == [(twin, 2.0), (twin, 3.0)]
    assert store.read_metrics([], since_id={a: 0}) == []


def test_adding_no_points_adds_nothing_and_leaves_ids_alone(store: RunStore) -> None:
    a, b = store.create_run({}).id, store.create_run({}).id
    store.add_metrics(a, [(1, 0.1, 0.5, "loss", 1.0)])
    before = store.read_metrics([a, b])
    assert store.add_metrics(a, []) is True  # nothing to add: done
    assert store.add_metrics(a, [], batch=("w", 1)) is True and store.add_metrics(a, [], batch=("w", 1)) is False
    store.add_metrics(b, iter(()))
    assert store.read_metrics([a, b]) == before
    assert store.read_metrics([a, b], since_id=before[-1].id) == []
    assert store.latest_metrics([a, b]) == {a: {"loss": 1.0}, b: {}}
    store.add_metrics(b, [(1, 0.1, 0.5, "loss", 2.0)])
    new = store.read_metrics([a, b], since_id=before[-1].id)  # a poller that saw `before` gets just the new point
    assert [(p.run_id, p.value) for p in new] == [(b, 2.0)] and new[0].id > before[-1].id
    assert store.read_metrics([a, b]) == [*before, *new]


def test_delete_metrics_after_rewinds_one_run(store: RunStore) -> None:
    a, b = store.create_run({}).id, store.create_run({}).id
    for run_id in (a, b):
        store.add_metrics(run_id, [(step, step / 10, float(step), "loss", float(step)) for step in range(1, 6)])
    assert store.delete_metrics_after(a, 3) == 2
    assert [p.step for p in store.read_metrics(a)] == [1, 2, 3]
    assert [p.step for p in store.read_metrics(b)] == [1, 2, 3, 4, 5]
    assert store.delete_metrics_after(a, 3) == 0
    assert store.latest_metrics([a])[a] == {"loss": 3.0}


def test_non_finite_values_round_trip(store: RunStore) -> None:
    run_id = store.create_run({}).id
    store.add_metrics(
        run_id, [(1, 0.0, 0.1, "loss", math.nan), (2, 0.0, 0.2, "loss", math.inf), (3, 0.0, 0.3, "loss", -math.inf)]
    )
    values = [p.value for p in store.read_metrics(run_id)]
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf]
    assert store.latest_metrics([run_id])[run_id]["loss"] == -math.inf


def test_latest_metrics(store: RunStore) -> None:
    a, b, empty = (store.create_run({}).id for _ in range(3))
    store.add_metrics(a, [(1, 0.1, 1.0, "loss", 3.0), (1, 0.1, 1.0, "f1", 0.2), (2, 0.2, 2.0, "loss", 2.0)])
    store.add_metrics(b, [(1, 0.1, 1.0, "loss", 9.0), (2, 0.2, 2.0, "loss", math.nan)])
    latest = store.latest_metrics([a, b, empty])
    assert latest[a] == {"loss": 2.0, "f1": 0.2} and latest[empty] == {}
    assert math.isnan(latest[b]["loss"])
    named = store.latest_metrics([a, b, empty], names=["loss", "accuracy", "loss"])  # by index probes
    assert named[a] == {"loss": 2.0} and math.isnan(named[b]["loss"]) and named[empty] == {}
    assert store.latest_metrics([a], names=[]) == {a: {}} and store.latest_metrics([]) == {}


def test_events(store: RunStore) -> None:
    run_id, other = store.create_run({}).id, store.create_run({}).id
    store.add_event(run_id, "claimed by worker")
    store.add_event(other, "elsewhere")
    store.add_event(run_id, "loss is NaN", level="error")
    events = store.read_events(run_id)
    assert [(e.run_id, e.level, e.message) for e in events] == [
        (run_id, "info", "claimed by worker"),
        (run_id, "error", "loss is NaN"),
    ]
    assert events[0].time <= events[1].time
    assert store.read_events(run_id, since_id=events[0].id) == events[1:]


def test_threads_share_a_store(store: RunStore) -> None:
    run_id = store.create_run({}).id

    def write(name: str) -> None:
        store.add_metrics(run_id, [(step, 0.0, 0.0, name, float(step)) for step in range(50)])

    threads = [threading.Thread(target=write, args=(f"m{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    points = store.read_metrics(run_id)
    assert len(points) == 200 and len({p.id for p in points}) == 200
    assert all([p.value for p in points if p.name == f"m{i}"] == list(map(float, range(50))) for i in range(4))


# --- workers' leases -----------------------------------------------------------------------------------------------
def test_a_worker_lease_lives_while_renewed_and_ends_with_the_worker(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers on two machines with the same pid: each has its own lease; a renewal keeps the start and moves the
    renewal time; a lease not renewed for `within_s` no longer counts; an ended one is gone at once."""
    clock = [1000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])  # the outside world's clock, moved by hand
    assert store.live_workers(within_s=10) == []
    store.renew_worker("gpu-b", 7, slots=4)
    store.renew_worker("gpu-a", 7, slots=2)
    clock[0] = 1006.0
    store.renew_worker("gpu-a", 7, slots=3)
    a, b = store.live_workers(within_s=10)
    assert (a.host, a.pid, a.slots, a.started_at, a.renewed_at) == ("gpu-a", 7, 3, 1000.0, 1006.0)
    assert (b.host, b.pid, b.slots, b.renewed_at) == ("gpu-b", 7, 4, 1000.0)
    clock[0] = 1012.0  # gpu-b silent for 12 s: its lease has expired
    assert [w.host for w in store.live_workers(within_s=10)] == ["gpu-a"]
    assert [w.host for w in store.live_workers(within_s=30)] == ["gpu-a", "gpu-b"]
    store.end_worker("gpu-a", 7)
    assert [w.host for w in store.live_workers(within_s=30)] == ["gpu-b"]
    clock[0] = 1012.0 + 2 * 24 * 3600  # two days on: a lost worker's row is forgotten at the next renewal
    store.renew_worker("gpu-c", 1, slots=1)
    assert [w.host for w in store.live_workers(within_s=1e9)] == ["gpu-c"]


# --- one writer, many pollers -------------------------------------------------------------------------------------
def _write_points(url: str, run_id: int, barrier: Any) -> int:
    with open_store(url) as store:
        barrier.wait(timeout=120)  # a sibling that failed to start breaks the barrier instead of hanging us
        for start in range(0, 2000, 20):
            batch = [(step, step / 100, step / 10, "loss", float(step)) for step in range(start, start + 20)]
            store.add_metrics(run_id, batch)
            time.sleep(0.001)  # like a training loop: readers get to poll between batches
    return -1


def _poll_points(url: str, run_id: int, barrier: Any) -> tuple[list[int], int]:
    """Poll until all points are seen; return their steps in order and how many polls found something new."""
    with open_store(url) as store:
        barrier.wait(timeout=120)  # a sibling that failed to start breaks the barrier instead of hanging us
        seen: list[int] = []
        since_id, fruitful_polls, deadline = 0, 0, time.monotonic() + 30
        while len(seen) < 2000 and time.monotonic() < deadline:
            points = store.read_metrics([run_id], since_id=since_id)
            if points:
                since_id, fruitful_polls = points[-1].id, fruitful_polls + 1
                seen += [p.step for p in points]
            time.sleep(0.002)
    return seen, fruitful_polls


def test_readers_poll_while_a_writer_appends(store: RunStore, url: str) -> None:
    run_id = store.create_run({}).id
    args = (url, run_id, SPAWN.Barrier(7))
    outcomes = _run_children([(_write_points, args)] + [(_poll_points, args)] * 6)
    readers = [outcome for outcome in outcomes if outcome != -1]
    assert len(readers) == 6
    assert all(seen == list(range(2000)) for seen, _ in readers)
    assert max(polls for _, polls in readers) > 1  # the readers really ran while the writer was writing


# --- opening ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    ["", "runs.sqlite", "sqlite://runs.sqlite", "sqlite:///", "mysql://host/db", "postgresql://"],
    ids=["empty", "a file", "two slashes", "no file", "mysql", "pg, no place"],  # no "postgresql": -k would skip it
)
def test_open_store_refuses_urls_it_cannot_open(bad: str) -> None:
    with pytest.raises(StoreError, match="unsupported store URL"):
        open_store(bad)
    if not bad.startswith("sqlite://"):  # a SQLite URL without a file is told so (above)
        with pytest.raises(
            StoreError, match="use sqlite:///path/to/runs.sqlite or postgresql://user@host:port/database"
        ):
            open_store(bad)


def test_store_url_is_the_env_else_the_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = DataFolder(tmp_path / "lab")
    monkeypatch.delenv(STORE_ENV, raising=False)
    assert store_url(data) == f"sqlite:///{tmp_path / 'lab' / 'runs.sqlite'}"
    monkeypatch.setenv(STORE_ENV, "sqlite:////elsewhere/x.sqlite")
    assert store_url(data) == "sqlite:////elsewhere/x.sqlite"


# === SQLite only: the file, WAL mode, schema migrations =============================================================
@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "lab" / "runs.sqlite"


@pytest.fixture
def sqlite_store(db: Path) -> Iterator[SQLiteStore]:
    opened = open_store(f"sqlite:///{db}")
    assert isinstance(opened, SQLiteStore)
    with opened:
        yield opened


def _pragma(path: Path, pragma: str) -> Any:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {pragma}").fetchone()[0]


def test_sqlite_url_absolute_and_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = open_store(f"sqlite:///{tmp_path / 'abs' / 'new' / 'runs.sqlite'}")  # missing folders are made
    assert absolute.url == f"sqlite:///{tmp_path}/abs/new/runs.sqlite"
    absolute.close()
    assert (tmp_path / "abs" / "new" / "runs.sqlite").is_file()
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///rel/runs.sqlite")
    run = relative.create_run({})
    assert relative.url == "sqlite:///rel/runs.sqlite"
    relative.close()
    with open_store(f"sqlite:///{tmp_path / 'rel' / 'runs.sqlite'}") as same:
        assert same.get_run(run.id) == run


def test_new_database_is_current_and_in_wal_mode(sqlite_store: SQLiteStore, db: Path) -> None:
    assert _pragma(db, "user_version") == len(MIGRATIONS)
    assert _pragma(db, "journal_mode") == "wal"


def test_a_closed_store_reconnects_on_use(sqlite_store: SQLiteStore) -> None:
    run_id = sqlite_store.create_run({}).id
    sqlite_store.add_metrics(run_id, [(1, 0.0, 0.0, "loss", 1.0)])
    sqlite_store.close()
    assert [p.value for p in sqlite_store.read_metrics(run_id)] == [1.0]


def test_sqlite_waits_for_a_lock_itself_and_retries_only_a_busy_or_locked_database(sqlite_store: SQLiteStore) -> None:
    assert sqlite_store._conn().execute("PRAGMA busy_timeout").fetchone()[0] == 10_000  # ms: min(30 s, patience 10 s)
    busy_snapshot = sqlite3.OperationalError("database is locked")
    busy_snapshot.sqlite_errorcode = 517  # SQLITE_BUSY_SNAPSHOT: an extended code of SQLITE_BUSY
    locked_table = sqlite3.OperationalError("database table is locked")
    locked_table.sqlite_errorcode = sqlite3.SQLITE_LOCKED
    other_locked = sqlite3.OperationalError("near 'is locked': syntax error")
    other_locked.sqlite_errorcode = sqlite3.SQLITE_ERROR
    for exc, transient in [
        (busy_snapshot, True),
        (locked_table, True),
        (sqlite3.OperationalError("database is locked"), True),  # no code (older Python): told by its words
        (other_locked, False),
        (sqlite3.OperationalError("no such table: runs"), False),
        (sqlite3.IntegrityError("database is locked"), False),
        (StoreError("database is locked"), False),
    ]:
        assert sqlite_store._transient(exc) is transient, exc


def test_close_closes_every_threads_connection(sqlite_store: SQLiteStore) -> None:
    def is_open(conn: sqlite3.Connection) -> bool:
        try:
            conn.execute("SELECT 1")
        except sqlite3.ProgrammingError:  # "Cannot operate on a closed database."
            return False
        return True

    conns: list[sqlite3.Connection] = []
    for _ in range(2):
        thread = threading.Thread(target=lambda: conns.append(sqlite_store._conn()))
        thread.start()
        thread.join()
    mine = sqlite_store._conn()
    assert len({id(c) for c in [*conns, mine]}) == 3 and all(map(is_open, [*conns, mine]))
    sqlite_store._drop_connection()  # this thread's, as after a transient error: closed now, the others kept
    assert not is_open(mine) and all(map(is_open, conns))
    sqlite_store.close()
    assert not any(map(is_open, conns))


def test_newer_schema_is_refused(db: Path) -> None:
    SQLiteStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this code knows"):
        SQLiteStore(db)


def test_older_schema_is_migrated_keeping_data(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = SQLiteStore(db)
    run_id = old.create_run({"lr": 0.1}).id
    old.close()
    extra = "ALTER TABLE runs ADD COLUMN later TEXT NOT NULL DEFAULT 'x'; CREATE INDEX runs_owner ON runs (owner);"
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", [*MIGRATIONS, extra])
    migrated = SQLiteStore(db)
    assert _pragma(db, "user_version") == len(MIGRATIONS) + 1
    assert migrated.get_run(run_id).config == {"lr": 0.1}
    assert migrated.create_run({}).id == run_id + 1
    migrated.close()


def test_a_first_version_database_gains_groups_the_cache_and_hosts_keeping_its_runs(db: Path) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as conn:  # a data folder from before groups existed
        conn.executescript(MIGRATIONS[0])
        conn.execute("INSERT INTO runs (name, created_at, group_id) VALUES ('old', 1.0, 'abc')")
        conn.execute("PRAGMA user_version = 1")
    with SQLiteStore(db) as store:
        [run] = store.list_runs(group_id="abc")
        assert run.name == "old" and store.list_groups() == []
        assert store.create_group(name="g", method="grid", metric="f1", spec={}).name == "g"
        assert (run.cache_key, run.cached_from) == (None, None)  # an old run is never answered from
        assert store.create_run({}, cache_key="k").cache_key == "k"
        assert run.host is None  # trained before runs recorded their machine
        store.renew_worker("a", 1, slots=1)
        assert [w.host for w in store.live_workers(within_s=60)] == ["a"]  # and workers their leases
        assert (run.tags, run.note) == ((), "")  # and a person could not yet tag it
        assert store.list_predictions("abc") == []  # nor predict
    assert _pragma(db, "user_version") == len(MIGRATIONS) == 9


def test_failed_migration_changes_nothing(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    SQLiteStore(db).close()
    broken = "ALTER TABLE runs ADD COLUMN later TEXT; SELECT * FROM no_such_table;"
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", [*MIGRATIONS, broken])
    with pytest.raises(sqlite3.OperationalError):
        SQLiteStore(db)
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", MIGRATIONS)
    assert _pragma(db, "user_version") == len(MIGRATIONS)
    with sqlite3.connect(db) as conn:
        assert "later" not in [row[1] for row in conn.execute("PRAGMA table_info(runs)")]


def test_a_postgresql_store_that_cannot_be_reached_is_named(tmp_path: Path) -> None:
    nowhere = f"postgresql://nobody@/lab?host={tmp_path}&connect_timeout=2"  # no server listens there
    with pytest.raises(StoreUnavailable, match="the run store at postgresql://nobody@.* is unreachable"):
        open_store(nowhere, patience_s=1.0)


def test_a_postgresql_database_from_newer_code_is_refused(postgres_database: str) -> None:
    import psycopg

    from bert_lab.runs.postgres import MIGRATIONS as PG_MIGRATIONS

    open_store(postgres_database).close()  # migrated: schema_version holds this code's version
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = %s", (len(PG_MIGRATIONS) + 1,))
    with pytest.raises(StoreError, match="newer than this code knows"):
        open_store(postgres_database)


def test_the_test_postgresql_server_is_reached_over_loopback_tcp(postgres_database: str) -> None:
    """As a worker on another machine reaches the database: TCP, not a Unix socket."""
    import psycopg

    with psycopg.connect(postgres_database) as conn:
        address, port = conn.execute("SELECT inet_server_addr()::text, inet_server_port()").fetchone()
    assert (address, port) == ("127.0.0.1/32", int(postgres_database.split(":")[2].split("/")[0]))


def test_a_postgresql_claim_skips_a_run_another_machine_is_claiming(postgres_database: str) -> None:
    """Workers on several machines: a claim finding the run's row held by another claim moves on at once (SKIP
    LOCKED) rather than waiting for it; once the row is free, the run can be claimed."""
    import psycopg

    with open_store(postgres_database) as store:
        run = store.create_run({})
        with psycopg.connect(postgres_database) as other:  # another machine, mid-claim: it holds the row
            other.execute("SELECT id FROM runs WHERE id = %s FOR UPDATE", (run.id,))
            started = time.monotonic()
            assert store.claim_run(run.id, pid=1, host="b") is None
            assert time.monotonic() - started < 2  # skipped, not waited for
        claimed = store.claim_run(run.id, pid=1, host="b")  # the other let go without claiming it
        assert claimed is not None and claimed.host == "b"


def test_every_status_the_store_writes_is_a_change_the_table_allows(store: RunStore) -> None:
    """Each verb that moves a run (claim, cancel, the cache's answer, set_status, resume) is watched from outside:
    every change it makes to any run is in `TRANSITIONS`, and a new run starts queued or answered from the cache."""
    seen: dict[int, Status] = {}
    changes: list[tuple[Status, Status]] = []

    def watch() -> None:
        for run in store.list_runs():
            before = seen.get(run.id)
            if before is None:
                assert run.status in (Status.QUEUED, Status.FINISHED) and (
                    run.status == Status.QUEUED or run.cached_from
                )
            elif before != run.status:
                assert before.can_become(run.status), f"run {run.id}: {before} -> {run.status}"
                changes.append((before, run.status))
            seen[run.id] = run.status

    source, twin = store.create_run({"k": 1}, cache_key="k").id, store.create_run({"k": 1}, cache_key="k").id
    other = store.create_run({}).id
    watch()
    for step in (
        lambda: store.claim_run(source, pid=1),
        lambda: store.set_status(source, Status.FINISHED),
        lambda: store.answer_from_cache(twin),  # queued -> finished, from the cache
        lambda: store.create_run({"k": 1}, cache_key="k"),  # answered as it is made
        lambda: store.request_cancel(other),  # queued -> cancelled
        lambda: store.set_status(other, Status.QUEUED),  # resumed
        lambda: store.claim_run(other, pid=2),
        lambda: store.request_cancel(other),  # running: asked, no change yet
        lambda: store.set_status(other, Status.INTERRUPTED),
    ):
        step()
        watch()
    assert changes == [
        (Status.QUEUED, Status.RUNNING),
        (Status.RUNNING, Status.FINISHED),
        (Status.QUEUED, Status.FINISHED),
        (Status.QUEUED, Status.CANCELLED),
        (Status.CANCELLED, Status.QUEUED),
        (Status.QUEUED, Status.RUNNING),
        (Status.RUNNING, Status.INTERRUPTED),
    ]


def test_unknown_run_and_group_errors_name_the_id_and_survive_pickling() -> None:
    """A run process reports these across a process boundary (pickled) and a page shows them as they read."""
    for error, text in ((UnknownRunError(7), "no run with id 7"), (UnknownGroupError("g1"), "no group with id 'g1'")):
        assert str(error) == text and isinstance(error, KeyError) and isinstance(error, StoreError)
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == text
