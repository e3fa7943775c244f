"""The take-home model: a finished run's fine-tuned model as one zip that `transformers` loads as it is.

The zip holds one folder, `bert-lab-run-<id>/`: the Hugging Face model folder the run saved (`save_pretrained`:
config, safetensors weights, tokenizer), a model card (`README.md`, as the Hugging Face Hub reads one: YAML metadata,
then what it is, how to use it, its evaluation with the confusion matrix, every knob it was trained with, how the run
ended, the date and the lab's version), and the run's `run_config.json` and `eval_report.json`. Unzipped,
`pipeline("text-classification", model="bert-lab-run-<id>")` loads it. User text in the card (the run's name, owner,
class names, a CSV's path) is escaped, so that markdown shows it as typed.
"""

from __future__ import annotations

import datetime
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import bert_lab
from bert_lab.core.config import MINILM_ALIASES, field_help
from bert_lab.core.layout import DataFolder
from bert_lab.core.text import md
from bert_lab.runs.records import Run
from bert_lab.runs.store import StoreError

BUNDLED_BASE = "sentence-transformers/all-MiniLM-L6-v2"  # what the bundled MiniLM is, on the Hugging Face Hub
SCORES = ("accuracy", "f1", "precision", "recall", "loss")
TINY = "the tiny demo BERT (2 layers, random weights)"


def folder_name(run: Run) -> str:
    return f"bert-lab-run-{run.id}"


def model_zip(data: DataFolder, run: Run) -> bytes:
    """The run's model, model card, config and evaluation report as zip bytes; StoreError when it has no model."""
    folder = data.folder_of(run)
    if not folder.has_model:
        raise StoreError(
            f"run {run.id} has no saved model ({run.status}): a run saves one when it finishes or is cancelled"
        )
    report = json.loads(folder.eval_report.read_text()) if folder.eval_report.exists() else {}
    inside = folder_name(run)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.model.rglob("*") if p.is_file()):
            archive.write(path, f"{inside}/{path.relative_to(folder.model)}")
        archive.writestr(f"{inside}/README.md", model_card(run, report))
        archive.writestr(f"{inside}/run_config.json", json.dumps(run.config, indent=1))
        if report:
            archive.writestr(f"{inside}/eval_report.json", json.dumps(report, indent=1))
    return buffer.getvalue()


def base_model(model: str) -> str | None:
    """The Hub id of the model the run started from, when it has one (a local folder or the tiny demo has none)."""
    if model.lower() in MINILM_ALIASES:
        return BUNDLED_BASE
    if model == "tiny" or Path(model).expanduser().exists():
        return None
    return model


def model_card(run: Run, report: dict[str, Any]) -> str:
    """The model card (markdown with Hub metadata) of run `run`, whose evaluation report is `report`."""
    c = run.config
    base = base_model(str(c.get("model", "")))
    labels = [str(name) for name in report.get("label_names", run.summary.labels or [])]
    finished = datetime.datetime.fromtimestamp(run.finished_at or run.created_at, datetime.UTC)
    meta = ["---", "library_name: transformers", "pipeline_tag: text-classification"]
    meta += [f"base_model: {base}"] if base else []
    meta += ["tags:", "- bert-lab", "- text-classification", "metrics:", "- accuracy", "- f1", "---", ""]
    started_from = f"`{base}`" if base else TINY if c.get("model") == "tiny" else md(Path(str(c.get("model"))).name)
    lines = [
        *meta,
        f"# {md(run.name) or f'Run {run.id}'}",
        "",
        f"A text classifier fine-tuned from {started_from} on **{md(Path(str(c.get('dataset'))).name)}** "
        f"({c.get('train_size')} training examples, {report.get('eval_size', c.get('eval_size'))} held out for "
        f"evaluation) with BERT Lab {bert_lab.__version__}, run {run.id}"
        + (f" by {md(run.owner)}" if run.owner else "")
        + f", finished {finished:%Y-%m-%d %H:%M} UTC. Classes: {', '.join(md(n) for n in labels) or 'unknown'}.",
        "",
        "## Use it",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        f'classify = pipeline("text-classification", model="{folder_name(run)}")  # this folder',
        'print(classify("An unexpectedly moving film."))',
        "```",
        "",
        *evaluation(report, labels),
        "## How it was trained",
        "",
        "| knob | value | what it is |",
        "|---|---|---|",
        *(
            f"| `{name}` | {md(value)} | {' '.join(field_help(name).split()).replace('|', '/')} |"
            for name, value in c.items()
        ),
        "",
        "## How the run ended",
        "",
        f"{run.status}: {md(run.summary.reason or run.error or '')}. "
        f"{run.summary.steps or 0} optimizer steps in {run.summary.wall_s or 0:.0f} s on {md(run.device or 'the CPU')} "
        f"({run.summary.precision or 'fp32'}, {run.summary.samples_per_s or 0:.1f} samples/s).",
        "",
        "The run's whole config is `run_config.json`; its last evaluation, with every held-out example's prediction, "
        "is `eval_report.json`.",
        "",
    ]
    return "\n".join(lines)


def evaluation(report: dict[str, Any], labels: list[str]) -> list[str]:
    """The card's evaluation: the scores (macro precision, recall and F1) and the confusion matrix."""
    if not report:
        return ["## Evaluation", "", "No evaluation report was saved with this model.", ""]
    scores = [f"{report[s]:.4f}" if isinstance(report.get(s), int | float) else "–" for s in SCORES]
    lines = [
        "## Evaluation",
        "",
        f"On {report.get('eval_size')} held-out examples, after step {report.get('step')} (precision, recall and F1 "
        "are macro averages over the classes):",
        "",
        "| accuracy | F1 | precision | recall | loss |",
        "|---|---|---|---|---|",
        f"| {' | '.join(scores)} |",
        "",
    ]
    confusion = report.get("confusion") or []
    if confusion and len(confusion) == len(labels):
        lines += [
            "Confusion matrix (rows: the true class; columns: the predicted one):",
            "",
            "| true \\ predicted | " + " | ".join(md(n) for n in labels) + " |",
            "|---|" + "---|" * len(labels),
            *(f"| {md(n)} | " + " | ".join(str(v) for v in row) + " |" for n, row in zip(labels, confusion)),
            "",
        ]
    return lines
