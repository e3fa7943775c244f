"""Process mechanics of the local executor, on real processes: is a process alive (zombies are not), stopping a run's
whole process group, the tail of a run's output, and the executor's view of a run recorded in the store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bert_lab.core.config import RunConfig
from bert_lab.processes.executor import LocalExecutor, kill_group, launch_command, pid_alive, read_tail
from bert_lab.runs.service import Lab

FAMILY = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(120)\n"
)


def wait_until(condition: object, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_pid_alive_is_false_for_exited_processes_even_before_they_are_reaped() -> None:
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    assert wait_until(lambda: Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z")
    assert not pid_alive(child.pid)  # a zombie: exited, its parent has not waited for it yet
    child.wait()
    assert not pid_alive(child.pid)


def test_kill_group_stops_a_run_with_the_processes_it_started() -> None:
    parent = subprocess.Popen([sys.executable, "-c", FAMILY], stdout=subprocess.PIPE, start_new_session=True)
    try:
        grandchild = int(parent.stdout.readline())  # type: ignore[union-attr]
        assert pid_alive(parent.pid) and pid_alive(grandchild)
        kill_group(parent.pid)
        parent.wait(timeout=10)
        assert wait_until(lambda: not pid_alive(grandchild))  # not left behind to hold memory or a GPU
        kill_group(parent.pid)  # stopping what is already gone is not an error
    finally:
        parent.kill()
        parent.wait()


def test_read_tail_gives_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    log.write_text("".join(f"line {i}\n" for i in range(10_000)))
    assert read_tail(log, 3) == "line 9997\nline 9998\nline 9999"
    log.write_bytes(b"ok\n\xff broken utf-8\n")
    assert read_tail(log, 5) == "ok\n\ufffd broken utf-8"
    assert read_tail(tmp_path / "missing.log", 5) == ""


def test_the_executor_sees_and_stops_the_process_a_run_recorded(lab: Lab) -> None:
    executor = LocalExecutor(lab, warm_spare=False)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        run = lab.store.create_run(RunConfig().to_dict())
        run = lab.store.claim_run(run.id, pid=process.pid, device="cpu")
        assert run is not None and executor.alive(run)
        executor.kill(run)
        process.wait(timeout=10)
        assert not executor.alive(run)
    finally:
        process.kill()
        process.wait()
        executor.close()


def test_launch_command_starts_accelerate_with_the_process_count() -> None:
    command = launch_command(2)
    assert command[:3] == [sys.executable, "-m", "accelerate.commands.launch"] and command[-1] == "-m"
    assert command[command.index("--num_processes") + 1] == "2"
    assert 0 < int(command[command.index("--main_process_port") + 1]) < 65536
