"""Background jobs with real SQLite, real worker and training subprocesses, and the tiny model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bert_lab.config import RunConfig
from bert_lab.jobs import submit_run, worker_alive
from bert_lab.store import RunStore

TINY = dict(model="tiny", dataset="sms_spam", train_size=200, eval_size=50, max_length=32, batch_size=16)
LONG = dict(TINY, train_size=2000, num_epochs=3.0, eval_every_steps=10)  # ~375 steps: long enough to interrupt


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "lab_data")


def start_worker(store: RunStore, *flags: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "bert_lab", "worker", "--home", str(store.home), *flags]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@contextmanager
def running_worker(store: RunStore, *flags: str) -> Iterator[subprocess.Popen[bytes]]:
    """A worker for the duration of the block, stopped (SIGTERM) at its end."""
    worker = start_worker(store, *flags)
    try:
        yield worker
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def wait_for(condition: Callable[[], object], timeout_s: float = 90.0, what: str = "condition") -> object:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def submit(store: RunStore, name: str, **config: object) -> int:
    return submit_run(store, RunConfig(**config), name=name).id


def run_worker_until_idle(store: RunStore, *flags: str) -> None:
    worker = start_worker(store, "--exit-when-idle", *flags)
    out, _ = worker.communicate(timeout=240)
    assert worker.returncode == 0, out.decode()


def test_queue_order_crash_divergence_and_the_next_run_proceeds(store: RunStore, tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{ this is not json")
    ok = submit(store, "ok", **TINY)
    crash = submit(store, "crash", **{**TINY, "model": str(broken)})
    diverge = submit(store, "diverge", **{**TINY, "lr": 1e3, "optimizer": "sgd", "max_grad_norm": 0.0})
    last = submit(store, "last", **TINY)
    run_worker_until_idle(store)
    runs = {r.id: r for r in store.list_runs()}
    assert [runs[i].status for i in (ok, crash, diverge, last)] == ["finished", "failed", "diverged", "finished"]
    starts = [runs[i].started_at for i in (ok, crash, diverge, last)]
    assert starts == sorted(starts)  # claimed oldest first
    assert "broken-model" in runs[crash].error or "json" in runs[crash].error.lower()
    assert "lower learning rate" in runs[diverge].error
    latest = store.latest_metrics([ok])[ok]
    assert {"train_loss", "lr", "grad_norm", "accuracy", "f1", "eval_loss"} <= set(latest)
    assert (store.run_dir(ok) / "model" / "model.safetensors").exists()
    assert runs[ok].summary["confusion"] and runs[ok].progress == 1.0


def test_out_of_memory_fails_with_a_hint_and_the_next_run_proceeds(store: RunStore) -> None:
    oom = submit(store, "oom", **{**TINY, "dataset": "bbc_news", "batch_size": 2048, "max_length": 512,
                                  "train_size": 2000, "eval_size": 100})
    after = submit(store, "after", **TINY)
    run_worker_until_idle(store, "--memory-limit-mb", "3000")
    assert store.get_run(oom).status == "failed"
    assert "out of memory: lower the batch size or the max length" in store.get_run(oom).error
    assert store.get_run(after).status == "finished"


def test_concurrency_limit(store: RunStore) -> None:
    ids = [submit(store, f"r{i}", **{**TINY, "num_epochs": 3.0}) for i in range(3)]
    worker = start_worker(store, "--max-concurrent", "2", "--exit-when-idle")
    most = 0
    while worker.poll() is None:
        most = max(most, len(store.list_runs(statuses=["running"])))
        time.sleep(0.1)
    assert most == 2
    assert [store.get_run(i).status for i in ids] == ["finished"] * 3


def test_one_worker_per_data_folder(store: RunStore) -> None:
    with running_worker(store):
        wait_for(lambda: worker_alive(store.home), 20, "the first worker")
        second = start_worker(store)
        out, _ = second.communicate(timeout=30)
        assert second.returncode == 1 and b"already running" in out


def test_cancel_is_graceful_and_the_run_can_be_resumed(store: RunStore) -> None:
    run_id = submit(store, "long", **LONG)
    with running_worker(store):
        wait_for(lambda: store.latest_metrics([run_id]).get(run_id, {}).get("accuracy") is not None, what="an eval")
        store.request_cancel(run_id)
        wait_for(lambda: store.get_run(run_id).status == "cancelled", 60, "cancelled")
        run = store.get_run(run_id)
        assert 0 < run.progress < 1
        assert (store.run_dir(run_id) / "checkpoint" / "state.json").exists()
        assert (store.run_dir(run_id) / "model").exists()  # what was trained is saved
        stopped_at = json.loads((store.run_dir(run_id) / "checkpoint" / "state.json").read_text())["step"]
        store.set_status(run_id, "queued")  # resume
        wait_for(lambda: store.get_run(run_id).status == "finished", 120, "the resumed run to finish")
        steps = sorted({p.step for p in store.read_metrics(run_id, names=["train_loss"])})
        assert steps == list(range(1, steps[-1] + 1)) and steps[-1] > stopped_at  # no gaps, no duplicates
        assert len(store.read_metrics(run_id, names=["train_loss"])) == len(steps)


def test_worker_killed_mid_run_then_restart_and_resume(store: RunStore) -> None:
    run_id = submit(store, "long", **LONG)
    worker = start_worker(store)
    wait_for(lambda: (store.run_dir(run_id) / "checkpoint" / "state.json").exists(), what="a checkpoint")
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    written = len(store.read_metrics(run_id))
    wait_for(lambda: store.get_run(run_id).status == "interrupted", 30, "interrupted")
    assert len(store.read_metrics(run_id)) >= written  # every point written before the kill is still there
    with running_worker(store):
        assert store.get_run(run_id).status == "interrupted"
        store.set_status(run_id, "queued")
        wait_for(lambda: store.get_run(run_id).status == "finished", 150, "the resumed run to finish")
        assert store.get_run(run_id).resume_count == 1


def test_run_whose_process_dies_with_its_worker_becomes_interrupted(store: RunStore) -> None:
    run_id = submit(store, "long", **LONG)
    worker = start_worker(store)
    wait_for(lambda: store.read_metrics(run_id), what="first points")
    child = store.get_run(run_id).pid
    os.kill(worker.pid, signal.SIGKILL)
    os.killpg(child, signal.SIGKILL)  # the whole run dies too: nobody is left to say so
    worker.wait()
    restarted = start_worker(store, "--exit-when-idle")
    restarted.communicate(timeout=60)
    run = store.get_run(run_id)
    assert run.status == "interrupted" and "resume" in run.error


def test_two_process_data_parallel_run_on_the_cpu(store: RunStore) -> None:
    run_id = submit(store, "ddp", **{**TINY, "num_processes": 2})
    run_worker_until_idle(store)
    run = store.get_run(run_id)
    assert run.status == "finished", run.error
    assert any("2 process(es)" in e.message for e in store.read_events(run_id))
    assert run.summary["total_steps"] == 6  # 13 batches of 16 shared by 2 processes: 6 each
    assert store.latest_metrics([run_id])[run_id]["accuracy"] >= 0
