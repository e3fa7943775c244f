"""Benchmark: bert_lab's training engine against Hugging Face `Trainer` on the same work, side by side.

Contenders, alternated in this order within each repeat: `trainer` (Trainer with its defaults: fp32, random
batches), `bert_lab` (`bert_lab.engine.train.train` with its defaults: precision auto, length-grouped batches) and
`trainer_tuned` (Trainer as a practitioner sets it up from its own docs: `bf16=True, use_cpu=True` where the CPU has
native bf16, and `train_sampling_strategy="group_by_length"`). The headline is the ratio to the tuned peer: beating
the defaults is two flags. `--compile-peer` adds `trainer_tuned_compile` (the same with `torch_compile=True`), left
out by default: it recompiles for every padded length, which costs more than a short run gains (bench/README.md).

Each runs in a fresh child process (this script with the hidden `--worker` flag), so peak RSS, imports and model
load are counted per contender; this process only imports the standard library. A dedicated child measures the
matrix-product peak (fp32 and bf16 autocast) so useful FLOP/s can be put against it.

`--isa avx2` measures the AVX2-only kind of CPU on any x86 machine: every child runs with
`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2`, and bf16 counts as not native, so
bert_lab trains fp32 (as `precision=auto` picks there) and the tuned peer leaves bf16 off (its docs' advice where bf16
is emulated); it matched a real AVX2 box's ratio within 0.1×.

    .venv/bin/python bench/vs_trainer.py                     # the full comparison (2,000 examples, minilm)
    .venv/bin/python bench/vs_trainer.py --isa avx2          # the same as on an AVX2-only CPU
    .venv/bin/python bench/vs_trainer.py --train-size 128 --eval-size 64 --model tiny --json out.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTENDERS = ("trainer", "bert_lab", "trainer_tuned")
PEERS = ("trainer", "trainer_tuned", "trainer_tuned_compile")  # Trainer, as it comes and as its docs tune it
# Limit a machine to AVX2 (what an AVX2-only CPU has): torch's kernels, oneDNN's and MKL's.
AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
# --levers: bert_lab with its speed levers taken away one by one, to show what each gives.
LEVERS: dict[str, dict[str, Any]] = {
    "bert_lab": {},
    "bert_lab_fp32": {"precision": "fp32"},
    "bert_lab_fp32_unsorted": {"precision": "fp32", "group_by_length": False},
}
WORKERS = (*CONTENDERS, *LEVERS, "trainer_tuned_compile", "peak")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--train-size", type=int, default=2000, help="training examples")
    p.add_argument("--eval-size", type=int, default=1000, help="held-out evaluation examples")
    p.add_argument("--batch-size", type=int, default=32, help="examples per optimizer step")
    p.add_argument("--max-length", type=int, default=64, help="tokens per text (truncated, padded per batch)")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the training set")
    p.add_argument("--seed", type=int, default=42, help="seeds the split, head init, dropout and batch order")
    p.add_argument("--schedule", choices=("linear", "constant", "cosine"), default="linear", help="no warmup")
    p.add_argument("--model", default="minilm", help="minilm, tiny, or a local model folder")
    p.add_argument("--dataset", default="rotten_tomatoes", help="bundled dataset name or CSV path")
    p.add_argument("--repeats", type=int, default=1, help="rounds of all contenders; medians are reported")
    p.add_argument("--isa", choices=("native", "avx2"), default="native", help="avx2: as on an AVX2-only CPU")
    p.add_argument("--compile-peer", action="store_true", help="also the tuned Trainer with torch_compile=True")
    p.add_argument("--levers", action="store_true", help="also bert_lab in fp32, and fp32 unsorted")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write all results as JSON")
    p.add_argument("--worker", choices=WORKERS, default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --- child side: one contender (or the matmul peak) per fresh process ------------------------------------------------
def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    import resource

    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    if args.worker == "peak":
        return measure_peak(bf16_too=native_bf16(args))
    import transformers  # noqa: F401  (heavy imports happen here, before the clock starts)

    import bert_lab.engine.train  # noqa: F401

    import_s = time.perf_counter() - t0
    started = time.perf_counter()
    if args.worker in LEVERS:
        overrides = LEVERS[args.worker] | ({"precision": "fp32"} if args.isa == "avx2" else {})  # what auto picks
        out = run_bert_lab(args, overrides)
    else:
        tuned = args.worker.startswith("trainer_tuned")
        out = run_trainer(
            args, bf16=tuned and native_bf16(args), grouped=tuned, compiled=args.worker.endswith("compile")
        )
    out["wall_s"] = time.perf_counter() - started  # data prep + model load + training + final eval
    out["import_s"] = import_s
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    return out


def load_split(args: argparse.Namespace) -> tuple[Any, Any]:
    from bert_lab.engine.data import load_dataset, split_dataset

    return split_dataset(
        load_dataset(args.dataset), train_size=args.train_size, eval_size=args.eval_size, seed=args.seed
    )


def run_bert_lab(args: argparse.Namespace, overrides: dict[str, Any]) -> dict[str, Any]:
    from bert_lab.core.config import RunConfig
    from bert_lab.engine.train import train

    config = RunConfig(
        dataset=args.dataset,
        train_size=args.train_size,
        eval_size=args.eval_size,
        max_length=args.max_length,
        model=args.model,
        optimizer="adamw",
        lr=args.lr,
        weight_decay=0.0,
        max_grad_norm=1.0,
        batch_size=args.batch_size,
        num_epochs=args.epochs,
        schedule=args.schedule,
        warmup_steps=0,
        seed=args.seed,
        eval_every_steps=10**9,  # evaluate once, at the end, as the Trainer contenders do
        **overrides,
    )
    res = train(config)
    assert res.eval is not None, res.reason
    n_train = len(load_split(args)[0])
    return {
        "precision": res.precision,
        "device": res.device,
        "stop": res.stop,
        "train_s": res.train_s,
        "own_samples_per_s": res.samples_per_s,
        "n_train": n_train,
        "accuracy": res.eval.accuracy,
        "f1": res.eval.f1,
        "steps": res.steps,
    }


def trainer_args(args: argparse.Namespace, output_dir: str, **extra: Any) -> Any:
    """Trainer's settings for the same recipe as bert_lab's run (AdamW, no warmup or decay, clipping 1.0), with no
    saving, evaluation or logging during training; `extra` adds a contender's own (precision, batch sizes, …)."""
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        lr_scheduler_type=args.schedule,
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        num_train_epochs=args.epochs,
        seed=args.seed,
        use_cpu=not torch.cuda.is_available(),
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        dataloader_num_workers=0,
        disable_tqdm=True,
        **extra,
    )


def native_bf16(args: argparse.Namespace) -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), as this run sees it (`--isa avx2`: no)."""
    return args.isa != "avx2" and bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def run_trainer(args: argparse.Namespace, *, bf16: bool, grouped: bool, compiled: bool) -> dict[str, Any]:
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        set_seed,
    )

    from bert_lab.core.config import RunConfig
    from bert_lab.engine.model import TINY, load_model, load_tokenizer, resolve_model
    from bert_lab.engine.scores import classification_metrics

    set_seed(args.seed)  # before the model: the new head is initialised as in bert_lab (which seeds first too)
    tokenizer = load_tokenizer(args.model)
    train_set, eval_set = load_split(args)
    label_names = list(train_set.label_names)

    # A list of feature dicts is a map-style torch Dataset; truncated, not padded (the collator pads per batch).
    def encode(part: Any) -> list[dict[str, Any]]:
        enc = tokenizer(list(part.texts), truncation=True, max_length=args.max_length)
        return [{**{k: v[i] for k, v in enc.items()}, "labels": y} for i, y in enumerate(part.labels)]

    train_data, eval_data = encode(train_set), encode(eval_set)
    labels = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: i for i, name in enumerate(label_names)},
    }
    if args.model == TINY:  # random 2-layer BERT: built by bert_lab, there is no folder to load
        model = load_model(RunConfig(model=TINY), label_names)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(
            resolve_model(args.model), local_files_only=True, **labels
        )
    with tempfile.TemporaryDirectory(prefix="vs_trainer-") as tmp:
        tuned = {"train_sampling_strategy": "group_by_length"} if grouped else {}
        targs = trainer_args(
            args, tmp, bf16=bf16, torch_compile=compiled, per_device_eval_batch_size=2 * args.batch_size, **tuned
        )
        trainer = Trainer(
            model=model,
            args=targs,
            train_dataset=train_data,
            data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer,
        )
        t = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - t
        t = time.perf_counter()
        logits = trainer.predict(eval_data).predictions
        eval_s = time.perf_counter() - t
    m = classification_metrics(eval_set.labels, logits.argmax(-1).tolist(), len(label_names))
    return {
        "precision": "bf16" if bf16 else "fp32",
        "device": str(targs.device),
        "stop": "completed",  # Trainer has no stop causes: it ran to its end
        "train_s": train_s,
        "eval_s": eval_s,
        "n_train": len(train_data),
        "accuracy": m["accuracy"],
        "f1": m["f1"],
        "steps": trainer.state.global_step,
    }


def count_work(args: argparse.Namespace) -> dict[str, int]:
    """Non-embedding parameters (model built on the meta device) and non-padding training tokens (one epoch)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from bert_lab.engine.model import TINY, load_tokenizer, resolve_model, tiny_bert_config

    train_set = load_split(args)[0]
    tokenizer = load_tokenizer(args.model)
    n = len(train_set.label_names)
    cfg = (
        tiny_bert_config(len(tokenizer), num_labels=n)
        if args.model == TINY
        else AutoConfig.from_pretrained(resolve_model(args.model), num_labels=n, local_files_only=True)
    )
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(cfg)
    total = sum(p.numel() for p in model.parameters())
    embedding = sum(p.numel() for p in model.base_model.embeddings.parameters())
    ids = tokenizer(list(train_set.texts), truncation=True, max_length=args.max_length)["input_ids"]
    return {"params": total, "non_embedding_params": total - embedding, "train_tokens": sum(len(x) for x in ids)}


def measure_peak(n: int = 2048, iters: int = 10, *, bf16_too: bool = True) -> dict[str, Any]:
    """Square matmul GFLOP/s in fp32 and under bf16 autocast (bf16 inputs), after warmup; the bf16 one only where
    bf16 is native (emulated, it takes minutes and nothing here trains in it: NaN)."""
    import torch

    def rate(a: torch.Tensor, b: torch.Tensor) -> float:
        for _ in range(2):
            a @ b
        t = time.perf_counter()
        for _ in range(iters):
            a @ b
        return 2 * n**3 * iters / (time.perf_counter() - t) / 1e9

    torch.manual_seed(0)
    a, b = torch.randn(n, n), torch.randn(n, n)
    fp32 = rate(a, b)
    bf16 = float("nan")
    if bf16_too:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = rate(a.bfloat16(), b.bfloat16())
    return {"n": n, "iters": iters, "fp32_gflops": fp32, "bf16_gflops": bf16}


# --- parent side: spawn, collect, print -------------------------------------------------------------------------------
def spawn(name: str, isa: str) -> dict[str, Any]:
    """Run worker `name` in a fresh interpreter (cold bert_lab token cache; limited to AVX2 for `isa` avx2) and
    return its result dict."""
    with tempfile.TemporaryDirectory(prefix="vs_trainer-") as tmp:
        result = Path(tmp) / "result.json"
        env = {
            **os.environ,
            **(AVX2_ENV if isa == "avx2" else {}),
            "HF_HUB_OFFLINE": "1",
            "BERT_LAB_CACHE": str(Path(tmp) / "cache"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }
        cmd = [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:], "--worker", name, "--result", str(result)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO_ROOT)
        if proc.returncode != 0 or not result.exists():
            sys.exit(f"worker {name} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        return json.loads(result.read_text())


def machine_info(isa: str = "native") -> dict[str, Any]:
    cpu = "unknown"
    try:
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            cpu,
        )
    except OSError:
        pass
    versions = {pkg: importlib.metadata.version(pkg) for pkg in ("torch", "transformers", "accelerate")}
    flags = cpu_flags()
    native = sorted(flags & {"avx512_bf16", "amx_bf16"}) if isa == "native" else []
    shown = " ".join(sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "fma"}))
    return {"cpu": lscpu_model() or cpu, "cores": os.cpu_count(), "python": sys.version.split()[0], **versions,
            "flags": shown, "isa": isa, "native_bf16": bool(native)}  # fmt: skip


def lscpu_model() -> str | None:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), None)


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


def summarise(runs: list[dict[str, Any]], peak: dict[str, Any], epochs: float) -> dict[str, dict[str, Any]]:
    """Per contender: medians over repeats of every measured number."""
    rows: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["name"] for r in runs):
        mine = [r for r in runs if r["name"] == name]
        if not mine:
            continue
        for r in mine:
            r["samples_per_s"] = r["n_train"] * epochs / r["train_s"]
            r["useful_gflops"] = 6 * r["non_embedding_params"] * r["train_tokens"] * epochs / r["train_s"] / 1e9
            # Against the peak of the precision the run really computed in (bf16 only where it ran bf16).
            own_peak = peak["bf16_gflops"] if r["precision"] == "bf16" else peak["fp32_gflops"]
            r["pct_peak"] = 100 * r["useful_gflops"] / own_peak
        numeric = [k for k, v in mine[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        rows[name] = {k: statistics.median(r[k] for r in mine) for k in numeric}
        rows[name]["precision"] = mine[0]["precision"]
    return rows


def print_report(
    args: argparse.Namespace,
    info: dict[str, Any],
    peak: dict[str, Any],
    rows: dict[str, dict[str, Any]],
    runs: list[dict[str, Any]],
) -> None:
    print(
        f"machine: {info['cpu']}, {info['cores']} cores, flags {info['flags']}"
        + (" limited to AVX2 (--isa avx2)" if info["isa"] == "avx2" else "")
        + f" ({'native bf16' if info['native_bf16'] else 'no native bf16: precision auto trains fp32'}); "
        f"torch {info['torch']}, transformers {info['transformers']}, accelerate {info['accelerate']}, "
        f"python {info['python']}"
    )
    print(
        f"settings: model={args.model} dataset={args.dataset} train={args.train_size} eval={args.eval_size} "
        f"batch={args.batch_size} max_length={args.max_length} lr={args.lr:g} epochs={args.epochs:g} "
        f"schedule={args.schedule} (no warmup) seed={args.seed} repeats={args.repeats}; AdamW, weight decay 0, "
        "grad clip 1.0, dynamic padding, one evaluation at the end"
    )
    print(
        f"matmul peak ({peak['n']}x{peak['n']}): fp32 {peak['fp32_gflops']:.0f} GFLOP/s, "
        f"bf16 autocast {peak['bf16_gflops']:.0f} GFLOP/s"
    )
    some = next(iter(rows.values()))
    print(
        f"work: {some['non_embedding_params'] / 1e6:.2f}M non-embedding params, "
        f"{some['train_tokens']:,} non-padding training tokens per epoch\n"
    )
    print(
        "| contender | precision | samples/s | wall s | accuracy | F1 | peak RSS MB | useful GFLOP/s | "
        "% of its precision's peak |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['precision']} | {r['samples_per_s']:.1f} | {r['wall_s']:.1f} | {r['accuracy']:.4f} | "
            f"{r['f1']:.4f} | {r['peak_rss_mb']:.0f} | {r['useful_gflops']:.1f} | {r['pct_peak']:.1f}% |"
        )
    if args.repeats > 1:
        for name in rows:
            each = ", ".join(f"{r['samples_per_s']:.1f}" for r in runs if r["name"] == name)
            print(f"{name} samples/s per repeat: {each}")
    print()
    print_targets(info, rows)
    for mine in (name for name in rows if name in LEVERS):
        ours = rows[mine]
        for peer in PEERS:
            if peer not in rows:
                continue
            theirs = rows[peer]
            ratio = {k: ours[k] / theirs[k] for k in ("samples_per_s", "wall_s", "peak_rss_mb")}
            print(
                f"{mine} / {peer} samples/s = {ratio['samples_per_s']:.2f}×  (wall {ratio['wall_s']:.2f}×, "
                f"peak RSS {ratio['peak_rss_mb']:.2f}×); accuracy "
                f"{100 * (ours['accuracy'] - theirs['accuracy']):+.1f} points, "
                f"F1 {100 * (ours['f1'] - theirs['f1']):+.1f} points vs {peer}"
            )


def print_targets(info: dict[str, Any], rows: dict[str, dict[str, Any]]) -> None:
    """The targets for this kind of CPU, against the tuned peer: with native bf16, at least 2.0× and 25% of the bf16
    peak; without (AVX2), at least 1.3× and 75% of the fp32 peak; on both, accuracy at most 1.5 points below the
    better Trainer (one seed of the tuned peer's length-grouped order can learn little: better is not a miss)."""
    if "bert_lab" not in rows or "trainer_tuned" not in rows:
        return
    ours, theirs = rows["bert_lab"], rows["trainer_tuned"]
    speedup, share = (2.0, 25.0) if info["native_bf16"] else (1.3, 75.0)
    ratio = ours["samples_per_s"] / theirs["samples_per_s"]
    best = max(rows[peer]["accuracy"] for peer in PEERS if peer in rows)
    gap = 100 * (best - ours["accuracy"])
    checks = [
        (f"bert_lab ≥ {speedup}× the tuned Trainer", ratio >= speedup, f"{ratio:.2f}×"),
        (f"bert_lab ≥ {share:.0f}% of its precision's peak", ours["pct_peak"] >= share, f"{ours['pct_peak']:.1f}%"),
        ("accuracy at most 1.5 points below the better Trainer", gap <= 1.5, f"{gap:+.1f} points below"),
    ]
    for what, met, got in checks:
        print(f"target: {what}: {got} — {'met' if met else 'missed'}")
    print()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker is not None:
        args.result.write_text(json.dumps(run_worker(args) | (count_work(args) if args.worker != "peak" else {})))
        return
    names = [*CONTENDERS, *(["trainer_tuned_compile"] if args.compile_peer else [])]
    if args.levers:
        names += [n for n in LEVERS if n != "bert_lab"]
    info = machine_info(args.isa)
    print(f"measuring matmul peak, then {args.repeats} × {', '.join(names)} (each in a fresh process)…", flush=True)
    peak = spawn("peak", args.isa)
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for name in names:
            r = spawn(name, args.isa) | {"name": name, "repeat": repeat}
            print(
                f"  repeat {repeat + 1}: {name} done, train {r['train_s']:.1f} s, wall {r['wall_s']:.1f} s", flush=True
            )
            runs.append(r)
    print()
    rows = summarise(runs, peak, args.epochs)
    print_report(args, info, peak, rows, runs)
    if args.json is not None:
        settings = {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("worker", "result")
        }
        args.json.write_text(
            json.dumps({"machine": info, "settings": settings, "peak": peak, "summary": rows, "runs": runs}, indent=2)
        )
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
