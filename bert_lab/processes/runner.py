"""One run in its own process (`python -m bert_lab.processes.job ID`): train, with hooks that stream to the store.

A background thread flushes metric points to the store every half second (so the dashboard is at most about a second
behind), beats the run's heartbeat, and turns a cancel request, or the death of the worker that started us, into
`should_stop`. The training loop then ends at the current step, evaluates, checkpoints and returns. Under
`accelerate launch` only the main process (rank 0) talks to the store.

An outage of the store does not stop the run: the thread's writes wait for the store (the run opens it with a long
patience) while training goes on, its points kept in memory (at most `MAX_BUFFERED_POINTS`: past that, every second
step's points are dropped, evaluation points never, and an event says so), then written once it is back, each batch
exactly once (numbered: `RunStore.add_metrics`), and the heartbeat resumes. An evaluation waits for its points to
reach the store at most `EVAL_WAIT_S`, and not at all while the store is already away.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bert_lab.core.config import RunConfig
from bert_lab.core.metrics import STEP_METRICS
from bert_lab.engine.reports import EvalRecord, Hooks, Point, StepRecord, Stop, points
from bert_lab.processes.executor import WORKER_PID_ENV, pid_alive
from bert_lab.processes.placement import FRACTION_ENV
from bert_lab.runs.describe import DISK_FULL, OUT_OF_MEMORY, is_disk_full, looks_out_of_memory
from bert_lab.runs.records import RunSummary
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Ending, Status, ending
from bert_lab.runs.store import RunStore, StoreUnavailable
from bert_lab.teaching.lr_find import RangeTest

FLUSH_INTERVAL_S = 0.5
MAX_BUFFERED_POINTS = 100_000  # points kept while the store is away (~20 MB; at 5 a step, 20,000 steps): then thinned
EVAL_WAIT_S = 5.0  # the longest an evaluation holds training up to see its points stored
PER_STEP = frozenset(m.name for m in STEP_METRICS)


def thin(points: list[Point]) -> list[Point]:
    """`points` without every second training step's points (evaluation points all kept): the whole span of a long
    outage stays on the curves, at half the resolution each time the buffer fills."""
    steps = sorted({p[0] for p in points if p[3] in PER_STEP})
    dropped = set(steps[1::2])
    return [p for p in points if p[3] not in PER_STEP or p[0] not in dropped]


class StoreReporter:
    """Training hooks that buffer points and write them in batches from a background thread."""

    def __init__(self, store: RunStore, run_id: int, *, worker_pid: int | None) -> None:
        self.store, self.run_id, self.worker_pid = store, run_id, worker_pid
        self.stop_requested = threading.Event()
        self.interrupted = False  # stopping to be resumed: the worker went away, or SIGTERM
        self.prune_check: Callable[[], str | None] | None = None  # a search trial: is it clearly losing?
        self.pruned: str | None = None  # why it was pruned
        self.max_points = MAX_BUFFERED_POINTS
        self._points: list[Point] = []  # not yet taken into a batch
        self._batch: tuple[int, list[Point]] | None = None  # the batch being written (its number kept across tries)
        self._batches = 0  # batches numbered so far
        self._writer = uuid.uuid4().hex  # this reporter's name in the store's record of batches applied
        self._evals, self._evals_stored = 0, 0  # evaluations seen; those whose points (and all before) are stored
        self._flush_began: float | None = None  # when the flush under way began (time.monotonic)
        self._stored = threading.Condition()
        self._events: list[str] = []
        self._summary = RunSummary()
        self._progress: float | None = None
        self._evaluated = False  # an evaluation arrived since the last flush
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._closed = threading.Event()
        self._wake = threading.Event()  # flush now, without waiting for the interval
        self._thread = threading.Thread(target=self._loop, name="store-reporter", daemon=True)
        self._sigterm: Any = None  # the SIGTERM handler before `start`

    # --- hooks (called from the training loop) ----------------------------------------------------------------------
    def on_step(self, r: StepRecord) -> None:
        with self._lock:
            if self._progress is None:
                self._wake.set()  # the first loss point is the one a person is waiting for
            self._keep(points(r))
            self._progress = r.step / r.total_steps
            if self._summary.total_steps != r.total_steps:  # once: the plan does not change
                self._summary = replace(self._summary, total_steps=r.total_steps)

    def on_eval(self, r: EvalRecord) -> None:
        with self._lock:
            self._evaluated = True
            self._keep(points(r))
            # The class names come with it: a note written mid-run names the class ("fresh"), not its number.
            labels = list(r.labels) or self._summary.labels
            self._summary = replace(self._summary, confusion=r.confusion, eval_step=r.step, labels=labels)
            self._evals += 1
        # Stored before training goes on: every point up to this evaluation is in the store before the checkpoint
        # that follows it, so a run lost after that checkpoint resumes from it with no point missing (and a search
        # trial is judged at once). Unless the store is away: then training goes on, and the points follow.
        if not self._thread.is_alive():
            self.flush()
            return
        self._wake.set()
        self._wait_stored(self._evals)

    def _keep(self, new: list[Point]) -> None:
        """Buffer `new` (under the lock); thin the buffer when it is full (a long outage)."""
        self._points += new
        if len(self._points) > self.max_points:
            before = len(self._points)
            self._points = thin(self._points)
            self._events.append(
                f"the run store was unreachable: {before - len(self._points)} buffered points dropped to stay within"
                f" {self.max_points} (every second step; evaluations kept)"
            )

    def _wait_stored(self, evals: int) -> None:
        """Wait until evaluation number `evals` is stored, at most `EVAL_WAIT_S`, and no longer once a flush has
        been under way that long (the store is away)."""
        deadline = time.monotonic() + EVAL_WAIT_S
        with self._stored:
            while self._evals_stored < evals and time.monotonic() < deadline and not self._closed.is_set():
                began = self._flush_began
                if began is not None and time.monotonic() - began > EVAL_WAIT_S:
                    return
                self._stored.wait(0.05)

    def on_log(self, message: str) -> None:
        with self._lock:
            self._events.append(message)

    def interrupt(self, *_: object) -> None:
        """Stop at the current step with a checkpoint, as `interrupted`: resumable. (A signal handler too: SIGTERM.)"""
        self.interrupted = True
        self.stop_requested.set()

    def should_stop(self) -> bool:
        return self.stop_requested.is_set()

    def asked(self, step: int, range_test: RangeTest | None) -> tuple[Ending, str]:
        """Why the loop was asked to stop at `step`, as a cause and in words: an interrupt, a pruned trial, a range
        test's own rule, or else a person's cancel."""
        if self.interrupted:
            return Ending.INTERRUPTED, f"interrupted at step {step}; resume it to continue"
        if self.pruned:
            return Ending.PRUNED, self.pruned
        if range_test is not None and range_test.stopped and not self.stop_requested.is_set():
            return Ending.RANGE_TEST_DONE, f"range test stopped: {range_test.stopped}"
        return Ending.CANCELLED, f"cancelled at step {step}"

    def hooks(self) -> Hooks:
        return Hooks(on_step=self.on_step, on_eval=self.on_eval, on_log=self.on_log, should_stop=self.should_stop)

    # --- background flushing ------------------------------------------------------------------------------------------
    def start(self) -> StoreReporter:
        """Heartbeat, start flushing; while training, SIGTERM (`make stop`, a service manager) means `interrupt`."""
        self.store.heartbeat(self.run_id)
        self._thread.start()
        if threading.current_thread() is threading.main_thread():
            self._sigterm = signal.signal(signal.SIGTERM, self.interrupt)
        return self

    def close(self) -> None:
        """Stop the thread and write whatever is still buffered."""
        self._closed.set()
        self._wake.set()
        self._thread.join()
        self.flush()
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)

    def _loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()
            try:
                self.flush()
            except StoreUnavailable:
                pass  # what was not written is still buffered: the next flush tries again

    def flush(self) -> None:
        """Write what is buffered: points (exactly once), events, summary, heartbeat; see cancels and pruning."""
        with self._flushing:  # one flush at a time (the thread's and an evaluation's), so points keep their order
            self._flush_began = time.monotonic()
            try:
                self._flush()
            finally:
                self._flush_began = None

    def _flush(self) -> None:
        with self._lock:
            if self._batch is None and self._points:
                self._batches += 1
                self._batch, self._points = (self._batches, self._points), []
            batch, events, summary, progress = self._batch, self._events, self._summary, self._progress
            evaluated, evals, self._events, self._evaluated = self._evaluated, self._evals, [], False
        try:
            if batch is not None:
                self.store.add_metrics(self.run_id, batch[1], batch=(self._writer, batch[0]))
                self._batch = None
            while events:
                self.store.add_event(self.run_id, events[0])
                events.pop(0)
            self.store.update_run(self.run_id, summary=summary if summary.to_dict() else None)
            self.store.heartbeat(self.run_id, progress=progress)
            if self.store.get_run(self.run_id).cancel_requested:
                self.stop_requested.set()
            if evaluated and self.prune_check is not None and self.pruned is None:
                self.pruned = self.prune_check()  # here, off the training thread: it reads the group's runs
                if self.pruned:
                    self.stop_requested.set()
        except StoreUnavailable:
            with self._lock:  # kept for the next flush, in order
                self._events, self._evaluated = events + self._events, self._evaluated or evaluated
            raise
        if self.worker_pid is not None and not pid_alive(self.worker_pid):
            self.interrupt()  # the worker died
        with self._stored:
            self._evals_stored = max(self._evals_stored, evals)
            self._stored.notify_all()


def explain_failure(exc: BaseException, config: RunConfig | None) -> str:
    """The error in plain words: out of memory gets a hint, a bad input we name ourselves (a missing CSV, a model that
    is not there) its message, anything else the last lines of its traceback."""
    text = f"{type(exc).__name__}: {exc}"
    if is_disk_full(exc):
        return f"{DISK_FULL}. {text[:300]}"
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
        from bert_lab.engine.train import train  # heavy imports, after the heartbeat is running

        if fraction := os.environ.get(FRACTION_ENV):  # sharing a GPU: this run's cap on its memory
            import torch

            if torch.cuda.is_available():
                torch.cuda.set_per_process_memory_fraction(float(fraction))

        config = RunConfig.from_dict(run.config)
        resume = folder.complete_checkpoint() is not None  # after a kill mid-write: the last whole one
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
            why = Ending.DISK_FULL if is_disk_full(exc) else Ending.FAILED  # a full disk: its last checkpoint is whole
            store.set_status(run_id, ending(why), error=explain_failure(exc, config))
        return 1
    if not main:
        return 0
    reporter.close()
    asked, reason = reporter.asked(result.steps, range_test) if result.stop is Stop.ASKED else (None, result.reason)
    status = ending(result.stop, asked)
    summary = RunSummary.of(result, reason=reason)
    if status == Status.PRUNED:
        shutil.rmtree(folder.checkpoint, ignore_errors=True)  # a pruned run is not resumed
    if range_test is not None and status == Status.FINISHED:
        summary = replace(
            summary, lr_find={k: v for k, v in range_test.suggest().to_dict().items() if k.endswith("_lr")}
        )
    # The device stays as the worker placed it (its GPU index is the machine's; this process sees only that GPU).
    store.update_run(run_id, summary=summary, progress=result.steps / result.total_steps)
    store.set_status(run_id, status, error=None if status == Status.FINISHED else reason)
    return 0


def standby(lab: Lab) -> int:
    """A warm run process: import the heavy modules now, then wait for the worker to send a run id on stdin."""
    import bert_lab.engine.train  # noqa: F401 - the point of standing by

    lab.data.worker_warm.write_text(str(os.getpid()))
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the worker went away without a run for us
    run_id = int(line)
    with open(lab.data.run(run_id).create().log, "ab") as log:
        os.dup2(log.fileno(), sys.stdout.fileno())
        os.dup2(log.fileno(), sys.stderr.fileno())
    return run_job(lab, run_id)
