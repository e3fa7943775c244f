"""The same-config result cache's key: two runs with the same key compute the same thing, so the second is answered
from the first (finished at once, its curves and model shared, marked "cached from #N").

The key hashes the whole config, seed included, and what it points to: a CSV's content is in its path already (a
submitted CSV is staged as `uploads/<name>-<content hash>.csv`), a bundled dataset is fixed by its pinned package,
and a model folder is fingerprinted by its files' names, sizes and modification times (a retrained or replaced model
gets a new key). Bumping `VERSION` retires every older key, when a change to training changes what a config yields.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

VERSION = 1


def cache_key(config: dict[str, Any]) -> str:
    """The key of a run of `config` (a `RunConfig.to_dict()`, staged)."""
    payload = {"version": VERSION, "config": config, "model": _model_fingerprint(str(config.get("model", "")))}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _model_fingerprint(model: str) -> list[tuple[str, int, int]]:
    """A local model folder's files (name, size, mtime in ns); nothing for the bundled models and hub ids."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return []
    return sorted(
        (str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file() and (stat := path.stat())
    )
