"""AppTests of the playground (`pages/2_Playground.py`): a tiny model is trained once in the test's data folder, then
the page predicts with it, compares it with a copy of itself and shows its mistakes."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from page_view import titles
from streamlit.testing.v1 import AppTest

from bert_lab.core.config import RunConfig
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from lab_ui import page

ROOT = Path(__file__).resolve().parents[1]
OpenPage = Callable[..., AppTest]
HOSTILE = "**bold** [x](http://e) <b>hi</b>"
ESCAPED = re.compile(r"\\[!-/:-@\[-`{-~]")  # a backslash-escaped ASCII punctuation character (CommonMark)


def texts(elements: Any) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_playground_without_models_points_to_the_launch_page(open_page: OpenPage, lab: Lab) -> None:
    lab.store.create_run(RunConfig().to_dict())  # queued: no model yet
    at = open_page(page.PLAYGROUND_PAGE)
    assert "No trained model yet" in texts(at.info)
    [link] = at.main.get("page_link")
    assert link.proto.label == "Launch a run"
    target = at._registered_pages[link.proto.page_script_hash]  # the page a click opens (AppTest's page registry)
    assert Path(target["script_path"]).resolve() == ROOT / page.LAUNCH_PAGE


def test_playground_predicts_compares_and_shows_mistakes(open_page: OpenPage, lab: Lab) -> None:
    from bert_lab.engine.train import train

    config = RunConfig(model="tiny", dataset="sms_spam", train_size=64, eval_size=32, max_length=32)
    runs = []
    for name in ("first", HOSTILE):
        run = lab.store.create_run(config.to_dict(), name=name)
        assert lab.store.claim_run(run.id, pid=os.getpid(), device="cpu")
        if not runs:
            train(config, folder=lab.data.run(run.id).create())
        else:
            shutil.copytree(lab.data.run(runs[0].id).path, lab.data.run(run.id).path)
        lab.store.set_status(run.id, Status.FINISHED)
        runs.append(run)
    at = open_page(page.PLAYGROUND_PAGE, timeout=180)
    [take_home] = [b for b in at.download_button if b.label == "Take this model home (zip)"]
    assert not take_home.proto.disabled
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
    assert f"#{runs[1].id} {HOSTILE}" in agree.columns  # a column name is plain text
    assert sum("Confusion matrix" in t for t in titles(at)) == 2
    # The same model twice, example by example: no example where one is right and the other wrong.
    said = ESCAPED.sub(lambda m: m.group()[1], texts(at.warning))
    assert "is wrong on 0 examples" in said and "within chance at 95% (McNemar p = 1)" in said
    headings = [m.proto.body for m in at.markdown if HOSTILE[2:6] in m.proto.body]
    assert len(headings) == 2  # above its predictions and above its evaluation: the run's name, as typed
    for body in headings:
        assert ESCAPED.sub(lambda m: m.group()[1], body) == f"**#{runs[1].id} {HOSTILE}**"
        live = ESCAPED.sub("", body)
        assert live.count("**") == 2 and not set(live) & set("[]()<>")


def test_the_playground_loads_a_model_trained_on_another_machine(
    open_page: OpenPage, tmp_path: Path, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several machines: a worker host trains into the shared artifact root and records the run in PostgreSQL; the
    app host, with its own data folder, finds the model there and predicts with it."""
    from bert_lab.engine.train import train

    shared = tmp_path / "shared"  # the folder both machines mount
    config = RunConfig(model="tiny", dataset="sms_spam", train_size=64, eval_size=32, max_length=32)
    with Lab.open(tmp_path / "gpu-b-scratch", postgres_database, shared) as gpu_b:  # the worker's machine
        run = gpu_b.store.create_run(config.to_dict(), name="trained on gpu-b")
        assert gpu_b.store.claim_run(run.id, pid=os.getpid(), device="cpu", host="gpu-b")
        train(config, folder=gpu_b.data.run(run.id).create())
        gpu_b.store.set_status(run.id, Status.FINISHED)
    monkeypatch.setenv("BERT_LAB_STORE", postgres_database)  # the app host: same store and root, its own folder
    monkeypatch.setenv("BERT_LAB_ARTIFACTS", str(shared))
    at = open_page(page.PLAYGROUND_PAGE, timeout=180)
    at.text_area(key="sentences").set_value("Free entry! Text WIN now").run()
    assert not at.exception
    assert list(at.dataframe[0].value["text"]) == ["Free entry! Text WIN now"]
    assert "Mistakes (of 32)" in [m.label for m in at.metric]  # its evaluation report, read from the shared root
    app_home = Path(os.environ["BERT_LAB_HOME"])
    assert not (app_home / "runs").exists() and (shared / "runs" / str(run.id) / "model").is_dir()
