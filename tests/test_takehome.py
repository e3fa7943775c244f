"""The take-home model (`runs/takehome.py`): a real tiny run trained by the runner, zipped, unzipped, and loaded by
`transformers.pipeline` as a user would; it predicts what the Playground predicts."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

import bert_lab
from bert_lab.core.config import RunConfig
from bert_lab.processes.runner import run_job
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.store import StoreError
from bert_lab.runs.takehome import BUNDLED_BASE, base_model, model_card, model_zip

HOSTILE = "**bold** [x](http://e) <b>hi</b> | pipe"
CONFIG = RunConfig(model="tiny", dataset="sms_spam", train_size=64, eval_size=32, max_length=32, precision="fp32")
SENTENCES = ["Free entry! Text WIN to claim your prize now", "See you at lunch tomorrow", "ok"]


@pytest.fixture
def finished_run(lab: Lab) -> int:
    run = lab.store.create_run(CONFIG.to_dict(), name=HOSTILE, owner="ana <i>")
    assert lab.store.claim_run(run.id, pid=os.getpid(), device="cpu")
    assert run_job(lab, run.id) == 0
    assert lab.store.get_run(run.id).status == Status.FINISHED
    return run.id


def test_the_zip_loads_with_pipeline_and_predicts_like_the_playground(
    lab: Lab, finished_run: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import pipeline

    from bert_lab.engine.predict import load_classifier

    run = lab.store.get_run(finished_run)
    archive = zipfile.ZipFile(io.BytesIO(model_zip(lab.data, run)))
    names = set(archive.namelist())
    inside = f"bert-lab-run-{run.id}"
    assert {f"{inside}/{n}" for n in ("config.json", "model.safetensors", "tokenizer.json", "README.md")} <= names
    assert {f"{inside}/run_config.json", f"{inside}/eval_report.json"} <= names and all(
        n.startswith(f"{inside}/") for n in names
    )
    archive.extractall(tmp_path)
    monkeypatch.chdir(tmp_path)  # as the card says: the folder's name is the model
    classify = pipeline("text-classification", model=inside, device="cpu")
    taken = classify(SENTENCES)
    playground = load_classifier(lab.data.run(run.id).model, max_length=CONFIG.max_length).predict(SENTENCES)
    assert [t["label"] for t in taken] == list(playground["predicted"])
    assert [t["score"] for t in taken] == pytest.approx(list(playground["confidence"]), abs=1e-5)
    assert json.loads((tmp_path / inside / "run_config.json").read_text()) == run.config
    report = json.loads((tmp_path / inside / "eval_report.json").read_text())
    assert report == json.loads(lab.data.run(run.id).eval_report.read_text())


def test_the_model_card_says_what_how_and_how_well_with_user_text_as_text(lab: Lab, finished_run: int) -> None:
    run = lab.store.get_run(finished_run)
    report = json.loads(lab.data.run(run.id).eval_report.read_text())
    card = model_card(run, report)
    assert card.startswith("---\nlibrary_name: transformers\npipeline_tag: text-classification\ntags:\n- bert-lab\n")
    assert "base_model" not in card  # the tiny demo BERT has no Hub id
    assert HOSTILE not in card and "<i>" not in card and "<b>" not in card  # escaped: shown as typed
    assert r"\*\*bold\*\* \[x\]\(http\://e\) \<b\>hi\</b\> \| pipe" in card
    assert f"BERT Lab {bert_lab.__version__}, run {run.id} by ana \\<i\\>" in card
    for name in run.config:
        assert f"| `{name}` |" in card  # every knob
    scores = f"| {report['accuracy']:.4f} | {report['f1']:.4f} | {report['precision']:.4f} | {report['recall']:.4f} |"
    assert scores in card
    (ham_ham, ham_spam), (spam_ham, spam_spam) = report["confusion"]
    assert f"| ham | {ham_ham} | {ham_spam} |\n| spam | {spam_ham} | {spam_spam} |" in card
    assert f'pipeline("text-classification", model="bert-lab-run-{run.id}")' in card
    assert f"finished: {run.summary.reason}" in card.replace("\\", "")
    s = run.summary
    assert f"{s.steps} optimizer steps in {s.wall_s:.0f} s on cpu (fp32, {s.samples_per_s:.1f} samples/s)" in card
    assert "fine-tuned from the tiny demo BERT (2 layers, random weights) on **sms\\_spam**" in card
    assert "Classes: ham, spam." in card


def test_the_card_names_a_hub_base_model_and_a_run_without_a_model_has_no_zip(lab: Lab, tmp_path: Path) -> None:
    assert base_model("minilm") == base_model("sentence-transformers/all-MiniLM-L6-v2") == BUNDLED_BASE
    assert base_model("bert-base-uncased") == "bert-base-uncased" and base_model(str(tmp_path)) is None
    queued = lab.store.create_run(replace(CONFIG, model="minilm").to_dict(), name="m")
    assert "\nbase_model: sentence-transformers/all-MiniLM-L6-v2\n" in model_card(queued, {})
    bare = model_card(queued, {})
    assert "No evaluation report was saved" in bare and "Classes: unknown." in bare
    assert "0 optimizer steps in 0 s on the CPU (fp32, 0.0 samples/s)" in bare  # nothing reported: no "None"
    scores = {"accuracy": 0.5, "eval_size": 4, "step": 1}
    assert "Confusion matrix" not in model_card(queued, {**scores, "confusion": [[2, 0], [2, 0]]})  # no class names
    assert "Confusion matrix" not in model_card(queued, {**scores, "confusion": [], "label_names": []})
    with pytest.raises(StoreError, match=f"run {queued.id} has no saved model \\(queued\\)"):
        model_zip(lab.data, queued)


def test_export_format_model_writes_the_zip(lab: Lab, finished_run: int, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bert_lab", "export", str(finished_run), "--format", "model"]
    done = subprocess.run([*command, "--home", str(lab.data.path)], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    written = tmp_path / f"bert-lab-run-{finished_run}.zip"
    assert f"wrote {written.name}" in done.stdout
    assert zipfile.ZipFile(written).read(f"bert-lab-run-{finished_run}/README.md").decode().startswith("---\n")
    missing = subprocess.run([*command[:4], "999", "--home", str(lab.data.path)], capture_output=True, text=True)
    assert missing.returncode == 2 and "no run with id 999" in missing.stderr
