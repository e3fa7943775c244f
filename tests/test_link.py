"""Shareable links: every RunConfig field survives the round trip config → query → config; bad entries are named and
ignored; `hide` hides knobs; and the launch page opened from a link shows, and queues, what the link says."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from bert_lab.core.config import RunConfig
from bert_lab.runs.service import Lab
from lab_ui.link import config_from_query, hidden, query_from_config, url

# A valid value other than the default for every field.
CHANGED: dict[str, Any] = {
    "dataset": "sms_spam",
    "text_column": "body",
    "label_column": "kind",
    "train_size": 500,
    "eval_size": 200,
    "max_length": 64,
    "padding": "max_length",
    "model": "tiny",
    "dropout": 0.2,
    "attention_dropout": 0.05,
    "classifier_dropout": 0.3,
    "optimizer": "momentum",
    "lr": 3e-05,
    "momentum": 0.8,
    "nesterov": True,
    "beta1": 0.85,
    "beta2": 0.98,
    "weight_decay": 0.01,
    "l2": 1e-4,
    "l1": 1e-6,
    "max_grad_norm": 0.5,
    "batch_size": 16,
    "grad_accum_steps": 2,
    "num_epochs": 2.5,
    "schedule": "step",
    "warmup_steps": 10,
    "decay_rate": 0.7,
    "decay_steps": 50,
    "step_size": 20,
    "gamma": 0.3,
    "range_start_lr": 1e-6,
    "eval_every_steps": 7,
    "early_stopping_patience": 3,
    "early_stopping_metric": "eval_loss",
    "divergence_factor": 5.0,
    "seed": 7,
    "precision": "fp32",
    "num_processes": 2,
    "group_by_length": False,
}


def test_every_field_round_trips_through_the_query() -> None:
    assert set(CHANGED) == {f.name for f in fields(RunConfig)}  # a new field must join this test
    config = RunConfig(**CHANGED)
    query = query_from_config(config)
    assert set(query) == set(CHANGED) and all(isinstance(v, str) for v in query.values())
    restored, problems = config_from_query(query)
    assert problems == [] and RunConfig(**restored) == config
    for name, value in CHANGED.items():  # and one field at a time, the others at their defaults
        if name == "nesterov":
            continue  # needs the momentum optimizer
        single = query_from_config(replace(RunConfig(), **{name: value}))
        assert list(single) == [name] and RunConfig(**config_from_query(single)[0]) == replace(
            RunConfig(), **{name: value}
        )
    assert query_from_config(RunConfig()) == {}


def test_bad_entries_are_named_and_ignored() -> None:
    fields_, problems = config_from_query({"lr": "3e-4", "colour": "red", "batch_size": "lots", "dropout": "2"})
    assert fields_ == {"lr": 3e-4}
    assert problems == [
        "colour: not a setting",
        "batch_size: 'lots' is not a whole number",
        "dropout: must be a number in [0, 1), got 2.0",
    ]


def test_hide_names_knobs_and_survives_in_the_link() -> None:
    assert hidden({"hide": "l1, l2,nonsense"}) == {"l1", "l2"}
    query = query_from_config(RunConfig(lr=3e-4), hidden={"l2", "l1"})
    assert query == {"lr": "0.0003", "hide": "l1,l2"}
    assert url("http://host:8501/?old=1", query) == "http://host:8501/?lr=0.0003&hide=l1%2Cl2"


def test_the_launch_page_opens_a_link_hides_knobs_and_queues_what_it_says(lab: Lab) -> None:
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
    at.query_params.update({"model": "tiny", "lr": "0.0003", "schedule": "cosine", "hide": "l1,l2", "batch_size": "x"})
    at.run()
    assert not at.exception
    assert at.select_slider(key="lr").value == 3e-4 and at.selectbox(key="schedule").value == "cosine"
    assert at.radio(key="model_choice").value == "tiny"
    labels = {w.label for w in at.select_slider}
    assert "L1 penalty" not in labels and "L2 penalty" not in labels and "Weight decay (decoupled)" in labels
    assert "batch_size: 'x' is not a whole number" in "\n".join(w.value for w in at.warning).replace("\\", "")
    at.select_slider(key="dropout").set_value(0.2).run()
    assert at.query_params["dropout"] == "0.2" and at.query_params["hide"] == "l1,l2"
    at.button(key="launch").click().run()
    [run] = lab.store.list_runs()
    assert (run.config["lr"], run.config["schedule"], run.config["model"], run.config["dropout"]) == (
        3e-4,
        "cosine",
        "tiny",
        0.2,
    )
    assert run.config["l1"] == 0.0 and run.config["l2"] == 0.0  # hidden knobs keep their values
