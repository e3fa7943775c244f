"""Is watching free? Training throughput of a MiniLM run with two browser tabs on the Runs page against none.

One run of the real system, as `make run` runs it (`python -m lab_ui.serve`: `streamlit run app.py`, warmed up) over
a fresh data folder (its first page view starts the worker). Runs of the issue's reference setting (MiniLM, 2,000
rotten_tomatoes snippets, batch 32, max length 64, lr 1e-4, one epoch) alternate: one trains unwatched (no tab
open), the next with two headless-Chromium tabs on the Runs page showing it live, and so on. Each run has an owner
of its own and the tabs open `/Runs?owner=…`, so they show that run alone, as a person who launched one run and
watches it. The browsers run at normal priority, as a person's own browser does. Prints each run's training
samples/s (the loop's own figure: time in training steps, evaluation excluded) and wall time, the CPU seconds the
browser, the app server and the run used meanwhile, and the watched/unwatched ratio (target: within 10%).

    .venv/bin/python bench/watched.py [--repeats 2] [--tabs 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import psutil
from browser_lab import CHROMIUM, CHROMIUM_ARGS, cpu, free_port, start_app, stop_app

SETTING = dict(model="minilm", dataset="rotten_tomatoes", train_size=2000, max_length=64, batch_size=32, lr=1e-4)


def cpu_seconds(app_pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds used so far by each of the browser's processes and the app server's: pid → (kind, seconds)."""
    used = {}
    for proc in psutil.process_iter(["pid", "cmdline", "cpu_times"]):
        pid, times = proc.info["pid"], proc.info["cpu_times"]
        kind = "app" if pid == app_pid else "browser" if "chromium" in str(proc.info["cmdline"]) else ""
        if kind and times is not None:
            used[pid] = (kind, times.user + times.system)
    return used


def cpu_used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds each kind used between two readings, process by process: a process that ended meanwhile (a
    closed tab's renderer, quitting) is left out rather than subtracted."""
    used = {"browser": 0.0, "app": 0.0}
    for pid, (kind, seconds) in after.items():
        used[kind] += seconds - before.get(pid, (kind, 0.0))[1]
    return used


def train_once(lab: object, seed: int, owner: str, tabs: list[object], url: str, app_pid: int) -> dict[str, float]:
    from bert_lab.core.config import RunConfig
    from bert_lab.runs import service
    from bert_lab.runs.status import Status

    for tab in tabs:  # each tab opens the Runs page of this run's owner and waits for the page to be drawn
        tab.goto(f"{url}/Runs?owner={owner}")
        tab.get_by_text("No run matches these filters").first.wait_for(timeout=60_000)  # its run is not there yet
    before, started = cpu_seconds(app_pid), time.perf_counter()
    run = service.submit(lab, RunConfig(**SETTING, seed=seed), owner=owner, name=owner)
    while (run := lab.store.get_run(run.id)).is_active:
        time.sleep(0.2)
    wall = time.perf_counter() - started
    used = cpu_used(before, cpu_seconds(app_pid))
    assert run.status == Status.FINISHED, run.error
    drawn = [tab.locator(".js-plotly-plot").count() for tab in tabs]
    assert all(drawn), f"a tab drew no chart: {drawn}"  # the tabs really watched
    return {"samples_per_s": run.summary.samples_per_s, "wall_s": wall, **used}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="pairs of runs (unwatched, watched)")
    parser.add_argument("--tabs", type=int, default=2)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from bert_lab.runs.service import Lab

    print(f"CPU: {cpu()}", flush=True)
    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        home, port = Path(tmp) / "lab", free_port()
        app = start_app(home, port)
        url = f"http://127.0.0.1:{port}"
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        lab = Lab.open(home)
        try:
            first = browser.new_page()
            first.goto(url)  # the first page view starts the worker, as for a person
            first.get_by_text("Launch run").first.wait_for(timeout=60_000)
            first.close()
            train_once(lab, 0, "warm-up", [], url, app.pid)  # the first run pays for the data and tokenizer caches
            for i in range(2 * args.repeats):
                watched = i % 2 == 1
                tabs = [browser.new_page(viewport={"width": 1300, "height": 900}) for _ in range(watched * args.tabs)]
                result = train_once(lab, i + 1, f"run-{i + 1}", tabs, url, app.pid)
                for tab in tabs:
                    tab.close()
                results[watched].append(result)
                print(
                    f"{'watched by ' + str(args.tabs) + ' tabs' if watched else 'unwatched':>18}: "
                    f"{result['samples_per_s']:5.1f} samples/s, wall {result['wall_s']:5.1f} s; CPU used meanwhile by "
                    f"the app server {result['app']:4.1f} s, the browser {result['browser']:4.1f} s",
                    flush=True,
                )
        finally:
            browser.close()
            lab.close()
            stop_app(app, home)
    alone = statistics.median(r["samples_per_s"] for r in results[False])
    seen = statistics.median(r["samples_per_s"] for r in results[True])
    print(
        f"MiniLM, 2,000 snippets, batch 32, max length 64, one epoch, on {cpu()}: unwatched {alone:.1f} samples/s, "
        f"watched by {args.tabs} tabs {seen:.1f} (medians of {args.repeats}): {seen / alone - 1:+.1%} "
        f"(target: within 10%: {'met' if seen >= 0.9 * alone else 'missed'})"
    )


if __name__ == "__main__":
    main()
