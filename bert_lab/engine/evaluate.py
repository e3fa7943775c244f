"""Evaluation: predict a held-out set (sharded across processes), and the report the playground shows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import gather_object

from bert_lab.engine import data as data_lib
from bert_lab.engine.scores import classification_metrics

MAX_REPORTED_ERRORS = 200


@dataclass(frozen=True)
class Predictions:
    loss: float  # mean cross-entropy
    preds: list[int]
    probs: list[list[float]]
    metrics: dict[str, object]  # accuracy, precision, recall, f1 (macro), confusion


@torch.no_grad()
def predict(
    accelerator: Accelerator,
    model: torch.nn.Module,
    ids: Sequence[list[int]],
    labels: Sequence[int],
    num_classes: int,
    *,
    pad_id: int,
    batch_size: int,
    pad_to: int | None = None,
    multiple: int = data_lib.PAD_MULTIPLE,
) -> Predictions:
    """Predict every example. Examples are batched by length (least padding); each process takes a share and
    the shares are gathered, so every process returns the same full result."""
    net = accelerator.unwrap_model(model)  # plain module: no gradient sync collectives during evaluation
    net.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    mine = order[accelerator.process_index :: accelerator.num_processes]
    rows: list[tuple[int, float, list[float]]] = []
    for start in range(0, len(mine), batch_size):
        idx = mine[start : start + batch_size]
        batch = data_lib.collate(
            [ids[i] for i in idx], [labels[i] for i in idx], pad_id, pad_to=pad_to, multiple=multiple
        )
        batch = {k: v.to(accelerator.device) for k, v in batch.items()}
        logits = net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        losses = F.cross_entropy(logits, batch["labels"], reduction="none")
        rows.extend(zip(idx, losses.tolist(), logits.softmax(-1).tolist()))
    net.train()
    if accelerator.num_processes > 1:
        rows = gather_object(rows)
    rows.sort(key=lambda row: row[0])
    probs = [row[2] for row in rows]
    preds = [max(range(num_classes), key=p.__getitem__) for p in probs]
    loss = sum(row[1] for row in rows) / max(1, len(rows))
    return Predictions(loss, preds, probs, classification_metrics(labels, preds, num_classes))


def write_eval_report(path: Path, predictions: Predictions, eval_set: data_lib.TextDataset, *, step: int) -> None:
    """JSON for the playground: metrics, confusion matrix, the misclassified examples (most confident first), and
    every example's text, label and prediction."""
    names = list(eval_set.label_names)
    wrong = [
        {"text": text, "label": names[label], "predicted": names[pred], "confidence": round(max(probs), 4)}
        for text, label, pred, probs in zip(eval_set.texts, eval_set.labels, predictions.preds, predictions.probs)
        if pred != label
    ]
    wrong.sort(key=lambda row: -row["confidence"])
    report = {
        "step": step,
        "label_names": names,
        "eval_size": len(eval_set),
        "loss": predictions.loss,
        **predictions.metrics,
        "misclassified": wrong[:MAX_REPORTED_ERRORS],
        "misclassified_count": len(wrong),
        # every example, for comparing two runs example by example (bert_lab.teaching.prediction_diff)
        "texts": list(eval_set.texts),
        "labels": [int(y) for y in eval_set.labels],
        "predicted": [int(p) for p in predictions.preds],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(path)
