"""The worker (`bert-lab worker`): claims queued runs, starts each through an executor, and owns every
lifecycle decision a run's own process cannot make.

Exactly one worker per data folder (an exclusive lock on `worker.lock`); several machines may each run one against a
shared store. A serving worker renews its lease in the store (`LEASE_S`): that lease, not the lock file, is how the app
on any machine knows what trains the queue and how many runs it trains at once.

The run's process writes its own metrics and final status; the worker steps in only when that process cannot: a hard
crash (→ failed, with the last lines of its output), a cancel that does not finish in time (→ killed, cancelled), or a
process that died or whose heartbeat went silent (→ interrupted, resumable from its last checkpoint). Pages and the
CLI never kill a process or recover a run: that happens here alone, however many tabs are open.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from bert_lab.core.config import DEFAULTS
from bert_lab.core.layout import DataFolder
from bert_lab.processes.executor import Execution, Executor, LocalExecutor, kill_group, pid_alive
from bert_lab.processes.placement import USABLE, place, run_memory_mb, slots_per_gpu
from bert_lab.runs.describe import LESS_MEMORY, OUT_OF_MEMORY, looks_out_of_memory
from bert_lab.runs.queue import fair_order
from bert_lab.runs.records import Run, WorkerLease
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Ending, Status, ending
from bert_lab.runs.store import RunStore, StoreError, StoreUnavailable, UnknownRunError
from bert_lab.runs.workshop import Settings

HOST_ENV = "BERT_LAB_HOST"  # this machine's name in the store (default: its hostname)
LEASE_S = 10.0  # a worker whose lease was not renewed for this long is gone (it renews every quarter of it)
OUTPUT_TAIL_LINES = 15
FULL = -1  # no GPU has room for the run now
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # `worker --restart`: pauses before restarts that come in a row
RESTART_RESET_S = 60.0  # a worker that served this long before it ended is restarted after the shortest pause
OUTAGE_BACKOFF_S = 1.0  # after a pass the store's outage cut short, the next pass waits at least this long
log = logging.getLogger(__name__)  # warnings reach the worker's log (stderr) without any set-up
# (queued, running, each owner's latest start) → the queued runs, first to start first
ClaimOrder = Callable[[Sequence[Run], Sequence[Run], Mapping[str, float]], list[Run]]


@dataclass
class Worker:
    lab: Lab
    executor: Executor | None = None  # default: LocalExecutor on this machine
    max_concurrent: int = 0  # 0: the GPUs' slots (slots_per_gpu each), or one on the CPU
    slots_per_gpu: int = 0  # runs sharing one GPU; 0: as many as fit by memory (runs/placement.py), at most 8
    poll_interval_s: float = 0.25
    cancel_timeout_s: float = 30.0  # a cancelled run that has not stopped by then is killed
    stale_after_s: float = 30.0  # a running run whose heartbeat is older than this is interrupted
    memory_limit_mb: int | None = None  # address-space cap per run (workshops on shared machines)
    claim_order: ClaimOrder = fair_order  # round-robin by owner (runs/queue.py)
    children: dict[int, Execution] = field(default_factory=dict)
    gpu_of: dict[int, tuple[int, float] | None] = field(default_factory=dict)  # each child's GPU and reserved MB
    cancel_seen_at: dict[int, float] = field(default_factory=dict)
    renewed_at: float = -math.inf  # when this worker last renewed its lease (time.monotonic)
    unreachable_since: float | None = None  # when a pass last found the store unreachable, until one gets through

    def __post_init__(self) -> None:
        self.host = this_host()
        self.executor = self.executor or LocalExecutor(self.lab, memory_limit_mb=self.memory_limit_mb)
        self.gpu_mb = (self.executor.gpu_memory_mb + [0.0] * self.executor.gpus)[: self.executor.gpus]
        if self.executor.gpus and not self.slots_per_gpu:
            self.slots_per_gpu = slots_per_gpu(min(self.gpu_mb) or 0.0, run_memory_mb(DEFAULTS))
        self.max_concurrent = self.max_concurrent or max(1, self.executor.gpus * self.slots_per_gpu)

    @property
    def store(self) -> RunStore:
        return self.lab.store

    # --- the loop ---------------------------------------------------------------------------------------------------
    def run(self, *, exit_when_idle: bool = False) -> None:
        while self.lab.data.path.exists():  # a deleted data folder has nothing left to serve
            if self.step() and exit_when_idle and self._idle():
                return
            time.sleep(self.poll_interval_s if self.unreachable_since is None else OUTAGE_BACKOFF_S)

    def _idle(self) -> bool:
        try:
            return not self.children and not self.store.list_runs(statuses=[Status.QUEUED])
        except StoreUnavailable:
            return False

    def step(self) -> bool:
        """One pass: renew the lease, reap finished children, enforce cancels, recover lost runs, start queued ones.
        A store that stays unreachable for the store's patience ends the pass (said once in the log, with when it
        is back); the next pass goes on where this one stopped. False when the pass was cut short."""
        try:
            self._step()
        except StoreUnavailable as exc:
            if self.unreachable_since is None:
                self.unreachable_since = time.time()
                log.warning("worker %s: %s; retrying until it is back", os.getpid(), exc)
            return False
        if self.unreachable_since is not None:
            gone_s, self.unreachable_since = time.time() - self.unreachable_since, None
            log.warning("worker %s: the run store is reachable again (after %.0f s or more)", os.getpid(), gone_s)
        return True

    def _step(self) -> None:
        self.renew_lease()
        self._reap()
        self._enforce_cancels()
        self.recover_lost_runs()
        self._start_queued()
        if not self.children:
            self.executor.idle(threads=self._threads(1))

    def renew_lease(self, *, every_s: float = LEASE_S / 4) -> None:
        """Tell the store this worker still serves (at most once per `every_s`)."""
        if time.monotonic() - self.renewed_at >= every_s:
            self.store.renew_worker(self.host, os.getpid(), slots=self.max_concurrent)
            self.renewed_at = time.monotonic()

    def stop(self) -> None:
        """Stop serving (on SIGTERM: Ctrl-C on the app, `make stop`, a service manager): the warm spare goes. The
        runs' own processes see that their worker is gone and stop at their current step with a checkpoint, as
        `interrupted` (resume them to go on); `stop_worker` waits for them."""
        self.executor.close()

    def recover_lost_runs(self) -> list[int]:
        """Running runs that lost their process become `interrupted` (resumable from their last checkpoint, on any
        machine). A run's heartbeat is its lease: silent for `stale_after_s`, it has expired, wherever the run was
        (then its process, if it is on this machine and still there, is killed). A run of this machine whose
        process is gone is interrupted at once; a process id means nothing on another machine. After an outage of
        the store no run could beat: their leases count from when this worker got through to it again."""
        now, recovered = time.time(), []
        for run in self.store.list_runs(statuses=[Status.RUNNING]):
            if run.id in self.children:
                continue
            here = run.host in (None, self.host)
            dead = here and run.pid is not None and not self.executor.alive(run)
            beat = max(run.heartbeat_at or run.started_at or now, self.store.reachable_since)
            silent = now - beat > self.stale_after_s
            if not (dead or silent):
                continue
            if here and not dead:
                self.executor.kill(run)
            if self._end(run.id, Ending.LOST, "the run's process stopped reporting; resume it to continue"):
                self.store.add_event(run.id, "interrupted: the run lost its process")
                recovered.append(run.id)
        return recovered

    # --- children ---------------------------------------------------------------------------------------------------
    def _start_queued(self) -> None:
        free = self.max_concurrent - len(self.children)
        if free <= 0:
            return
        self._ask_searches()
        queued = self.store.list_runs(statuses=[Status.QUEUED])
        if not queued or Settings.read(self.lab.data).paused:  # a workshop host may pause the queue
            return
        running = self.store.list_runs(statuses=[Status.RUNNING])
        # Same-config cache: a run whose twin is training (or queued before it) waits, and is answered from the
        # twin once it finishes, so a lesson launched by thirty people trains once.
        first_of_key: dict[str, int] = {}
        for r in sorted(queued, key=lambda r: r.id):
            if r.cache_key:
                first_of_key.setdefault(r.cache_key, r.id)
        training = {r.cache_key for r in running if r.cache_key}
        for candidate in self.claim_order(queued, running, self.store.last_started_by_owner()):
            if len(self.children) >= self.max_concurrent:
                return
            key = candidate.cache_key
            if key is not None and (key in training or first_of_key.get(key, candidate.id) != candidate.id):
                continue
            if self.store.answer_from_cache(candidate.id) is not None:
                continue
            need_mb = run_memory_mb(candidate.config) if self.executor.gpus else 0.0
            gpu = self._free_gpu(need_mb)
            if gpu == FULL:
                continue  # too big for what the GPUs have left now: a smaller run may still fit
            device = "cpu" if gpu is None else f"cuda:{gpu}"
            try:
                run = self.store.claim_run(candidate.id, pid=os.getpid(), device=device, host=self.host)
            except UnknownRunError:
                continue  # deleted meanwhile
            if run is None:
                continue  # cancelled (or claimed elsewhere) meanwhile
            threads = self._threads(int(run.config.get("num_processes", 1)) if gpu is None else 1)
            share = None if gpu is None else USABLE / self.slots_per_gpu  # its cap on the GPU's memory
            child = self.executor.start(run, gpu=gpu, threads=threads, memory_fraction=share)
            # kept before the store is told: in an outage, a child it does not know of would go unwatched
            self.children[run.id], self.gpu_of[run.id] = child, None if gpu is None else (gpu, need_mb)
            if run.cache_key:
                training.add(run.cache_key)
            self.store.update_run(run.id, pid=child.pid)
            where = f"{threads} thread(s) per process" if gpu is None else f"GPU {gpu}, at most {share:.0%} of it"
            self.store.add_event(run.id, f"started on {self.host} (pid {child.pid}, {where})")

    def _ask_searches(self) -> None:
        """Queue the next trials of open searches as slots free up (imported here: the app imports this module)."""
        from bert_lab.sweeps.search import ask_due_trials

        ask_due_trials(self.lab, self.max_concurrent)

    def _threads(self, processes: int) -> int:
        """CPU threads per process, so concurrent runs share the cores instead of oversubscribing them."""
        return max(1, (os.cpu_count() or 1) // self.max_concurrent // processes)

    def _reap(self) -> None:
        for run_id, child in list(self.children.items()):
            code = child.exit_code()
            if code is None:
                continue
            run = self.store.get_run(run_id)  # the store first: in an outage the child waits for the next pass
            if run.status == Status.RUNNING and run.cancel_requested:
                self._end(run_id, Ending.KILLED, "cancelled (the run's process was stopped)")
            elif run.status == Status.RUNNING:  # else the run's process recorded its own ending
                self._end(run_id, Ending.FAILED, describe_exit(code, child.output_tail(OUTPUT_TAIL_LINES)))
            del self.children[run_id]
            self.gpu_of.pop(run_id, None)
            self.cancel_seen_at.pop(run_id, None)

    def _enforce_cancels(self) -> None:
        now = time.time()
        for run_id, child in self.children.items():
            if child.exit_code() is not None:
                continue
            seen = self.cancel_seen_at.get(run_id)
            if seen is None:
                if self.store.get_run(run_id).cancel_requested:
                    self.cancel_seen_at[run_id] = now
            elif now - seen > self.cancel_timeout_s:
                child.kill()

    def _free_gpu(self, need_mb: float) -> int | None:
        """The GPU for a run needing `need_mb` (None: the CPU, when there is no GPU; FULL: no GPU has room now)."""
        if not self.executor.gpus:
            return None
        reserved: list[list[float]] = [[] for _ in range(self.executor.gpus)]
        for placed in self.gpu_of.values():
            if placed is not None:
                reserved[placed[0]].append(placed[1])
        gpu = place(reserved, need_mb, self.gpu_mb, self.slots_per_gpu)
        return FULL if gpu is None else gpu

    def _end(self, run_id: int, why: Ending, error: str) -> bool:
        """Record how a run whose process could not say so ended; False if its process recorded it first."""
        try:
            self.store.set_status(run_id, ending(why), error=error)
        except StoreUnavailable:
            raise
        except StoreError:
            return False  # someone else (the run itself) recorded its ending first
        return True


def this_host() -> str:
    """This machine's name in the store: `$BERT_LAB_HOST`, else its hostname."""
    return os.environ.get(HOST_ENV) or socket.gethostname()


def live_workers(store: RunStore) -> list[WorkerLease]:
    """The workers serving `store` now, on every machine."""
    return store.live_workers(within_s=LEASE_S)


def total_slots(workers: Sequence[WorkerLease]) -> int:
    """Runs the serving workers train at once, together (1 when none is serving: the one that will start)."""
    return max(1, sum(w.slots for w in workers))


def describe_exit(code: int, tail: str) -> str:
    """Why a run's process ended without recording it, in plain words, with the last lines it printed."""
    if code < 0:
        name = signal.Signals(-code).name
        hint = f" The system may have run out of memory: {LESS_MEMORY}." if -code == 9 else ""
        return f"the run's process was killed by {name}.{hint}\n{tail}".strip()
    if looks_out_of_memory(tail):
        return f"{OUT_OF_MEMORY}.\n{tail}"
    return f"the run's process exited with code {code}:\n{tail}".strip()


# --- one worker per data folder ---------------------------------------------------------------------------------------
def acquire_lock(data: DataFolder, *, wait_s: float = 0.0) -> IO[str] | None:
    """The worker lock for `data`, or None when another worker holds it. Held until the file is closed. `wait_s`
    rides out a liveness probe (`worker_alive` holds the lock for an instant)."""
    data.path.mkdir(parents=True, exist_ok=True)
    lock = open(data.worker_lock, "a+")  # noqa: SIM115 - the open file *is* the lock
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                lock.close()
                return None
            time.sleep(0.05)
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def worker_alive(data: DataFolder) -> bool:
    lock = acquire_lock(data)
    if lock is None:
        return True
    lock.close()
    return False


def ensure_worker(lab: Lab, *, nice: int = 0) -> bool:
    """Start a background worker for the lab unless one is alive; True when this call started one. `nice` lowers
    the priority of the worker and the runs it starts (the app passes one, so a page stays responsive)."""
    if worker_alive(lab.data):
        return False
    lab.data.worker_warm.unlink(missing_ok=True)  # the new worker says when it is warm (`wait_until_warm`)
    command, env = lab.command("worker")
    with open(lab.data.worker_log, "ab") as log:
        subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
    return True


def wait_until_warm(data: DataFolder, *, timeout_s: float) -> bool:
    """Wait until the worker just started for `data` can start a run at once (its warm spare has imported torch and
    transformers: seconds of CPU that would otherwise compete with the first page view); False on timeout."""
    deadline = time.monotonic() + timeout_s
    while not data.worker_warm.exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def worker_pid(data: DataFolder) -> int | None:
    """The process id of the worker serving `data` on this machine (None when none is)."""
    if not worker_alive(data):
        return None
    text = data.worker_lock.read_text().strip()
    return int(text) if text.isdigit() else None


def stop_worker(data: DataFolder, store: RunStore, *, timeout_s: float = 60.0) -> int | None:
    """Stop the worker serving `data` on this machine (`bert-lab stop`, `make stop`, the app on Ctrl-C),
    then wait until the runs it trained here have stopped too (each at its current step, with a checkpoint: they
    become `interrupted`); what is still there after `timeout_s` is killed. Returns the worker's pid, or None when
    none was serving."""
    pid = worker_pid(data)
    if pid is None:
        return None
    runs = [r.pid for r in store.list_runs(statuses=[Status.RUNNING]) if r.pid and r.host in (None, this_host())]
    deadline = time.monotonic() + timeout_s
    for victim in (pid, *runs):
        _end_process(victim, deadline)
    return pid


def _end_process(pid: int, deadline: float) -> None:
    """SIGTERM `pid` (a run's process then stops at its current step with a checkpoint) and wait until it has gone;
    SIGKILL its process group at `deadline`."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            kill_group(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.1)


def supervise(lab: Lab, options: Sequence[str], *, backoff_s: Sequence[float] = RESTART_BACKOFF_S) -> int:
    """`bert-lab worker --restart …`: run `lab`'s worker (`bert-lab worker` with `options`) as a
    child process and start it again whenever it ends other than by finishing its work (a crash, a kill -9, another
    worker holding the data folder for now), after a pause that grows while restarts come quickly: for a machine that
    only trains (a GPU host) without a service manager; `docs/bert-lab-worker.service` is the systemd way. SIGTERM or
    SIGINT stops the worker (its runs stop where they are, `interrupted`) and then this loop."""
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    quick = 0  # restarts in a row that came soon after the start before
    while not stopping.is_set():
        started = time.monotonic()
        command, env = lab.command("worker", *options)
        child = subprocess.Popen(command, env=env)
        while child.poll() is None and not stopping.is_set():
            stopping.wait(0.5)
        if stopping.is_set():
            break
        if child.returncode == 0 or not lab.data.path.exists():
            return 0  # its work is done (--exit-when-idle), or its data folder is gone
        quick = quick + 1 if time.monotonic() - started < RESTART_RESET_S else 0
        pause = backoff_s[min(quick, len(backoff_s) - 1)]
        print(f"worker: exited with code {child.returncode}; starting it again in {pause:g} s", file=sys.stderr)
        stopping.wait(pause)
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        child.wait()
    return 0


def serve(worker: Worker, *, exit_when_idle: bool = False) -> int:
    """Run `worker` under the data-folder lock; returns 1 when another worker already serves this folder."""
    lock = acquire_lock(worker.lab.data, wait_s=1.0)
    if lock is None:
        return 1
    signal.signal(signal.SIGTERM, lambda *_: (worker.stop(), sys.exit(0)))
    try:
        worker.renew_lease(every_s=0.0)  # at once: the app counts this worker from now on
        worker.run(exit_when_idle=exit_when_idle)
    finally:
        worker.executor.close()
        try:
            worker.store.end_worker(worker.host, os.getpid())
        except StoreError:
            pass  # the store is gone (a deleted data folder): the lease simply expires
        lock.close()
    return 0
