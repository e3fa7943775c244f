"""How the worker starts runs: an `Executor` turns a claimed run into a running process and can stop it.

`LocalExecutor` is the one we have: each run in its own subprocess and process group on this machine, with its share
of the CPU threads (so concurrent runs don't oversubscribe the cores) and, on a GPU box, the GPU it was given via
CUDA_VISIBLE_DEVICES. A run that asks for several processes is started through `accelerate launch` (gloo on the CPU).
On the CPU it keeps one run process warm (torch already imported) for the next Launch click. An executor for other
machines implements the same Protocol; the lifecycle decisions stay in the worker.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bert_lab.processes.placement import FRACTION_ENV, gpu_memory_mb
from bert_lab.runs.records import Run
from bert_lab.runs.service import Lab

JOB = "bert_lab.processes.job"  # a run's own process: `python -m bert_lab.processes.job ID`
WORKER_PID_ENV = "BERT_LAB_WORKER_PID"  # a run's process stops (resumably) when the worker that started it dies


class Execution(Protocol):
    """A started run's process, as its worker sees it."""

    run_id: int
    pid: int

    def exit_code(self) -> int | None:
        """The process's exit code (negative: killed by that signal); None while it runs."""
        ...

    def kill(self) -> None: ...

    def output_tail(self, lines: int) -> str:
        """The last lines the run's process printed (for a crash report)."""
        ...


class Executor(Protocol):
    gpus: int  # GPUs runs can be placed on (0: the CPU only)
    gpu_memory_mb: list[float]  # each GPU's memory (empty when unknown)

    def start(self, run: Run, *, gpu: int | None, threads: int, memory_fraction: float | None = None) -> Execution:
        """Start `run` (already claimed) with `threads` CPU threads per process, on `gpu` if given, its process
        capped at `memory_fraction` of that GPU's memory."""
        ...

    def alive(self, run: Run) -> bool:
        """Whether the process recorded for a running `run` still exists (for runs of an earlier worker)."""
        ...

    def kill(self, run: Run) -> None:
        """Stop the process recorded for `run`, wherever it is."""
        ...

    def idle(self, *, threads: int) -> None:
        """Nothing is running: a moment to get ready for the next run (which will get `threads`)."""
        ...

    def close(self) -> None: ...


@dataclass
class LocalProcess:
    run_id: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        return self.process.poll()

    def kill(self) -> None:
        kill_group(self.process.pid)

    def output_tail(self, lines: int) -> str:
        return read_tail(self.log_path, lines)


class LocalExecutor:
    """Each run in a subprocess of this machine (see the module's docstring)."""

    def __init__(self, lab: Lab, *, memory_limit_mb: int | None = None, warm_spare: bool = True) -> None:
        self.lab, self.memory_limit_mb, self.warm_spare = lab, memory_limit_mb, warm_spare
        self.spare: subprocess.Popen[bytes] | None = None  # a warm run process waiting for a run id (CPU only)
        self.gpus = count_gpus()
        self.gpu_memory_mb = gpu_memory_mb() if self.gpus else []

    def start(self, run: Run, *, gpu: int | None, threads: int, memory_fraction: float | None = None) -> LocalProcess:
        num_processes = int(run.config.get("num_processes", 1))
        log_path = self.lab.data.run(run.id).create().log
        process = self._hand_to_spare(run.id) if num_processes == 1 and gpu is None else None
        if process is None:
            command, _ = self.lab.command(str(run.id), module=JOB)  # its environment: `_env`
            if num_processes > 1:
                command = launch_command(num_processes) + command[2:]
            with open(log_path, "ab") as log:
                process = subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env(threads, gpu, memory_fraction),
                    start_new_session=True,
                    preexec_fn=self._limit_memory,
                )
        return LocalProcess(run.id, process, log_path)

    def alive(self, run: Run) -> bool:
        return run.pid is not None and pid_alive(run.pid)

    def kill(self, run: Run) -> None:
        if run.pid:
            kill_group(run.pid)

    def idle(self, *, threads: int) -> None:
        """Keep one run process warm, torch and transformers already imported (about 3.5 s of a run's start-up),
        so that a Launch click shows its first loss point sooner. Only while no run trains (its imports would take
        CPU from a run), and only on the CPU (a GPU run gets its own device set at start)."""
        if not self.warm_spare or self.gpus:
            self.lab.data.worker_warm.touch()  # no spare to wait for: warm as it is
            return
        if self.spare is not None and self.spare.poll() is None:
            return
        with open(self.lab.data.standby_log, "ab") as log:
            self.spare = subprocess.Popen(
                self.lab.command("--standby", module=JOB)[0],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(threads, None),
                start_new_session=True,
                preexec_fn=self._limit_memory,
            )

    def close(self) -> None:
        if self.spare is not None:
            kill_group(self.spare.pid)
            self.spare = None

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

    def _env(self, threads: int, gpu: int | None, memory_fraction: float | None = None) -> dict[str, str]:
        fraction = {} if memory_fraction is None else {FRACTION_ENV: f"{memory_fraction:.4f}"}
        return {
            **os.environ,
            **fraction,
            **self.lab.environment(),  # the store's URL here, not on the command line: it may hold a password
            WORKER_PID_ENV: str(os.getpid()),
            "PYTHONUNBUFFERED": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "CUDA_VISIBLE_DEVICES": "" if gpu is None else str(gpu),
        }

    def _limit_memory(self) -> None:
        if self.memory_limit_mb:
            import resource

            limit = self.memory_limit_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# --- processes --------------------------------------------------------------------------------------------------------
def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (an exited child nobody has reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def read_tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16_384))
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


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
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--main_process_port",
        str(port),
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
    ]
