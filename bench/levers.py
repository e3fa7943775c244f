"""Each speed lever of the engine's CPU step on its own: the step as shipped against the step with one lever changed.

    python bench/levers.py                  # this CPU as it is (bf16 where native)
    python bench/levers.py --isa avx2       # limited to AVX2, fp32 (as `auto` picks on an AVX2-only CPU)
    python bench/levers.py --only shipped sdpa

Same recipe as bench/vs_trainer.py (MiniLM, 2,000 rotten_tomatoes snippets, batch 32, max length 64, lr 1e-4, one
epoch of 63 steps, AdamW, clipping 1.0). Every variant runs in a fresh process, its steps as `Loop.train_step` takes
them (forward under autocast, backward, clip, optimizer); the table gives the median step of the epoch's second
half (the per-shape kernel caches are warm by then), the epoch's training time and its last loss. `compiled` runs
twice, each time in a fresh process: with an empty inductor cache (a lab's first run) and with the cache the first
left (every later run of the lab).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_step import recipe  # noqa: E402
from vs_trainer import AVX2_ENV, cpu_flags, lscpu_model  # noqa: E402

VARIANTS = {
    "shipped": "as shipped: `use_cpu_kernels` (cheap dropout masks, `cpu_attention`), `TrainedRows`, `FirstTokenLayer`",
    "all_rows": "every row of the word-embedding matrix trained (no `TrainedRows`)",
    "whole_last_layer": "the last layer computed for every token (no `FirstTokenLayer`)",
    "exact_widths": "each batch padded to its longest text (as shipped in fp32)",
    "widths_of_8": "each batch's width rounded up to a multiple of 8 (as shipped in bf16)",
    "one_thread": "`OMP_NUM_THREADS=1`",
    "threads_bound": "`OMP_PROC_BIND=close OMP_PLACES=cores`: each thread kept on its core",
    "sdpa": "attention by transformers' default, `scaled_dot_product_attention`",
    "eager": "attention by transformers' `eager` (Bernoulli masks on its probabilities)",
    "plain": "the model as transformers builds it (sdpa, `nn.Dropout`)",
    "compiled": "`torch.compile(model, dynamic=False, fullgraph=True)` over the padded shapes",
    "bf16_weights": "bf16 weights kept between steps, fp32 master copy in the optimizer",
}
ENV = {  # variants that are the shipped step in another environment
    "one_thread": {"OMP_NUM_THREADS": "1"},
    "threads_bound": {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"},
}


def step_times(variant: str, precision: str) -> dict:
    import torch

    from bert_lab.engine.data import pad_multiple
    from bert_lab.engine.model import (
        first_token_only,
        load_model,
        load_tokenizer,
        train_used_rows_only,
        use_cpu_kernels,
    )
    from bert_lab.engine.optim import build_optimizer
    from bert_lab.engine.train import load_data, plan_steps, resolve_precision

    torch._dynamo.config.recompile_limit = 64  # one graph per padded width and batch size: more than its default 8
    config = recipe(precision)
    bf16 = resolve_precision(precision) == "bf16"
    torch.manual_seed(config.seed)
    multiple = {"exact_widths": 1, "widths_of_8": 8}.get(variant, pad_multiple("cpu", "bf16" if bf16 else "no"))
    data = load_data(config, load_tokenizer(config.model), multiple=multiple)
    model = load_model(config, data.label_names).train()
    if variant not in ("plain", "compiled", "all_rows"):
        train_used_rows_only(model, config, data.train_ids)
    if variant not in ("plain", "compiled", "whole_last_layer"):
        first_token_only(model)
    if variant not in ("plain", "compiled"):
        use_cpu_kernels(model)
    if variant in ("sdpa", "eager"):
        model.set_attn_implementation(variant)
    params = [p for p in model.parameters() if p.requires_grad]
    if variant == "bf16_weights" and bf16:
        masters = [p.detach().float() for p in params]
        model.to(torch.bfloat16)
        optimizer = torch.optim.AdamW(masters, lr=config.lr, weight_decay=0.0, fused=True)
    else:
        masters, optimizer = params, build_optimizer(model, config)
    forward = torch.compile(model, dynamic=False, fullgraph=True) if variant == "compiled" else model
    plan = plan_steps(config, [len(ids) for ids in data.train_ids])
    times, loss = [], float("nan")
    started = time.perf_counter()
    for (indices,) in plan.steps:
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16 and variant != "bf16_weights"):
            out = forward(**data.batch(indices))
        out.loss.float().backward()
        if masters is not params:
            for master, p in zip(masters, params):
                master.grad, p.grad = p.grad.float(), None
        torch.nn.utils.clip_grad_norm_(masters, config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if masters is not params:
            torch._foreach_copy_([p.data for p in params], masters)
        loss = out.loss.item()
        times.append(time.perf_counter() - t)
    return {
        "step_ms": 1000 * statistics.median(times[len(times) // 2 :]),
        "first_step_s": times[0],
        "epoch_s": time.perf_counter() - started,
        "last_loss": loss,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--isa", choices=("native", "avx2"), default="native")
    p.add_argument("--only", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--child", nargs=3, metavar=("VARIANT", "PRECISION", "RESULT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        variant, precision, result = args.child
        Path(result).write_text(json.dumps(step_times(variant, precision)))
        return
    native = args.isa == "native" and bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})
    precision = "bf16" if native else "fp32"
    print(
        f"CPU: {lscpu_model()} · flags {' '.join(sorted(cpu_flags() & {'avx2', 'avx512f', 'avx512_bf16', 'amx_bf16'}))}"
        f" · isa {args.isa} · {precision}"
    )
    with tempfile.TemporaryDirectory(prefix="levers-") as tmp:
        env = {**os.environ, **(AVX2_ENV if args.isa == "avx2" else {}), "TORCHINDUCTOR_CACHE_DIR": f"{tmp}/inductor"}
        rows = []
        same = {"widths_of_8"} if native else {"exact_widths", "bf16_weights"}  # as shipped there, or no lever
        for variant in [v for v in args.only if v not in same]:
            for run in ("first run, empty cache", "a later run, cache kept") if variant == "compiled" else ("",):
                result = Path(tmp) / "result.json"
                t = time.perf_counter()
                command = [sys.executable, __file__, "--child", variant, precision, str(result)]
                subprocess.run(command, env=env | ENV.get(variant, {}), check=True)
                r = json.loads(result.read_text()) | {"process_s": time.perf_counter() - t}
                rows.append((f"{variant} ({run})" if run else variant, r))
    base = next((r["step_ms"] for name, r in rows if name == "shipped"), None)
    print("\n| variant | what it is | step ms (median) | vs shipped | first step s | epoch s | last loss |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, r in rows:
        ratio = f"{r['step_ms'] / base:.2f}×" if base else "—"
        print(
            f"| {name} | {VARIANTS[name.split()[0]]} | {r['step_ms']:.0f} | {ratio} | {r['first_step_s']:.1f} | "
            f"{r['epoch_s']:.1f} | {r['last_loss']:.3f} |"
        )


if __name__ == "__main__":
    main()
