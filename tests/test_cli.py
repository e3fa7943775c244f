"""The command line, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TINY_FLAGS = ["--model", "tiny", "--dataset", "sms_spam", "--train-size", "96", "--eval-size", "32",
              "--max-length", "32", "--batch-size", "16"]


def cli(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m bert_lab COMMAND [--home HOME] ARGS…`"""
    home_flag = ["--home", str(home)] if home is not None else []
    command = [sys.executable, "-m", "bert_lab", args[0], *home_flag, *args[1:]]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_train_json_end_to_end(tmp_path: Path) -> None:
    out = cli("train", *TINY_FLAGS, "--epochs", "2", "--lr", "1e-3", "--schedule", "cosine", "--weight-decay",
              "0.01", "--l2", "1e-4", "--l1", "1e-6", "--dropout", "0.2", "--seed", "7", "--precision", "fp32",
              "--optimizer", "adam", "--out", str(tmp_path / "m"), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished"
    assert set(result["eval"]) >= {"accuracy", "f1", "precision", "recall", "loss"}
    assert result["train"]["steps"] == 12
    assert result["train"]["samples_per_s"] > 0 and result["train"]["wall_s"] > 0
    config = result["config"]
    assert (config["num_epochs"], config["lr"], config["schedule"]) == (2.0, 1e-3, "cosine")
    assert config["optimizer"] == "adam"
    assert (config["dropout"], config["seed"], config["precision"], config["l1"]) == (0.2, 7, "fp32", 1e-6)
    assert result["precision"] == "fp32"
    assert (tmp_path / "m" / "model" / "config.json").exists()
    assert json.loads((tmp_path / "m" / "run_config.json").read_text()) == config


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lr", "abc"], "--lr: invalid float value: 'abc'"),
        (["--optimizer", "lion"], "--optimizer: must be one of sgd, momentum, adam, adamw"),
        (["--batch-size", "0"], "--batch-size: must be a whole number at least 1"),
        (["--dropout", "1.2"], "--dropout: must be a number in [0, 1)"),
        (["--schedule", "wobbly"], "--schedule: must be one of constant, exponential, step, linear, cosine"),
        (["--dataset", "no_such_data"], "rotten_tomatoes"),
        (["--colour", "red"], "unrecognized arguments: --colour red"),
    ],
)
def test_bad_flags_exit_2_naming_the_field(flags: list[str], message: str) -> None:
    out = cli("train", *TINY_FLAGS, *flags)
    assert out.returncode == 2
    assert message in out.stderr


def test_submit_runs_cancel_resume_export(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    submitted = cli("submit", *TINY_FLAGS, "--name", "first", home=home)
    assert submitted.returncode == 0, submitted.stderr
    run_id = int(submitted.stdout.strip())
    listed = json.loads(cli("runs", "--json", home=home).stdout)
    assert listed[0]["id"] == run_id and listed[0]["name"] == "first" and listed[0]["status"] == "queued"
    assert {"progress", "pid", "metrics"} <= set(listed[0])
    assert "cancelled" in cli("cancel", str(run_id), home=home).stdout
    assert "queued to resume" in cli("resume", str(run_id), home=home).stdout
    exported = cli("export", str(run_id), "--format", "json", home=home)
    assert exported.returncode == 0 and json.loads(exported.stdout) == []


def test_unknown_ids_and_bad_values_exit_2(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    for command in (["cancel", "99"], ["resume", "99"], ["export", "99"], ["delete", "99"]):
        out = cli(*command, home=home)
        assert out.returncode == 2 and "no run with id 99" in out.stderr, command
    assert cli("export", "x", home=home).returncode == 2
    assert "invalid choice: 'xml'" in cli("export", "1", "--format", "xml", home=home).stderr


def test_submit_refuses_a_bad_csv_and_stores_nothing(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    bad = tmp_path / "one_class.csv"
    bad.write_text("text,label\nhello,a\nworld,a\nagain,a\n")
    out = cli("submit", "--dataset", str(bad), home=home)
    assert out.returncode == 2 and "--dataset" in out.stderr and "one class" in out.stderr.lower()
    assert json.loads(cli("runs", "--json", home=home).stdout) == []


def test_submit_copies_a_csv_into_the_data_folder(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    good = tmp_path / "mine.csv"
    good.write_text("review,sentiment\n" + "".join(f"text {i},{'pos' if i % 2 else 'neg'}\n" for i in range(20)))
    run_id = int(cli("submit", "--dataset", str(good), "--model", "tiny", home=home).stdout)
    listed = json.loads(cli("runs", "--json", home=home).stdout)
    staged = Path(listed[0]["config"]["dataset"])
    assert listed[0]["id"] == run_id and staged.parent == home / "uploads" and staged.read_bytes() == good.read_bytes()
