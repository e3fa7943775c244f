"""The worker with real SQLite, real worker and training subprocesses, and the tiny model: queue order, crashes,
divergence, out of memory, concurrency, one worker per folder, cancel and resume, lost runs, two processes."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from waiting import wait_for

from bert_lab.core.config import RunConfig
from bert_lab.core.layout import DataFolder
from bert_lab.processes.executor import LocalExecutor, pid_alive
from bert_lab.processes.worker import (
    LEASE_S,
    Worker,
    describe_exit,
    ensure_worker,
    live_workers,
    this_host,
    wait_until_warm,
    worker_alive,
    worker_pid,
)
from bert_lab.runs import service
from bert_lab.runs.records import Run
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status

TINY = dict(model="tiny", dataset="sms_spam", train_size=200, eval_size=50, max_length=32, batch_size=16)
LONG = dict(TINY, train_size=2000, num_epochs=3.0, eval_every_steps=10)  # ~375 steps: long enough to interrupt
SHORT = dict(TINY, train_size=64, eval_size=32)  # 4 steps


def start_worker(lab: Lab, *flags: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "bert_lab", "worker", "--home", str(lab.data.path), *flags]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@contextmanager
def running_worker(lab: Lab, *flags: str) -> Iterator[subprocess.Popen[bytes]]:
    """A worker for the duration of the block, stopped (SIGTERM) at its end."""
    worker = start_worker(lab, *flags)
    try:
        yield worker
    finally:
        worker.terminate()
        worker.wait(timeout=60)


@contextmanager
def worker_here(lab: Lab, **options: object) -> Iterator[Worker]:
    """A `Worker` in this process (its runs are real subprocesses), without a warm spare; its runs are killed at the
    end of the block if still there."""
    worker = Worker(lab, executor=LocalExecutor(lab, warm_spare=False), **options)  # type: ignore[arg-type]
    try:
        yield worker
    finally:
        for child in worker.children.values():
            child.kill()
        worker.executor.close()


SEEDS = itertools.count(1)


def submit(lab: Lab, name: str, **config: object) -> int:
    """Queue a run of its own: a seed no other run here has, so the result cache never answers it."""
    return service.submit(lab, RunConfig(**{"seed": next(SEEDS), **config}), name=name).id


def run_worker_until_idle(lab: Lab, *flags: str) -> str:
    worker = start_worker(lab, "--exit-when-idle", *flags)
    out, _ = worker.communicate(timeout=240)
    assert worker.returncode == 0, out.decode()
    return out.decode()


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped): nobody has it now."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def newest_first(queued: Sequence[Run], running: Sequence[Run], last_started: Mapping[str, float]) -> list[Run]:
    return sorted(queued, key=lambda r: r.id, reverse=True)


def test_queue_order_crash_divergence_and_the_next_run_proceeds(lab: Lab, tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{ this is not json")
    ok = submit(lab, "ok", **TINY)
    crash = submit(lab, "crash", **{**TINY, "model": str(broken)})
    diverge = submit(lab, "diverge", **{**TINY, "lr": 1e3, "optimizer": "sgd", "max_grad_norm": 0.0})
    last = submit(lab, "last", **TINY)
    run_worker_until_idle(lab)
    runs = {r.id: r for r in lab.store.list_runs()}
    assert [runs[i].status for i in (ok, crash, diverge, last)] == [
        Status.FINISHED,
        Status.FAILED,
        Status.DIVERGED,
        Status.FINISHED,
    ]
    starts = [runs[i].started_at for i in (ok, crash, diverge, last)]
    assert starts == sorted(starts)  # by default, claimed oldest first
    assert "broken-model" in runs[crash].error or "json" in runs[crash].error.lower()
    assert "lower learning rate" in runs[diverge].error
    latest = lab.store.latest_metrics([ok])[ok]
    assert {"train_loss", "lr", "grad_norm", "accuracy", "f1", "eval_loss"} <= set(latest)
    assert (lab.data.run(ok).model / "model.safetensors").exists()
    assert runs[ok].summary.confusion and runs[ok].progress == 1.0


def test_the_claim_order_comes_from_the_caller(lab: Lab) -> None:
    ids = [submit(lab, f"r{i}", **SHORT) for i in range(3)]
    with worker_here(lab, max_concurrent=1, claim_order=newest_first) as worker:
        worker.step()
        assert [lab.store.get_run(i).status for i in ids] == [Status.QUEUED, Status.QUEUED, Status.RUNNING]
        deadline = time.time() + 240
        while worker.children or lab.store.list_runs(statuses=[Status.QUEUED]):
            assert time.time() < deadline, "the runs did not finish in time"
            worker.step()
            time.sleep(0.2)
    runs = [lab.store.get_run(i) for i in ids]
    assert [r.status for r in runs] == [Status.FINISHED] * 3
    assert sorted(ids, key=lambda i: lab.store.get_run(i).started_at) == ids[::-1]  # newest first, as asked


def test_a_run_deleted_before_its_claim_is_skipped(lab: Lab) -> None:
    first, second = (submit(lab, f"r{i}", **SHORT) for i in range(2))

    def delete_the_first(queued: Sequence[Run], running: Sequence[Run], last_started: Mapping[str, float]) -> list[Run]:
        service.delete(lab, first)  # someone deletes it between the worker's look at the queue and its claim
        return sorted(queued, key=lambda r: r.id)

    with worker_here(lab, max_concurrent=1, claim_order=delete_the_first) as worker:
        worker.step()  # must not raise
        assert list(worker.children) == [second]
        assert lab.store.get_run(second).status == Status.RUNNING
        assert [r.id for r in lab.store.list_runs()] == [second]


def test_recover_lost_runs_interrupts_a_run_whose_process_is_gone(lab: Lab) -> None:
    lost = lab.store.create_run(RunConfig(**TINY).to_dict(), name="lost")
    alive = lab.store.create_run(RunConfig(**TINY).to_dict(), name="alive")
    assert lab.store.claim_run(lost.id, pid=dead_pid(), device="cpu")
    assert lab.store.claim_run(alive.id, pid=os.getpid(), device="cpu")  # this process: alive, fresh heartbeat
    with worker_here(lab) as worker:
        assert worker.recover_lost_runs() == [lost.id]
        assert worker.recover_lost_runs() == []  # once
    run = lab.store.get_run(lost.id)
    assert run.status == Status.INTERRUPTED and "resume" in run.error and run.pid is None
    assert any("interrupted" in e.message for e in lab.store.read_events(lost.id))
    assert lab.store.get_run(alive.id).status == Status.RUNNING
    assert service.resume(lab, lost.id).status == Status.QUEUED  # interrupted runs can be resumed


def test_recover_lost_runs_kills_a_run_whose_heartbeat_went_silent(lab: Lab) -> None:
    silent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        run = lab.store.create_run(RunConfig(**TINY).to_dict(), name="silent")
        assert lab.store.claim_run(run.id, pid=silent.pid, device="cpu")
        with worker_here(lab, stale_after_s=0.5) as worker:
            assert worker.recover_lost_runs() == []  # still beating (it just started)
            time.sleep(1.0)
            assert worker.recover_lost_runs() == [run.id]
        assert silent.wait(timeout=10) == -signal.SIGKILL  # the stuck process is stopped, not left running
        assert lab.store.get_run(run.id).status == Status.INTERRUPTED
    finally:
        silent.kill()
        silent.wait()


def test_out_of_memory_fails_with_a_hint_and_the_next_run_proceeds(lab: Lab) -> None:
    oom = submit(
        lab,
        "oom",
        **{**TINY, "dataset": "bbc_news", "batch_size": 2048, "max_length": 512, "train_size": 2000, "eval_size": 100},
    )
    after = submit(lab, "after", **TINY)
    run_worker_until_idle(lab, "--memory-limit-mb", "3000")
    assert lab.store.get_run(oom).status == Status.FAILED
    assert "out of memory: lower the batch size or the max length" in lab.store.get_run(oom).error
    assert lab.store.get_run(after).status == Status.FINISHED


def test_concurrency_limit(lab: Lab) -> None:
    ids = [submit(lab, f"r{i}", **{**TINY, "num_epochs": 3.0}) for i in range(3)]
    worker = start_worker(lab, "--max-concurrent", "2", "--exit-when-idle")
    most = 0
    while worker.poll() is None:
        most = max(most, len(lab.store.list_runs(statuses=[Status.RUNNING])))
        time.sleep(0.1)
    assert most == 2
    assert [lab.store.get_run(i).status for i in ids] == [Status.FINISHED] * 3


def test_one_worker_per_data_folder_known_to_the_store_by_its_lease(lab: Lab) -> None:
    with running_worker(lab) as first:
        wait_for(lambda: worker_alive(lab.data), 20, "the first worker")
        second = start_worker(lab)
        out, _ = second.communicate(timeout=30)
        assert second.returncode == 1 and b"already running" in out
        [lease] = live_workers(lab.store)  # the one serving: the second never counted
        assert (lease.host, lease.pid, lease.slots) == (this_host(), first.pid, 1)
        renewed = lease.renewed_at
        wait_for(lambda: live_workers(lab.store)[0].renewed_at > renewed, 2 * LEASE_S, "the lease to be renewed")
    assert live_workers(lab.store) == []  # a worker that stops ends its lease at once


def test_cancel_is_graceful_and_the_run_can_be_resumed(lab: Lab) -> None:
    store = lab.store
    run_id = submit(lab, "long", **LONG)
    folder = lab.data.run(run_id)
    with running_worker(lab):
        wait_for(lambda: store.latest_metrics([run_id]).get(run_id, {}).get("accuracy") is not None, what="an eval")
        service.cancel(lab, run_id)
        wait_for(lambda: store.get_run(run_id).status == Status.CANCELLED, 60, "cancelled")
        run = store.get_run(run_id)
        assert 0 < run.progress < 1
        assert folder.checkpoint_state.exists()
        assert folder.model.exists()  # what was trained is saved
        stopped_at = json.loads(folder.checkpoint_state.read_text())["step"]
        service.resume(lab, run_id)
        wait_for(lambda: store.get_run(run_id).status == Status.FINISHED, 420, "the resumed run to finish")
        steps = sorted({p.step for p in store.read_metrics(run_id, names=["train_loss"])})
        assert steps == list(range(1, steps[-1] + 1)) and steps[-1] > stopped_at  # no gaps, no duplicates
        assert len(store.read_metrics(run_id, names=["train_loss"])) == len(steps)
        assert store.get_run(run_id).resume_count == 1


def test_worker_killed_mid_run_then_restart_and_resume(lab: Lab) -> None:
    store = lab.store
    run_id = submit(lab, "long", **LONG)
    worker = start_worker(lab)
    wait_for(lambda: lab.data.run(run_id).checkpoint_state.exists(), what="a checkpoint")
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    written = len(store.read_metrics(run_id))
    wait_for(lambda: store.get_run(run_id).status == Status.INTERRUPTED, 30, "interrupted")
    assert len(store.read_metrics(run_id)) >= written  # every point written before the kill is still there
    with running_worker(lab):
        assert store.get_run(run_id).status == Status.INTERRUPTED
        service.resume(lab, run_id)
        wait_for(lambda: store.get_run(run_id).status == Status.FINISHED, 420, "the resumed run to finish")
        assert store.get_run(run_id).resume_count == 1


def test_run_whose_process_dies_with_its_worker_becomes_interrupted(lab: Lab) -> None:
    store = lab.store
    run_id = submit(lab, "long", **LONG)
    worker = start_worker(lab)
    wait_for(lambda: store.read_metrics(run_id), what="first points")
    child = store.get_run(run_id).pid
    assert child is not None and pid_alive(child)
    os.kill(worker.pid, signal.SIGKILL)
    os.killpg(child, signal.SIGKILL)  # the whole run dies too: nobody is left to say so
    worker.wait()
    assert store.get_run(run_id).status == Status.RUNNING  # until a worker looks
    restarted = start_worker(lab, "--exit-when-idle")
    restarted.communicate(timeout=60)
    run = store.get_run(run_id)
    assert run.status == Status.INTERRUPTED and "resume" in run.error


def test_two_process_data_parallel_run_on_the_cpu(lab: Lab) -> None:
    run_id = submit(lab, "ddp", **{**TINY, "num_processes": 2})
    run_worker_until_idle(lab)
    run = lab.store.get_run(run_id)
    assert run.status == Status.FINISHED, run.error
    assert any("2 process(es)" in e.message for e in lab.store.read_events(run_id))
    # 13 batches of 16 shared by 2 processes: 6 steps each (one process alone would take 13)
    assert run.summary.steps == run.summary.total_steps == 6
    train_steps = [p.step for p in lab.store.read_metrics(run_id, names=["train_loss"])]
    assert train_steps == [1, 2, 3, 4, 5, 6]  # written once per step, by the main process only
    accuracy = lab.store.read_metrics(run_id, names=["accuracy"])
    assert [p.step for p in accuracy] == [2, 4, 6]  # about five evaluations: every ceil(6 / 5) = 2 steps
    confusion = run.summary.confusion
    assert sum(map(sum, confusion)) == 50  # every eval example counted once, gathered from both processes
    correct = sum(confusion[i][i] for i in range(len(confusion)))
    assert 0.0 <= accuracy[-1].value <= 1.0 and accuracy[-1].value == pytest.approx(correct / 50)


def test_describe_exit_says_why_in_plain_words() -> None:
    killed = describe_exit(-signal.SIGKILL, "step 12 of 40")
    assert "killed by SIGKILL" in killed and "run out of memory" in killed and killed.endswith("step 12 of 40")
    assert describe_exit(1, "RuntimeError: CUDA out of memory.").startswith("out of memory: lower the batch size")
    crash = describe_exit(2, "Traceback (most recent call last):\nValueError: bad column")
    assert crash == "the run's process exited with code 2:\nTraceback (most recent call last):\nValueError: bad column"


def test_a_run_trains_through_the_worker_on_a_postgresql_store(tmp_path: Path, postgres_database: str) -> None:
    """The same worker, run process and CLI against a PostgreSQL store: nothing but the URL changes."""
    with Lab.open(tmp_path / "pg-lab", postgres_database) as lab:
        run_id = submit(lab, "on postgres", **SHORT)
        run_worker_until_idle(lab, "--store", postgres_database)
        run = lab.store.get_run(run_id)
        assert run.status == Status.FINISHED, run.error
        steps = [p.step for p in lab.store.read_metrics(run_id, names=["train_loss"])]
        assert steps == list(range(1, run.summary.total_steps + 1))  # every step's point, once
        assert lab.data.run(run_id).model.is_dir()  # the files stay in the data folder: the store keeps rows
        command = [sys.executable, "-m", "bert_lab", "runs", "--json", "--home", str(lab.data.path)]
        listed = subprocess.run([*command, "--store", postgres_database], capture_output=True, text=True, check=True)
        assert [(r["id"], r["status"]) for r in json.loads(listed.stdout)] == [(run_id, "finished")]


def test_workers_on_two_hosts_share_one_queue_and_a_lost_hosts_run_resumes_on_the_other(
    tmp_path: Path, postgres_database: str
) -> None:
    """Two machines (two workers with their own host names and scratch folders) share one PostgreSQL store and one
    artifact root. Host A is lost mid-run (its worker and its run killed with SIGKILL): once the run's lease (its
    heartbeat) expires, host B's worker marks it interrupted; resumed, host B trains it to the end from the
    checkpoint on the shared root, every step's point written exactly once."""
    shared = tmp_path / "shared"  # the artifact root both machines mount
    lease_s = 5.0

    def worker_on(host: str) -> subprocess.Popen[bytes]:
        scratch = tmp_path / f"scratch-{host}"
        cmd = [sys.executable, "-m", "bert_lab", "worker", "--home", str(scratch), "--store", postgres_database]
        cmd += ["--artifacts", str(shared), "--stale-after-s", str(lease_s)]
        env = {**os.environ, "BERT_LAB_HOST": host}
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    with Lab.open(tmp_path / "app-host", postgres_database, shared) as lab:
        store = lab.store
        ids = [submit(lab, f"run {i}", **dict(LONG, train_size=800)) for i in range(4)]  # 150 steps each
        host_a, host_b = worker_on("host-a"), worker_on("host-b")
        try:
            running = wait_for(
                lambda: (
                    (r := store.list_runs(statuses=[Status.RUNNING]))
                    and {x.host for x in r} == {"host-a", "host-b"}
                    and r
                ),
                120,
                "both hosts to train at once",
            )
            assert {w.host for w in live_workers(store)} == {"host-a", "host-b"}  # the app sees both machines
            victim = next(r for r in running if r.host == "host-a")
            wait_for(lambda: lab.data.run(victim.id).checkpoint_state.exists(), 120, "a checkpoint on the shared root")
            os.kill(host_a.pid, signal.SIGKILL)  # host A is lost: its worker, and its run with it
            os.killpg(store.get_run(victim.id).pid, signal.SIGKILL)
            host_a.wait()
            lost_at = time.time()
            wait_for(lambda: store.get_run(victim.id).status == Status.INTERRUPTED, 60, "the run's lease to expire")
            assert time.time() - lost_at >= lease_s - 1  # by its lease, not by a process id
            wait_for(lambda: [w.host for w in live_workers(store)] == ["host-b"], 2 * LEASE_S, "A's lease to expire")
            service.resume(lab, victim.id)
            wait_for(lambda: all(store.get_run(i).status == Status.FINISHED for i in ids), 480, "every run to finish")
        finally:
            for worker in (host_a, host_b):
                worker.kill()
                worker.wait()
        resumed = store.get_run(victim.id)
        assert (resumed.host, resumed.resume_count) == ("host-b", 1)
        steps = [p.step for p in store.read_metrics(victim.id, names=["train_loss"])]
        assert steps == list(range(1, resumed.summary.total_steps + 1))  # none lost, none twice
        started_on = {
            e.message.split()[2] for i in ids for e in store.read_events(i) if e.message.startswith("started on")
        }
        assert started_on == {"host-a", "host-b"}  # the queue was shared
        assert lab.data.run(victim.id).has_model and not (tmp_path / "app-host" / "runs").exists()  # on the shared root


def test_a_new_worker_says_when_it_is_warm_and_an_old_mark_is_not_believed(lab: Lab) -> None:
    """What `make run` waits for before serving pages: the worker started and its spare run process ready (torch
    imported), so the first page view does not compete with that start."""
    lab.data.path.mkdir(parents=True, exist_ok=True)
    lab.data.worker_warm.write_text("1")  # left by a worker of an earlier session
    assert not wait_until_warm(DataFolder(lab.data.path / "elsewhere"), timeout_s=0.3)  # no worker there: times out
    assert ensure_worker(lab)
    try:
        assert not lab.data.worker_warm.exists()  # the old mark is gone before the new worker could write one
        assert wait_until_warm(lab.data, timeout_s=60)
        spare = int(lab.data.worker_warm.read_text())
        assert pid_alive(spare) and "torch" in Path(f"/proc/{spare}/maps").read_text()  # standing by, warm
        assert [w.host for w in live_workers(lab.store)] == [this_host()]
    finally:
        worker_pid = int(wait_for(lambda: lab.data.worker_lock.read_text().strip(), 10, "the worker's pid"))
        os.killpg(worker_pid, signal.SIGTERM)
        wait_for(lambda: not pid_alive(worker_pid), 30, "the worker to stop")
    wait_for(lambda: not pid_alive(spare), 30, "its spare to stop with it")


# --- stopping and restarting a worker ---------------------------------------------------------------------------------
def bert_lab(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bert_lab", *args, "--home", str(lab.data.path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_stop_ends_the_worker_and_its_runs_stop_where_they_are_resumable(lab: Lab) -> None:
    """`python -m bert_lab stop` (`make stop`): the worker goes, and the run it trained stops at its current step with
    a checkpoint (SIGTERM reaches it too), `interrupted`, with no process of the lab left."""
    run_id = submit(lab, "long", **LONG)
    start_worker(lab)
    wait_for(lambda: lab.store.read_metrics(run_id, names=["train_loss"]), what="first points")
    worker, child = worker_pid(lab.data), lab.store.get_run(run_id).pid
    assert worker and child
    done = bert_lab(lab, "stop")
    assert done.returncode == 0 and f"pid {worker}" in done.stdout, done.stdout + done.stderr
    assert not pid_alive(worker) and not pid_alive(child) and worker_pid(lab.data) is None
    run = lab.store.get_run(run_id)
    assert run.status == Status.INTERRUPTED and lab.data.run(run_id).checkpoint_state.exists()
    assert json.loads(lab.data.run(run_id).checkpoint_state.read_text())["step"] == run.summary.eval_step
    assert "no worker serves" in bert_lab(lab, "stop").stdout


def test_a_worker_under_restart_is_started_again_when_it_dies(lab: Lab) -> None:
    """`python -m bert_lab worker --restart` (a GPU host without systemd): a worker killed by the system comes back,
    still serving the queue; a worker stopped on purpose ends the loop."""
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "bert_lab", "worker", "--restart", "--home", str(lab.data.path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = int(wait_for(lambda: worker_pid(lab.data), 60, "the first worker"))  # type: ignore[arg-type]
        os.kill(first, signal.SIGKILL)
        second = int(wait_for(lambda: (pid := worker_pid(lab.data)) != first and pid, 60, "a new worker"))  # type: ignore[arg-type]
        run_id = submit(lab, "after the restart", **SHORT)
        wait_for(lambda: lab.store.get_run(run_id).status == Status.FINISHED, 120, "the queue served again")
        assert bert_lab(lab, "stop").returncode == 0 and not pid_alive(second)
        assert supervisor.wait(timeout=30) == 0
        assert "exited with code -9; starting it again" in supervisor.stderr.read()  # type: ignore[union-attr]
    finally:
        supervisor.kill()
        if pid := worker_pid(lab.data):
            os.kill(pid, signal.SIGKILL)


def test_the_systemd_unit_restarts_a_worker_and_lets_its_runs_stop_resumably() -> None:
    """docs/bert-lab-worker.service: what it starts is the CLI's worker (it answers `--help`), restarted whatever
    ended it, stopped by SIGTERM to each process of the unit (the worker's and each run's handler), then killed."""
    import configparser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((Path(__file__).parents[1] / "docs" / "bert-lab-worker.service").read_text())
    service = unit["Service"]
    assert (service["Restart"], service["KillMode"], service["KillSignal"]) == ("always", "control-group", "SIGTERM")
    command, *args = service["ExecStart"].split()
    assert command.endswith("/.venv/bin/bert-lab") and args == ["worker"]  # the console script `pip install` makes
    assert "BERT_LAB_STORE" not in service["ExecStart"] and "EnvironmentFile" in service  # the URL stays off `ps`
    here = Path(sys.executable).with_name("bert-lab")  # this venv's
    done = subprocess.run([here, *args, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--restart" in done.stdout
