"""The launch page's first render in a real browser: page request → every widget drawn, cold and warm.

Starts the app as `make run` does (`python -m lab_ui.serve`: warmed up, its background worker warm) on a fresh data
folder, opens headless Debian Chromium through Playwright and times, for each view, from `page.goto` until the page
is complete: the Launch button and the learning-rate preview chart are drawn and no skeleton placeholder is left. The
first view after the server starts, in a browser with an empty cache, is the cold one; later views (new tabs of the
same browser) are warm. Targets: cold under 2 s, warm under 1 s.

    .venv/bin/python bench/first_render.py [--repeats 3] [--warm 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from browser_lab import CHROMIUM, CHROMIUM_ARGS, cpu, free_port, start_app, stop_app

DRAWN_JS = """() => {
  const button = [...document.querySelectorAll('button')].some(b => b.innerText.includes('Launch run'));
  const chart = document.querySelector('[data-testid="stVegaLiteChart"] :is(canvas, svg)') !== null;
  const skeleton = document.querySelector('[data-testid="stSkeleton"]') !== null;
  return button && chart && !skeleton;
}"""


def time_view(context: object, url: str) -> float:
    page = context.new_page()  # type: ignore[attr-defined]
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_function(DRAWN_JS, timeout=60_000, polling=20)
    elapsed = time.perf_counter() - started
    page.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh app starts (cold views)")
    parser.add_argument("--warm", type=int, default=5, help="warm views after each cold one")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    colds, warms = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                home, port = Path(tmp) / "lab", free_port()
                app = start_app(home, port)
                # A new browser context: an empty cache, as on a participant's first visit. Later tabs share it.
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                try:
                    colds.append(time_view(context, f"http://127.0.0.1:{port}/"))
                    time.sleep(3)  # the worker and its warm spare settle, as between two people's clicks
                    warms += [time_view(context, f"http://127.0.0.1:{port}/") for _ in range(args.warm)]
                finally:
                    context.close()
                    stop_app(app, home)
            print(f"cold {colds[-1]:.2f} s, warm {', '.join(f'{w:.2f}' for w in warms[-args.warm :])} s", flush=True)
        browser.close()
    print(
        f"launch page, request → every widget drawn, headless Chromium on {cpu()}: cold median "
        f"{statistics.median(colds):.2f} s (target < 2 s), warm median {statistics.median(warms):.2f} s "
        "(target < 1 s)"
    )


if __name__ == "__main__":
    main()
