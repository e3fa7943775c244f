"""AppTests of every page: set widgets, click, then check what the store holds and what the page shows.

The pages normally start the background worker; `BERT_LAB_NO_AUTOSTART=1` keeps them from it here (nothing trains).
Runs and their metric points are made directly in the test's store; only the playground test trains (a tiny model).
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from bert_lab import ui
from bert_lab.config import RunConfig
from bert_lab.store import Run, RunStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ui.NO_AUTOSTART_ENV, "1")


@pytest.fixture
def store() -> RunStore:
    return RunStore.open()


def open_page(page: str = "app.py", state: dict[str, Any] | None = None, timeout: float = 60) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    if page != "app.py":
        at.run()
        at.switch_page(page)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def titles(at: AppTest) -> list[str]:
    return [fig["layout"].get("title", {}).get("text", "") for fig in figures(at)]


def array(value: Any) -> np.ndarray:
    """A plotly JSON array (plain list, or base64 `bdata` with a `dtype`)."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def texts(elements: Any) -> str:
    return "\n".join(str(e.value) for e in elements)


def make_run(store: RunStore, status: str = "finished", *, steps: int = 40, error: str | None = None,
             name: str = "", **changes: Any) -> Run:
    """A run in `status` with `steps` of per-step points and an evaluation every 10 steps (no training)."""
    run = store.create_run(RunConfig(**changes).to_dict(), name=name, owner="tester")
    if status == "queued":
        return run
    if status == "cancelled":
        return store.request_cancel(run.id)
    store.claim_next_run(pid=os.getpid(), device="cpu")
    lr = run.config["lr"]
    points = []
    for s in range(1, steps + 1):
        loss = 0.7 * math.exp(-s / 20) + 0.1
        points += [(s, s / steps, s * 0.5, "train_loss", loss), (s, s / steps, s * 0.5, "lr", lr * (1 - s / steps)),
                   (s, s / steps, s * 0.5, "grad_norm", 1.0), (s, s / steps, s * 0.5, "samples_per_s", 30.0)]
        if s % 10 == 0:
            points += [(s, s / steps, s * 0.5, name, value) for name, value in
                       (("eval_loss", loss), ("accuracy", 0.8), ("precision", 0.8), ("recall", 0.7), ("f1", 0.75))]
    store.add_metrics(run.id, points)
    store.update_run(run.id, progress=1.0 if status != "running" else 0.5, summary={"total_steps": steps})
    if status != "running":
        store.set_status(run.id, status, error=error)
    return store.get_run(run.id)


# --- launch page ------------------------------------------------------------------------------------------------------
def test_launch_page_starts_from_sensible_defaults() -> None:
    at = open_page()
    assert at.title[0].value.endswith("Launch a fine-tuning run")
    assert at.select_slider(key="lr").value == 1e-4
    assert at.selectbox(key="schedule").value == "linear"
    assert at.select_slider(key="batch_size").value == 32
    assert at.number_input(key="num_epochs").value == 1.0
    assert at.select_slider(key="max_length").value == 128
    assert at.number_input(key="train_size").value == 2000
    assert at.radio(key="model_choice").value == "minilm"
    assert at.selectbox(key="bundled").value == "rotten_tomatoes"
    assert any("Learning rate at each of the 63 optimizer steps" in t for t in titles(at))
    assert {w.label for w in at.select_slider} >= {"Learning rate", "L2 penalty", "Weight decay (decoupled)",
                                                    "L1 penalty"}
    assert all(w.help for w in at.select_slider)  # every knob explains itself
    assert not at.error


def test_launch_queues_a_run_with_the_chosen_values(store: RunStore) -> None:
    at = open_page()
    at.radio(key="model_choice").set_value("tiny")
    at.selectbox(key="bundled").set_value("sms_spam")
    at.select_slider(key="lr").set_value(3e-5)
    at.selectbox(key="schedule").set_value("exponential").run()
    assert {"Decay rate"} <= {w.label for w in at.slider} and "Decay steps" in [w.label for w in at.number_input]
    at.slider(key="decay_rate").set_value(0.8)
    at.number_input(key="decay_steps").set_value(50)
    at.number_input(key="warmup_steps").set_value(10)
    at.slider(key="dropout").set_value(0.3)
    at.select_slider(key="l2").set_value(1e-4)
    at.select_slider(key="weight_decay").set_value(0.01)
    at.selectbox(key="optimizer").set_value("momentum").run()
    at.slider(key="momentum").set_value(0.8)
    at.checkbox(key="nesterov").check()
    at.checkbox(key="group_by_length").uncheck()
    at.text_input(key="run_name").set_value("my-run")
    at.button[0].click().run()
    assert not at.exception and not at.error
    [run] = store.list_runs()
    c = run.config
    assert (run.name, run.owner, run.status) == ("my-run", "", "queued")
    assert (c["model"], c["dataset"], c["lr"], c["schedule"]) == ("tiny", "sms_spam", 3e-5, "exponential")
    assert (c["decay_rate"], c["decay_steps"], c["warmup_steps"], c["dropout"]) == (0.8, 50, 10, 0.3)
    assert (c["l2"], c["weight_decay"], c["optimizer"], c["momentum"], c["nesterov"]) == (1e-4, 0.01, "momentum",
                                                                                          0.8, True)
    assert c["group_by_length"] is False
    assert f"#{run.id} my-run" in texts(at.success)
    at.select_slider(key="lr").set_value(1e-3)  # the page stays usable: launch a variant
    at.text_input(key="run_name").set_value("")
    at.button[0].click().run()
    newest = store.list_runs()[0]
    assert (newest.config["lr"], newest.config["decay_rate"], newest.name) == (1e-3, 0.8, f"run-{newest.id}")


def test_schedule_parameters_appear_only_where_they_apply() -> None:
    at = open_page()
    labels = lambda: {w.label for w in [*at.slider, *at.number_input]}  # noqa: E731
    assert not labels() & {"Decay rate", "Decay steps", "Drop factor γ", "Step size (steps between drops)"}
    at.selectbox(key="schedule").set_value("step").run()
    assert {"Drop factor γ", "Step size (steps between drops)"} <= labels() and "Decay rate" not in labels()
    at.selectbox(key="schedule").set_value("constant").run()
    assert "Warmup steps" in labels() and "Drop factor γ" not in labels()
    assert not at.exception


def test_invalid_settings_are_named_and_nothing_is_queued(store: RunStore) -> None:
    at = open_page()
    at.radio(key="model_choice").set_value("folder").run()
    assert "Model" in texts(at.error) and "non-empty" in texts(at.error)
    assert at.button[0].disabled
    assert store.list_runs() == []


def test_a_bad_csv_upload_shows_the_engine_error_and_queues_nothing(store: RunStore) -> None:
    at = open_page()
    at.radio(key="source").set_value("Upload a CSV").run()
    at.file_uploader[0].set_value(("reviews.csv", b"text,label\ngreat film,pos\nawful film,\n", "text/csv")).run()
    assert "missing labels" in texts(at.error) and "data rows 2" in texts(at.error)
    assert at.button[0].disabled  # a browser user cannot launch it
    assert store.list_runs() == [] and not at.success


def test_a_good_csv_upload_is_previewed_and_staged(store: RunStore) -> None:
    rows = "".join(f"review number {i} was {'good' if i % 2 else 'bad'},{'pos' if i % 2 else 'neg'}\n"
                   for i in range(40))
    at = open_page()
    at.radio(key="source").set_value("Upload a CSV").run()
    at.file_uploader[0].set_value(("reviews.csv", ("comment,sentiment\n" + rows).encode(), "text/csv")).run()
    assert not at.error
    assert "neg (20), pos (20)" in texts(at.caption)
    at.radio(key="model_choice").set_value("tiny")
    at.button[0].click().run()
    [run] = store.list_runs()
    staged = Path(run.config["dataset"])
    assert staged.parent == store.home / "uploads" and staged.read_bytes().startswith(b"comment,sentiment")


def test_a_csv_path_that_is_not_there_is_an_error(store: RunStore, tmp_path: Path) -> None:
    at = open_page()
    at.radio(key="source").set_value("CSV file on the server").run()
    at.text_input(key="csv_path").set_value(str(tmp_path / "missing.csv")).run()
    assert "missing.csv" in texts(at.error) and at.button[0].disabled


def test_pages_do_not_import_torch(tmp_path: Path) -> None:
    """The UI never imports torch (only the playground does, lazily, to predict): pages load fast and light."""
    script = ("import sys\nfrom streamlit.testing.v1 import AppTest\n"
              "at = AppTest.from_file('app.py', default_timeout=60).run()\n"
              "for page in ('pages/1_Runs.py', 'pages/2_Playground.py'):\n"
              "    at.switch_page(page).run()\n"
              "    assert not at.exception, at.exception\n"
              "print(sorted(m for m in ('torch', 'transformers', 'accelerate') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


# --- runs page --------------------------------------------------------------------------------------------------------
def test_runs_page_without_runs_points_to_the_launch_page() -> None:
    at = open_page(ui.RUNS_PAGE)
    assert "No runs yet" in texts(at.info)
    assert at.get("page_link")


def test_runs_page_draws_curves_hyperparameters_and_why_runs_stopped(store: RunStore) -> None:
    make_run(store, "finished", lr=1e-4, name="base")
    make_run(store, "diverged", lr=1e-1, error="loss became nan at step 12", name="hot")
    make_run(store, "failed", lr=1e-4, dropout=0.3, error="out of memory: lower the batch size", name="oom")
    at = open_page(ui.RUNS_PAGE)
    shown = titles(at)
    for title in ("Training loss", "Eval loss", "Accuracy", "F1 (macro)", "Learning rate", "Gradient norm",
                  "Latest evaluation"):
        assert any(title in t for t in shown), title
    loss = next(f for f in figures(at) if "Training loss" in f["layout"]["title"]["text"])
    assert {t["name"] for t in loss["data"] if not t["name"].endswith("(raw)")} == {"#1 base", "#2 hot", "#3 oom"}
    assert "loss became nan at step 12" in texts(at.error) and "out of memory" in texts(at.error)
    table = at.dataframe[0].value
    assert list(table["run"]) == ["#3 oom", "#2 hot", "#1 base"] and "progress" in table.columns
    diff = at.dataframe[1].value  # the hyperparameters that differ
    assert set(diff.index) == {"lr", "dropout"}


def test_runs_page_controls_and_side_by_side_view(store: RunStore) -> None:
    make_run(store, "finished", lr=1e-4)
    make_run(store, "finished", lr=3e-4)
    at = open_page(ui.RUNS_PAGE)
    at.radio(key="x_axis").set_value("epoch")
    at.slider(key="smoothing").set_value(0.0)
    at.toggle(key="log_loss").set_value(True).run()
    loss = next(f for f in figures(at) if "Training loss" in f["layout"]["title"]["text"])
    assert loss["layout"]["xaxis"]["title"]["text"] == "Epoch" and loss["layout"]["yaxis"]["type"] == "log"
    assert len(loss["data"]) == 2 and array(loss["data"][0]["x"]).max() == 1.0  # no smoothing: no raw lines
    at.radio(key="view").set_value("Side by side").run()
    assert not at.exception
    loss = next(f for f in figures(at) if "Training loss" in f["layout"]["title"]["text"])
    assert len(loss["data"]) == 2 and {"xaxis", "xaxis2", "yaxis2"} <= set(loss["layout"])  # a panel per run


def test_cancel_resume_and_delete_change_the_store(store: RunStore) -> None:
    running = make_run(store, "running", name="live")
    queued = make_run(store, "queued", name="waiting")
    at = open_page(ui.RUNS_PAGE, {"_selected_ids": [running.id, queued.id], "action_run": running.id})
    cancel = next(b for b in at.button if b.label == "Cancel")
    cancel.click().run()
    assert store.get_run(running.id).cancel_requested and store.get_run(running.id).status == "running"
    at.selectbox(key="action_run").set_value(queued.id).run()
    next(b for b in at.button if b.label == "Cancel").click().run()
    assert store.get_run(queued.id).status == "cancelled"
    next(b for b in at.button if b.label == "Resume").click().run()
    assert store.get_run(queued.id).status == "queued" and store.get_run(queued.id).resume_count == 1
    next(b for b in at.button if b.label == "Delete…").click().run()
    assert "cannot be undone" in texts(at.warning) and store.get_run(queued.id)  # asks first
    next(b for b in at.button if b.label == "Yes, delete it").click().run()
    assert [r.id for r in store.list_runs()] == [running.id]
    assert not at.exception


def test_downloads_and_clone_into_the_launch_page(store: RunStore) -> None:
    run = make_run(store, "finished", lr=2.5e-5, schedule="step", step_size=50, gamma=0.3, optimizer="momentum",
                   nesterov=True, model="tiny", dataset="trec", max_length=64, name="original")
    at = open_page(ui.RUNS_PAGE)
    assert {b.label for b in at.download_button} == {"Curves CSV", "Config JSON"}
    next(b for b in at.button if b.label == "Clone").click().run()
    assert not at.exception
    assert at.title[0].value.endswith("Launch a fine-tuning run")
    assert at.select_slider(key="lr").value == 2.5e-5  # between the usual stops: kept exactly
    assert (at.selectbox(key="schedule").value, at.number_input(key="step_size").value) == ("step", 50)
    assert (at.radio(key="model_choice").value, at.selectbox(key="bundled").value) == ("tiny", "trec")
    at.switch_page("app.py")  # a browser's URL follows st.switch_page; AppTest's page must be told
    at.button[0].click().run()
    clone = store.list_runs()[0]
    assert clone.id != run.id and clone.config == {**run.config, "dropout": 0.1}  # dropout None → model's 0.1


# --- playground -------------------------------------------------------------------------------------------------------
def test_playground_without_models_points_to_the_launch_page(store: RunStore) -> None:
    make_run(store, "queued")
    at = open_page(ui.PLAYGROUND_PAGE)
    assert "No trained model yet" in texts(at.info)


def test_playground_predicts_compares_and_shows_mistakes(store: RunStore) -> None:
    from bert_lab.train import train

    config = RunConfig(model="tiny", dataset="sms_spam", train_size=64, eval_size=32, max_length=32)
    runs = []
    for name in ("first", "second"):
        run = store.create_run(config.to_dict(), name=name)
        store.claim_next_run(pid=os.getpid())
        if not runs:
            train(config, out_dir=store.run_dir(run.id, create=True))
        else:
            shutil.copytree(store.run_dir(runs[0].id), store.run_dir(run.id))
        store.set_status(run.id, "finished")
        runs.append(run)
    at = open_page(ui.PLAYGROUND_PAGE, timeout=180)
    at.text_area(key="sentences").set_value("Free entry! Text WIN now\nSee you at lunch").run()
    predictions = at.dataframe[0].value
    assert list(predictions["text"]) == ["Free entry! Text WIN now", "See you at lunch"]
    assert set(predictions["predicted"]) <= {"ham", "spam"} and predictions["confidence"].between(0.5, 1).all()
    assert any("Confusion matrix" in t for t in titles(at))
    assert "Mistakes (of 32)" in [m.label for m in at.metric]
    at.toggle(key="compare").set_value(True).run()
    assert not at.exception
    agree = next(d.value for d in at.dataframe if "agree" in d.value.columns)
    assert list(agree["agree"]) == ["✓ same", "✓ same"]  # the same model twice agrees with itself
    assert sum("Confusion matrix" in t for t in titles(at)) == 2


def test_runs_page_overlays_ten_long_runs(store: RunStore) -> None:
    """Ten runs of 2000 steps render (and re-render incrementally) without error; the speed of this is measured by
    bench/dashboard.py, not asserted here."""
    for i in range(10):
        make_run(store, "finished", steps=2000, lr=1e-4 * (i + 1))
    at = open_page(ui.RUNS_PAGE, {"_selected_ids": [r.id for r in store.list_runs()]})
    assert len(figures(at)) == 7  # six curves and the results
    at.run()
    assert not at.exception
    train_loss = next(f for f in figures(at) if "Training loss" in json.dumps(f.get("layout", {}).get("title", "")))
    assert all(len(t["x"]) <= 500 for t in train_loss["data"])
