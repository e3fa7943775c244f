"""Playground inference: a run's saved model (`run_dir/model`, a `save_pretrained` folder) classifies new texts.

This module imports torch and transformers; the Playground page imports it lazily, only when it predicts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class Classifier:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    label_names: tuple[str, ...]
    max_length: int

    @torch.no_grad()
    def predict(self, texts: Sequence[str], *, batch_size: int = 32) -> pd.DataFrame:
        """One row per text: text, predicted (label name), confidence, then one probability column per label."""
        rows = []
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start : start + batch_size])
            batch = self.tokenizer(
                chunk, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
            )
            probs = self.model(**batch).logits.float().softmax(-1).tolist()
            for text, p in zip(chunk, probs):
                best = max(range(len(p)), key=p.__getitem__)
                rows.append(
                    {
                        "text": text,
                        "predicted": self.label_names[best],
                        "confidence": p[best],
                        **dict(zip(self.label_names, p)),
                    }
                )
        return pd.DataFrame(rows, columns=["text", "predicted", "confidence", *self.label_names])


def load_classifier(model_dir: Path | str, *, max_length: int = 128) -> Classifier:
    """Load a saved model folder for inference on the CPU (or the GPU when there is one), offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))  # leave cores for the training worker
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), local_files_only=True)
    model.eval()
    id2label = model.config.id2label
    names = tuple(str(id2label[i]) for i in range(len(id2label)))
    return Classifier(model, tokenizer, names, max_length)
