"""AppTests of the launch page (`app.py`): set widgets, click Launch, then check what the store holds and what the page
shows. Nothing trains: the pages start no worker in tests (see conftest)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from page_view import read, titles, vega_data
from streamlit.testing.v1 import AppTest

from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from lab_ui import page

ROOT = Path(__file__).resolve().parents[1]
OpenPage = Callable[..., AppTest]
pytestmark = pytest.mark.usefixtures("each_store")  # every test here runs on SQLite, then on PostgreSQL


def test_launch_page_starts_from_sensible_defaults(open_page: OpenPage) -> None:
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
    dropout = at.select_slider(key="dropout")
    assert dropout.value is None and dropout.options[0] == "model default"  # the model's own, like the CLI
    assert "Learning rate at each optimizer step" in titles(at)
    assert any("= **63 optimizer steps**" in c.value for c in at.caption)  # what the preview's x axis spans
    assert {w.label for w in at.select_slider} >= {
        "Learning rate",
        "Dropout",
        "L2 penalty",
        "Weight decay (decoupled)",
        "L1 penalty",
    }
    assert all(w.help for w in at.select_slider)  # every knob explains itself
    assert not at.error


def test_peek_shows_the_first_texts_only_when_asked(open_page: OpenPage) -> None:
    at = open_page()
    assert not at.dataframe  # nothing heavy is drawn until asked for
    at.toggle(key="peek").set_value(True).run()
    frame = at.dataframe[0].value
    assert list(frame.columns) == ["text", "label"] and len(frame) == 5
    assert set(frame["label"]) <= {"fresh", "rotten"}


def test_launch_queues_a_run_with_the_chosen_values(open_page: OpenPage, lab: Lab) -> None:
    at = open_page()
    at.radio(key="model_choice").set_value("tiny")
    at.selectbox(key="bundled").set_value("sms_spam")
    at.select_slider(key="lr").set_value(3e-5)
    at.selectbox(key="schedule").set_value("exponential").run()
    assert {"Decay rate"} <= {w.label for w in at.slider} and "Decay steps" in [w.label for w in at.number_input]
    at.slider(key="decay_rate").set_value(0.8)
    at.number_input(key="decay_steps").set_value(50)
    at.number_input(key="warmup_steps").set_value(10)
    at.select_slider(key="dropout").set_value(0.3)
    at.select_slider(key="l2").set_value(1e-4)
    at.select_slider(key="weight_decay").set_value(0.01)
    at.selectbox(key="optimizer").set_value("momentum").run()
    at.slider(key="momentum").set_value(0.8)
    at.checkbox(key="nesterov").check()
    at.checkbox(key="group_by_length").uncheck()
    at.text_input(key="run_name").set_value("my-run")
    at.button(key="launch").click().run()
    assert not at.exception and not at.error
    [run] = lab.store.list_runs()
    c = run.config
    assert (run.name, run.owner, run.status) == ("my-run", "", Status.QUEUED)
    assert (c["model"], c["dataset"], c["lr"], c["schedule"]) == ("tiny", "sms_spam", 3e-5, "exponential")
    assert (c["decay_rate"], c["decay_steps"], c["warmup_steps"], c["dropout"]) == (0.8, 50, 10, 0.3)
    assert (c["l2"], c["weight_decay"], c["optimizer"], c["momentum"], c["nesterov"]) == (
        1e-4,
        0.01,
        "momentum",
        0.8,
        True,
    )
    assert c["group_by_length"] is False
    assert f"#{run.id} my\\-run" in at.success[0].value  # the name escaped, so markdown shows it as typed
    at.select_slider(key="lr").set_value(1e-3)  # the page stays usable: launch a variant
    at.text_input(key="run_name").set_value("")
    at.button(key="launch").click().run()
    newest = lab.store.list_runs()[0]
    assert (newest.config["lr"], newest.config["decay_rate"], newest.name) == (1e-3, 0.8, f"run-{newest.id}")


def test_launching_untouched_dropout_keeps_the_models_own(open_page: OpenPage, lab: Lab) -> None:
    """The default dropout is None ("model default"), as on the command line, not the model's 0.1 written out."""
    at = open_page()
    at.radio(key="model_choice").set_value("tiny").run()
    at.button(key="launch").click().run()
    [run] = lab.store.list_runs()
    assert run.config["dropout"] is None
    at.select_slider(key="dropout").set_value(0.1).run()  # the same number, chosen: recorded as chosen
    at.button(key="launch").click().run()
    assert lab.store.list_runs()[0].config["dropout"] == 0.1


def test_schedule_parameters_appear_only_where_they_apply(open_page: OpenPage) -> None:
    at = open_page()
    labels = lambda: {w.label for w in [*at.slider, *at.number_input]}  # noqa: E731
    assert not labels() & {"Decay rate", "Decay steps", "Drop factor γ", "Step size (steps between drops)"}
    at.selectbox(key="schedule").set_value("step").run()
    assert {"Drop factor γ", "Step size (steps between drops)"} <= labels() and "Decay rate" not in labels()
    at.selectbox(key="schedule").set_value("constant").run()
    assert "Warmup steps" in labels() and "Drop factor γ" not in labels()
    assert not at.exception


def test_invalid_settings_are_named_and_nothing_is_queued(open_page: OpenPage, lab: Lab) -> None:
    at = open_page()
    at.radio(key="model_choice").set_value("folder").run()
    assert "Model" in read(at.error) and "non-empty" in read(at.error)
    assert at.button(key="launch").disabled
    assert lab.store.list_runs() == []


def test_a_bad_csv_upload_shows_the_engine_error_and_queues_nothing(open_page: OpenPage, lab: Lab) -> None:
    at = open_page()
    at.radio(key="source").set_value("Upload a CSV").run()
    at.file_uploader[0].set_value(("reviews.csv", b"text,label\ngreat film,pos\nawful film,\n", "text/csv")).run()
    assert "missing labels" in read(at.error) and "data rows 2" in read(at.error)
    assert at.button(key="launch").disabled  # a browser user cannot launch it
    assert lab.store.list_runs() == [] and not at.success


def test_a_good_csv_upload_is_previewed_and_staged(open_page: OpenPage, lab: Lab) -> None:
    rows = "".join(
        f"review number {i} was {'good' if i % 2 else 'bad'},{'pos' if i % 2 else 'neg'}\n" for i in range(40)
    )
    at = open_page()
    at.radio(key="source").set_value("Upload a CSV").run()
    at.file_uploader[0].set_value(("reviews.csv", ("comment,sentiment\n" + rows).encode(), "text/csv")).run()
    assert not at.error
    assert "neg (20), pos (20)" in read(at.caption)
    at.radio(key="model_choice").set_value("tiny")
    at.button(key="launch").click().run()
    [run] = lab.store.list_runs()
    staged = Path(run.config["dataset"])
    assert staged.parent == lab.data.uploads and staged.read_bytes().startswith(b"comment,sentiment")


def test_a_spreadsheets_csv_and_a_json_lines_file_are_read_as_saved(open_page: OpenPage, lab: Lab) -> None:
    rows = "".join(
        f"critique n°{i} très {'bon' if i % 2 else 'mauvais'};{'pos' if i % 2 else 'neg'}\n" for i in range(8)
    )
    at = open_page()
    at.radio(key="source").set_value("Upload a CSV").run()
    at.file_uploader[0].set_value(("avis.csv", ("review;sentiment\n" + rows).encode("cp1252"), "text/csv")).run()
    assert not at.error and at.dataframe[0].value.iloc[0, 0] == "critique n°0 très mauvais"
    assert "Read as semicolon-separated, Windows-1252 (not UTF-8). Label counts" in read(at.caption)
    lines = "".join(f'{{"text": "line {i}", "label": "{"ab"[i % 2]}"}}\n' for i in range(8))
    at.file_uploader[0].set_value(("mine.jsonl", lines.encode(), "application/jsonl")).run()
    assert not at.error and "Read as JSON Lines, UTF-8" in read(at.caption)
    at.radio(key="model_choice").set_value("tiny")
    at.button(key="launch").click().run()
    [run] = lab.store.list_runs()
    assert Path(run.config["dataset"]).suffix == ".jsonl"  # staged with its kind


def test_a_csv_path_that_is_not_there_is_an_error(open_page: OpenPage, tmp_path: Path) -> None:
    at = open_page()
    at.radio(key="source").set_value("CSV file on the server").run()
    at.text_input(key="csv_path").set_value(str(tmp_path / "missing.csv")).run()
    assert "missing.csv" in read(at.error) and at.button(key="launch").disabled


def test_pages_do_not_import_torch() -> None:
    """The UI never imports torch (only the playground does, lazily, to predict): pages load fast and light."""
    script = (
        "import sys\nfrom streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('app.py', default_timeout=60).run()\n"
        "for page in ('pages/1_Runs.py', 'pages/2_Playground.py'):\n"
        "    at.switch_page(page).run()\n"
        "    assert not at.exception, at.exception\n"
        "print(sorted(m for m in ('torch', 'transformers', 'accelerate') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_find_a_learning_rate_then_use_its_suggestion(lab: Lab, open_page: OpenPage) -> None:
    from bert_lab.processes.runner import run_job

    at = open_page(state={"model_choice": "tiny", "bundled": "sms_spam", "max_length": 32})
    at.button(key="lr_find").click().run()
    [run] = lab.store.list_runs()
    assert (run.name, run.config["schedule"], run.config["lr"], run.config["model"]) == (
        "LR range test",
        "range_test",
        1.0,
        "tiny",
    )
    lab.store.claim_run(run.id, pid=1)
    assert run_job(lab, run.id) == 0  # what the worker would do
    at.run()
    suggested = lab.store.get_run(run.id).summary.lr_find["suggested_lr"]
    assert "LR range test: smoothed training loss as the learning rate rises" in titles(at)
    use = at.button(key="lr_use")
    assert use.label == f"Use {suggested:.1e}"
    use.click().run()
    assert at.select_slider(key="lr").value == float(f"{suggested:.1e}")
    assert not at.exception
    at.selectbox(key="schedule").set_value("cosine").run()  # not a knob the test measured: still offered
    assert at.button(key="lr_use").label == f"Use {suggested:.1e}"
    at.selectbox(key="optimizer").set_value("sgd").run()  # measured with AdamW: it no longer holds
    assert not [b for b in at.button if b.key == "lr_use"]
    said = read(at.caption)
    assert f"This suggestion ({suggested:.1e}) was measured with optimizer adamw; these settings have sgd" in said
    at.button(key="lr_find_again").click().run()
    again = lab.store.list_runs()[0]
    assert again.id != run.id and (again.name, again.config["optimizer"]) == ("LR range test", "sgd")
    assert not at.exception


def test_the_launched_run_is_followed_live_on_the_launch_page(lab: Lab, open_page: OpenPage) -> None:
    """Launch answers on the page itself: queued, then (once trained) its loss curve and its scores."""
    from bert_lab.processes.runner import run_job

    at = open_page(state={"model_choice": "tiny", "bundled": "sms_spam", "max_length": 32, "train_size": 200})
    at.button(key="launch").click().run()
    [run] = lab.store.list_runs()
    waiting = read(at.caption)
    assert f"#{run.id}" in waiting and "queued" in waiting and "first loss point appears here" in waiting
    lab.store.claim_run(run.id, pid=1)
    assert run_job(lab, run.id) == 0  # what the worker would do
    at.run()
    done = read(at.caption)
    steps = lab.store.get_run(run.id).summary.total_steps
    accuracy = lab.store.latest_metrics([run.id])[run.id]["accuracy"]
    assert f"step {steps} of {steps}" in done and f"Accuracy {accuracy:.3f}" in done and "F1" in done
    curve = vega_data(at, "Training loss")
    assert list(curve["step"]) == list(range(1, steps + 1))  # every step's loss, drawn
    losses = [p.value for p in lab.store.read_metrics(run.id, names=["train_loss"])]
    assert list(curve["raw"]) == losses and curve["smoothed"].iloc[-1] != losses[-1]  # the EMA over the raw line
    assert not at.exception


def test_the_launched_run_view_polls_fast_only_until_its_first_point(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from bert_lab.core.config import RunConfig
    from lab_ui import live
    from lab_ui.launched import FIRST_POINT_POLL_S, interval_s

    monkeypatch.setattr(live, "spare_cpus", lambda: 0.0)  # a machine with no idle CPU: the share alone
    run = lab.store.create_run(RunConfig(model="tiny").to_dict(), name="r")
    assert interval_s(run, False, 0.01) == FIRST_POINT_POLL_S < 1  # queued: the click's answer comes at once
    run = lab.store.claim_run(run.id, pid=1)
    assert interval_s(run, False, 0.01) == FIRST_POINT_POLL_S
    assert interval_s(run, True, 0.01) == live.refresh_interval(0.01, active=True)  # then the Runs page's pace
    assert interval_s(run, True, 0.5) == live.refresh_interval(0.5, active=True) > 2.0  # a dear refresh waits longer
    lab.store.set_status(run.id, Status.FINISHED)
    assert interval_s(lab.store.get_run(run.id), True, 0.01) is None  # nothing changes any more


def test_this_browser_is_told_when_a_run_it_launched_ends_on_whatever_page(open_page: OpenPage, lab: Lab) -> None:
    at = open_page()
    at.radio(key="model_choice").set_value("tiny")
    at.button(key="launch").click().run()
    [run] = lab.store.list_runs()
    other = lab.store.create_run({}, name="not mine")  # launched elsewhere: no word of it
    for each in (run, other):
        lab.store.claim_run(each.id, pid=1)
        lab.store.add_metrics(each.id, [(5, 1.0, 2.0, "accuracy", 0.8125), (5, 1.0, 2.0, "f1", 0.79)])
        lab.store.set_status(each.id, Status.FINISHED)
    at.switch_page(page.GROUPS_PAGE).run()
    said = f"#{run.id} {run.name} finished: Accuracy 0.812, F1 (macro) 0.790"
    assert [t.value for t in at.toast] == [page.md(said)]  # a run's name is shown as typed
    at.run()
    assert not at.toast  # told once


def test_a_step_decay_whose_first_drop_comes_after_the_run_says_so(open_page: OpenPage) -> None:
    at = open_page()
    at.selectbox(key="schedule").set_value("step").run()  # the defaults: a drop every 100 steps, a run of 63
    assert len(set(vega_data(at, "Learning rate at each optimizer step")["lr"])) == 1  # flat, like constant
    said = read(at.warning)
    assert "The first drop comes at step 100, after this run's 63 steps: it trains at a constant rate" in said
    assert "lower the step size below 63" in said
    at.number_input(key="step_size").set_value(20).run()
    assert not at.warning and len(set(vega_data(at, "Learning rate at each optimizer step")["lr"])) == 4


def test_a_small_upload_is_summarised_with_the_sizes_its_split_gives(open_page: OpenPage) -> None:
    rows = "".join(
        f"review number {i} was {'good' if i % 2 else 'bad'},{'pos' if i % 2 else 'neg'}\n" for i in range(200)
    )
    at = open_page()
    at.radio(key="source").set_value("Upload a CSV").run()
    at.file_uploader[0].set_value(("reviews.csv", ("text,label\n" + rows).encode(), "text/csv")).run()
    said = read(at.caption)
    assert "reviews.csv**: 140 examples" in said and "evaluated on 60 held-out examples" in said  # 70% / 30%
    assert "the data's 200 examples cap the 2,000 + 1,000 asked for" in said
    assert "evaluated on 1,000" not in said and "140 training examples ÷ batch 32" in said


def test_after_a_clone_the_name_box_and_the_last_launch_are_the_clones(open_page: OpenPage, lab: Lab) -> None:
    at = open_page(state={"model_choice": "tiny", "bundled": "sms_spam"})
    at.text_input(key="run_name").set_value("first try")
    at.button(key="launch").click().run()
    [run] = lab.store.list_runs()
    assert "Queued run" in read(at.success)
    at.switch_page(page.RUNS_PAGE).run()
    next(b for b in at.button if b.label == "Clone").click().run()
    at.switch_page(page.LAUNCH_PAGE).run()  # a browser's URL follows st.switch_page; AppTest's page must be told
    assert not at.exception and at.text_input(key="run_name").value == "first try (clone)"
    assert not at.success  # the box about run #1 is gone: nothing of this config was queued yet
    at.button(key="launch").click().run()
    assert lab.store.list_runs()[0].name == "first try (clone)" and "first try \\(clone\\)" in at.success[0].value


def test_a_name_is_capped_and_its_direction_controls_taken_out(open_page: OpenPage, lab: Lab) -> None:
    at = open_page(state={"model_choice": "tiny", "bundled": "sms_spam"})
    assert at.text_input(key="run_name").max_chars == at.text_input(key="owner").max_chars == 80
    at.text_input(key="run_name").set_value("\u202eabc.exe")
    at.button(key="launch").click().run()
    [run] = lab.store.list_runs()
    assert run.name == "abc.exe" and "abc\\.exe" in at.success[0].value  # not shown reversed
    assert at.text_input(key="run_name").value == "abc.exe"  # nor in its box
    at.text_input(key="run_name").set_value("x" * 500)  # pasted: the box keeps 80 (service.submit refuses more)
    at.button(key="launch").click().run()
    assert lab.store.list_runs()[0].name == "x" * 80 and not at.error


def finished_like(lab: Lab, accuracy: float, f1: float, *, name: str, **fields: object) -> int:
    """A finished run of the default config with `fields` changed and these final scores (nothing trains)."""
    from bert_lab.core.config import RunConfig
    from bert_lab.runs.cache import cache_key

    config = RunConfig(**fields).to_dict()  # type: ignore[arg-type]
    run = lab.store.create_run(config, name=name, cache_key=cache_key(config))
    lab.store.claim_run(run.id, pid=1)
    lab.store.add_metrics(run.id, [(10, 1.0, 4.0, "accuracy", accuracy), (10, 1.0, 4.0, "f1", f1)])
    lab.store.set_status(run.id, Status.FINISHED)
    return run.id


def test_before_launch_the_page_says_what_runs_like_this_one_scored(open_page: OpenPage, lab: Lab) -> None:
    at = open_page()
    assert "No similar runs yet on rotten_tomatoes with minilm." in read(at.caption)
    assert not [b for b in at.button if b.key == "estimate_run"]
    near = finished_like(lab, 0.80, 0.78, name="near **1**", seed=1)  # the same knobs, another seed
    far = finished_like(lab, 0.60, 0.50, name="far", seed=1, lr=3e-4)  # 3× the LR: weighs exp(−½(0.477/0.25)²)
    at.run()
    said = [c.value for c in at.caption if "Runs like this one" in c.value]
    assert said == [
        ":material/history: Runs like this one scored accuracy 0\\.77 ± 0\\.14, F1 0\\.74 ± 0\\.20 \\(2 past runs on "
        f"rotten\\_tomatoes with minilm; closest\\: run \\#{near} near \\*\\*1\\*\\*\\)\\."
    ]  # the name escaped: markdown shows it as typed
    at.select_slider(key="lr").set_value(3e-4).run()
    shown = read(at.caption)
    assert "accuracy 0.63 ± 0.14, F1 0.54 ± 0.20 (2 past runs on rotten_tomatoes with minilm" in shown
    assert f"closest: run #{far} far)." in shown
    at.button(key="estimate_run").click().run()
    assert not at.exception and at.title[0].value.endswith("Runs")
    assert at.session_state["_selected_ids"] == [far]  # the closest run is the one shown


def test_the_same_config_is_said_to_come_from_the_cache_and_does(open_page: OpenPage, lab: Lab) -> None:
    source = finished_like(lab, 0.76, 0.74, name="baseline", model="tiny", dataset="sms_spam")
    at = open_page(state={"model_choice": "tiny", "bundled": "sms_spam"})
    assert (
        f"Already run: answered from the cache instantly (run #{source} baseline: accuracy 0.760, F1 0.740)."
        in read(at.caption)
    )
    at.button(key="launch").click().run()
    assert lab.store.list_runs()[0].cached_from == source  # what the page said is what the store did
    at.number_input(key="seed").set_value(7).run()  # another seed: an estimate, not the cache
    assert "Runs like this one scored accuracy 0.76, F1 0.74 (1 past run on sms_spam with tiny" in read(at.caption)


def test_the_launched_run_says_when_the_host_has_paused_the_queue(lab: Lab) -> None:
    from bert_lab.core.config import RunConfig
    from bert_lab.figures import curves
    from bert_lab.runs.describe import QUEUE_PAUSED_DETAIL
    from lab_ui.launched import status_line

    run = lab.store.create_run(RunConfig(model="tiny").to_dict(), name="r")
    nothing = curves.points_frame([])
    assert QUEUE_PAUSED_DETAIL in status_line(run, nothing, paused=True)
    waiting = status_line(run, nothing)  # not paused
    assert "first loss point appears here" in waiting and QUEUE_PAUSED_DETAIL not in waiting
