"""The command line, run as a real subprocess."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from bert_lab.runs.records import MetricPoint, RunSummary
from bert_lab.runs.service import Lab
from bert_lab.runs.sqlite import MIGRATIONS
from bert_lab.runs.status import Status

TINY_FLAGS = [
    "--model",
    "tiny",
    "--dataset",
    "sms_spam",
    "--train-size",
    "96",
    "--eval-size",
    "32",
    "--max-length",
    "32",
    "--batch-size",
    "16",
]


def cli(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m bert_lab COMMAND [--home HOME] ARGS…`"""
    home_flag = ["--home", str(home)] if home is not None else []
    command = [sys.executable, "-m", "bert_lab", args[0], *home_flag, *args[1:]]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_train_json_end_to_end(tmp_path: Path) -> None:
    out = cli(
        "train",
        *TINY_FLAGS,
        "--epochs",
        "2",
        "--lr",
        "1e-3",
        "--schedule",
        "cosine",
        "--weight-decay",
        "0.01",
        "--l2",
        "1e-4",
        "--l1",
        "1e-6",
        "--dropout",
        "0.2",
        "--seed",
        "7",
        "--precision",
        "fp32",
        "--optimizer",
        "adam",
        "--out",
        str(tmp_path / "m"),
        "--json",
    )
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


def test_submit_runs_cancel_resume(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    submitted = cli("submit", *TINY_FLAGS, "--name", "first", home=home)
    assert submitted.returncode == 0, submitted.stderr
    run_id = int(submitted.stdout.strip())
    listed = json.loads(cli("runs", "--json", home=home).stdout)
    assert listed[0]["id"] == run_id and listed[0]["name"] == "first" and listed[0]["status"] == "queued"
    assert {"progress", "pid", "metrics"} <= set(listed[0])
    assert listed[0]["config"]["train_size"] == 96 and listed[0]["config"]["model"] == "tiny"
    assert "cancelled" in cli("cancel", str(run_id), home=home).stdout
    assert "queued to resume" in cli("resume", str(run_id), home=home).stdout
    with Lab.open(home) as lab:
        run = lab.store.get_run(run_id)
    assert (run.status, run.resume_count) == (Status.QUEUED, 1)
    resumed_again = cli("resume", str(run_id), home=home)
    assert resumed_again.returncode == 2 and f"run {run_id} is queued" in resumed_again.stderr


def known_points(run_id: int) -> list[tuple[int, float, float, str, float]]:
    """Per-step train_loss and lr at steps 1–4, evaluation accuracy at steps 2 and 4: values unique per cell."""
    points = []
    for step in range(1, 5):
        points.append((step, step / 4, 1.5 * step, "train_loss", 1 / step + run_id))
        points.append((step, step / 4, 1.5 * step, "lr", 3e-4 * step))
        if step % 2 == 0:
            points.append((step, step / 4, 1.5 * step + 0.25, "accuracy", 0.5 + step / 10))
    return points


def expected_rows(points: list[MetricPoint]) -> list[dict[str, float]]:
    """One row per step of the store's points: the clocks (latest of the step) and each metric (NaN where absent)."""
    names = sorted({p.name for p in points})
    rows: dict[int, dict[str, float]] = {}
    for p in points:
        row = rows.setdefault(
            p.step,
            {
                "run_id": p.run_id,
                "step": p.step,
                "epoch": p.epoch,
                "elapsed_s": p.elapsed_s,
                **{name: math.nan for name in names},
            },
        )
        row.update(epoch=max(row["epoch"], p.epoch), elapsed_s=max(row["elapsed_s"], p.elapsed_s), **{p.name: p.value})
    return [rows[step] for step in sorted(rows)]


def assert_rows(got: list[dict[str, float]], want: list[dict[str, float]]) -> None:
    assert len(got) == len(want)
    for got_row, want_row in zip(got, want):
        assert got_row == pytest.approx(want_row, rel=1e-9, nan_ok=True)  # same columns, same values, NaN where absent


FORMULA = '=HYPERLINK("http://evil","run")'


def test_export_writes_the_store_points_row_by_row(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    run_id = int(cli("submit", *TINY_FLAGS, "--name", FORMULA, home=home).stdout)
    other_id = int(cli("submit", *TINY_FLAGS, home=home).stdout)
    empty_id = int(cli("submit", *TINY_FLAGS, home=home).stdout)
    with Lab.open(home) as lab:
        lab.store.add_metrics(run_id, known_points(run_id))
        lab.store.add_metrics(other_id, known_points(other_id))
        want = expected_rows(lab.store.read_metrics(run_id))
    assert len(want) == 4 and math.isnan(want[0]["accuracy"]) and want[1]["accuracy"] == 0.7

    exported = cli("export", str(run_id), "--out", str(tmp_path / "run.csv"), home=home)
    assert exported.returncode == 0, exported.stderr
    with (tmp_path / "run.csv").open(newline="") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames is not None
        assert reader.fieldnames[:5] == ["run_id", "run_name", "step", "epoch", "elapsed_s"]
        rows = list(reader)
    assert {row.pop("run_name") for row in rows} == {"'" + FORMULA}  # text in a spreadsheet, not a formula
    assert_rows([{k: float(v) if v != "" else math.nan for k, v in row.items()} for row in rows], want)

    as_json = cli("export", str(run_id), "--format", "json", home=home)
    assert as_json.returncode == 0, as_json.stderr
    json_rows = json.loads(as_json.stdout)
    assert {row.pop("run_name") for row in json_rows} == {FORMULA}  # JSON keeps the name as it is
    assert_rows([{k: math.nan if v is None else v for k, v in row.items()} for row in json_rows], want)

    assert json.loads(cli("export", str(empty_id), "--format", "json", home=home).stdout) == []
    assert cli("export", str(empty_id), home=home).stdout.split() == ["run_id,run_name,step,epoch,elapsed_s"]


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


# --- sweeps and groups ------------------------------------------------------------------------------------------------
def test_sweep_queues_a_group_that_the_worker_trains_and_group_reads(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    swept = cli("sweep", *TINY_FLAGS, "--grid", "lr=1e-4,3e-3", "--seeds", "2", "--name", "<i>lr</i>", home=home)
    assert swept.returncode == 0, swept.stderr
    group_id = swept.stdout.strip().splitlines()[-1]
    assert len(group_id) == 12 and "4 runs" in swept.stderr
    listed = json.loads(cli("runs", "--json", home=home).stdout)
    assert len(listed) == 4 and {r["group_id"] for r in listed} == {group_id}
    worker = cli("worker", "--exit-when-idle", home=home)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    report = json.loads(cli("group", group_id, "--json", home=home).stdout)
    assert (report["id"], report["name"], report["method"], report["metric"]) == (group_id, "<i>lr</i>", "grid", "f1")
    assert report["counts"] == {"finished": 4}
    assert sorted(c["params"]["lr"] for c in report["configs"]) == [1e-4, 3e-3]
    with Lab.open(home) as lab:
        latest = lab.store.latest_metrics([i for c in report["configs"] for i in c["run_ids"]])
    for config in report["configs"]:
        assert config["n"] == 2 and len(config["run_ids"]) == 2
        for metric in ("accuracy", "f1", "eval_loss"):
            stats, values = config[metric], [latest[i][metric] for i in config["run_ids"]]  # its two seeds' numbers
            assert stats["mean"] == pytest.approx(statistics.mean(values))
            assert stats["std"] == pytest.approx(statistics.stdev(values), abs=1e-12)
            assert stats["ci95"][0] <= stats["mean"] <= stats["ci95"][1]
    tied = report["tied_best"]  # the tiny BERT often puts every run at the majority class: an exact tie, no ★
    first = report["configs"][0]["params"]
    assert (tied[0] if tied else report["best"]) == first and (report["best"] is None) == bool(tied)
    verdict = report["verdict"]
    assert verdict["a"] == first and verdict["metric"] == "f1" and isinstance(verdict["real"], bool)
    assert verdict["ci95"][0] <= verdict["diff"] <= verdict["ci95"][1]
    table = cli("group", group_id, home=home).stdout
    assert "<i>lr</i>  (grid, judged by f1; 4 finished)" in table and "verdict: " in table
    assert ("★" in table) != bool(tied)
    assert json.loads(cli("groups", "--json", home=home).stdout)[0]["counts"] == {"finished": 4}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--grid", "colour=1,2"], "colour: not a knob a sweep can vary"),
        (["--grid", "lr=1e-4,-1"], "lr=-1: must be a number"),
        (["--grid", "lr="], "lr: no values given"),
        (["--random", "3", "--range", "lr=1e-3:1e-5"], "the range's low 0.001 is above its high 1e-05"),
        (["--grid", "lr=1e-4,2e-4,3e-4,4e-4,5e-4,6e-4,7e-4", "--seeds", "10"], "70 runs .* cap of 64"),
        (["--grid", "lr=1e-4", "--range", "dropout=0:0.1"], "--grid cannot be mixed"),
        (["--search", "optuna"], "a sweep varies 1 to 3 knobs"),
        (["--grid", "lr=1e-4", "--dataset", "no_such_data"], "--dataset"),
    ],
)
def test_bad_sweeps_exit_2_and_queue_nothing(tmp_path: Path, flags: list[str], message: str) -> None:
    home = tmp_path / "lab"
    result = cli("sweep", *TINY_FLAGS, *flags, home=home)
    assert result.returncode == 2 and result.stdout == ""
    assert re.search(message, result.stderr), result.stderr
    assert json.loads(cli("runs", "--json", home=home).stdout) == []
    assert json.loads(cli("groups", "--json", home=home).stdout) == []


def test_a_group_is_cancelled_resumed_and_deleted_as_one(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    group_id = cli("sweep", *TINY_FLAGS, "--grid", "dropout=0,0.1", "--seeds", "2", home=home).stdout.split()[-1]
    assert cli("group", group_id, "--cancel", home=home).stdout.strip() == f"group {group_id}: cancelled (4 run(s))"
    assert {r["status"] for r in json.loads(cli("runs", "--json", home=home).stdout)} == {"cancelled"}
    assert cli("group", group_id, "--resume", home=home).stdout.strip() == f"group {group_id}: resumed (4 run(s))"
    assert {r["status"] for r in json.loads(cli("runs", "--json", home=home).stdout)} == {"queued"}
    assert cli("group", group_id, "--delete", home=home).returncode == 0
    assert json.loads(cli("runs", "--json", home=home).stdout) == []
    missing = cli("group", group_id, home=home)
    assert missing.returncode == 2 and f"no group with id '{group_id}'" in missing.stderr


def test_workers_lists_the_machines_serving_the_store(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    idle = cli("workers", home=home)
    assert idle.returncode == 0 and "no worker is serving this store" in idle.stdout
    with Lab.open(home) as lab:
        lab.store.renew_worker("gpu-b", 12, slots=4)
        lab.store.renew_worker("gpu-a", 11, slots=2)
    listed = json.loads(cli("workers", "--json", home=home).stdout)
    assert [(w["host"], w["pid"], w["slots"]) for w in listed] == [("gpu-a", 11, 2), ("gpu-b", 12, 4)]
    assert set(listed[0]) == {"host", "pid", "slots", "started_at", "renewed_at"}
    table = cli("workers", home=home).stdout.splitlines()
    assert table[0].startswith("gpu-a (pid 11): 2 slot(s), serving for ") and table[1].startswith("gpu-b (pid 12)")


# --- the command itself: version, help, the app, the doctor -----------------------------------------------------------
def test_the_command_says_its_version_and_lists_every_verb_plainly() -> None:
    import bert_lab

    version = cli("--version")
    assert (version.returncode, version.stdout) == (0, f"bert-lab {bert_lab.__version__}\n")
    shown = cli("--help").stdout
    assert shown.startswith("usage: bert-lab ") and "SUPPRESS" not in shown and "run-job" not in shown
    verbs = re.findall(r"^    (\S+)", shown, re.MULTILINE)
    assert verbs[:2] == ["app", "doctor"] and {"worker", "stop", "workers", "train", "export"} <= set(verbs)
    assert "unrecognized arguments: --server.port 9" in cli("runs", "--server.port", "9").stderr  # Streamlit's: app's


def test_app_refuses_a_workshop_without_both_passcodes_and_starts_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERT_LAB_")} | {"BERT_LAB_PASSCODE": "   "}
    command = [sys.executable, "-m", "bert_lab", "app", "--workshop", "--home", str(tmp_path / "lab")]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [
        "bert-lab app: $BERT_LAB_PASSCODE (the participants' passcode) is only spaces",
        "bert-lab app: $BERT_LAB_HOST_PASSCODE (the host's passcode) is not set",
        "bert-lab app: nothing was started",
    ]
    assert not (tmp_path / "lab").exists()


def test_doctor_names_the_machine_the_store_and_each_problem_with_its_fix(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    fine = cli("doctor", "--json", home=home)
    checks = {c["part"]: c for c in json.loads(fine.stdout)}
    assert fine.returncode == 0 and not any(c["problem"] or c["fix"] for c in checks.values())
    assert list(checks) == ["bert-lab", "CPU", "precision", "GPUs", "model and data", "data folder", "store", "workers"]
    assert "core(s)" in checks["CPU"]["found"] and "`auto` trains in " in checks["precision"]["found"]
    assert checks["data folder"]["found"].startswith(f"{home} · ") and "GB free" in checks["data folder"]["found"]
    with Lab.open(home) as lab:
        lab.store.create_run({})
    queued = cli("doctor", home=home)
    assert queued.returncode == 1, queued.stderr
    lines = queued.stdout.splitlines()
    assert f"sqlite:///{home / 'runs.sqlite'} · schema {len(MIGRATIONS)} · 1 run(s), 1 queued" in lines[-4]
    assert lines[-3:] == [
        "✗ workers         none, and runs are queued",
        "                  → `bert-lab app` starts a worker; or `bert-lab worker`",
        "1 problem(s) found",
    ]
    away = cli("doctor", "--json", "--store", "postgresql://lab:pw@127.0.0.1:1/lab", home=home)
    (store,) = [c for c in json.loads(away.stdout) if c["part"] == "store"]
    assert away.returncode == 1 and store["problem"] and "postgresql://lab:****@127.0.0.1:1/lab" in store["found"]
    assert "pw" not in away.stdout.replace("password", "")


def test_a_run_is_renamed_tagged_and_noted_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "lab"
    run_id = cli("submit", *TINY_FLAGS, "--name", "first", home=home).stdout.strip()
    assert cli("rename", run_id, "  **baseline** <b>  ", home=home).stdout == f"#{run_id} **baseline** <b>\n"
    assert (
        cli("tag", run_id, "keep", "lr", "Keep", " ", home=home).stdout == f"#{run_id} **baseline** <b>  [keep, lr]\n"
    )
    assert cli("tag", run_id, "KEEP", "--remove", home=home).stdout.endswith("  [lr]\n")
    noted = cli("note", run_id, "warmup helped; try 3e-5", home=home)
    assert noted.stdout.splitlines()[-1] == "warmup helped; try 3e-5"
    [listed] = json.loads(cli("runs", "--json", home=home).stdout)
    assert (listed["name"], listed["tags"], listed["note"]) == ("**baseline** <b>", ["lr"], "warmup helped; try 3e-5")
    assert "  [lr]" in cli("runs", home=home).stdout.splitlines()[1]
    shown = cli("show", run_id, home=home).stdout.splitlines()
    assert shown[1:3] == ["  tags: lr", "  note: warmup helped; try 3e-5"]
    bad = cli("tag", run_id, "a,b", "x" * 40, home=home)
    assert bad.returncode == 2 and "tag 'a,b': at most 32 characters, and no commas" in bad.stderr
    assert "tag 'xxxxxxxx" in bad.stderr and cli("rename", run_id, "   ", home=home).returncode == 2
    assert json.loads(cli("runs", "--json", home=home).stdout)[0]["tags"] == ["lr"]  # nothing written
    long = cli("submit", *TINY_FLAGS, "--name", "x" * 81, home=home)
    assert long.returncode == 2 and "submit: error: --name: at most 80 characters (this one has 81)" in long.stderr


def test_estimate_says_what_runs_like_the_flags_scored(tmp_path: Path) -> None:
    from bert_lab.core.config import RunConfig
    from bert_lab.runs.cache import cache_key

    home = tmp_path / "lab"
    assert cli("estimate", "--dataset", "sms_spam", home=home).stdout == (
        "No similar runs yet on sms_spam with minilm.\n"
    )
    with Lab.open(home) as lab:
        ids = []
        for lr, accuracy in ((1e-4, 0.80), (3e-4, 0.60)):
            config = RunConfig(lr=lr).to_dict()
            run = lab.store.create_run(config, name=f"lr {lr:g}", cache_key=cache_key(config))
            lab.store.claim_run(run.id, pid=1)
            lab.store.add_metrics(run.id, [(10, 1.0, 4.0, "accuracy", accuracy), (10, 1.0, 4.0, "f1", accuracy)])
            lab.store.set_status(run.id, Status.FINISHED)
            ids.append(run.id)
    weight = math.exp(-0.5 * (math.log10(3) / 0.25) ** 2)  # 3× the LR: 0.477 away, bandwidth 0.25
    near = (0.80 + 0.60 * weight) / (1 + weight)
    shown = json.loads(cli("estimate", "--lr", "1e-4", "--seed", "7", "--json", home=home).stdout)
    assert (shown["n"], shown["nearest_id"], shown["same_config"]) == (2, ids[0], False)
    assert shown["accuracy"] == pytest.approx(near) and shown["f1_spread"] == pytest.approx(0.2 / math.sqrt(2))
    said = cli("estimate", "--lr", "3e-4", "--seed", "7", home=home).stdout
    assert said == (
        "Runs like this one scored accuracy 0.63 ± 0.14, F1 0.63 ± 0.14 "
        f"(2 past runs on rotten_tomatoes with minilm; closest: run #{ids[1]} lr 0.0003).\n"
    )
    cached = cli("estimate", "--lr", "3e-4", home=home).stdout  # seed 42, as it ran: the cache answers
    assert cached == (
        f"Already run: answered from the cache instantly (run #{ids[1]} lr 0.0003: accuracy 0.600, F1 0.600).\n"
    )
    assert cli("estimate", "--lr", "-1", home=home).returncode == 2


def test_runs_lists_an_lr_range_test_as_one_with_its_suggestion(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from bert_lab.cli import main

    with Lab.open(tmp_path) as lab:
        run = lab.store.create_run({"schedule": "range_test", "lr": 1.0}, name="LR range test")
        lab.store.claim_run(run.id, pid=1)
        lab.store.add_metrics(run.id, [(100, 1.0, 5.0, "train_loss", 21.0), (100, 1.0, 5.0, "accuracy", 0.5)])
        lab.store.update_run(run.id, summary=RunSummary(total_steps=100, lr_find={"suggested_lr": 1.5e-4}))
        lab.store.set_status(run.id, Status.FINISHED)
    assert main(["runs", "--home", str(tmp_path)]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.endswith("LR range test  [LR range test: suggests lr 1.5e-04]") and "21.0" not in line


def test_the_group_table_marks_an_exact_tie_without_a_star(lab: Lab) -> None:
    from test_report import finished_group

    from bert_lab.cli import render_group
    from bert_lab.sweeps.report import read_group

    table = render_group(read_group(lab.store, finished_group(lab, {1e-4: [0.7, 0.72], 3e-4: [0.72, 0.7]})))
    assert "★" not in table and [line[:2] for line in table.splitlines()[3:5]] == ["= ", "= "]


def test_group_json_carries_the_predictions_with_their_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bert_lab.cli import main
    from bert_lab.runs.records import Prediction
    from bert_lab.teaching.lessons import LESSONS, launch

    with Lab.open(tmp_path) as lab:
        group = launch(lab, LESSONS["dropout"], model="tiny")  # judged by eval loss: lower is better
        lab.store.predict(Prediction(group.id, "ana", "no dropout", 0.3, 0.5, 1.0))
        lab.store.predict(Prediction(group.id, "bo", "heavy dropout (0.3)", None, None, 2.0))
        assert main(["group", group.id, "--json", "--home", str(tmp_path)]) == 0
        said = json.loads(capsys.readouterr().out)["predictions"]
        assert [(p["owner"], p["arm"], p["low"], p["high"], p["outcome"]) for p in said] == [
            ("ana", "no dropout", 0.3, 0.5, []),  # no result yet: no outcome
            ("bo", "heavy dropout (0.3)", None, None, []),
        ]
        for run, loss in zip(sorted(lab.store.list_runs(group_id=group.id), key=lambda r: r.id), (0.62, 0.48)):
            lab.store.claim_run(run.id, pid=1)
            lab.store.add_metrics(run.id, [(9, 1.0, 1.0, "eval_loss", loss), (9, 1.0, 1.0, "accuracy", 0.7)])
            lab.store.set_status(run.id, Status.FINISHED)
    assert main(["group", group.id, "--json", "--home", str(tmp_path)]) == 0
    ana, bo = json.loads(capsys.readouterr().out)["predictions"]
    assert ana["outcome"][1].startswith("It did not: heavy dropout (0.3) ended at 0.480, no dropout ended at 0.620")
    assert ana["outcome"][2] == "Your range for its Eval loss, 0.300 to 0.500, missed it: it ended at 0.620."
    assert bo["outcome"][1].startswith("It did: heavy dropout (0.3) ended at 0.480")
    assert main(["group", group.id, "--home", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "predictions: 2 (no dropout: 1, heavy dropout (0.3): 1)"
