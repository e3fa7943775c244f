"""How many runs share one GPU: each run's GPU memory estimated from its model's shape and its batch, the GPUs'
memory read from `nvidia-smi`, and each run process capped at its share (`torch.cuda.set_per_process_memory_fraction`)
so that one run cannot take another's memory. Torch-free: the worker decides before any run imports torch.

A run's estimate (fine-tuning with Adam in mixed precision), in MB:
    weights, gradients and Adam's two moments in fp32: 16 bytes × parameters
    activations kept for the backward pass: about (34·h + 5·heads·L) bytes per token per layer (Korthikanti et al.,
        2022, for a transformer layer in 16-bit), × batch × max length × layers
    the CUDA context, cuBLAS workspace and the allocator's slack: 1,000 MB
MiniLM-L6 (22.7M parameters, h 384, 6 layers, 12 heads) at batch 32, max length 128: 347 + 486 + 1,000 ≈ 1.8 GB,
so a 24 GB GPU holds 12 such runs by memory and an 80 GB one 39; `MAX_SLOTS_PER_GPU` caps both at 8.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bert_lab.engine.model_files import TINY, ModelError, resolve_model

CONTEXT_MB = 1000.0  # CUDA context + workspace + fragmentation, per process
USABLE = 0.9  # of a GPU's memory: the rest for the driver and other processes
MAX_SLOTS_PER_GPU = 8  # beyond this, runs only time-slice the GPU's compute: each gets slower, none finishes sooner
FRACTION_ENV = "BERT_LAB_GPU_MEMORY_FRACTION"  # the run process's cap, as a share of its GPU's memory

# The tiny demo BERT's shape (model.tiny_bert_config); every other model is read from its config.json.
TINY_SHAPE = {"vocab_size": 30522, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 128, "max_position_embeddings": 512}  # fmt: skip


def model_shape(model: str) -> dict[str, Any] | None:
    """The model's config.json fields that size it (None when it is not a local folder: a hub id not yet seen)."""
    if model == TINY:
        return TINY_SHAPE
    try:
        path = Path(resolve_model(model)) / "config.json"
        return json.loads(path.read_text())
    except (ModelError, OSError, ValueError):
        return None


def parameters(shape: dict[str, Any]) -> int:
    """A BERT encoder's parameter count from its shape (embeddings, layers, pooler; the head is negligible)."""
    h, layers, inner = shape["hidden_size"], shape["num_hidden_layers"], shape["intermediate_size"]
    embeddings = (shape["vocab_size"] + shape.get("max_position_embeddings", 512) + 2) * h + 2 * h
    layer = 4 * (h * h + h) + 2 * h * inner + inner + h + 4 * h
    return embeddings + layers * layer + h * h + h


def run_memory_mb(config: dict[str, Any]) -> float:
    """The GPU memory a run of `config` needs, in MB (see the module's docstring); MiniLM's shape when unknown."""
    shape = model_shape(str(config.get("model", "minilm"))) or model_shape("minilm") or TINY_SHAPE
    h, layers, heads = shape["hidden_size"], shape["num_hidden_layers"], shape["num_attention_heads"]
    tokens = int(config.get("batch_size", 32)) * int(config.get("max_length", 128))
    per_token_layer = 34 * h + 5 * heads * int(config.get("max_length", 128))
    activations = tokens * layers * per_token_layer
    return (16 * parameters(shape) + activations) / 2**20 + CONTEXT_MB


def slots_per_gpu(gpu_mb: float, run_mb: float) -> int:
    """Runs of `run_mb` that fit one GPU of `gpu_mb` (at least 1, at most MAX_SLOTS_PER_GPU)."""
    return max(1, min(MAX_SLOTS_PER_GPU, math.floor(USABLE * gpu_mb / run_mb)))


def gpu_memory_mb() -> list[float]:
    """Each visible GPU's memory in MB, from `nvidia-smi` (empty without one)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [float(line) for line in out.split() if line.strip().replace(".", "", 1).isdigit()]


def place(reserved: list[list[float]], need_mb: float, gpu_mb: list[float], slots: int) -> int | None:
    """The GPU for a run needing `need_mb`, given what each GPU's runs reserve (`reserved[g]`: their estimates):
    the one with the fewest runs among those with a free slot and room in its usable memory (memory unknown: 0 MB
    means slots alone decide). None when every GPU is full: the run waits for one to free up."""
    fits = [
        g
        for g, runs in enumerate(reserved)
        if len(runs) < slots and (not gpu_mb[g] or sum(runs) + need_mb <= USABLE * gpu_mb[g])
    ]
    return min(fits, key=lambda g: (len(reserved[g]), g)) if fits else None
