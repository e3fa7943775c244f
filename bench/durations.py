"""How long a person waits: the launch page's default run, the first lesson (all its runs, one after another, as the
worker trains them) and the LR range test, each on this CPU as it is and limited to AVX2 (fp32, as `auto` picks on
an AVX2-only CPU).

    python bench/durations.py [--isa native avx2]

Each is trained in a fresh process by `train` (what a run process does: data, model, steps, evaluations, saving
nothing); the times are `train`'s own wall time: data and model load, training and every evaluation, not the
interpreter's start or imports (the worker's warm spare has done those before a run is claimed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_trainer import AVX2_ENV, cpu_flags, lscpu_model  # noqa: E402

WHAT = ("launch page default", "first lesson", "LR range test")


def measure(what: str, precision: str) -> dict:
    from dataclasses import replace

    import torch

    from bert_lab.core.config import RunConfig
    from bert_lab.engine.train import train
    from bert_lab.teaching.lessons import LESSONS
    from bert_lab.teaching.lr_find import RangeTest, range_test_config

    torch.set_num_threads(os.cpu_count() or 1)
    if what == "launch page default":
        config = replace(RunConfig(), precision=precision)
        result = train(config)
        return {"s": result.wall_s, "detail": f"{config.model}, {result.steps} steps, {result.samples_per_s:.0f}/s"}
    if what == "first lesson":
        lesson = next(iter(LESSONS.values()))
        results = [train(replace(config, precision=precision)) for _, config in lesson.configs()]
        return {"s": sum(r.wall_s for r in results), "detail": f"'{lesson.slug}': {len(results)} runs"}
    test = RangeTest()
    result = train(replace(range_test_config(RunConfig()), precision=precision), hooks=test.hooks())
    return {"s": result.wall_s, "detail": f"{len(test.lrs)} steps, suggests {test.suggest().suggested_lr:.1e}"}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--isa", nargs="+", choices=("native", "avx2"), default=["native", "avx2"])
    p.add_argument("--child", nargs=3, metavar=("WHAT", "PRECISION", "RESULT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        what, precision, result = args.child
        Path(result).write_text(json.dumps(measure(what, precision)))
        return
    flags = " ".join(sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}))
    print(
        f"CPU: {lscpu_model()} · flags {flags}\n\n| what | isa | precision | wall s | detail |\n|---|---|---|---:|---|"
    )
    for isa in args.isa:
        precision = "auto" if isa == "native" else "fp32"
        env = {**os.environ, **(AVX2_ENV if isa == "avx2" else {})}
        for what in WHAT:
            with tempfile.TemporaryDirectory(prefix="durations-") as tmp:
                result = Path(tmp) / "result.json"
                subprocess.run([sys.executable, __file__, "--child", what, precision, str(result)], env=env, check=True)
                r = json.loads(result.read_text())
            print(f"| {what} | {isa} | {precision} | {r['s']:.1f} | {r['detail']} |", flush=True)


if __name__ == "__main__":
    main()
