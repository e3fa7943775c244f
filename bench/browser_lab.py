"""What the benchmarks that drive the real app share: the CPU's name, a free port, the app started and stopped.

The app is started as `make run` starts it (`python -m lab_ui.serve`: warmed up, then `streamlit run app.py`) on a
data folder of its own, its background worker started and warm before it serves. Playwright drives Debian's Chromium
(`playwright install` cannot download browsers here).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the library, and the tests' PostgreSQL server

from local_postgres import LocalPostgres, free_port  # noqa: E402, F401 - free_port: for the benches

from bert_lab.core.layout import DataFolder  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def cpu() -> str:
    """`lscpu`'s model name, the core count and the flags that decide speed here (bf16 native or not)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in out.splitlines() if line.startswith("Flags")), [])
    wanted = [f for f in flags if f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")]
    bf16 = "native bf16" if {"avx512_bf16", "amx_bf16"} & set(flags) else "no native bf16"
    return f"{model}, {os.cpu_count()} cores, flags {' '.join(wanted) or '-'} ({bf16})"


def postgres_database(folder: Path) -> tuple[LocalPostgres, str]:
    """A real PostgreSQL server (the binaries of the PyPI package pgserver, on a loopback port) in `folder`, and the
    URL of a new database on it; stop the server with `.stop()`."""
    server = LocalPostgres(folder)
    return server, server.create_database("lab")


def start_app(home: Path, port: int, *, log: Path | None = None, script: Path | None = None) -> subprocess.Popen[bytes]:
    """The app, as `make run` starts it, over the data folder `home` (or `streamlit run script`, run in its own
    folder, which holds its `.streamlit/` settings), returned once it answers its health check."""
    env = {k: v for k, v in os.environ.items() if k != "BERT_LAB_NO_AUTOSTART"}
    env |= {"BERT_LAB_HOME": str(home), "PYTHONPATH": str(ROOT)}
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps its own copy
    serve = ["-m", "lab_ui.serve"] if script is None else ["-m", "streamlit", "run", script.name]
    command = [sys.executable, *serve, "--server.port", str(port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false"]  # fmt: skip
    cwd = script.parent if script else ROOT
    app = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    if log:
        out.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            return app
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the app did not start within 60 s")


def stop_app(app: subprocess.Popen[bytes], home: Path) -> None:
    """Stop the app and the worker its pages started (its pid is in the worker's lock file)."""
    os.killpg(app.pid, signal.SIGTERM)
    app.wait(timeout=30)
    lock = DataFolder(home).worker_lock
    if lock.exists() and (pid := lock.read_text().strip()).isdigit():
        try:
            os.killpg(int(pid), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
