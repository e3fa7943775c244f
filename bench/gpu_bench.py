"""GPU benchmark: bert_lab's `train()` against Hugging Face `Trainer` with bf16=True (what a GPU user would choose).

Two models built from `BertConfig` with random weights (no download; throughput does not depend on the weights):
MiniLM-shaped (6 layers, hidden 384, 12 heads, FFN 1536) and BERT-base-shaped (12 layers, 768, 12 heads, 3072), both
with the bundled uncased WordPiece vocabulary and a 2-class head. Same rotten_tomatoes split, batch 32, max length
128, AdamW, lr 1e-4 linear, clip 1.0, one evaluation at the end. The Trainer pads each batch to its longest text
(`DataCollatorWithPadding`) and pins its batches (`dataloader_pin_memory`, on by default); bert_lab runs with its
defaults (length-grouped batches) and bf16. Each contender trains in a fresh child process; a first child measures the
bf16 matrix-product peak (8192³ on a GPU, mean of timed products) and writes the model folders.

Printed per model and contender: samples/s over the training loop (set-up, data preparation and the final evaluation
excluded: bert_lab's `train_s`; the Trainer's from its `on_train_begin` to `on_train_end`), bert_lab / Trainer ratio
(target ≥ 1.5×), and model FLOP utilisation = 6 × non-embedding parameters × non-padding training tokens / time /
measured peak (attention-score products and padding are not counted: this is useful work only).

    python3 bench/gpu_bench.py                 # on a GPU (about 2 minutes on an H100)
    python3 bench/gpu_bench.py --smoke         # every part at toy sizes, on the CPU too (seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vs_trainer import count_work, load_split, machine_info, run_bert_lab, trainer_args

REPO_ROOT = Path(__file__).resolve().parents[1]
# layers, hidden size, attention heads, FFN size
SHAPES = {"minilm": (6, 384, 12, 1536), "bert-base": (12, 768, 12, 3072), "toy": (2, 64, 2, 128)}
CONTENDERS = ("bert_lab", "trainer_bf16")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default="minilm,bert-base", help=f"comma-separated, from {', '.join(SHAPES)}")
    p.add_argument("--train-size", type=int, default=8000, help="training examples (rotten_tomatoes has ~12.7k)")
    p.add_argument("--eval-size", type=int, default=500, help="held-out examples, evaluated once at the end")
    p.add_argument("--epochs", type=float, default=2.0, help="passes over the training set")
    p.add_argument("--batch-size", type=int, default=32, help="examples per optimizer step")
    p.add_argument("--max-length", type=int, default=128, help="tokens per text (truncated, padded per batch)")
    p.add_argument("--peak-n", type=int, default=8192, help="size of the square bf16 matrix product for the peak")
    p.add_argument("--smoke", action="store_true", help="toy model and sizes: checks every part in seconds")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write all results as JSON")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # prepare | bert_lab:FOLDER | trainer_bf16:FOLDER
    p.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.smoke:
        args.models, args.train_size, args.eval_size, args.epochs = "toy", 32, 16, 1.0
        args.batch_size, args.max_length, args.peak_n = 16, 32, 256
    # What vs_trainer's helpers read.
    args.dataset, args.seed, args.lr, args.schedule = "rotten_tomatoes", 42, 1e-4, "linear"
    return args


# --- child side: the peak and model folders, then one contender per fresh process -----------------------------------
def prepare(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Measure the bf16 matmul peak, then write one model folder per shape (random init, seeded) under `folder`."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from bert_lab.engine.model import load_tokenizer

    out: dict[str, Any] = {"peak": measure_peak(args.peak_n), "folders": {}}
    tokenizer = load_tokenizer("tiny")  # the bundled uncased WordPiece tokenizer, without MiniLM's weights
    names = load_split(args)[0].label_names
    for name in args.models.split(","):
        layers, hidden, heads, ffn = SHAPES[name]
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=ffn,
            max_position_embeddings=512,
            num_labels=len(names),
            id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)},
        )
        torch.manual_seed(args.seed)
        path = folder / name
        BertForSequenceClassification(config).save_pretrained(path)
        tokenizer.save_pretrained(path)
        out["folders"][name] = str(path)
    return out


def measure_peak(n: int, warmup: int = 3, reps: int = 10) -> dict[str, Any]:
    """bf16 square matrix product throughput: the mean over `reps` timed products after `warmup` (CUDA events on a
    GPU). On the CPU it times bf16 tensors directly (the smoke run only checks that the numbers flow)."""
    import torch

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=gen)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=gen)
    for _ in range(warmup):
        a @ b
    if cuda:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(reps):
            a @ b
        end.record()
        end.synchronize()
        seconds = start.elapsed_time(end) / 1000
    else:
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        seconds = time.perf_counter() - t
    return {"n": n, "reps": reps, "tflops": 2 * n**3 * reps / seconds / 1e12, "device": device_name()}


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def run_trainer(args: argparse.Namespace) -> dict[str, Any]:
    """Trainer with bf16=True and its defaults otherwise; the training loop is timed from `on_train_begin` to
    `on_train_end` (the Trainer's set-up inside `train()` is left out, as bert_lab's set-up is)."""
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        set_seed,
    )

    from bert_lab.engine.model import load_tokenizer
    from bert_lab.runs.status import Status

    class Clock(TrainerCallback):
        def on_train_begin(self, *_: Any, **__: Any) -> None:
            self.began = time.perf_counter()

        def on_train_end(self, *_: Any, **__: Any) -> None:
            self.ended = time.perf_counter()

    set_seed(args.seed)
    tokenizer = load_tokenizer(args.model)
    train_set = load_split(args)[0]
    enc = tokenizer(list(train_set.texts), truncation=True, max_length=args.max_length)
    train_data = [{**{k: v[i] for k, v in enc.items()}, "labels": y} for i, y in enumerate(train_set.labels)]
    model = AutoModelForSequenceClassification.from_pretrained(args.model, local_files_only=True)
    clock = Clock()
    with tempfile.TemporaryDirectory(prefix="gpu_bench-") as tmp:
        targs = trainer_args(args, tmp, bf16=True, dataloader_pin_memory=True)
        trainer = Trainer(
            model=model,
            args=targs,
            train_dataset=train_data,
            callbacks=[clock],
            data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer,
        )
        out = trainer.train()
    return {
        "precision": "bf16",
        "device": str(targs.device),
        "status": Status.FINISHED,  # Trainer has no statuses: it ran to its end
        "n_train": len(train_data),
        "train_s": clock.ended - clock.began,
        "steps": trainer.state.global_step,
        "train_loss": out.training_loss,
    }


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    role, _, folder = args.worker.partition(":")
    if role == "prepare":
        return prepare(args, Path(folder))
    args.model = folder
    out = run_bert_lab(args, {"precision": "bf16"}) if role == "bert_lab" else run_trainer(args)
    return out | count_work(args) | {"device_name": device_name()}


# --- parent side: spawn, collect, print -----------------------------------------------------------------------------
def spawn(argv: list[str], worker: str, cache: Path) -> dict[str, Any]:
    """Run `worker` in a fresh interpreter and return its result dict (exits with the child's error if it fails)."""
    with tempfile.TemporaryDirectory(prefix="gpu_bench-") as tmp:
        result = Path(tmp) / "result.json"
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "BERT_LAB_CACHE": str(cache),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }
        cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--worker", worker, "--result", str(result)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO_ROOT)
        if proc.returncode != 0 or not result.exists():
            sys.exit(f"worker {worker} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        return json.loads(result.read_text())


def add_rates(run: dict[str, Any], peak_tflops: float, epochs: float) -> dict[str, Any]:
    samples_per_s = run["n_train"] * epochs / run["train_s"]
    tokens_per_s = run["train_tokens"] * epochs / run["train_s"]
    mfu = 6 * run["non_embedding_params"] * tokens_per_s / (peak_tflops * 1e12)
    return run | {"samples_per_s": samples_per_s, "tokens_per_s": tokens_per_s, "mfu": mfu}


def print_report(
    args: argparse.Namespace, info: dict[str, Any], peak: dict[str, Any], runs: dict[str, dict[str, dict[str, Any]]]
) -> list[str]:
    """Print the table and ratio lines; returns the ratio lines."""
    print(
        f"\ndevice: {peak['device']}; host {info['cpu']}, {info['cores']} cores; torch {info['torch']}, "
        f"transformers {info['transformers']}, accelerate {info['accelerate']}, python {info['python']}"
    )
    print(
        f"settings: rotten_tomatoes train={args.train_size} eval={args.eval_size} epochs={args.epochs:g} "
        f"batch={args.batch_size} max_length={args.max_length}; AdamW lr {args.lr:g} linear, clip 1.0; random-init "
        "BertConfig models (throughput does not depend on the weights)"
    )
    print(f"bf16 matmul peak ({peak['n']}³, mean of {peak['reps']}): {peak['tflops']:.4g} TFLOP/s\n")
    print("| model | non-emb params | contender | device | steps | train s | samples/s | tokens/s | MFU |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|")
    for model, mine in runs.items():
        for name, r in mine.items():
            print(
                f"| {model} | {r['non_embedding_params'] / 1e6:.1f}M | {name} ({r['precision']}) | {r['device']} | "
                f"{r['steps']} | {r['train_s']:.2f} | {r['samples_per_s']:.0f} | {r['tokens_per_s']:.0f} | "
                f"{100 * r['mfu']:.1f}% |"
            )
    lines = []
    for model, mine in runs.items():
        ratio = mine["bert_lab"]["samples_per_s"] / mine["trainer_bf16"]["samples_per_s"]
        lines.append(
            f"{model}: bert_lab / Trainer bf16 = {ratio:.2f}× samples/s "
            f"({'meets' if ratio >= 1.5 else 'misses'} the 1.5× target)"
        )
    print("\n" + "\n".join(lines))
    print("MFU = 6 × non-embedding params × non-padding training tokens per second / measured bf16 matmul peak.")
    return lines


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker is not None:
        args.result.write_text(json.dumps(run_worker(args)))
        return
    info = machine_info()
    with tempfile.TemporaryDirectory(prefix="gpu_bench-") as tmp:
        cache = Path(tmp) / "token-cache"
        print("measuring the bf16 matmul peak and writing the model folders…", flush=True)
        prepared = spawn(argv, f"prepare:{tmp}", cache)
        peak = prepared["peak"]
        runs: dict[str, dict[str, dict[str, Any]]] = {}
        for model, folder in prepared["folders"].items():
            for name in CONTENDERS:
                started = time.perf_counter()
                r = add_rates(spawn(argv, f"{name}:{folder}", cache), peak["tflops"], args.epochs)
                runs.setdefault(model, {})[name] = r
                print(
                    f"  {model} {name}: {r['samples_per_s']:.0f} samples/s on {r['device']} "
                    f"(child {time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    ratios = print_report(args, info, peak, runs)
    if args.json is not None:
        settings = {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in ("worker", "result")
        }
        args.json.write_text(
            json.dumps({"machine": info, "settings": settings, "peak": peak, "runs": runs, "ratios": ratios}, indent=2)
        )
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
