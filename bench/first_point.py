"""Latency from `submit` (the Launch click) to the first training-loss point visible in the store.

Starts a real worker on a temporary data folder (as `make run` does), then submits runs one after another and times
how long each takes to show its first `train_loss` point to a reader. Prints each measurement and the median.

    .venv/bin/python bench/first_point.py [--model minilm] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bert_lab.config import RunConfig  # noqa: E402
from bert_lab.runs import service  # noqa: E402
from bert_lab.runs.service import Lab  # noqa: E402
from bert_lab.worker import worker_alive  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--idle-s", type=float, default=8.0, help="idle time before each submit")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab.open(Path(tmp) / "lab")
        store = lab.store
        worker = subprocess.Popen([sys.executable, "-m", "bert_lab", "worker", "--home", str(lab.data.path)])
        try:
            while not worker_alive(lab.data):
                time.sleep(0.05)
            latencies = []
            for i in range(args.repeats):
                time.sleep(args.idle_s)  # an idle lab, as when a person clicks Launch: the warm spare is ready
                config = RunConfig(model=args.model, train_size=2000, num_epochs=0.05, seed=i)
                started = time.perf_counter()
                run = service.submit(lab, config, name=f"latency {i}")
                while not store.read_metrics(run.id, names=["train_loss"]):
                    time.sleep(0.02)
                latencies.append(time.perf_counter() - started)
                print(f"run {run.id}: first loss point after {latencies[-1]:.2f} s", flush=True)
                while store.get_run(run.id).is_active:
                    time.sleep(0.1)
            print(
                f"median submit → first loss point: {statistics.median(latencies):.2f} s "
                f"(model {args.model}, {args.repeats} runs; target < 6 s)"
            )
        finally:
            worker.terminate()
            worker.wait()


if __name__ == "__main__":
    main()
