"""The worker (`python -m bert_lab worker`): claims queued runs in order and trains each in its own subprocess.

Exactly one worker per data folder (an exclusive lock on `worker.lock`). Each run gets its own process group, its
share of the CPU threads (so concurrent runs don't oversubscribe the cores) and, on a GPU box, a GPU of its own via
CUDA_VISIBLE_DEVICES. A run that asks for several processes is started through `accelerate launch` (gloo on the
CPU). The run's subprocess writes its own metrics and final status; the worker only steps in when that process
cannot: a hard crash (→ failed, with the last lines of its output), a cancel that does not finish in time (→ killed,
cancelled), or a heartbeat that went silent (→ interrupted, resumable from its last checkpoint).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from bert_lab.config import RunConfig
from bert_lab.runner import pid_alive
from bert_lab.store import Run, RunStore, StoreError

LOCK_NAME = "worker.lock"
OUTPUT_TAIL_LINES = 15


@dataclass
class Child:
    run_id: int
    process: subprocess.Popen[bytes]
    log_path: Path
    gpu: int | None
    cancel_seen_at: float | None = None


@dataclass
class Worker:
    store: RunStore
    max_concurrent: int = 0  # 0: one per visible GPU, or one on the CPU
    poll_interval_s: float = 0.25
    cancel_timeout_s: float = 30.0  # a cancelled run that has not stopped by then is killed
    stale_after_s: float = 30.0  # a running run whose heartbeat is older than this is interrupted
    memory_limit_mb: int | None = None  # address-space cap per run (workshops on shared machines)
    children: dict[int, Child] = field(default_factory=dict)
    spare: subprocess.Popen[bytes] | None = None  # a warm run process waiting for a run id (CPU only)

    def __post_init__(self) -> None:
        self.gpus = count_gpus()
        self.max_concurrent = self.max_concurrent or max(1, self.gpus)

    # --- the loop ---------------------------------------------------------------------------------------------------
    def run(self, *, exit_when_idle: bool = False) -> None:
        while self.store.home.exists():  # a deleted data folder has nothing left to serve
            self.step()
            if exit_when_idle and not self.children and not self.store.list_runs(statuses=["queued"]):
                return
            time.sleep(self.poll_interval_s)

    def step(self) -> None:
        """One pass: reap finished children, enforce cancels, recover silent runs, start queued ones."""
        self._reap()
        self._enforce_cancels()
        recover_lost_runs(self.store, self.stale_after_s, exclude=set(self.children))
        while len(self.children) < self.max_concurrent:
            gpu = self._free_gpu()
            run = self.store.claim_next_run(pid=os.getpid(), device=f"cuda:{gpu}" if gpu is not None else "cpu")
            if run is None:
                break
            self._start(run.id, int(run.config.get("num_processes", 1)), gpu)
        self._keep_spare()

    def stop(self) -> None:
        """Ask every child to stop at its current step (used on SIGTERM), and let the warm spare go."""
        for child in self.children.values():
            try:
                self.store.request_cancel(child.run_id)
            except StoreError:
                pass  # it ended meanwhile
        if self.spare is not None:
            kill_group(self.spare.pid)

    # --- children ---------------------------------------------------------------------------------------------------
    def _start(self, run_id: int, num_processes: int, gpu: int | None) -> None:
        log_path = self.store.run_dir(run_id, create=True) / "output.log"
        threads = self._threads(num_processes if gpu is None else 1)
        process = self._hand_to_spare(run_id) if num_processes == 1 else None
        if process is None:
            command = [sys.executable, "-m", "bert_lab", "run-job", str(run_id), "--home", str(self.store.home)]
            if num_processes > 1:
                command = launch_command(num_processes) + command[2:]
            with open(log_path, "ab") as log:
                process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self._env(threads, gpu),
                                           start_new_session=True, preexec_fn=self._limit_memory)
        self.store.update_run(run_id, pid=process.pid)
        self.store.add_event(run_id, f"started (pid {process.pid}, {threads} thread(s) per process)")
        self.children[run_id] = Child(run_id, process, log_path, gpu)

    def _hand_to_spare(self, run_id: int) -> subprocess.Popen[bytes] | None:
        """Give the run to the warm process (it only needs the id); None when there is none alive."""
        spare, self.spare = self.spare, None
        if spare is None or spare.poll() is not None or spare.stdin is None:
            return None
        try:
            spare.stdin.write(f"{run_id}\n".encode())
            spare.stdin.close()
        except BrokenPipeError:
            return None  # it died just now: start the run the ordinary way
        return spare

    def _keep_spare(self) -> None:
        """On the CPU, keep one run process warm, torch and transformers already imported (about 3.5 s of a run's
        start-up), so that a Launch click shows its first loss point sooner. Only made while no run trains: its
        imports would take CPU from a run."""
        if self.gpus or self.children or (self.spare is not None and self.spare.poll() is None):
            return
        with open(self.store.home / "standby.log", "ab") as log:
            self.spare = subprocess.Popen(
                [sys.executable, "-m", "bert_lab", "run-job", "--standby", "--home", str(self.store.home)],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=self._env(self._threads(1), None),
                start_new_session=True, preexec_fn=self._limit_memory,
            )

    def _threads(self, processes: int) -> int:
        """CPU threads per process, so concurrent runs share the cores instead of oversubscribing them."""
        return max(1, (os.cpu_count() or 1) // self.max_concurrent // processes)

    def _env(self, threads: int, gpu: int | None) -> dict[str, str]:
        return {**os.environ, "BERT_LAB_HOME": str(self.store.home), "BERT_LAB_WORKER_PID": str(os.getpid()),
                "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(threads),
                "MKL_NUM_THREADS": str(threads), "CUDA_VISIBLE_DEVICES": "" if gpu is None else str(gpu)}

    def _limit_memory(self) -> None:
        if self.memory_limit_mb:
            import resource

            limit = self.memory_limit_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def _reap(self) -> None:
        for run_id, child in list(self.children.items()):
            code = child.process.poll()
            if code is None:
                continue
            del self.children[run_id]
            run = self.store.get_run(run_id)
            if run.status != "running":
                continue  # the run's process recorded its own ending
            if run.cancel_requested:
                _set_status(self.store, run_id, "cancelled", "cancelled (the run's process was stopped)")
            else:
                _set_status(self.store, run_id, "failed", describe_exit(code, child.log_path))

    def _enforce_cancels(self) -> None:
        now = time.time()
        for child in self.children.values():
            if child.process.poll() is not None:
                continue
            if child.cancel_seen_at is None:
                if self.store.get_run(child.run_id).cancel_requested:
                    child.cancel_seen_at = now
            elif now - child.cancel_seen_at > self.cancel_timeout_s:
                kill_group(child.process.pid)

    def _free_gpu(self) -> int | None:
        if not self.gpus:
            return None
        busy = {c.gpu for c in self.children.values()}
        return next((g for g in range(self.gpus) if g not in busy), 0)


# --- helpers ---------------------------------------------------------------------------------------------------------
def recover_lost_runs(store: RunStore, stale_after_s: float = 30.0, *, exclude: set[int] = frozenset()) -> list[int]:
    """Running runs that lost their process become `interrupted` (resumable from their last checkpoint): the
    process is gone, or its heartbeat has been silent for `stale_after_s` (then it is killed if still there)."""
    now = time.time()
    recovered = []
    for run in store.list_runs(statuses=["running"]):
        if run.id in exclude:
            continue
        dead = run.pid is not None and not pid_alive(run.pid)
        silent = now - (run.heartbeat_at or run.started_at or now) > stale_after_s
        if not (dead or silent):
            continue
        if run.pid and not dead:
            kill_group(run.pid)
        if _set_status(store, run.id, "interrupted", "the run's process stopped reporting; resume it to continue"):
            store.add_event(run.id, "interrupted: the run lost its process")
            recovered.append(run.id)
    return recovered


def _set_status(store: RunStore, run_id: int, status: str, error: str) -> bool:
    try:
        store.set_status(run_id, status, error=error)  # type: ignore[arg-type]
    except StoreError:
        return False  # someone else (the run itself) recorded its ending first
    return True


def describe_exit(code: int, log_path: Path) -> str:
    tail = read_tail(log_path, OUTPUT_TAIL_LINES)
    if code < 0:
        name = signal.Signals(-code).name
        hint = " The system may have run out of memory: lower the batch size or max length." if -code == 9 else ""
        return f"the run's process was killed by {name}.{hint}\n{tail}".strip()
    if "out of memory" in tail.lower() or "memoryerror" in tail.lower():
        return f"out of memory: lower the batch size or the max length.\n{tail}"
    return f"the run's process exited with code {code}:\n{tail}".strip()


def read_tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16_384))
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def count_gpus() -> int:
    """Visible CUDA GPUs, without importing torch (the worker stays small and starts fast)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def launch_command(num_processes: int) -> list[str]:
    """`accelerate launch` for a data-parallel run on a free local port. Its multi-process launcher (torchrun) works
    on the CPU too: with no visible GPU, accelerate picks the gloo backend."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(num_processes),
            "--num_machines", "1", "--main_process_port", str(port), "--mixed_precision", "no",
            "--dynamo_backend", "no", "-m"]


# --- one worker per data folder -------------------------------------------------------------------------------------
def acquire_lock(home: Path, *, wait_s: float = 0.0) -> IO[str] | None:
    """The worker lock for `home`, or None when another worker holds it. Held until the file is closed. `wait_s`
    rides out a liveness probe (`worker_alive` holds the lock for an instant)."""
    home.mkdir(parents=True, exist_ok=True)
    lock = open(home / LOCK_NAME, "a+")  # noqa: SIM115 - the open file *is* the lock
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


def worker_alive(home: Path) -> bool:
    lock = acquire_lock(home)
    if lock is None:
        return True
    lock.close()
    return False


def ensure_worker(home: Path) -> bool:
    """Start a background worker for `home` unless one is alive; True when this call started one."""
    if worker_alive(home):
        return False
    log = open(home / "worker.log", "ab")  # noqa: SIM115 - handed to the child
    subprocess.Popen([sys.executable, "-m", "bert_lab", "worker", "--home", str(home)], stdout=log,
                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    return True


def serve(store: RunStore, worker: Worker, *, exit_when_idle: bool = False) -> int:
    """Run `worker` under the data-folder lock; returns 1 when another worker already serves this folder."""
    lock = acquire_lock(store.home, wait_s=1.0)
    if lock is None:
        return 1
    signal.signal(signal.SIGTERM, lambda *_: (worker.stop(), sys.exit(0)))
    try:
        worker.run(exit_when_idle=exit_when_idle)
    finally:
        if worker.spare is not None:
            kill_group(worker.spare.pid)
        lock.close()
    return 0


# --- submitting ------------------------------------------------------------------------------------------------------
def submit_run(
    store: RunStore, config: RunConfig, *, name: str = "", owner: str = "", group_id: str | None = None
) -> Run:
    """Queue a run after checking its dataset loads (a bad CSV raises DataError and nothing is stored). A CSV is
    copied into the data folder first, so the run does not depend on the original file staying where it was."""
    from bert_lab.data import load_dataset

    load_dataset(config.dataset, text_column=config.text_column, label_column=config.label_column)
    source = Path(config.dataset)
    if source.is_file():
        config = replace(config, dataset=str(stage_upload(store.home, source.read_bytes(), source.name)))
    return store.create_run(config.to_dict(), name=name, owner=owner, group_id=group_id)


def stage_upload(home: Path, data: bytes, filename: str) -> Path:
    """Store uploaded CSV bytes under `home/uploads/`, named by content so the same file is kept once."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(filename).stem)[:40] or "data"
    path = home / "uploads" / f"{stem}-{digest}.csv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path
