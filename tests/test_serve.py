"""How `make run` serves the app (`lab_ui.serve`, `.streamlit/config.toml`): what is ready before the first view, and
that its worker lives and ends with it."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from local_postgres import free_port
from waiting import wait_for

from bert_lab.core.config import RunConfig
from bert_lab.engine import data
from bert_lab.processes.executor import pid_alive
from bert_lab.processes.worker import worker_pid
from bert_lab.runs.service import Lab
from lab_ui import serve

ROOT = Path(__file__).resolve().parents[1]


def test_warm_up_reads_and_tokenizes_the_launch_pages_default_data(lab: Lab) -> None:
    data._TOKEN_LENGTHS.clear()
    serve.warm_up()  # $BERT_LAB_NO_AUTOSTART (conftest): no worker is started
    (computed,) = data._TOKEN_LENGTHS.values()
    assert computed and data.training_token_lengths(RunConfig()) is computed  # the first view's answer, ready
    assert not lab.data.worker_lock.exists()


def test_no_page_relies_on_magic() -> None:
    """The served app runs with `runner.magicEnabled = false`: a bare expression in a page would silently vanish."""
    shown = []
    for script in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        tree = ast.parse(script.read_text())
        bodies = [tree.body] + [n.body for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
        docstrings = {id(body[0]) for body in bodies if isinstance(getattr(body[0], "value", None), ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Expr) and not isinstance(node.value, ast.Call | ast.Await | ast.Yield):
                if id(node) not in docstrings:
                    shown.append(f"{script.name}:{node.lineno}")
    assert not shown, f"bare expressions that magic would have shown: {shown}"


def test_the_served_app_skips_magic_and_the_forced_collection_after_each_run() -> None:
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert settings["runner"] == {"magicEnabled": False, "postScriptGC": False}


# --- the worker the app starts: kept alive while the app runs, stopped with it ----------------------------------------
def served(home: Path) -> subprocess.Popen[bytes]:
    """`make run`'s app on a free port over `home`, with its worker (started and warm before it serves)."""
    env = {k: v for k, v in os.environ.items() if k != "BERT_LAB_NO_AUTOSTART"} | {"BERT_LAB_HOME": str(home)}
    command = [sys.executable, "-m", "lab_ui.serve", "--server.address", "127.0.0.1", "--server.port", str(free_port())]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def spare_of(lab: Lab) -> str:
    """The warm spare's pid as the worker wrote it ("" while a new worker has not written it yet)."""
    try:
        return lab.data.worker_warm.read_text()
    except FileNotFoundError:
        return ""


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_app_starts_its_worker_again_when_it_dies_and_stops_it_when_it_stops(
    lab: Lab, stop_signal: signal.Signals
) -> None:
    """Ctrl-C (SIGINT) or SIGTERM on `make run` leaves nothing behind: the worker it started and that worker's warm
    spare stop with it. While it runs, a worker killed by the system is started again without anyone viewing a page."""
    app = served(lab.data.path)
    try:
        first = wait_for(lambda: worker_pid(lab.data), 90, "the app's worker")
        spare = int(wait_for(lambda: spare_of(lab), 60, "its warm spare"))
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: (pid := worker_pid(lab.data)) != first and pid, 30, "a new worker")
        assert pid_alive(second)
        spare = int(wait_for(lambda: (p := spare_of(lab)) != str(spare) and p, 60, "the new worker's spare"))
        app.send_signal(stop_signal)
        assert app.wait(timeout=60) in (0, -stop_signal)
        assert not pid_alive(second) and not pid_alive(spare) and worker_pid(lab.data) is None
    finally:
        app.kill()
        for pid in filter(None, [worker_pid(lab.data)]):
            os.kill(pid, signal.SIGKILL)
