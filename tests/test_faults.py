"""Faults, caused for real: the suite's PostgreSQL stopped mid-run and started again on the same port, SQLite's write
lock held for longer than its busy timeout, fresh stores opened at once, COMMITs whose answer is lost; and the store's
password kept off every command line and out of every message.

The tests that stop a server stop one of their own (`outage_server`), so no other test sees the outage."""

from __future__ import annotations

import functools
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import psycopg
import pytest
from local_postgres import LocalPostgres
from waiting import wait_for

from bert_lab.core.config import RunConfig
from bert_lab.core.metrics import EVAL_METRICS, STEP_METRICS
from bert_lab.engine.reports import EvalRecord, StepRecord
from bert_lab.processes import runner
from bert_lab.processes.executor import LocalExecutor, pid_alive
from bert_lab.processes.runner import StoreReporter
from bert_lab.processes.worker import Worker, ensure_worker, live_workers
from bert_lab.runs import service
from bert_lab.runs import sqlite as sqlite_module
from bert_lab.runs.backends import open_store
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.store import MASK, RunStore, StoreError, StoreUnavailable, masked, redacted

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

TINY = dict(model="tiny", dataset="sms_spam", eval_size=50, max_length=32, batch_size=16, precision="fp32")
SHORT = dict(TINY, train_size=64, eval_size=32)  # 4 steps
OUTAGE_S = 60.0
PROBE = dict(TINY, train_size=1600)  # 100 steps: how fast this machine trains now (5 to 50 steps/s were seen)


def through_an_outage(steps_per_s: float) -> RunConfig:
    """A run that trains on through a 60 s outage and well after it at `steps_per_s`: about 2.5 outages long."""
    steps = max(250, round(steps_per_s * 2.5 * OUTAGE_S))
    return RunConfig(**TINY, train_size=2000, num_epochs=steps / 125, eval_every_steps=max(25, steps // 25))


PASSWORD = "s3cret-Pw_" + uuid.uuid4().hex[:8]


def step(n: int, total: int) -> StepRecord:
    return StepRecord(n, total, n / total, 0.1 * n, 0.7, 1e-4, 1.0, 30.0)


def evaluation(n: int) -> EvalRecord:
    return EvalRecord(n, 0.5, 0.1 * n, 0.5, 0.75, 0.7, 0.65, 0.6, [[1, 0], [0, 1]], 42.0, 0.01)


def losses(store: RunStore, run_id: int) -> list[int]:
    return [p.step for p in store.read_metrics(run_id, names=["train_loss"])]


@contextmanager
def write_lock_held(db: Path, seconds: float) -> Iterator[None]:
    """Another connection takes SQLite's write lock (`BEGIN IMMEDIATE`) and keeps it for `seconds`."""
    taken = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait()
    try:
        yield
    finally:
        holder.join()


@pytest.fixture(scope="module")
def outage_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """A PostgreSQL server of this module's own, for the tests that stop it."""
    server = LocalPostgres(tmp_path_factory.mktemp("outage-postgres"))
    yield server
    try:
        server.stop()
    except subprocess.CalledProcessError:
        pass  # already stopped


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.sqlite'}"
    return request.getfixturevalue("postgres_database")


# --- the retry layer --------------------------------------------------------------------------------------------------
def test_every_store_method_retries_and_only_the_outermost_call_does(url: str) -> None:
    names = [n for n in vars(RunStore) if not n.startswith("_") and callable(vars(RunStore)[n])]
    store = open_store(url)
    try:
        for name in set(names) - {"close"}:
            assert hasattr(getattr(type(store), name), "__wrapped__"), f"{name} does not retry"
        outside: list[int] = []
        threading.Thread(target=lambda: outside.append(store._retry_attempt)).start()  # a thread that never called
        calls: list[int] = []
        store._retrying(lambda: calls.append(store._retry_attempt) or store.create_run({}))
        assert calls == [1]  # create_run inside it (and its own get_run) ran as part of that one attempt
        wait_for(lambda: outside, timeout_s=5)
        assert outside == [0] and store._retry_attempt == 0  # outside any call, before and after
        assert store.reachable_since == 0.0  # it never failed
    finally:
        store.close()


def lose_next_commit(backend: str, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Make the next COMMIT happen on the server but its answer never arrive (the connection drops right after):
    the outside world patched (psycopg's transaction, sqlite3's connection). Returns the flag to arm it."""
    armed: list[bool] = []
    if backend == "postgresql":
        original = psycopg.Transaction.__exit__

        def commit_then_lose(self: psycopg.Transaction, *exc: object) -> object:
            result = original(self, *exc)
            if exc[0] is None and armed:
                armed.pop()
                raise psycopg.OperationalError("server closed the connection unexpectedly")
            return result

        monkeypatch.setattr(psycopg.Transaction, "__exit__", commit_then_lose)
        return armed

    class LosingCommit(sqlite3.Connection):
        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
            cursor = super().execute(sql, *args)
            if sql == "COMMIT" and armed:
                armed.pop()
                raise sqlite3.OperationalError("database is locked")
            return cursor

    monkeypatch.setattr(sqlite3, "connect", functools.partial(sqlite3.connect, factory=LosingCommit))
    return armed


def test_a_write_whose_commit_answer_is_lost_lands_exactly_once(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = url.partition(":")[0]
    armed = lose_next_commit(backend, monkeypatch)
    with open_store(url, patience_s=30) as store:
        run = store.create_run({})
        assert store.claim_run(run.id, pid=1, host="h")
        points = [(n, 0.1, 0.2, "train_loss", 0.5) for n in range(1, 6)]
        armed.append(True)
        store.add_metrics(run.id, iter(points), batch=("reporter-a", 1))  # a one-shot iterator, read once for both
        assert losses(store, run.id) == [1, 2, 3, 4, 5]  # committed by the first attempt, skipped by the retry
        assert not store.add_metrics(run.id, points, batch=("reporter-a", 1))  # the same batch again: skipped
        assert store.add_metrics(run.id, points[:1], batch=("reporter-b", 1))  # another writer's batch counts
        assert losses(store, run.id) == [1, 2, 3, 4, 5, 1]
        armed.append(True)
        assert store.set_status(run.id, Status.FINISHED).status == Status.FINISHED  # not "finished to finished"
        second = store.create_run({})
        armed.append(True)
        assert store.claim_run(second.id, pid=1, host="h") is not None  # its own claim, recognised on the retry
        assert store.reachable_since > 0


def test_a_locked_sqlite_store_waits_for_the_lock_then_gives_up_at_its_patience(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_S", 0.2)
    db = tmp_path / "runs.sqlite"
    with open_store(f"sqlite:///{db}", patience_s=20) as store:
        with write_lock_held(db, 1.5):  # seven busy timeouts
            started = time.monotonic()
            run = store.create_run({"lr": 0.1})
        assert time.monotonic() - started >= 1.0 and store.get_run(run.id).config == {"lr": 0.1}
    waits: list[float] = []
    with open_store(f"sqlite:///{db}", patience_s=0.5, on_wait=lambda s, e: waits.append(s)) as impatient:
        with (
            write_lock_held(db, 2.0),
            pytest.raises(StoreUnavailable, match=r"unreachable \(retried for [01] s\).*database is locked"),
        ):
            impatient.create_run({})
        assert waits and all(0 <= s < 1.5 for s in waits), waits  # seconds since the call began
        assert impatient.list_runs()[0].id == run.id  # told while waiting; fine once the lock is gone


def test_fresh_sqlite_stores_opened_at_once_never_fail(tmp_path: Path) -> None:
    """The finding: a worker and a sweep started together on a new data folder, one died at `PRAGMA journal_mode =
    WAL` with "database is locked" (SQLite answers that at once, without waiting, when two connections switch a new
    file to WAL together). Here four connections (each its own, as processes have) open fresh stores at once, many
    times over."""
    errors: list[str] = []
    for round_ in range(40):
        db = tmp_path / f"fresh-{round_}" / "runs.sqlite"
        start = threading.Barrier(4)

        def open_one(db: Path = db, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                with open_store(f"sqlite:///{db}") as store:
                    store.create_run({})
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=open_one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        with open_store(f"sqlite:///{db}") as store:
            assert len(store.list_runs()) == 4


def test_fresh_sqlite_stores_opened_by_processes_at_once(tmp_path: Path) -> None:
    code = (
        "import sys, time\nfrom bert_lab.runs.backends import open_store\n"
        "while time.time() < float(sys.argv[2]): pass\n"
        "s = open_store(f'sqlite:///{sys.argv[1]}'); s.create_run({}); s.close()\n"
    )
    for round_ in range(3):
        db, at = tmp_path / f"p{round_}" / "runs.sqlite", str(time.time() + 2.0)
        procs = [subprocess.Popen([sys.executable, "-c", code, str(db), at], stderr=subprocess.PIPE) for _ in range(3)]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err.decode()


# --- the run's reporter -----------------------------------------------------------------------------------------------
def claimed(lab: Lab) -> int:
    run = service.submit(lab, RunConfig(**SHORT), name="reports")
    assert lab.store.claim_run(run.id, pid=os.getpid(), device="cpu")
    return run.id


def test_a_run_reporting_through_a_held_sqlite_lock_loses_nothing_and_keeps_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_S", 0.3)
    with Lab.open(tmp_path / "lab", patience_s=120) as lab:
        run_id = claimed(lab)
        reporter = StoreReporter(lab.store, run_id, worker_pid=None).start()
        hooks = reporter.hooks()
        for n in range(1, 11):
            hooks.on_step(step(n, 60))
        with write_lock_held(lab.data.sqlite, 8.0):  # 26 busy timeouts: every write meanwhile fails and is retried
            held_at = time.monotonic()
            for n in range(11, 61):
                hooks.on_step(step(n, 60))
                if n % 10 == 0:
                    hooks.on_eval(evaluation(n))
            training_held_s = time.monotonic() - held_at
        released = time.time()
        wait_for(lambda: lab.store.get_run(run_id).heartbeat_at > released, 10, "the heartbeat to resume")
        reporter.close()
        assert training_held_s < runner.EVAL_WAIT_S + 1.5  # one evaluation waited its most; none after it
        assert losses(lab.store, run_id) == list(range(1, 61))  # every step once
        accuracy = [p.step for p in lab.store.read_metrics(run_id, names=["accuracy"])]
        assert accuracy == [20, 30, 40, 50, 60]


def test_past_its_bound_the_reporter_thins_steps_and_keeps_every_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_S", 0.1)
    monkeypatch.setattr(runner, "EVAL_WAIT_S", 0.2)
    with Lab.open(tmp_path / "lab", patience_s=0.3) as lab:  # gives up fast: the store stays away while we train
        run_id = claimed(lab)
        reporter = StoreReporter(lab.store, run_id, worker_pid=None)
        reporter.max_points = 40 * len(STEP_METRICS)  # 40 steps' worth
        reporter.start()
        with write_lock_held(lab.data.sqlite, 3.0):
            for n in range(1, 201):
                reporter.on_step(step(n, 200))
                if n % 50 == 0:
                    reporter.on_eval(evaluation(n))
            buffered = len(reporter._points)
        reporter.close()
        kept = losses(lab.store, run_id)
        assert buffered <= reporter.max_points + len(EVAL_METRICS)
        assert len(kept) == len(set(kept)) and kept == sorted(kept)  # each kept step once, in order
        assert 20 <= len(kept) <= 60 and kept[0] == 1 and kept[-1] > 150  # the whole span, thinned
        assert [p.step for p in lab.store.read_metrics(run_id, names=["f1"])] == [50, 100, 150, 200]  # all kept
        assert any("dropped to stay within" in e.message for e in lab.store.read_events(run_id))


# --- the worker -------------------------------------------------------------------------------------------------------
def test_a_worker_pass_survives_an_unreachable_store_and_goes_on(
    tmp_path: Path, outage_server: LocalPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    url = outage_server.create_database()
    with Lab.open(tmp_path / "lab", url, patience_s=1.0) as lab:
        worker = Worker(lab, executor=LocalExecutor(lab, warm_spare=False))
        assert worker.step()
        outage_server.stop()
        try:
            assert not worker.step() and not worker.step()  # no exception: the pass ends, the next one tries again
        finally:
            outage_server.start()
        assert worker.step() and worker.unreachable_since is None
        said = [r.getMessage() for r in caplog.records if r.name == "bert_lab.processes.worker"]
        assert len(said) == 2 and "unreachable" in said[0] and "reachable again" in said[1]  # once, and when back
        assert f"127.0.0.1:{outage_server.port}" in said[0]  # which store


def test_after_an_outage_runs_leases_count_from_when_the_store_came_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_S", 0.1)
    with Lab.open(tmp_path / "lab", patience_s=60) as lab:
        run_id = claimed(lab)  # made a run of another machine, silent through the outage:
        with sqlite3.connect(lab.data.sqlite) as conn:
            conn.execute("UPDATE runs SET host = 'elsewhere', heartbeat_at = ? WHERE id = ?", (time.time() - 5, run_id))
        worker = Worker(lab, executor=LocalExecutor(lab, warm_spare=False), stale_after_s=2.0)
        with write_lock_held(lab.data.sqlite, 1.0):
            worker.step()  # waits out the lock: the store was away for this worker
        assert lab.store.reachable_since > 0
        assert worker.recover_lost_runs() == []  # silent for 6 s, but the store came back just now
        time.sleep(2.5)
        assert worker.recover_lost_runs() == [run_id]  # still silent two seconds after: lost


# --- a 60-second PostgreSQL outage mid-run ----------------------------------------------------------------------------
def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def test_a_worker_and_its_run_ride_through_a_60_s_postgresql_outage(
    tmp_path: Path, outage_server: LocalPostgres
) -> None:
    """The finding: the server stopped for 15 s mid-run killed the worker and the run's process, and the run said
    `running` forever. Now: 60 s, and the run trains on, stores every step's loss point exactly once, and finishes;
    the worker serves on."""
    url = outage_server.create_database()
    with Lab.open(tmp_path / "lab", url, patience_s=180) as lab:
        probe = service.submit(lab, RunConfig(**PROBE), name="probe").id
        command, env = lab.command("worker")
        worker = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            measured = wait_for(lambda: (r := lab.store.get_run(probe)).status == Status.FINISHED and r, 180, "probe")
            steps_per_s = measured.summary.steps / measured.summary.train_s  # type: ignore[union-attr]
            run_id = service.submit(lab, through_an_outage(steps_per_s), name="through an outage").id
            wait_for(lambda: len(losses(lab.store, run_id)) >= 5, 180, "the run to train a few steps")
            pid = lab.store.get_run(run_id).pid
            outage_server.stop()
            stopped_at, cpu_before = time.time(), cpu_s(pid)
            time.sleep(OUTAGE_S)
            assert worker.poll() is None and pid_alive(pid), "the worker or the run died in the outage"
            trained_s = cpu_s(pid) - cpu_before
            outage_server.start()
            back_at = time.time()
            assert trained_s > OUTAGE_S / 4, f"the run trained only {trained_s:.1f} CPU s in the outage"
            run = wait_for(
                lambda: (r := lab.store.get_run(run_id)).status != Status.RUNNING and r, 400, "the run to end"
            )
            assert run.status == Status.FINISHED, run.error
            total = run.summary.total_steps
            assert losses(lab.store, run_id) == list(range(1, total + 1))  # every step's point, exactly once
            evals = [p.step for p in lab.store.read_metrics(run_id, names=["accuracy"])]
            assert evals == sorted(set(evals)) and evals[-1] == total  # each evaluation once
            last = lab.store.read_metrics(run_id, names=["train_loss"])[-1]
            assert run.started_at + last.elapsed_s > back_at, "the run finished training in the outage: lengthen it"
            assert stopped_at < back_at
            # The worker still serves: its lease renewed, and a new run trains.
            wait_for(lambda: [w.pid for w in live_workers(lab.store)] == [worker.pid], 30, "the worker's lease")
            after = service.submit(lab, RunConfig(**SHORT), name="after the outage").id
            wait_for(lambda: lab.store.get_run(after).status == Status.FINISHED, 180, "a run after the outage")
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
            for run in lab.store.list_runs(statuses=[Status.RUNNING]):
                if run.pid and pid_alive(run.pid):
                    os.killpg(run.pid, signal.SIGKILL)


# --- credentials ------------------------------------------------------------------------------------------------------
def test_a_store_url_is_shown_with_its_password_masked() -> None:
    assert redacted("postgresql://ana:pw%40x@db.lan:5432/lab") == f"postgresql://ana:{MASK}@db.lan:5432/lab"
    assert redacted("postgresql://ana@db.lan/lab?password=pw&sslmode=require") == (
        f"postgresql://ana@db.lan/lab?password={MASK}&sslmode=require"
    )
    assert redacted("postgresql://ana@db.lan/lab") == "postgresql://ana@db.lan/lab"  # nothing to hide
    assert redacted("sqlite:////data/runs.sqlite") == "sqlite:////data/runs.sqlite"
    assert "pw" not in redacted("postgresql://ana:pw@[broken")  # unreadable: nothing of it shown
    assert redacted("postgresql://ana:pw@db/lab?application_name=&password=x") == (
        f"postgresql://ana:{MASK}@db/lab?application_name=&password={MASK}"  # a blank parameter kept
    )
    assert redacted("postgresql:///lab?host=db&password=pw") == f"password={MASK} dbname=lab host=db"  # no netloc
    assert masked("x pw%2525 y pw%25 z", "postgresql://ana:pw%2525@db/lab") == f"x {MASK} y {MASK} z"  # longest first
    assert masked("x pw@x y", "postgresql://ana:pw%40x@[broken") == f"x {MASK} y"  # decoded, psycopg unable to read
    assert masked("password pw!", "postgresql://ana@db/lab?password=pw!") == f"password {MASK}"  # in the query
    url = "postgresql://ana:pw%40x@db.lan/lab"
    assert masked(f"failed at {url}: password pw@x is wrong (pw%40x)", url) == (
        f"failed at postgresql://ana:{MASK}@db.lan/lab: password {MASK} is wrong ({MASK})"
    )


def with_password(server: LocalPostgres) -> str:
    """A new database owned by a new role with a password (trust authentication takes any password: what matters
    is where the password travels)."""
    role = f"lab_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
        admin.execute(f"CREATE DATABASE {role} OWNER {role}")
    return f"postgresql://{role}:{PASSWORD}@127.0.0.1:{server.port}/{role}"


def test_a_store_that_refuses_the_lab_says_so_at_once_rather_than_waiting_out_the_patience(
    postgres_server: LocalPostgres,
) -> None:
    """A wrong password, role or database is no outage: a worker (30 min of patience) must not sit it out silently."""
    started = time.monotonic()
    for url, said in [
        (with_password(postgres_server).rsplit("/", 1)[0] + "/no_such_db", 'database "no_such_db" does not exist'),
        (f"postgresql://nobody:{PASSWORD}@127.0.0.1:{postgres_server.port}/postgres", 'role "nobody" does not exist'),
    ]:
        with pytest.raises(StoreError, match="refused this lab") as caught:
            open_store(url, patience_s=600)
        assert said in str(caught.value) and PASSWORD not in str(caught.value)
        assert not isinstance(caught.value, StoreUnavailable)
    assert time.monotonic() - started < 30


def test_the_store_password_is_on_no_command_line_and_in_no_message(
    tmp_path: Path, postgres_server: LocalPostgres
) -> None:
    url = with_password(postgres_server)
    with Lab.open(tmp_path / "lab", url) as lab:
        assert PASSWORD not in " ".join(lab.command("worker")[0]) and url in lab.command("worker")[1].values()
        run_id = service.submit(lab, RunConfig(**SHORT), name="secret").id
        assert ensure_worker(lab)
        seen: dict[int, str] = {}

        def look() -> None:  # every process of the worker's tree, now
            root = int(wait_for(lambda: lab.data.worker_lock.read_text().strip(), 30, "the worker's pid"))
            for process in [psutil.Process(root), *psutil.Process(root).children(recursive=True)]:
                try:
                    seen[process.pid] = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode(errors="replace")
                except (OSError, psutil.Error):
                    pass

        try:
            wait_for(lambda: lab.store.get_run(run_id).status == Status.RUNNING, 120, "the run to start")
            look()
            wait_for(lambda: lab.store.get_run(run_id).status == Status.FINISHED, 180, "the run to finish")
            wait_for(lambda: lab.data.worker_warm.exists(), 60, "the warm spare")
            look()
            run_pid_seen = any("bert_lab.processes.job" in line for line in seen.values())
            assert run_pid_seen and len(seen) >= 2, seen
            leaks = {pid: line for pid, line in seen.items() if PASSWORD in line}
            assert not leaks, leaks
        finally:
            root = int(lab.data.worker_lock.read_text().strip())
            os.killpg(root, signal.SIGTERM)
            wait_for(lambda: not pid_alive(root), 30, "the worker to stop")
        logs = [lab.data.worker_log, lab.data.standby_log, lab.data.run(run_id).log]
        assert not [log for log in logs if log.exists() and PASSWORD in log.read_text(errors="replace")]
    nowhere = url.replace(f":{postgres_server.port}/", ":1/")  # nothing listens on port 1
    with pytest.raises(StoreUnavailable) as caught:
        open_store(nowhere, patience_s=0.5)
    assert PASSWORD not in str(caught.value) and MASK in str(caught.value)


# --- pages ------------------------------------------------------------------------------------------------------------
def test_a_page_says_the_store_is_unreachable_instead_of_a_traceback(
    outage_server: LocalPostgres, monkeypatch: pytest.MonkeyPatch, open_page: Callable[..., AppTest]
) -> None:
    monkeypatch.setenv("BERT_LAB_STORE", outage_server.create_database())
    outage_server.stop()
    try:
        at = open_page("app.py", timeout=60)  # no exception
        assert any("unreachable, retrying" in w.value for w in at.warning), [w.value for w in at.warning]
    finally:
        outage_server.start()
    at.run()
    assert not at.exception and not any("unreachable" in w.value for w in at.warning)  # back by itself


def live_part_while_the_store_is_away() -> None:
    """A page whose live part (`page.live`, as the Runs, Groups, Lessons, Host and launch pages draw theirs) meets
    a store that stays away."""
    import streamlit as st

    from bert_lab.runs.store import StoreUnavailable
    from lab_ui import page

    st.title("before")

    def body() -> None:
        st.write("drawn before the store call")
        raise StoreUnavailable("the run store at postgresql://db/lab is unreachable (retried for 5 s)")

    page.live(2.0)(body)()
    st.write("after")


def test_a_pages_live_part_says_the_store_is_unreachable_and_the_page_around_it_stays() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(live_part_while_the_store_is_away).run()
    assert not at.exception
    assert any("unreachable, retrying" in w.value for w in at.warning)
    assert [t.value for t in at.title] == ["before"] and at.markdown[-1].value == "after"
