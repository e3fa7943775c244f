"""Dashboard speed: the Runs page's server-side render with 50 runs of 2,000 steps in the store, 10 of them overlaid.

For each backend (SQLite, then PostgreSQL on a real server started here), seeds a temporary store (no training:
points written directly, as a run would write them), then renders
`pages/1_Runs.py` with Streamlit's AppTest — the same script a browser tab runs — and times the first render (every
point of the 10 selected runs read and drawn) and the live refreshes (only new points read). Target: under 1 s.

    .venv/bin/python bench/dashboard.py [--runs 50] [--steps 2000] [--overlay 10] [--repeats 5]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

from browser_lab import ROOT, cpu, postgres_database


def seed(store: object, runs: int, steps: int) -> list[int]:
    from bert_lab.core.config import RunConfig
    from bert_lab.core.metrics import EVAL_METRICS
    from bert_lab.engine.reports import StepRecord, points
    from bert_lab.runs.records import RunSummary
    from bert_lab.runs.status import Status

    ids = []
    for i in range(runs):
        run = store.create_run(RunConfig(lr=1e-5 * (i + 1)).to_dict(), name=f"run {i}")
        store.claim_run(run.id, pid=os.getpid(), device="cpu")
        batch = []
        for s in range(1, steps + 1):
            loss = 0.7 * math.exp(-s / 400) + 0.1 + 0.05 * math.sin(s)
            clock = (s, s / steps, s * 0.3)
            lr, grad_norm = 1e-4 * (1 - s / steps), 1 + 0.2 * math.cos(s)
            batch += points(StepRecord(s, steps, *clock[1:], loss, lr, grad_norm, 90.0))
            if s % 100 == 0:
                batch += [(*clock, m.name, 0.8) for m in EVAL_METRICS]
        store.add_metrics(run.id, batch)
        store.update_run(run.id, progress=1.0, summary=RunSummary(total_steps=steps))
        store.set_status(run.id, Status.FINISHED)
        ids.append(run.id)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--overlay", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgresql", help="stores to measure, side by side")
    args = parser.parse_args()
    print(f"CPU: {cpu()}", flush=True)
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            os.environ.update(BERT_LAB_HOME=str(Path(tmp) / "lab"), BERT_LAB_NO_AUTOSTART="1")
            server = None
            if backend == "postgresql":  # a real server, started here: the same pages read it through the URL
                server, os.environ["BERT_LAB_STORE"] = postgres_database(Path(tmp) / "postgres")
            try:
                measure(args, backend)
            finally:
                os.environ.pop("BERT_LAB_STORE", None)
                if server is not None:
                    server.stop()


def measure(args: argparse.Namespace, backend: str) -> None:
    import logging

    from streamlit.testing.v1 import AppTest

    from bert_lab.runs.service import Lab

    # Outside a server, AppTest's page-switching warns about a missing script context on every run; harmless.
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").disabled = True

    with Lab.open() as lab:
        started = time.perf_counter()
        ids = seed(lab.store, args.runs, args.steps)
        points = len(lab.store.read_metrics(ids))
    print(
        f"{backend}: seeded {args.runs} runs × {args.steps} steps ({points:,} metric points) in "
        f"{time.perf_counter() - started:.1f} s"
    )
    firsts, refreshes = [], []
    for _ in range(args.repeats):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.run()
        at.switch_page("pages/1_Runs.py")
        at.session_state["_selected_ids"] = ids[-args.overlay :]
        t = time.perf_counter()
        at.run()
        firsts.append(time.perf_counter() - t)
        assert not at.exception, at.exception
        t = time.perf_counter()
        at.run()
        refreshes.append(time.perf_counter() - t)
    charts = len(at.get("plotly_chart"))
    print(
        f"{backend}: Runs page, {args.overlay} runs overlaid ({charts} charts), server-side render, "
        f"median of {args.repeats}: first {statistics.median(firsts):.2f} s, "
        f"refresh {statistics.median(refreshes):.2f} s (target < 1 s)",
        flush=True,
    )


if __name__ == "__main__":
    main()
