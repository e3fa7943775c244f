"""The run's own process: `StoreReporter` against a real SQLite store, `explain_failure`, and `run_job` on the tiny
model (in this process, as `python -m bert_lab.processes.job ID` would run it)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bert_lab.core.config import RunConfig
from bert_lab.core.metrics import CATALOGUE, EVAL_METRICS, STEP_METRICS
from bert_lab.engine.reports import EvalRecord, Hooks, StepRecord
from bert_lab.engine.train import train
from bert_lab.processes.runner import FLUSH_INTERVAL_S, StoreReporter, explain_failure, run_job
from bert_lab.runs import service
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.teaching.annotate import collapse

SHORT = dict(model="tiny", dataset="sms_spam", train_size=64, eval_size=32, max_length=32, batch_size=16)  # 4 steps
SOON_S = FLUSH_INTERVAL_S * 6  # "within about a flush", with room for a busy machine
EVAL = EvalRecord(
    step=2,
    epoch=0.5,
    elapsed_s=1.25,
    loss=0.52,
    accuracy=0.75,
    precision=0.7,
    recall=0.65,
    f1=0.6,
    confusion=[[10, 2], [3, 5]],
    weight_norm=42.5,
    near_zero=0.03,
)


def step(n: int, total: int = 4) -> StepRecord:
    return StepRecord(
        step=n,
        total_steps=total,
        epoch=n / total,
        elapsed_s=0.5 * n,
        loss=0.7 - 0.1 * n,
        lr=1e-4 * n,
        grad_norm=1.5 + n,
        samples_per_s=30.0 + n,
    )


def claimed_run(lab: Lab, **changes: object) -> int:
    """A run in the store that a worker (this process) has claimed: what a run's process starts from."""
    run = service.submit(lab, RunConfig(**{**SHORT, **changes}), name="job")
    assert lab.store.claim_run(run.id, pid=os.getpid(), device="cpu")
    return run.id


def test_every_point_up_to_an_evaluation_is_stored_when_the_evaluation_returns(lab: Lab) -> None:
    """The loop checkpoints right after an evaluation; a run lost after that checkpoint resumes from it, so every
    point up to the evaluation must already be in the store (not waiting for the next flush), or it is lost."""
    run_id = claimed_run(lab)
    reporter = StoreReporter(lab.store, run_id, worker_pid=None)  # no background thread: only what the hooks write
    hooks = reporter.hooks()
    hooks.on_step(step(1))
    hooks.on_step(step(2))
    hooks.on_eval(EVAL)  # step 2's evaluation
    stored = {(p.step, p.name) for p in lab.store.read_metrics(run_id)}
    assert stored == {(n, m.name) for n in (1, 2) for m in STEP_METRICS} | {(2, m.name) for m in EVAL_METRICS}


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture(autouse=True)
def main_process_without_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """`run_job` reads who started it from the environment: here rank 0, started by no worker."""
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("BERT_LAB_WORKER_PID", raising=False)


# --- StoreReporter ----------------------------------------------------------------------------------------------------
def test_reporter_writes_step_and_eval_points_named_by_the_catalogue(lab: Lab) -> None:
    run_id = claimed_run(lab)
    before = time.time()
    reporter = StoreReporter(lab.store, run_id, worker_pid=os.getpid()).start()
    hooks = reporter.hooks()
    hooks.on_step(step(1))
    deadline = time.monotonic() + SOON_S  # the first loss point is written at once, not at the end
    while not lab.store.read_metrics(run_id, names=["train_loss"]):
        assert time.monotonic() < deadline, "the first step was not written while the run goes on"
        time.sleep(0.05)
    hooks.on_step(step(2))
    hooks.on_eval(EVAL)
    hooks.on_log("data: 64 train / 32 eval examples")
    reporter.close()

    stored = {(p.step, p.name): p for p in lab.store.read_metrics(run_id)}
    expected = {(n, m.name): getattr(step(n), m.field) for n in (1, 2) for m in STEP_METRICS}
    expected |= {(2, m.name): getattr(EVAL, m.field) for m in EVAL_METRICS}
    assert {key: p.value for key, p in stored.items()} == pytest.approx(expected)
    assert {name for _, name in stored} == {m.name for m in CATALOGUE}  # every curve, each under its own name
    assert stored[1, "train_loss"].value == pytest.approx(0.6) and stored[2, "eval_loss"].value == EVAL.loss
    assert (stored[2, "lr"].epoch, stored[2, "lr"].elapsed_s) == (0.5, 1.0)
    assert (stored[2, "f1"].epoch, stored[2, "f1"].elapsed_s) == (EVAL.epoch, EVAL.elapsed_s)
    run = lab.store.get_run(run_id)
    assert run.progress == 0.5 and run.heartbeat_at >= before
    assert (run.summary.total_steps, run.summary.eval_step, run.summary.confusion) == (4, 2, EVAL.confusion)
    assert [e.message for e in lab.store.read_events(run_id)] == ["data: 64 train / 32 eval examples"]
    assert run.status == Status.RUNNING and not reporter.should_stop()  # the run's ending is not the reporter's


def test_a_note_written_mid_run_names_the_class_not_its_number(lab: Lab) -> None:
    # The class names come with each evaluation: before the run ends (when its whole summary is written), a collapse
    # onto 'fresh' says 'fresh', not 'class 0'.
    run_id = claimed_run(lab)
    reporter = StoreReporter(lab.store, run_id, worker_pid=os.getpid()).start()
    hooks = reporter.hooks()
    hooks.on_step(step(1))
    hooks.on_eval(replace(EVAL, confusion=[[58, 0], [42, 0]], labels=("fresh", "rotten")))
    hooks.on_step(step(2))
    hooks.on_eval(replace(EVAL, step=3))  # a record without names keeps the names already known
    reporter.close()
    run = lab.store.get_run(run_id)
    assert run.status == Status.RUNNING and run.summary.labels == ["fresh", "rotten"]
    [note] = collapse(replace(run, summary=replace(run.summary, confusion=[[58, 0], [42, 0]])))
    assert "predicted 'fresh'" in note.hint


def test_the_loop_names_the_classes_in_every_evaluation() -> None:
    evaluations: list[EvalRecord] = []
    train(RunConfig(**SHORT, eval_every_steps=2), hooks=Hooks(on_eval=evaluations.append))
    assert [e.labels for e in evaluations] == [("ham", "spam"), ("ham", "spam")]


def test_reporter_turns_a_cancel_request_into_should_stop(lab: Lab) -> None:
    run_id = claimed_run(lab)
    reporter = StoreReporter(lab.store, run_id, worker_pid=os.getpid()).start()
    try:
        assert not reporter.stop_requested.wait(FLUSH_INTERVAL_S * 2)  # flushing alone asks nothing
        service.cancel(lab, run_id)
        asked = time.monotonic()
        assert reporter.stop_requested.wait(SOON_S), "the cancel request did not reach the training loop"
        assert time.monotonic() - asked < SOON_S
        assert reporter.should_stop() and not reporter.interrupted
    finally:
        reporter.close()
    assert lab.store.get_run(run_id).status == Status.RUNNING  # the loop stops; the run records its own ending


def test_reporter_stops_an_orphaned_run_when_its_worker_is_gone(lab: Lab) -> None:
    run_id = claimed_run(lab)
    reporter = StoreReporter(lab.store, run_id, worker_pid=dead_pid()).start()
    try:
        assert reporter.stop_requested.wait(SOON_S), "the worker's death did not stop the run"
        assert reporter.interrupted and reporter.should_stop()
    finally:
        reporter.close()
    assert not lab.store.get_run(run_id).cancel_requested


# --- explain_failure --------------------------------------------------------------------------------------------------
def test_out_of_memory_is_explained_with_a_hint() -> None:
    config = RunConfig(batch_size=64, max_length=256)
    text = explain_failure(MemoryError(), config)
    assert text.startswith(
        "out of memory: lower the batch size or the max length (it was batch size 64, max length 256)."
    )
    cuda = explain_failure(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), None)
    assert cuda.startswith("out of memory: lower the batch size or the max length.") and "2.00 GiB" in cuda


def test_other_failures_keep_the_end_of_their_traceback() -> None:
    def load_the_data() -> None:
        raise ValueError("column 'text' not found")

    try:
        load_the_data()
    except ValueError as exc:
        text = explain_failure(exc, RunConfig())
    assert "ValueError: column 'text' not found" in text and "load_the_data" in text
    assert "out of memory" not in text


# --- run_job ----------------------------------------------------------------------------------------------------------
def test_run_job_trains_a_tiny_run_to_finished_with_its_summary(lab: Lab) -> None:
    run_id = claimed_run(lab)
    assert run_job(lab, run_id) == 0
    run = lab.store.get_run(run_id)
    assert (run.status, run.error, run.progress, run.device) == (Status.FINISHED, None, 1.0, "cpu")
    summary = run.summary
    assert summary.steps == summary.total_steps == 4
    assert summary.samples_per_s > 0 and 0 < summary.train_s <= summary.wall_s
    assert summary.labels == ["ham", "spam"] and summary.precision in ("fp32", "bf16") and summary.reason
    assert sum(map(sum, summary.confusion)) == 32 and summary.eval_step == 4
    assert [p.step for p in lab.store.read_metrics(run_id, names=["train_loss"])] == [1, 2, 3, 4]
    folder = lab.data.run(run_id)
    assert (folder.model / "model.safetensors").exists() and folder.eval_report.exists()
    assert not folder.checkpoint.exists()  # a finished run keeps its model; the checkpoint is spent
    assert any("1 process(es)" in e.message for e in lab.store.read_events(run_id))


def test_run_job_whose_dataset_vanished_fails_with_the_error_recorded(lab: Lab, tmp_path: Path) -> None:
    source = tmp_path / "reviews.csv"
    source.write_text(
        "text,label\n" + "".join(f"review {i} was {'good' if i % 2 else 'bad'},{i % 2}\n" for i in range(40))
    )
    run_id = claimed_run(lab, dataset=str(source), train_size=20, eval_size=10)
    staged = Path(lab.store.get_run(run_id).config["dataset"])
    assert staged.parent == lab.data.uploads  # submit kept a copy: the original may go away
    staged.unlink()
    assert run_job(lab, run_id) == 1
    run = lab.store.get_run(run_id)
    assert run.status == Status.FAILED and f"data file not found: {staged}" in run.error
    assert run.pid is None and run.finished_at is not None
