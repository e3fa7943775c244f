"""One run in its own process (`python -m bert_lab run-job ID`): train, with hooks that stream to the store.

A background thread flushes metric points to the store every half second (so the dashboard is at most about a second
behind), beats the run's heartbeat, and turns a cancel request, or the death of the worker that started us, into
`should_stop`. The training loop then ends at the current step, evaluates, checkpoints and returns. Under
`accelerate launch` only the main process (rank 0) talks to the store.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from bert_lab.config import RunConfig
from bert_lab.executor import WORKER_PID_ENV, pid_alive
from bert_lab.lr_find import RangeTest
from bert_lab.runs.describe import OUT_OF_MEMORY, looks_out_of_memory
from bert_lab.runs.placement import FRACTION_ENV
from bert_lab.runs.records import EvalRecord, Hooks, Point, StepRecord, points
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.store import RunStore

FLUSH_INTERVAL_S = 0.5


class StoreReporter:
    """Training hooks that buffer points and write them in batches from a background thread."""

    def __init__(self, store: RunStore, run_id: int, *, worker_pid: int | None) -> None:
        self.store, self.run_id, self.worker_pid = store, run_id, worker_pid
        self.stop_requested = threading.Event()
        self.orphaned = False
        self.prune_check: Callable[[], str | None] | None = None  # a search trial: is it clearly losing?
        self.pruned: str | None = None  # why it was pruned
        self._points: list[Point] = []
        self._events: list[str] = []
        self._summary: dict[str, Any] = {}
        self._progress: float | None = None
        self._evaluated = False  # an evaluation arrived since the last flush
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._closed = threading.Event()
        self._wake = threading.Event()  # flush now, without waiting for the interval
        self._thread = threading.Thread(target=self._loop, name="store-reporter", daemon=True)

    # --- hooks (called from the training loop) ----------------------------------------------------------------------
    def on_step(self, r: StepRecord) -> None:
        with self._lock:
            if self._progress is None:
                self._wake.set()  # the first loss point is the one a person is waiting for
            self._points += points(r)
            self._progress = r.step / r.total_steps
            self._summary["total_steps"] = r.total_steps

    def on_eval(self, r: EvalRecord) -> None:
        with self._lock:
            self._evaluated = True
            self._points += points(r)
            self._summary.update(confusion=r.confusion, eval_step=r.step)
        # Written now, on the training thread: every point up to this evaluation is in the store before the checkpoint
        # that follows it, so a run lost after that checkpoint resumes from it with no point missing (and a search
        # trial is judged at once).
        self.flush()

    def on_log(self, message: str) -> None:
        with self._lock:
            self._events.append(message)

    def should_stop(self) -> bool:
        return self.stop_requested.is_set()

    def hooks(self) -> Hooks:
        return Hooks(on_step=self.on_step, on_eval=self.on_eval, on_log=self.on_log, should_stop=self.should_stop)

    # --- background flushing ------------------------------------------------------------------------------------------
    def start(self) -> StoreReporter:
        self.store.heartbeat(self.run_id)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and write whatever is still buffered."""
        self._closed.set()
        self._wake.set()
        self._thread.join()
        self.flush()

    def _loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        with self._flushing:  # one flush at a time (the thread's and an evaluation's), so points keep their order
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            points, events, summary, progress = self._points, self._events, dict(self._summary), self._progress
            evaluated, self._points, self._events, self._evaluated = self._evaluated, [], [], False
        self.store.add_metrics(self.run_id, points)
        for message in events:
            self.store.add_event(self.run_id, message)
        self.store.update_run(self.run_id, summary=summary or None)
        self.store.heartbeat(self.run_id, progress=progress)
        if self.store.get_run(self.run_id).cancel_requested:
            self.stop_requested.set()
        if evaluated and self.prune_check is not None and self.pruned is None:
            self.pruned = self.prune_check()  # here, off the training thread: it reads the group's runs
            if self.pruned:
                self.stop_requested.set()
        if self.worker_pid is not None and not pid_alive(self.worker_pid):
            self.orphaned = True  # the worker died: stop cleanly with a checkpoint, so the run can be resumed
            self.stop_requested.set()


def explain_failure(exc: BaseException, config: RunConfig | None) -> str:
    """The error in plain words: out of memory gets a hint, a bad input we name ourselves (a missing CSV, a model that
    is not there) its message, anything else the last lines of its traceback."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryError) or looks_out_of_memory(text):
        sizes = f" (it was batch size {config.batch_size}, max length {config.max_length})" if config else ""
        return f"{OUT_OF_MEMORY}{sizes}. {text[:300]}"
    if isinstance(exc, ValueError) and type(exc).__module__.startswith("bert_lab."):  # DataError, ModelError, …
        return str(exc)[:2000]
    lines = traceback.format_exception(exc)
    return "".join(lines[-6:]).strip()[-2000:]


def run_job(lab: Lab, run_id: int) -> int:
    """Train run `run_id` to its end; the run's final status is written here."""
    store = lab.store
    run = store.get_run(run_id)
    folder = lab.data.run(run_id).create()
    main = int(os.environ.get("RANK", "0")) == 0
    worker = os.environ.get(WORKER_PID_ENV)
    reporter = StoreReporter(store, run_id, worker_pid=int(worker) if worker else None)
    if main and run.group_id is not None:
        group = store.get_group(run.group_id)
        if group.method == "search":
            from bert_lab.sweeps.search import prune_reason

            reporter.prune_check = lambda: prune_reason(store, group, run_id)
    if main:
        reporter.start()  # heartbeat first: importing torch and loading the model take seconds
    config: RunConfig | None = None
    range_test = RangeTest() if run.config.get("schedule") == "range_test" else None
    try:
        from bert_lab.train import train  # heavy imports, after the heartbeat is running

        if fraction := os.environ.get(FRACTION_ENV):  # sharing a GPU: this run's cap on its memory
            import torch

            if torch.cuda.is_available():
                torch.cuda.set_per_process_memory_fraction(float(fraction))

        config = RunConfig.from_dict(run.config)
        resume = folder.checkpoint_state.exists()
        if resume and main:
            step = json.loads(folder.checkpoint_state.read_text())["step"]
            store.delete_metrics_after(run_id, step)
        if range_test is None:
            result = train(config, folder=folder, hooks=reporter.hooks(), checkpoint=True, resume=resume)
        else:  # a throwaway run: no checkpoint, no model; its own stop rule
            result = train(config, hooks=range_test.hooks(reporter.hooks()))
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the store, whatever it is
        if main:
            reporter.close()
            store.set_status(run_id, Status.FAILED, error=explain_failure(exc, config))
        return 1
    if not main:
        return 0
    reporter.close()
    status, reason = result.status, result.reason
    summary: dict[str, Any] = {}
    if status == Status.CANCELLED and reporter.orphaned:
        status = Status.INTERRUPTED
    elif status == Status.CANCELLED and reporter.pruned:
        status, reason = Status.PRUNED, reporter.pruned
        shutil.rmtree(folder.checkpoint, ignore_errors=True)  # a pruned run is not resumed
    elif range_test is not None and range_test.stopped and not reporter.stop_requested.is_set():
        status, reason = Status.FINISHED, f"range test stopped: {range_test.stopped}"
    if range_test is not None and status == Status.FINISHED:
        summary["lr_find"] = {k: v for k, v in range_test.suggest().to_dict().items() if k.endswith("_lr")}
    summary |= {
        "samples_per_s": result.samples_per_s,
        "train_s": result.train_s,
        "wall_s": result.wall_s,
        "steps": result.steps,
        "total_steps": result.total_steps,
        "precision": result.precision,
        "reason": reason,
        "labels": result.label_names,
    }
    # The device stays as the worker placed it (its GPU index is the machine's; this process sees only that GPU).
    store.update_run(run_id, summary=summary, progress=result.steps / result.total_steps)
    store.set_status(run_id, status, error=None if status == Status.FINISHED else reason)
    return 0


def standby(lab: Lab) -> int:
    """A warm run process: import the heavy modules now, then wait for the worker to send a run id on stdin."""
    import bert_lab.train  # noqa: F401 - the point of standing by

    lab.data.worker_warm.write_text(str(os.getpid()))
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the worker went away without a run for us
    run_id = int(line)
    with open(lab.data.run(run_id).create().log, "ab") as log:
        os.dup2(log.fileno(), sys.stdout.fileno())
        os.dup2(log.fileno(), sys.stderr.fileno())
    return run_job(lab, run_id)
