"""The run's one home (`bert_lab.runs`): statuses and their transitions, the metric catalogue, the records, the
folder layout, the plain-words helpers and the service verbs (against a real SQLite store in tmp_path)."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from bert_lab.core.config import ConfigError, RunConfig
from bert_lab.core.layout import DataFolder, RunFolder
from bert_lab.core.metrics import (
    CATALOGUE,
    EVAL_METRICS,
    METRICS,
    SCORES,
    STEP_METRICS,
    charted,
    improved,
    label,
)
from bert_lab.engine.data import DataError
from bert_lab.engine.reports import EvalRecord, Hooks, StepRecord, Stop, TrainResult, points
from bert_lab.runs import describe, service
from bert_lab.runs.records import Group, MetricPoint, Run, RunEvent, RunSummary, WorkerLease
from bert_lab.runs.service import Lab
from bert_lab.runs.status import ACTIVE, RESUMABLE, STATUS_OF, TERMINAL, TRANSITIONS, Ending, Status, ending
from bert_lab.runs.store import STORE_ENV, StoreError, UnknownRunError

Q, R, F, X, C, D, INT, P = (
    Status.QUEUED,
    Status.RUNNING,
    Status.FINISHED,
    Status.FAILED,
    Status.CANCELLED,
    Status.DIVERGED,
    Status.INTERRUPTED,
    Status.PRUNED,
)
ALLOWED = {(Q, R), (Q, C), (Q, F), (R, F), (R, X), (R, C), (R, D), (R, INT), (R, P), (INT, Q), (C, Q)}  # the diagram


# === status =========================================================================================================
@pytest.mark.parametrize("target", list(Status))
@pytest.mark.parametrize("source", list(Status))
def test_transitions_are_exactly_the_allowed_ones(source: Status, target: Status) -> None:
    assert source.can_become(target) == ((source, target) in ALLOWED)


def test_active_terminal_and_resumable_sets() -> None:
    assert ACTIVE == {Q, R} and RESUMABLE == {INT, C} and TERMINAL == {F, X, C, D, INT, P}
    assert ACTIVE | TERMINAL == set(Status) and not ACTIVE & TERMINAL
    assert [s for s in Status if s.is_active] == [Q, R]
    assert {s for s in Status if s.is_resumable} == {INT, C}
    assert all(not s.can_become(t) for s in (F, X, D) for t in Status)  # finished, failed, diverged: final
    assert set(TRANSITIONS) == {Q, R, INT, C}


def test_every_status_is_reachable_from_queued() -> None:
    reached, frontier = {Q}, [Q]
    while frontier:
        step = {t for s in frontier for t in Status if s.can_become(t)} - reached
        reached |= step
        frontier = list(step)
    assert reached == set(Status)


def test_how_a_run_ends_becomes_its_status_in_one_place() -> None:
    """The loop's own reasons, then why it was asked to stop, then what the worker saw: each to the status it means."""
    assert [ending(stop) for stop in Stop] == [F, F, D, C]  # completed, early-stopped, diverged, asked (a cancel)
    asked = {why: ending(Stop.ASKED, why) for why in (Ending.INTERRUPTED, Ending.PRUNED, Ending.RANGE_TEST_DONE)}
    assert asked == {Ending.INTERRUPTED: INT, Ending.PRUNED: P, Ending.RANGE_TEST_DONE: F}
    assert ending(Stop.DIVERGED, Ending.INTERRUPTED) == D  # the loss blew up: asking to stop changes nothing
    seen = [ending(why) for why in (Ending.LOST, Ending.KILLED, Ending.FAILED, Ending.DISK_FULL)]
    assert seen == [INT, C, X, INT]
    assert set(STATUS_OF) == set(Ending) and {stop.value for stop in Stop} - {"asked"} <= set(Ending)
    assert all(R.can_become(status) for status in STATUS_OF.values())  # each is an ending a running run may have


def test_a_run_summary_is_stored_as_the_fields_it_reports() -> None:
    summary = RunSummary(total_steps=40, confusion=[[3, 1], [0, 4]])
    assert summary.to_dict() == {"total_steps": 40, "confusion": [[3, 1], [0, 4]]}
    assert RunSummary.from_dict({**summary.to_dict(), "from_a_newer_lab": 1}) == summary  # unknown keys left out
    later = summary.merged(RunSummary(steps=40, total_steps=41, reason="completed 41 steps"))
    assert later == RunSummary(total_steps=41, confusion=[[3, 1], [0, 4]], steps=40, reason="completed 41 steps")
    assert summary.merged(RunSummary()) == summary


def test_a_run_summary_of_a_training_result_and_every_record_is_frozen() -> None:
    result = TrainResult(
        stop=Stop.COMPLETED,
        reason="completed 40 steps",
        steps=40,
        total_steps=40,
        epoch=1.0,
        wall_s=30.0,
        train_s=20.0,
        samples_per_s=64.0,
        eval=None,
        label_names=["ham", "spam"],
        device="cpu",
        precision="fp32",
        model_dir=None,
    )
    summary = RunSummary.of(result, reason="pruned at evaluation 2")  # the runner may know more than the loop
    assert summary == RunSummary(
        total_steps=40,
        steps=40,
        samples_per_s=64.0,
        train_s=20.0,
        wall_s=30.0,
        precision="fp32",
        reason="pruned at evaluation 2",
        labels=["ham", "spam"],
    )
    records = [
        (summary, "steps"),
        (WorkerLease("lab-a", 1, 1, 0.0, 0.0), "slots"),
        (Group("g", "g", "", "grid", "f1", {}, 0.0, False), "stopped"),
        (MetricPoint(1, 1, 1, 0.0, 0.0, "f1", 0.5), "value"),
        (RunEvent(1, 1, 0.0, "info", "hello"), "message"),
    ]
    for record, name in records:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, name, None)


def test_status_is_its_plain_string() -> None:
    assert Status("running") is R and R == "running" and str(R) == "running" and f"{C}" == "cancelled"
    assert [str(s) for s in Status] == [
        "queued",
        "running",
        "finished",
        "failed",
        "cancelled",
        "diverged",
        "interrupted",
        "pruned",
    ]
    with pytest.raises(ValueError):
        Status("paused")


# === the metric catalogue ===========================================================================================
def test_catalogue_names_and_labels_are_unique() -> None:
    names = [m.name for m in CATALOGUE]
    assert len(names) == len(set(names)) and set(METRICS) == set(names)
    assert len({m.label for m in CATALOGUE}) == len(CATALOGUE)
    assert all(m.label and m.caption for m in CATALOGUE)
    assert set(STEP_METRICS) | set(EVAL_METRICS) == set(CATALOGUE) and {m.per for m in CATALOGUE} == {"step", "eval"}


def test_every_metric_names_a_field_of_its_record() -> None:
    step_fields = {f.name for f in dataclasses.fields(StepRecord)}
    eval_fields = {f.name for f in dataclasses.fields(EvalRecord)}
    assert [m.name for m in STEP_METRICS if m.field not in step_fields] == []
    assert [m.name for m in EVAL_METRICS if m.field not in eval_fields] == []
    assert {"train_loss", "lr", "grad_norm"} <= {m.name for m in STEP_METRICS}
    assert {"eval_loss", "accuracy", "f1"} <= {m.name for m in EVAL_METRICS}


def test_weight_charts_are_drawn_only_for_runs_that_decay_or_penalise_weights() -> None:
    plain = RunConfig().to_dict()
    basic = ["train_loss", "eval_loss", "accuracy", "f1", "lr", "grad_norm"]
    assert charted([plain]) == basic
    for knob in ("weight_decay", "l1", "l2"):
        assert charted([plain, RunConfig(**{knob: 0.01}).to_dict()]) == [*basic, "weight_norm", "near_zero"]
    assert all(charted_for in ((), ("weight_decay", "l1", "l2")) for charted_for in (m.charted_for for m in CATALOGUE))


def step_record() -> StepRecord:
    return StepRecord(
        step=3, total_steps=10, epoch=0.3, elapsed_s=4.5, loss=1.25, lr=2e-4, grad_norm=0.75, samples_per_s=33
    )


def eval_record() -> EvalRecord:
    return EvalRecord(
        step=4,
        epoch=0.4,
        elapsed_s=6.0,
        loss=0.61,
        accuracy=0.8,
        precision=0.7,
        recall=0.65,
        f1=0.67,
        confusion=[[5, 1], [2, 7]],
        weight_norm=42.5,
        near_zero=0.03,
    )


def test_points_makes_one_point_per_catalogue_entry() -> None:
    step = points(step_record())
    assert [name for *_, name, _ in step] == [m.name for m in STEP_METRICS]
    assert {p[:3] for p in step} == {(3, 0.3, 4.5)}
    values = {name: value for *_, name, value in step}
    assert (values["train_loss"], values["lr"], values["grad_norm"], values["samples_per_s"]) == (1.25, 2e-4, 0.75, 33)
    assert all(type(value) is float for *_, value in step)
    evals = points(eval_record())
    assert [name for *_, name, _ in evals] == [m.name for m in EVAL_METRICS]
    assert {p[:3] for p in evals} == {(4, 0.4, 6.0)}
    assert {name: value for *_, name, value in evals} == {
        "eval_loss": 0.61,
        "accuracy": 0.8,
        "precision": 0.7,
        "recall": 0.65,
        "f1": 0.67,
        "weight_norm": 42.5,
        "near_zero": 0.03,
    }


def test_improved_follows_each_score_direction() -> None:
    assert improved("accuracy", 0.81, 0.8) and not improved("accuracy", 0.79, 0.8)
    assert improved("eval_loss", 0.5, 0.6) and not improved("eval_loss", 0.7, 0.6)
    assert not improved("f1", 0.5, 0.5) and not improved("eval_loss", 0.5, 0.5)  # a tie is not progress
    assert improved("eval_loss", 9.0, None) and improved("f1", 0.0, None)  # anything beats no value
    for name in SCORES:
        higher = METRICS[name].higher_is_better
        assert improved(name, 1.0, 0.5) is higher and improved(name, 0.5, 1.0) is (not higher), name


def test_scores_are_the_evaluation_metrics_with_a_direction() -> None:
    assert set(SCORES) == {"eval_loss", "accuracy", "precision", "recall", "f1"}
    assert all(METRICS[name].per == "eval" and METRICS[name].higher_is_better is not None for name in SCORES)
    assert RunConfig().early_stopping_metric in SCORES
    assert METRICS["eval_loss"].higher_is_better is False and METRICS["accuracy"].higher_is_better is True


def test_label_of_known_and_unknown_names() -> None:
    assert label("f1") == "F1 (macro)" and label("train_loss") == "Training loss"
    assert label("my_metric") == "my_metric"


# === records ========================================================================================================
def make_run(**changes: object) -> Run:
    base = Run(
        id=7,
        name="sweep 1/3",
        owner="",
        status=Q,
        config={},
        created_at=1000.0,
        started_at=None,
        finished_at=None,
        device=None,
        progress=0.0,
        error=None,
        pid=None,
        heartbeat_at=None,
        group_id=None,
        cancel_requested=False,
        summary=RunSummary(),
        resume_count=0,
    )
    return dataclasses.replace(base, **changes)


def test_run_elapsed_and_active() -> None:
    assert make_run().elapsed_s is None and make_run().is_active
    assert make_run(status=F, started_at=100.0, finished_at=160.5).elapsed_s == 60.5
    running = make_run(status=R, started_at=time.time() - 5)
    assert running.elapsed_s == pytest.approx(5, abs=1) and running.is_active
    assert [make_run(status=s).is_active for s in Status] == [s in (Q, R) for s in Status]


def test_records_are_frozen_and_hooks_do_nothing_by_default() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_run().status = R  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        step_record().loss = 0.0  # type: ignore[misc]
    hooks = Hooks()
    assert hooks.on_step(step_record()) is None and hooks.on_eval(eval_record()) is None
    assert hooks.on_log("hello") is None and hooks.should_stop() is False


def test_the_runs_package_does_not_import_torch() -> None:
    code = (
        "import sys, bert_lab.runs, bert_lab.runs.service, bert_lab.runs.describe, bert_lab.runs.sqlite; "
        "print(sorted(m for m in ('torch', 'transformers', 'accelerate') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# === layout =========================================================================================================
def test_data_folder_paths(tmp_path: Path) -> None:
    data = DataFolder(tmp_path / "lab")
    assert data.run(12) == RunFolder(tmp_path / "lab" / "runs" / "12")
    assert (data.uploads, data.models, data.sqlite) == (
        tmp_path / "lab" / "uploads",
        tmp_path / "lab" / "models",
        tmp_path / "lab" / "runs.sqlite",
    )
    assert (data.worker_lock, data.worker_log, data.standby_log) == (
        tmp_path / "lab" / "worker.lock",
        tmp_path / "lab" / "worker.log",
        tmp_path / "lab" / "standby.log",
    )
    assert not (tmp_path / "lab").exists()  # naming paths creates nothing


def test_run_folder_paths_and_create(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "runs" / "3")
    assert (folder.model, folder.checkpoint, folder.log) == (
        folder.path / "model",
        folder.path / "checkpoint",
        folder.path / "output.log",
    )
    assert folder.checkpoint_state == folder.path / "checkpoint" / "state.json"
    assert (folder.run_config, folder.eval_report) == (
        folder.path / "run_config.json",
        folder.path / "eval_report.json",
    )
    assert not folder.path.exists()
    assert folder.create() is folder and folder.path.is_dir()
    (folder.path / "kept.txt").write_text("x")
    folder.create()  # again: nothing lost
    assert (folder.path / "kept.txt").read_text() == "x"


def test_default_data_folder_is_the_argument_then_the_env_then_lab_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BERT_LAB_HOME", str(tmp_path / "from_env"))
    assert DataFolder.default(tmp_path / "explicit").path == tmp_path / "explicit"
    assert DataFolder.default(str(tmp_path / "as_text")).path == tmp_path / "as_text"
    assert DataFolder.default().path == tmp_path / "from_env"
    monkeypatch.delenv("BERT_LAB_HOME")
    assert DataFolder.default().path == Path("lab_data")


# === describe =======================================================================================================


def test_counts_line_names_each_status_once_in_order_of_name() -> None:
    assert describe.counts_line({"queued": 1, "finished": 2, "failed": 0}) == "2 finished · 1 queued"
    assert describe.counts_line({"running": 1, "cancelled": 3}, sep=", ") == "3 cancelled, 1 running"
    assert describe.counts_line({}, empty="no runs yet") == "no runs yet"
    assert describe.counts_line({"failed": 0}, empty="none") == "none"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, ""),
        (math.nan, ""),
        (math.inf, ""),
        (-math.inf, ""),
        (-5.0, "0s"),
        (0, "0s"),
        (0.4, "0s"),
        (42, "42s"),
        (59.4, "59s"),
        (59.6, "1m 00s"),
        (60, "1m 00s"),
        (185, "3m 05s"),
        (3599.4, "59m 59s"),
        (3600, "1h 00m"),
        (3725, "1h 02m"),
        (90_000, "25h 00m"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert describe.format_duration(seconds) == text


def test_eta_from_progress_and_elapsed_time() -> None:
    started = time.time() - 100
    assert describe.eta_s(make_run(status=R, started_at=started, progress=0.25)) == pytest.approx(300, abs=2)
    assert describe.eta_s(make_run(status=R, started_at=started, progress=1.0)) == pytest.approx(0, abs=1e-6)
    assert describe.eta_s(make_run(status=R, started_at=started, progress=0.02)) == pytest.approx(4900, abs=50)
    assert describe.eta_s(make_run(status=R, started_at=started, progress=0.019)) is None  # too early to tell
    assert describe.eta_s(make_run(status=R, started_at=None, progress=0.5)) is None
    for status in (Q, F, C, INT):
        assert describe.eta_s(make_run(status=status, started_at=started, progress=0.5)) is None


def test_a_run_as_a_table_row() -> None:
    """The one row the Runs page, the CLI and the host's queue show: steps done, cached, a place in the queue."""
    running = make_run(status=R, started_at=time.time() - 100, progress=0.25, summary=RunSummary(total_steps=40))
    running = dataclasses.replace(running, config={"dataset": "/data/up/reviews.csv", "model": "minilm"}, owner="")
    r = describe.row(running, {"train_loss": 0.5, "f1": 0.7, "lr": 1e-4}, group="lr sweep")
    assert (r.id, r.run, r.status, r.steps, r.eta) == (7, "#7 sweep 1/3", describe.badge(R), "10 / 40", "5m 00s")
    assert r.scores == {"train_loss": 0.5, "accuracy": None, "f1": 0.7}  # IN_TABLES, in order; nothing else
    assert (r.dataset, r.model, r.owner, r.group) == ("reviews.csv", "minilm", "nobody", "lr sweep")
    cached = describe.row(dataclasses.replace(running, status=F, cached_from=3), {})
    assert cached.steps == "cached from #3"
    queued = describe.row(make_run(), {}, place=(2, 150.0))
    assert (queued.steps, queued.eta) == ("#2 in queue", "starts in 2m 30s")
    assert describe.row(make_run(), {}, place=(1, 0.0)).eta == "next"


def test_an_lr_range_test_is_listed_as_one_with_its_suggestion_not_its_blown_up_loss() -> None:
    # The range test's loss rose to 21 as its learning rate reached 1: that is the test working, not a score.
    found = RunSummary(total_steps=100, lr_find={"suggested_lr": 1.5e-4, "steep_lr": 3e-4, "min_lr": 1e-3})
    test = make_run(status=F, progress=1.0, config={"schedule": "range_test", "lr": 1.0}, summary=found)
    r = describe.row(test, {"train_loss": 21.0, "accuracy": 0.42, "f1": 0.3})
    assert test.is_range_test and (r.kind, r.status) == ("LR range test", "✓ finished · LR range test")
    assert r.steps == "suggests lr 1.5e-04" and r.scores == {"train_loss": None, "accuracy": None, "f1": None}
    going = describe.row(dataclasses.replace(test, status=R, progress=0.3, summary=RunSummary(total_steps=100)), {})
    assert (going.status, going.steps) == ("▶ running · LR range test", "30 / 100")
    plain = describe.row(dataclasses.replace(test, config={"schedule": "constant", "lr": 1.0}), {"train_loss": 0.5})
    assert (plain.kind, plain.status, plain.scores["train_loss"]) == ("training run", "✓ finished", 0.5)
    said = describe.notice(test, {"accuracy": 0.42, "f1": 0.3})
    assert said == "#7 sweep 1/3 finished: it suggests a learning rate of 1.5e-04"  # not its blown-up scores


def test_disk_full_and_out_of_memory_are_told_from_other_errors() -> None:
    import errno

    assert describe.is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert describe.is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not describe.is_disk_full(OSError(errno.EACCES, "Permission denied")) and not describe.is_disk_full(
        KeyError()
    )
    for text in ("CUDA Out Of Memory. Tried to allocate 2 GiB", "MemoryError", "mmap: can't allocate memory"):
        assert describe.looks_out_of_memory(text), text
    assert not describe.looks_out_of_memory("FileNotFoundError: memory.csv")


def finished_at(speed: float, *, model: str = "tiny", max_length: int = 64, wall_s: float = 50.0) -> Run:
    """A finished run of `model` that trained at `speed` samples/s for 40 s of its `wall_s`."""
    summary = RunSummary(samples_per_s=speed, train_s=40.0, wall_s=wall_s)
    return make_run(status=F, config={"model": model, "max_length": max_length}, summary=summary)


def test_a_run_is_estimated_from_finished_runs_of_its_model_or_guessed() -> None:
    config = {"model": "tiny", "max_length": 64, "train_size": 2000, "num_epochs": 1}
    assert describe.estimate_run_s([], config) == (
        2000 / 400 + 15,
        "a guess (400 samples/s): no run of this model has finished here yet",
    )
    assert describe.estimate_run_s([], {})[0] == 2000 / 60 + 15  # the defaults: MiniLM, guessed at 60 samples/s
    others = [
        finished_at(100.0),  # the same model and length: 2000 / 100 + (50 − 40) = 30 s
        finished_at(50.0, max_length=128, wall_s=45.0),
        finished_at(999.0, model="minilm"),  # another model
        dataclasses.replace(finished_at(999.0), status=X),  # not finished
        make_run(status=F, config={"model": "tiny", "max_length": 64}),  # no speed recorded
    ]
    assert describe.estimate_run_s(others, config) == (
        30.0,
        "measured: 100 samples/s over 1 finished run(s) of this model here",
    )
    # No run of that length: both lengths, medians 75 samples/s and 7.5 s of overhead.
    assert describe.estimate_run_s(others, {**config, "max_length": 256})[0] == pytest.approx(2000 / 75 + 7.5)
    # The ten most recent only: five at 100 and five at 200 (median 150) before an eleventh at 1.
    recent = [*[finished_at(100.0)] * 5, *[finished_at(200.0)] * 5, finished_at(1.0)]
    assert describe.estimate_run_s(recent, config)[0] == pytest.approx(2000 / 150 + 10)
    assert describe.estimate_run_s([finished_at(100.0, wall_s=30.0)], config)[0] == 20.0  # no negative overhead
    timeless = make_run(status=F, config={"model": "tiny", "max_length": 64}, summary=RunSummary(samples_per_s=100.0))
    assert describe.estimate_run_s([timeless], config)[0] == 20.0  # no times recorded: no overhead
    untrained = dataclasses.replace(timeless, summary=RunSummary(samples_per_s=100.0, wall_s=50.0))
    assert describe.estimate_run_s([untrained], config)[0] == 70.0  # no training time: all 50 s are overhead
    assert describe.estimate_run_s([], {**config, "num_epochs": 2})[0] == 2 * 2000 / 400 + 15


def test_a_row_without_a_plan_or_a_machine_leaves_them_blank() -> None:
    bare = describe.row(make_run(status=R, progress=0.5), {})
    assert (bare.steps, bare.device, bare.host, bare.owner, bare.dataset) == ("", "", "", "nobody", "")
    placed = describe.row(dataclasses.replace(make_run(status=R), device="cuda:0", host="gpu-a", owner="ana"), {})
    assert (placed.device, placed.host, placed.owner) == ("cuda:0", "gpu-a", "ana")


def test_notes_and_rows_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        describe.Note("info", "a", "b").level = "error"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        describe.row(make_run(), {}).steps = ""  # type: ignore[misc]


def test_labels_and_badges() -> None:
    assert describe.run_label(make_run()) == "#7 sweep 1/3"
    badges = [describe.badge(s) for s in Status]
    assert len(set(badges)) == len(badges) and all(str(s) in describe.badge(s) for s in Status)


@pytest.mark.parametrize(
    ("changes", "level", "headline", "detail"),
    [
        ({"status": X, "error": "CUDA out of memory"}, "error", "#7 sweep 1/3 failed.", "CUDA out of memory"),
        ({"status": X, "error": "  "}, "error", "#7 sweep 1/3 failed.", "No reason was recorded."),
        (
            {"status": D, "error": "loss became nan at step 4"},
            "error",
            "#7 sweep 1/3 diverged:",
            "the loss blew up, so training stopped (loss became nan at step 4).",
        ),
        (
            {"status": D},
            "error",
            "#7 sweep 1/3 diverged:",
            "the loss blew up, so training stopped (loss became NaN or huge).",
        ),
        (
            {"status": INT, "error": "lost"},
            "warning",
            "#7 sweep 1/3 was interrupted:",
            "its process stopped (the app or the machine restarted?). Resume continues from its last checkpoint.",
        ),
        (
            {"status": C},
            "warning",
            "#7 sweep 1/3 was cancelled:",
            "it was stopped on request. Resume continues from its last checkpoint.",
        ),
        (
            {"status": C, "error": "stopped by the host"},
            "warning",
            "#7 sweep 1/3 was cancelled:",
            "stopped by the host. Resume continues from its last checkpoint.",
        ),
        (
            {"status": P, "error": "pruned at evaluation 2: F1 0.41"},
            "info",
            "#7 sweep 1/3 was pruned:",
            "pruned at evaluation 2: F1 0.41",
        ),
        (
            {"status": P},
            "info",
            "#7 sweep 1/3 was pruned:",
            "the search stopped it early: it was clearly losing.",
        ),
        (
            {"status": R, "cancel_requested": True},
            "info",
            "#7 sweep 1/3 is stopping:",
            "it ends at its current step and saves a checkpoint.",
        ),
    ],
)
def test_explain_runs_that_need_a_word(changes: dict, level: str, headline: str, detail: str) -> None:
    assert describe.explain(make_run(**changes)) == describe.Note(level, headline, detail)


def test_explain_a_waiting_run_only_without_a_worker() -> None:
    assert describe.explain(make_run(status=Q)) is None
    note = describe.explain(make_run(status=Q), worker_alive=False)
    assert note is not None and (note.level, note.headline) == ("warning", "#7 sweep 1/3 is waiting,")
    assert "no background worker" in note.detail


@pytest.mark.parametrize("changes", [{"status": R}, {"status": F}, {"status": F, "error": "ignored"}])
def test_explain_says_nothing_about_runs_that_are_fine(changes: dict) -> None:
    assert describe.explain(make_run(**changes)) is None
    assert describe.explain(make_run(**changes), worker_alive=False) is None


@pytest.mark.parametrize("status", [X, D, INT, C])
def test_explain_keeps_a_markdown_name_verbatim(status: Status) -> None:
    """Escaping is the page's job (`lab_ui.page.md`): the note carries the name exactly as the user typed it."""
    name = "**bold** _it_ [link](http://x.ex) `code` # <b>html</b> \\ $x$"  # 60 characters: not shortened
    note = describe.explain(make_run(status=status, name=name))
    assert note is not None and note.headline.startswith(f"#7 {name} ")


# === service verbs ==================================================================================================
@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    monkeypatch.delenv(STORE_ENV, raising=False)
    with Lab.open(tmp_path / "lab") as opened:
        yield opened


def write_csv(path: Path, rows: int = 20, classes: tuple[str, ...] = ("pos", "neg")) -> Path:
    path.write_text(
        "review,sentiment\n" + "".join(f"text number {i},{classes[i % len(classes)]}\n" for i in range(rows))
    )
    return path


def csv_config(path: Path, **changes: object) -> RunConfig:
    return RunConfig(dataset=str(path), model="tiny", **changes)  # type: ignore[arg-type]


def finished(lab: Lab, run_id: int) -> None:
    """Bring a run to `finished` the way the worker and the run's process do, through the store."""
    assert lab.store.claim_run(run_id, pid=1) is not None
    lab.store.set_status(run_id, F)


def test_lab_open_uses_the_data_folder_and_its_sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORE_ENV, raising=False)
    monkeypatch.setenv("BERT_LAB_HOME", str(tmp_path / "from_env"))
    with Lab.open() as lab:
        assert lab.data == DataFolder(tmp_path / "from_env")
        assert lab.store.url == f"sqlite:///{tmp_path / 'from_env' / 'runs.sqlite'}"
        run_id = lab.store.create_run({}).id
    other = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    with Lab.open(tmp_path / "explicit", store=other) as lab:
        assert lab.data.path.is_dir() and lab.store.url == other and lab.store.list_runs() == []
    with Lab.open(tmp_path / "from_env") as again:
        assert [r.id for r in again.store.list_runs()] == [run_id]
    with Lab.open(tmp_path / "new" / "home", artifacts=tmp_path / "new" / "shared" / "artifacts") as fresh:
        assert fresh.data.path.is_dir() and fresh.data.root.is_dir()  # missing folders made, parents too
        with pytest.raises(dataclasses.FrozenInstanceError):
            fresh.store = again.store  # type: ignore[misc]


def test_submit_stages_a_csv_into_uploads_once(lab: Lab, tmp_path: Path) -> None:
    original = write_csv(tmp_path / "mine.csv")
    first = service.submit(lab, csv_config(original), name="a", owner="ana")
    second = service.submit(lab, csv_config(original, seed=2))
    staged = Path(first.config["dataset"])
    assert staged.parent == lab.data.uploads and staged.read_bytes() == original.read_bytes()
    assert second.config["dataset"] == str(staged) and list(lab.data.uploads.iterdir()) == [staged]
    assert (first.name, first.owner, first.status, first.group_id) == ("a", "ana", Q, None)
    assert {**first.config, "dataset": str(original)} == csv_config(original).to_dict()
    original.unlink()  # the run no longer depends on the original file
    assert service.submit(lab, RunConfig.from_dict(first.config)).config["dataset"] == str(staged)
    assert list(lab.data.uploads.iterdir()) == [staged]
    renamed = write_csv(tmp_path / "other.csv", rows=22)
    assert Path(service.submit(lab, csv_config(renamed)).config["dataset"]) != staged
    assert len(list(lab.data.uploads.iterdir())) == 2


def test_stage_upload_names_the_file_by_its_content(lab: Lab) -> None:
    data = b"text,label\nhi,a\nyo,b\n"
    path = service.stage_upload(lab, data, "my data (v2)!.csv")
    assert path.parent == lab.data.uploads and path.name.startswith("my_data__v2__-") and path.suffix == ".csv"
    assert path.read_bytes() == data
    assert path.name == f"my_data__v2__-{hashlib.sha256(data).hexdigest()[:16]}.csv"
    assert service.stage_upload(lab, data, "my data (v2)!.csv") == path
    for name, suffix in (("lines.JSONL", ".jsonl"), ("sheet.xlsx", ".csv")):  # its kind kept; else read as CSV
        kept = service.stage_upload(lab, data, name)
        assert kept.suffix == suffix
        kept.unlink()
    long = service.stage_upload(lab, data, "x" * 60 + ".csv")
    assert long.name == f"{'x' * 40}-{hashlib.sha256(data).hexdigest()[:16]}.csv"  # the name cut to 40 characters
    long.unlink()
    assert service.stage_upload(lab, data + b"hey,a\n", "my data (v2)!.csv") != path
    assert sorted(p.suffix for p in lab.data.uploads.iterdir()) == [".csv", ".csv"]  # no temporary files left


def test_submit_refuses_a_bad_csv_and_stores_nothing(lab: Lab, tmp_path: Path) -> None:
    bad = write_csv(tmp_path / "one_class.csv", classes=("pos",))
    with pytest.raises(DataError, match="only one class"):
        service.submit(lab, csv_config(bad))
    with pytest.raises(DataError, match="unknown dataset"):
        service.submit(lab, RunConfig(dataset="no_such_data"))
    assert lab.store.list_runs() == []
    assert not lab.data.uploads.exists() or list(lab.data.uploads.iterdir()) == []


def test_submit_group_stores_every_run_under_one_new_group(lab: Lab, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "mine.csv")
    group = service.submit_group(lab, [csv_config(data, seed=s) for s in (1, 2, 3)], name="seeds", owner="bo")
    group_id = group.id
    assert (group.name, group.method, group.metric, group.owner) == ("seeds", "runs", "f1", "bo")
    runs = sorted(lab.store.list_runs(group_id=group_id), key=lambda r: r.id)
    assert [r.name for r in runs] == ["seeds 1/3", "seeds 2/3", "seeds 3/3"]
    assert [r.config["seed"] for r in runs] == [1, 2, 3] and {r.owner for r in runs} == {"bo"}
    assert sorted(r.id for r in lab.store.list_runs(group_id=group_id)) == [r.id for r in runs]
    assert len({r.config["dataset"] for r in runs}) == 1 and len(list(lab.data.uploads.iterdir())) == 1
    other = service.submit_group(lab, [csv_config(data)] * 2, run_names=["a", "b"]).id
    assert other != group_id
    assert sorted(r.name for r in lab.store.list_runs(group_id=other)) == ["a", "b"]
    with pytest.raises(ValueError, match="1 run names for 2 configs"):
        service.submit_group(lab, [csv_config(data)] * 2, run_names=["a"])


def test_a_group_keeps_its_spec_grows_stops_and_goes_on(lab: Lab, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "mine.csv")
    spec = {"method": "optuna", "ranges": {"lr": [1e-5, 1e-3]}}
    group = service.submit_group(lab, [csv_config(data)], name="search", method="optuna", spec=spec)
    assert lab.store.get_group(group.id).spec == spec
    assert lab.store.get_group(service.submit_group(lab, [csv_config(data)]).id).spec == {}
    added = service.add_to_group(lab, group, [csv_config(data, seed=5)], ["trial 2"])
    assert [(r.name, r.group_id, r.config["seed"]) for r in added] == [("trial 2", group.id, 5)]
    cancelled = service.cancel_group(lab, group.id)
    assert lab.store.get_group(group.id).stopped and {r.status for r in cancelled} == {C}
    resumed = service.resume_group(lab, group.id)
    assert not lab.store.get_group(group.id).stopped
    assert sorted(r.id for r in resumed) == sorted(r.id for r in lab.store.list_runs(group_id=group.id))
    assert {r.status for r in resumed} == {Q}


def test_submit_group_stores_nothing_when_one_dataset_is_bad(lab: Lab, tmp_path: Path) -> None:
    good, bad = write_csv(tmp_path / "good.csv"), write_csv(tmp_path / "bad.csv", classes=("pos",))
    with pytest.raises(DataError, match="only one class"):
        service.submit_group(lab, [csv_config(good), csv_config(bad), csv_config(good, seed=3)], name="sweep")
    assert lab.store.list_runs() == [] and lab.store.list_groups() == []
    with pytest.raises(ValueError, match="at least one run"):
        service.submit_group(lab, [])


def test_resume_requeues_a_cancelled_or_interrupted_run(lab: Lab) -> None:
    cancelled = lab.store.create_run({}).id
    service.cancel(lab, cancelled)
    resumed = service.resume(lab, cancelled)
    assert (resumed.status, resumed.resume_count) == (Q, 1)
    interrupted = lab.store.create_run({}).id
    lab.store.claim_run(interrupted, pid=1)
    lab.store.set_status(interrupted, INT, error="lost its process")
    again = service.resume(lab, interrupted)
    assert (again.status, again.resume_count, again.error) == (Q, 1, None)


def test_resume_refuses_a_run_that_is_not_resumable(lab: Lab) -> None:
    run_id = lab.store.create_run({}).id
    finished(lab, run_id)
    with pytest.raises(StoreError) as info:
        service.resume(lab, run_id)
    assert str(info.value) == f"run {run_id} is finished; only interrupted or cancelled runs can be resumed"
    assert lab.store.get_run(run_id).status == F
    queued = lab.store.create_run({}).id
    with pytest.raises(StoreError, match=f"run {queued} is queued; only interrupted or cancelled"):
        service.resume(lab, queued)
    with pytest.raises(UnknownRunError):
        service.resume(lab, 999)


def test_cancel_stops_a_queued_run_and_asks_a_running_one(lab: Lab) -> None:
    queued, running = lab.store.create_run({}).id, lab.store.create_run({}).id
    lab.store.claim_run(running, pid=1)
    assert service.cancel(lab, queued).status == C
    asked = service.cancel(lab, running)
    assert (asked.status, asked.cancel_requested) == (R, True)


def test_delete_removes_the_rows_and_the_run_folder(lab: Lab) -> None:
    run_id, kept = lab.store.create_run({}).id, lab.store.create_run({}).id
    for i in (run_id, kept):
        folder = lab.data.run(i).create()
        folder.model.mkdir()
        (folder.model / "weights.bin").write_bytes(b"w")
        lab.store.add_metrics(i, [(1, 0.1, 1.0, "train_loss", 1.0)])
    finished(lab, run_id)
    service.delete(lab, run_id)
    with pytest.raises(UnknownRunError):
        lab.store.get_run(run_id)
    assert not lab.data.run(run_id).path.exists() and lab.store.read_metrics(run_id) == []
    assert (lab.data.run(kept).model / "weights.bin").exists() and len(lab.store.read_metrics(kept)) == 1
    without_folder = lab.store.create_run({}).id
    service.delete(lab, without_folder)
    assert [r.id for r in lab.store.list_runs()] == [kept]
    assert list(lab.data.run(kept).path.parent.iterdir()) == [lab.data.run(kept).path]  # nothing else left behind


def test_delete_refuses_a_running_run_and_keeps_its_folder(lab: Lab) -> None:
    run_id = lab.store.create_run({}).id
    lab.store.claim_run(run_id, pid=1)
    (lab.data.run(run_id).create().path / "output.log").write_text("step 1")
    with pytest.raises(StoreError, match=f"run {run_id} is running; cancel it before deleting it"):
        service.delete(lab, run_id)
    assert lab.data.run(run_id).log.read_text() == "step 1" and lab.store.get_run(run_id).status == R


def test_clone_copies_the_config_with_changes(lab: Lab, tmp_path: Path) -> None:
    data = write_csv(tmp_path / "mine.csv")
    group = service.submit_group(lab, [csv_config(data, lr=1e-4, seed=1)], name="base", owner="ana")
    [old] = lab.store.list_runs(group_id=group.id)
    finished(lab, old.id)
    clone = service.clone(lab, old.id, changes={"seed": 2, "lr": 3e-4})
    assert clone.config == {**old.config, "seed": 2, "lr": 3e-4}
    assert (clone.name, clone.owner, clone.status, clone.group_id) == ("base 1/1 (clone)", "ana", Q, None)
    assert clone.id != old.id and lab.store.get_run(old.id).status == F
    same = service.clone(lab, old.id, name="again")
    assert (same.name, same.config) == ("again", old.config)


@pytest.mark.parametrize(
    ("changes", "field"), [({"batch_size": 0}, "batch_size"), ({"lr": -1.0}, "lr"), ({"colour": "red"}, "colour")]
)
def test_clone_validates_its_changes_and_stores_nothing_when_bad(
    lab: Lab, tmp_path: Path, changes: dict, field: str
) -> None:
    old = service.submit(lab, csv_config(write_csv(tmp_path / "mine.csv")))
    with pytest.raises(ConfigError, match=field):
        service.clone(lab, old.id, changes=changes)
    assert lab.store.list_runs() == [old]
    with pytest.raises(UnknownRunError):
        service.clone(lab, 999)


def test_describe_workers_names_each_machine_and_its_slots() -> None:
    lease = partial(WorkerLease, pid=1, started_at=0.0, renewed_at=0.0)
    assert describe.describe_workers([lease("lab-a", slots=1)]) == "Background worker on lab-a (1 slot)"
    two = [lease("gpu-a", slots=4), lease("gpu-b", slots=2)]
    assert describe.describe_workers(two) == "2 background workers: gpu-a (4 slots), gpu-b (2 slots)"


def test_worker_facts_say_which_worker_its_slots_and_when_it_was_last_heard() -> None:
    lease = WorkerLease("gpu-a", 11, slots=4, started_at=1000.0, renewed_at=1090.0)
    assert describe.worker_facts(lease, now=1093.4) == {
        "worker": "gpu-a (pid 11)",
        "slots": 4,
        "serving for": describe.format_duration(93.4),
        "last heard": "3 s ago",
    }
    # another machine's clock a little ahead: its renewal is "just now", never in the future
    assert describe.worker_facts(lease, now=1088.0)["last heard"] == "0 s ago"


def test_a_filter_keeps_runs_matching_every_dimension_chosen_and_round_trips_the_address() -> None:
    from bert_lab.runs.filters import RunFilter, choices, group_names

    a = make_run(id=1, status=F, owner="", config={"dataset": "/up/mine.csv"}, tags=("keep", "lr"), group_id="g1")
    b = make_run(id=2, status=R, owner="ana", config={"dataset": "trec"}, tags=("keep",))
    c = make_run(id=3, status=F, owner="ana", config={"dataset": "trec"})
    assert RunFilter().apply([a, b, c]) == [a, b, c] and not RunFilter()
    assert RunFilter(tag=frozenset({"keep"})).apply([a, b, c]) == [a, b]
    assert RunFilter(tag=frozenset({"keep"}), status=frozenset({"finished"})).apply([a, b, c]) == [a]
    assert RunFilter(owner=frozenset({"nobody"}), dataset=frozenset({"mine.csv"})).apply([a, b, c]) == [a]
    assert RunFilter(group=frozenset({"g1"}), owner=frozenset({"ana"})).apply([a, b, c]) == []
    wanted = RunFilter(status=frozenset({"running", "finished"}), tag=frozenset({"lr"}))
    query = wanted.to_query()
    assert query == {"status": ["finished", "running"], "tag": ["lr"]}
    assert RunFilter.from_query(lambda name: query.get(name, [])) == wanted
    assert {wanted: "hashable, as a frozen record"}[wanted]
    assert group_names({"abcdef123": "sweep"})("abcdef123") == "sweep (abcdef)"
    assert group_names({})("0123456789") == "a deleted group (012345)"
    found = choices([a, b, c], RunFilter(tag=frozenset({"gone"})))
    assert found["tag"] == ["gone", "keep", "lr"] and found["group"] == ["g1"] and found["owner"] == ["ana", "nobody"]


def test_a_notice_says_how_a_launched_run_ended_and_nothing_for_what_the_person_did() -> None:
    finished = make_run(id=4, name="warm", status=F)
    assert describe.notice(finished, {"accuracy": 0.8125, "f1": math.nan}) == "#4 warm finished: Accuracy 0.812"
    scores = {"accuracy": 0.8125, "f1": 0.79, "eval_loss": 0.4, "train_loss": 0.3}
    assert describe.notice(finished, scores) == "#4 warm finished: Accuracy 0.812, F1 (macro) 0.790"  # the two
    assert describe.notice(finished, {}) == "#4 warm finished"
    failed = make_run(id=5, name="x", status=Status.FAILED, error="Traceback …\nValueError: bad csv")
    assert describe.notice(failed, {}) == "#5 x failed: ValueError: bad csv"
    assert describe.notice(make_run(id=6, name="y", status=Status.DIVERGED), {}) == "#6 y diverged"
    assert describe.notice(make_run(id=7, name="z", status=INT, error="lost"), {}) == "#7 z interrupted: lost"
    long = describe.notice(make_run(id=8, name="w", status=Status.FAILED, error="x" * 300), {})
    assert long == "#8 w failed: " + "x" * 200  # a toast, not a traceback
    for quiet in (Q, R, C, Status.PRUNED):
        assert describe.notice(make_run(status=quiet), {}) is None


def test_edit_renames_tags_and_notes_a_run_naming_every_bad_field(lab: Lab) -> None:
    run = lab.store.create_run({}, name="first")
    edited = service.edit(lab, run.id, name="  second ", tags=["keep", " Keep", "", "lr "], note=" saw it \n")
    assert (edited.name, edited.tags, edited.note) == ("second", ("keep", "lr"), "saw it")
    assert service.edit(lab, run.id, note="").tags == ("keep", "lr")  # what is not given stays
    with pytest.raises(ValueError) as info:
        service.edit(lab, run.id, name=" ", tags=["a,b", *map(str, range(12))], note="x" * 2001)
    assert str(info.value) == (
        "name: a run needs a name (not only spaces); tag 'a,b': at most 32 characters, and no commas; "
        "tags: at most 12 per run (13 given); note: at most 2000 characters (this one has 2001)"
    )
    assert lab.store.get_run(run.id).name == "second"
    assert service.edit(lab, run.id, name="x" * 80).name == "x" * 80
    with pytest.raises(ValueError, match="name: at most 80 characters \\(this one has 81\\)"):
        service.edit(lab, run.id, name="x" * 81)
    assert service.edit(lab, run.id, name="\u202egnp.exe\u202c").name == "gnp.exe"  # shown as stored, not reversed


def test_names_are_capped_and_cleaned_of_direction_controls_wherever_they_are_stored(lab: Lab) -> None:
    tiny = RunConfig(model="tiny", dataset="sms_spam")
    with pytest.raises(ValueError, match="^name: at most 80 characters \\(this one has 500\\)$"):
        service.submit(lab, tiny, name="x" * 500)
    with pytest.raises(ValueError, match="^owner: at most 80 characters"):
        service.submit(lab, tiny, owner="o" * 81)
    with pytest.raises(ValueError, match="^name: at most 80 characters"):
        service.submit_group(lab, [tiny], name="g" * 81)
    assert lab.store.list_runs() == []  # nothing stored
    run = service.submit(lab, tiny, name="\u202eabc\u2066 def\u2069\n", owner="\u200fana")
    assert (run.name, run.owner) == ("abc def", "ana")
    long = service.submit(lab, tiny, name="n" * 80)
    clone = service.clone(lab, long.id)  # a name the lab makes fits, whatever the old one's length
    assert len(clone.name) == 80 and "…" in clone.name and clone.name.endswith("n (clone)")
    again = service.run_again(lab, long.id)
    assert len(again.name) == 80 and again.name.endswith(f"(seed {again.config['seed']})")
    group = service.submit_group(lab, [tiny], name="s" * 80, run_names=["r" * 79 + " seed 1"])
    [member] = lab.store.list_runs(group_id=group.id)
    assert len(member.name) == 80 and member.name.endswith("seed 1")


def test_a_long_name_is_shortened_in_labels_around_an_ellipsis() -> None:
    label = describe.run_label(make_run(name="a" * 250 + "b" * 250))
    assert len(label) == len("#7 ") + 60 and label.startswith("#7 aaa") and label.endswith("bbb")
    assert "…" in label
    assert describe.run_label(make_run(name="x" * 60)) == "#7 " + "x" * 60  # up to 60 characters: as named
    assert describe.run_label(make_run(name="\u202eabc.exe")) == "#7 abc.exe"  # stored before names were cleaned
