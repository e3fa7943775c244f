"""Where a training step's time goes: torch.profiler over bert_lab's own loop, per-op self time per step.

    python bench/profile_step.py                 # this CPU as it is (precision auto)
    python bench/profile_step.py --isa avx2      # limited to AVX2, fp32 (as `auto` picks on an AVX2-only CPU)

Same recipe as bench/vs_trainer.py (MiniLM, 2,000 rotten_tomatoes snippets, batch 32, max length 64, lr 1e-4). The
profiler skips the first `--skip` steps (warm-up: the CPU kernels' per-shape caches fill) and records the next
`--steps`; the table groups ops into what they are (matrix products, attention, elementwise and casts, dropout,
optimizer, embedding gradient, the rest) and lists the top ops by self CPU time, in ms per step.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_trainer import AVX2_ENV, lscpu_model  # noqa: E402

KINDS = (  # (kind, op name fragments), first match wins
    ("optimizer", ("adam", "_foreach", "clip_grad")),
    ("matrix products", ("mm", "matmul", "linear", "addmm", "bmm", "mkldnn", "onednn", "baddbmm")),
    ("attention", ("scaled_dot_product", "_flash", "softmax")),
    ("embedding", ("embedding",)),
    ("dropout", ("random_", "bernoulli", "dropout")),
    ("layer norm", ("layer_norm",)),
    ("gelu", ("gelu",)),
    ("casts and copies", ("copy_", "to_copy", "_to_copy", "clone", "contiguous", "cat", "fill_", "zero_", "empty")),
    ("elementwise", ("mul", "add", "div", "where", "sub", "ge", "masked", "sum", "mean")),
)


def kind_of(name: str) -> str:
    low = name.lower()
    return next((kind for kind, parts in KINDS if any(p in low for p in parts)), "other")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--isa", choices=("native", "avx2"), default="native")
    p.add_argument("--precision", default=None, help="default: auto natively, fp32 with --isa avx2")
    p.add_argument("--model", default="minilm")
    p.add_argument("--skip", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.isa == "avx2" and not args.child:  # the ISA is fixed when torch loads: profile in a child limited to it
        env = {**os.environ, **AVX2_ENV}
        raise SystemExit(subprocess.call([sys.executable, __file__, *(argv or sys.argv[1:]), "--child"], env=env))
    profile(args)


def recipe(precision: str, model: str = "minilm") -> Any:
    """bench/vs_trainer.py's recipe as a RunConfig: MiniLM, 2,000 rotten_tomatoes snippets, batch 32, max length 64,
    AdamW lr 1e-4 with linear decay and no warmup, clipping 1.0, one epoch, evaluated once at the end."""
    from bert_lab.core.config import RunConfig

    return RunConfig(
        dataset="rotten_tomatoes", train_size=2000, eval_size=1000, max_length=64, model=model, lr=1e-4,
        batch_size=32, weight_decay=0.0, max_grad_norm=1.0, warmup_steps=0, schedule="linear", seed=42,
        precision=precision, eval_every_steps=10**9,
    )  # fmt: skip


def profile(args: argparse.Namespace) -> None:
    import torch
    from torch.profiler import ProfilerActivity, schedule

    from bert_lab.engine.reports import Hooks
    from bert_lab.engine.train import train

    precision = args.precision or ("fp32" if args.isa == "avx2" else "auto")
    config = recipe(precision, model=args.model)
    plan = schedule(wait=args.skip, warmup=1, active=args.steps, repeat=1)
    with torch.profiler.profile(activities=[ProfilerActivity.CPU], schedule=plan) as prof:
        result = train(config, hooks=Hooks(on_step=lambda record: prof.step()))
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total_ms = sum(e.self_cpu_time_total for e in events) / 1000 / args.steps
    by_kind: dict[str, float] = defaultdict(float)
    for e in events:
        by_kind[kind_of(e.key)] += e.self_cpu_time_total / 1000 / args.steps
    print(f"CPU: {lscpu_model()} · isa {args.isa} · torch {torch.__version__} · {torch.get_num_threads()} threads")
    print(
        f"{config.model}, {result.precision}, {args.steps} steps profiled after {args.skip}: "
        f"{total_ms:.1f} ms of op time per step; the run {result.samples_per_s:.1f} samples/s"
    )
    print("\n| kind | ms/step | share |\n|---|---:|---:|")
    for kind, ms in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {ms:.1f} | {ms / total_ms:.0%} |")
    print("\n| op | kind | calls/step | ms/step | share |\n|---|---|---:|---:|---:|")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[: args.top]:
        ms = e.self_cpu_time_total / 1000 / args.steps
        print(f"| `{e.key}` | {kind_of(e.key)} | {e.count / args.steps:.0f} | {ms:.1f} | {ms / total_ms:.0%} |")


if __name__ == "__main__":
    main()
