"""`lab_ui.serve` and `make workshop` refuse a workshop whose passcodes do not hold (a passcode of spaces is none), and
serve no one beyond this machine without a workshop: the real server, started as the suite starts it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bert_lab.runs import workshop
from lab_ui import serve

ROOT = Path(__file__).resolve().parents[1]


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m lab_ui.serve` on a free loopback port, as the suite starts the real server (no worker)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "lab_ui.serve", "--server.port", str(port), "--server.headless", "true", *args]
    full = {**os.environ, "BERT_LAB_NO_AUTOSTART": "1", **env}
    return subprocess.run(command, cwd=ROOT, env=full, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"BERT_LAB_PASSCODE": "  ", "BERT_LAB_HOST_PASSCODE": "host-only-7"}, "passcode) is only spaces"),
        ({"BERT_LAB_PASSCODE": "tulip-42", "BERT_LAB_HOST_PASSCODE": " tulip-42"}, "must differ"),
        ({"BERT_LAB_PASSCODE": "tulip-42", "BERT_LAB_HOST_PASSCODE": ""}, "(the host's passcode) is not set"),
    ],
)
def test_the_real_server_refuses_a_workshop_whose_passcodes_do_not_hold(env: dict[str, str], said: str) -> None:
    """A blank passcode would serve the full single-user app with no sign-in: the server refuses to start."""
    done = _serve(env, "--server.address", "127.0.0.1")
    assert done.returncode == 2 and said in done.stderr and "Nothing was started" in done.stderr


def test_the_real_server_serves_no_one_beyond_this_machine_without_a_workshop(monkeypatch: pytest.MonkeyPatch) -> None:
    clean = {workshop.PASSCODE_ENV: "", workshop.HOST_PASSCODE_ENV: ""}
    done = _serve(clean, "--server.address", "0.0.0.0")
    assert done.returncode == 2 and "not serving a workshop on 0.0.0.0" in done.stderr
    for env in clean:
        monkeypatch.delenv(env, raising=False)
    assert serve.refusal(["--server.address=127.0.0.1"]) is None and serve.refusal([]) is None  # config.toml: loopback
    assert serve.refusal(["--server.address=0.0.0.0"]) is not None


def test_make_workshop_refuses_a_passcode_of_spaces() -> None:
    env = {**os.environ, "BERT_LAB_PASSCODE": " \t ", "BERT_LAB_HOST_PASSCODE": "host-only-7"}
    done = subprocess.run(
        ["make", "-o", "install", "workshop"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "passcode) is only spaces" in done.stderr
    assert "bert-lab app: nothing was started" in done.stderr
