from __future__ import annotations

import math
import multiprocessing
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bert_lab import store as store_module
from bert_lab.store import (
    MIGRATIONS,
    MetricPoint,
    RunStore,
    StoreError,
    UnknownRunError,
)

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "lab")


# --- runs ---------------------------------------------------------------------------------------------------------
def test_create_get_and_list(store: RunStore) -> None:
    first = store.create_run({"lr": 1e-4}, owner="ana", group_id="sweep-1")
    second = store.create_run({"lr": 3e-4}, name="fast")
    assert (first.name, first.status, first.owner, first.group_id) == (f"run-{first.id}", "queued", "ana", "sweep-1")
    assert first.config == {"lr": 1e-4}
    assert (first.progress, first.summary, first.resume_count, first.cancel_requested) == (0.0, {}, 0, False)
    assert first.started_at is None and first.elapsed_s is None and first.is_active
    assert store.get_run(second.id) == second and second.name == "fast"
    assert [r.id for r in store.list_runs()] == [second.id, first.id]
    assert store.list_runs(ids=[first.id]) == [first]
    assert store.list_runs(statuses=["running"]) == [] and store.list_runs(ids=[]) == []
    assert (store.home / "runs.sqlite").exists() and not store.run_dir(first.id).exists()
    assert store.run_dir(first.id, create=True) == store.home / "runs" / str(first.id)
    assert store.run_dir(first.id).is_dir()


def test_unknown_run_error(store: RunStore) -> None:
    with pytest.raises(UnknownRunError) as info:
        store.get_run(42)
    assert str(info.value) == "no run with id 42"
    assert isinstance(info.value, KeyError) and isinstance(info.value, StoreError)
    with pytest.raises(UnknownRunError):
        store.set_status(42, "running")
    with pytest.raises(UnknownRunError):
        store.heartbeat(42)


def test_claim_takes_oldest_queued_run(store: RunStore) -> None:
    runs = [store.create_run({"i": i}) for i in range(3)]
    store.request_cancel(runs[0].id)
    claimed = store.claim_next_run(pid=1234, device="cpu")
    assert claimed is not None and claimed.id == runs[1].id
    assert (claimed.status, claimed.pid, claimed.device) == ("running", 1234, "cpu")
    assert claimed.started_at is not None and claimed.heartbeat_at is not None and claimed.elapsed_s is not None
    assert store.claim_next_run(pid=1)
    assert store.claim_next_run(pid=1) is None


def _child(results: Any, target: Callable[..., Any], *args: Any) -> None:
    """Process entry: put the target's result, or its error, on the results queue."""
    try:
        results.put(("ok", target(*args)))
    except (StoreError, sqlite3.Error) as error:  # e.g. "database is locked": reported to the parent
        results.put(("error", repr(error)))


def _run_children(targets: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
    """Start one spawned process per (target, args) and return their results, failing on any error."""
    results = SPAWN.Queue()
    procs = [SPAWN.Process(target=_child, args=(results, target, *args)) for target, args in targets]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert [error for kind, error in outcomes if kind == "error"] == []
    assert [proc.exitcode for proc in procs] == [0] * len(procs)
    return [value for _, value in outcomes]


def _claim_until_empty(home: str, barrier: Any) -> list[int]:
    store = RunStore(home)
    barrier.wait()
    claimed = []
    while (run := store.claim_next_run(pid=os.getpid())) is not None:
        claimed.append(run.id)
    store.close()
    return claimed


def test_concurrent_claims_take_each_run_once(store: RunStore) -> None:
    ids = [store.create_run({"i": i}).id for i in range(120)]
    barrier = SPAWN.Barrier(4)
    claimed = _run_children([(_claim_until_empty, (str(store.home), barrier))] * 4)
    assert sorted(run_id for batch in claimed for run_id in batch) == ids
    assert all(batch == sorted(batch) for batch in claimed)
    assert {run.status for run in store.list_runs()} == {"running"}


def test_status_transitions(store: RunStore) -> None:
    store.create_run({})
    run = store.claim_next_run(pid=7)
    assert run is not None and run.started_at is not None
    interrupted = store.set_status(run.id, "interrupted", error="worker died")
    assert (interrupted.error, interrupted.pid, interrupted.is_active) == ("worker died", None, False)
    assert interrupted.finished_at is not None
    resumed = store.set_status(run.id, "queued")
    assert (resumed.resume_count, resumed.finished_at, resumed.error, resumed.pid) == (1, None, None, None)
    running = store.set_status(run.id, "running")
    assert running.started_at == run.started_at
    finished = store.set_status(run.id, "finished")
    assert finished.finished_at is not None and finished.elapsed_s == finished.finished_at - run.started_at
    with pytest.raises(StoreError, match=f"run {run.id}: cannot change status from finished to running"):
        store.set_status(run.id, "running")
    with pytest.raises(StoreError, match="from queued to finished"):
        store.set_status(store.create_run({}).id, "finished")


def test_set_status_is_compare_and_set_across_stores(store: RunStore) -> None:
    run = store.create_run({})
    other = RunStore(store.home)
    assert other.set_status(run.id, "running").status == "running"
    with pytest.raises(StoreError, match="from running to running"):
        store.set_status(run.id, "running")
    other.close()


def test_cancel_queued_and_running(store: RunStore) -> None:
    queued, running = store.create_run({}), store.create_run({})
    store.set_status(running.id, "running")
    assert store.request_cancel(queued.id).status == "cancelled"
    requested = store.request_cancel(running.id)
    assert (requested.status, requested.cancel_requested) == ("running", True)
    store.set_status(running.id, "finished")
    with pytest.raises(StoreError, match=f"run {running.id} is finished; only queued or running runs can be cancelled"):
        store.request_cancel(running.id)
    assert store.set_status(queued.id, "queued").status == "queued"


def test_update_heartbeat_and_stale_runs(store: RunStore) -> None:
    run = store.create_run({})
    store.update_run(run.id, summary={"best_f1": 0.5, "epochs": 1}, name="renamed")
    updated = store.update_run(run.id, progress=0.25, device="cuda:0", pid=99, summary={"epochs": 2})
    assert (updated.name, updated.progress, updated.device, updated.pid) == ("renamed", 0.25, "cuda:0", 99)
    assert updated.summary == {"best_f1": 0.5, "epochs": 2}
    store.claim_next_run(pid=5)
    time.sleep(0.05)
    assert [r.id for r in store.find_stale_runs(0.01)] == [run.id]
    store.heartbeat(run.id, progress=0.5)
    assert store.find_stale_runs(60.0) == [] and store.get_run(run.id).progress == 0.5


def test_clone_run(store: RunStore) -> None:
    old = store.create_run({"lr": 1e-4, "seed": 1}, name="base", owner="ana")
    clone = store.clone_run(old.id, changes={"seed": 2})
    assert (clone.name, clone.owner, clone.status) == ("base (clone)", "ana", "queued")
    assert clone.config == {"lr": 1e-4, "seed": 2}
    assert clone.id != old.id and store.clone_run(old.id, name="again").config == old.config


def test_delete_removes_rows_and_folder(store: RunStore) -> None:
    run, kept = store.create_run({}), store.create_run({})
    (store.run_dir(run.id, create=True) / "model.bin").write_bytes(b"x")
    store.add_metrics(run.id, [(1, 0.1, 1.0, "loss", 2.0)])
    store.add_metrics(kept.id, [(1, 0.1, 1.0, "loss", 3.0)])
    store.add_event(run.id, "started")
    store.delete_run(run.id)
    with pytest.raises(UnknownRunError):
        store.get_run(run.id)
    assert not store.run_dir(run.id).exists()
    assert store.read_metrics(run.id) == [] and store.read_events(run.id) == []
    assert len(store.read_metrics(kept.id)) == 1
    store.set_status(kept.id, "running")
    with pytest.raises(StoreError, match="is running"):
        store.delete_run(kept.id)
    with pytest.raises(UnknownRunError):
        store.delete_run(run.id)


# --- metrics and events -------------------------------------------------------------------------------------------
def test_read_metrics_incrementally(store: RunStore) -> None:
    a, b = store.create_run({}).id, store.create_run({}).id
    store.add_metrics(a, [(1, 0.1, 0.5, "loss", 1.0), (1, 0.1, 0.5, "lr", 1e-4)])
    store.add_metrics(b, [(1, 0.2, 0.7, "loss", 2.0)])
    first = store.read_metrics([a, b])
    assert [(p.run_id, p.name, p.value) for p in first] == [(a, "loss", 1.0), (a, "lr", 1e-4), (b, "loss", 2.0)]
    assert first[0] == MetricPoint(first[0].id, a, 1, 0.1, 0.5, "loss", 1.0)
    assert store.read_metrics([a, b], since_id=first[-1].id) == []
    store.add_metrics(a, [(2, 0.2, 1.0, "loss", 0.5), (2, 0.2, 1.0, "lr", 5e-5)])
    new = store.read_metrics(a, since_id=first[-1].id)
    assert [(p.step, p.name) for p in new] == [(2, "loss"), (2, "lr")]
    assert [p.value for p in store.read_metrics(a, names=["loss"])] == [1.0, 0.5]
    store.add_metrics(a, [])


def test_non_finite_values_round_trip(store: RunStore) -> None:
    run_id = store.create_run({}).id
    store.add_metrics(run_id, [(1, 0.0, 0.1, "loss", math.nan), (2, 0.0, 0.2, "loss", math.inf)])
    values = [p.value for p in store.read_metrics(run_id)]
    assert math.isnan(values[0]) and values[1] == math.inf
    assert math.isinf(store.latest_metrics([run_id])[run_id]["loss"])


def test_latest_metrics(store: RunStore) -> None:
    a, b, empty = (store.create_run({}).id for _ in range(3))
    store.add_metrics(a, [(1, 0.1, 1.0, "loss", 3.0), (1, 0.1, 1.0, "f1", 0.2), (2, 0.2, 2.0, "loss", 2.0)])
    store.add_metrics(b, [(1, 0.1, 1.0, "loss", 9.0), (2, 0.2, 2.0, "loss", math.nan)])
    latest = store.latest_metrics([a, b, empty])
    assert latest[a] == {"loss": 2.0, "f1": 0.2} and latest[empty] == {}
    assert math.isnan(latest[b]["loss"])


def test_events(store: RunStore) -> None:
    run_id = store.create_run({}).id
    store.add_event(run_id, "claimed by worker")
    store.add_event(run_id, "loss is NaN", level="error")
    events = store.read_events(run_id)
    assert [(e.level, e.message) for e in events] == [("info", "claimed by worker"), ("error", "loss is NaN")]
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
    assert len(store.read_metrics(run_id)) == 200
    store.close()
    assert len(store.read_metrics(run_id)) == 200  # a closed store reconnects on use


# --- opening, schema ----------------------------------------------------------------------------------------------
def test_open_uses_argument_env_then_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERT_LAB_HOME", str(tmp_path / "from_env"))
    assert RunStore.open().home == tmp_path / "from_env"
    assert (tmp_path / "from_env" / "runs.sqlite").exists()
    assert RunStore.open(tmp_path / "explicit").home == tmp_path / "explicit"
    monkeypatch.delenv("BERT_LAB_HOME")
    monkeypatch.chdir(tmp_path)
    assert RunStore.open().home.resolve() == tmp_path / "lab_data"


def _pragma(path: Path, pragma: str) -> Any:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {pragma}").fetchone()[0]


def test_new_database_is_current_and_in_wal_mode(store: RunStore) -> None:
    assert _pragma(store.home / "runs.sqlite", "user_version") == len(MIGRATIONS)
    assert _pragma(store.home / "runs.sqlite", "journal_mode") == "wal"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    RunStore(tmp_path).close()
    with sqlite3.connect(tmp_path / "runs.sqlite") as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this code knows"):
        RunStore(tmp_path)


def test_older_schema_is_migrated_keeping_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = RunStore(tmp_path)
    run_id = old.create_run({"lr": 0.1}).id
    old.close()
    extra = "ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT 'x'; CREATE INDEX runs_owner ON runs (owner);"
    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS, extra])
    migrated = RunStore(tmp_path)
    assert _pragma(tmp_path / "runs.sqlite", "user_version") == len(MIGRATIONS) + 1
    assert migrated.get_run(run_id).config == {"lr": 0.1}
    assert migrated.create_run({}).id == run_id + 1


def test_failed_migration_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    RunStore(tmp_path).close()
    broken = "ALTER TABLE runs ADD COLUMN note TEXT; SELECT * FROM no_such_table;"
    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS, broken])
    with pytest.raises(sqlite3.OperationalError):
        RunStore(tmp_path)
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    assert _pragma(tmp_path / "runs.sqlite", "user_version") == len(MIGRATIONS)
    with sqlite3.connect(tmp_path / "runs.sqlite") as conn:
        assert "note" not in [row[1] for row in conn.execute("PRAGMA table_info(runs)")]


# --- one writer, many pollers -------------------------------------------------------------------------------------
def _write_points(home: str, run_id: int, barrier: Any) -> int:
    store = RunStore(home)
    barrier.wait()
    for start in range(0, 2000, 20):
        batch = [(step, step / 100, step / 10, "loss", float(step)) for step in range(start, start + 20)]
        store.add_metrics(run_id, batch)
        time.sleep(0.001)  # like a training loop: readers get to poll between batches
    return -1


def _poll_points(home: str, run_id: int, barrier: Any) -> tuple[list[int], int]:
    """Poll until all points are seen; return their steps in order and how many polls found something new."""
    store = RunStore(home)
    barrier.wait()
    seen: list[int] = []
    since_id, fruitful_polls, deadline = 0, 0, time.monotonic() + 30
    while len(seen) < 2000 and time.monotonic() < deadline:
        points = store.read_metrics([run_id], since_id=since_id)
        if points:
            since_id, fruitful_polls = points[-1].id, fruitful_polls + 1
            seen += [p.step for p in points]
        time.sleep(0.002)
    return seen, fruitful_polls


def test_readers_poll_while_a_writer_appends(store: RunStore) -> None:
    run_id = store.create_run({}).id
    args = (str(store.home), run_id, SPAWN.Barrier(7))
    outcomes = _run_children([(_write_points, args)] + [(_poll_points, args)] * 6)
    readers = [outcome for outcome in outcomes if outcome != -1]
    assert len(readers) == 6
    assert all(seen == list(range(2000)) for seen, _ in readers)
    assert max(polls for _, polls in readers) > 1  # the readers really ran while the writer was writing
