"""Latency from the Launch click to the first training-loss point: in the store, and drawn in the browser.

In the store: a real worker on a temporary data folder (as `make run` starts it); runs are submitted one after
another (what the Launch button calls) and timed until their first `train_loss` point can be read; with the default
SQLite store, then with a PostgreSQL store (a real server started here).

In the browser (the figure a person sees): the app as `make run` starts it, on a fresh data folder, headless
Chromium on the launch page with the default settings (MiniLM, 2,000 rotten_tomatoes snippets; each click a new
seed, given in the address, so the cache cannot answer), the worker warm and idle; timed from the click on "Launch
run" until the launched run's loss curve on that page holds a point. Target: under 3 s (warm worker, MiniLM, 2-core
CPU).

    .venv/bin/python bench/first_point.py [--model minilm] [--repeats 3] [--browser-repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from browser_lab import CHROMIUM, CHROMIUM_ARGS, cpu, free_port, postgres_database, start_app, stop_app

from bert_lab.core.config import RunConfig
from bert_lab.processes.worker import worker_alive
from bert_lab.runs import service
from bert_lab.runs.service import Lab

# The launched run's curve: a Vega-Lite chart drawn as SVG, titled "Training loss", whose line has a point.
CURVE_HAS_A_POINT_JS = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"] svg')]
  .filter(svg => svg.textContent.includes('Training loss'))
  .some(svg => [...svg.querySelectorAll('.mark-line path, .mark-symbol path')]
    .some(p => (p.getAttribute('d') || '').length > 0))"""


def in_store(model: str, repeats: int, idle_s: float, backend: str) -> list[float]:
    latencies = []
    with tempfile.TemporaryDirectory() as tmp:
        server, url = postgres_database(Path(tmp) / "postgres") if backend == "postgresql" else (None, None)
        lab = Lab.open(Path(tmp) / "lab", url)
        argv, env = lab.command("worker")
        worker = subprocess.Popen(argv, env=env)
        try:
            while not worker_alive(lab.data):
                time.sleep(0.05)
            for i in range(repeats):
                time.sleep(idle_s)  # an idle lab, as when a person clicks Launch: the warm spare is ready
                config = RunConfig(model=model, train_size=2000, num_epochs=0.05, seed=i)
                started = time.perf_counter()
                run = service.submit(lab, config, name=f"latency {i}")
                while not lab.store.read_metrics(run.id, names=["train_loss"]):
                    time.sleep(0.02)
                latencies.append(time.perf_counter() - started)
                print(f"{backend}: run {run.id}: first loss point after {latencies[-1]:.2f} s", flush=True)
                while lab.store.get_run(run.id).is_active:
                    time.sleep(0.1)
        finally:
            worker.terminate()
            worker.wait()
            lab.close()
            if server is not None:
                server.stop()
    return latencies


def in_browser(repeats: int, idle_s: float) -> list[float]:
    from playwright.sync_api import sync_playwright

    latencies = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        home, port = Path(tmp) / "lab", free_port()
        app = start_app(home, port)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        lab = Lab.open(home)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            for i in range(repeats):
                tab.goto(f"http://127.0.0.1:{port}/?seed={1000 + i}")  # the first view also starts the worker
                launch = tab.get_by_role("button", name="Launch run")
                launch.wait_for(timeout=60_000)
                time.sleep(idle_s)  # the worker idle and its warm spare ready, as between two people's clicks
                started = time.perf_counter()
                launch.click()
                tab.wait_for_function(CURVE_HAS_A_POINT_JS, timeout=120_000, polling=20)
                latencies.append(time.perf_counter() - started)
                print(f"browser: click → first loss point drawn after {latencies[-1]:.2f} s", flush=True)
                while any(r.is_active for r in lab.store.list_runs()):
                    time.sleep(0.2)
        finally:
            browser.close()
            lab.close()
            stop_app(app, home)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", help="for the store measurement (the browser's is the default)")
    parser.add_argument("--repeats", type=int, default=3, help="0: the browser only")
    parser.add_argument("--browser-repeats", type=int, default=5, help="0: the stores only")
    parser.add_argument("--idle-s", type=float, default=8.0, help="idle time before each click")
    args = parser.parse_args()
    print(f"CPU: {cpu()}", flush=True)
    backends = ("sqlite", "postgresql") if args.repeats else ()
    stores = {backend: in_store(args.model, args.repeats, args.idle_s, backend) for backend in backends}
    drawn = in_browser(args.browser_repeats, args.idle_s) if args.browser_repeats else []
    for backend, latencies in stores.items():
        print(
            f"median submit → first loss point in the {backend} store: {statistics.median(latencies):.2f} s "
            f"(model {args.model}, {args.repeats} runs; target < 6 s)"
        )
    if not drawn:
        return
    print(
        f"median Launch click → first loss point drawn in the browser: {statistics.median(drawn):.2f} s "
        f"(MiniLM, {args.browser_repeats} clicks, best {min(drawn):.2f}, worst {max(drawn):.2f}; target < 3 s: "
        f"{'met' if statistics.median(drawn) < 3 else 'missed'})"
    )


if __name__ == "__main__":
    main()
