"""The launch page's first render in a real browser: page request → every widget drawn, cold and warm, beside stock
Streamlit pages drawn by the same browser.

Starts the app as `make run` does (`python -m lab_ui.serve`: warmed up, its background worker warm) on a fresh data
folder, opens headless Debian Chromium through Playwright and times, for each view, from `page.goto` until the page
is complete: the Launch button and the learning-rate preview chart are drawn and no skeleton placeholder is left. The
first view after the server starts, in a browser with an empty cache, is the cold one; later views (new tabs of the
same browser) are warm. Targets: cold under 2 s, warm under 1 s. Also timed: reaching the launch page from another
page through the sidebar's link (no new tab: Streamlit swaps the page in place).

The peers, timed the same way with the repository's `.streamlit/` settings, tell what Streamlit itself costs here:
a stock page of a title, a Vega-Lite chart and a "Launch run" button, and that page plus as many stock widgets of
each kind as the launch page draws (counted in the browser), each with a label and a help tooltip, in 3 columns.

    .venv/bin/python bench/first_render.py [--repeats 3] [--warm 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from browser_lab import CHROMIUM, CHROMIUM_ARGS, ROOT, cpu, free_port, start_app, stop_app

DRAWN_JS = """() => {
  const button = [...document.querySelectorAll('button')].some(b => b.innerText.includes('Launch run'));
  const chart = document.querySelector('[data-testid="stVegaLiteChart"] :is(canvas, svg)') !== null;
  const skeleton = document.querySelector('[data-testid="stSkeleton"]') !== null;
  return button && chart && !skeleton;
}"""
# The widget kinds the launch page draws (their data-testid) and how a stock page draws one of each in a column.
WIDGETS = {
    "stSlider": 'select_slider("{label}", options=[0.001, 0.01, 0.1, 1.0], value=0.01, help=HELP)',
    "stNumberInput": 'number_input("{label}", min_value=0, value=10, step=1, help=HELP)',
    "stSelectbox": 'selectbox("{label}", ["one", "two", "three"], help=HELP)',
    "stRadio": 'radio("{label}", ["one", "two"], help=HELP)',
    "stCheckbox": 'checkbox("{label}", help=HELP)',
    "stTextInput": 'text_input("{label}", help=HELP)',
}
COUNT_JS = "ids => Object.fromEntries(ids.map(id => [id, document.querySelectorAll(`[data-testid=${id}]`).length]))"
PEER = """import altair as alt
import pandas as pd
import streamlit as st

HELP = "One line of help, as the launch page's knobs have."
st.set_page_config(page_title="Stock page", layout="wide")
st.title("A stock Streamlit page")
{widgets}
st.altair_chart(alt.Chart(pd.DataFrame({{"step": range(100), "lr": [1 - s / 100 for s in range(100)]}})).mark_line()
                .encode(x="step", y="lr"))
st.button("Launch run", type="primary")
"""


def wait_drawn(page: object) -> None:
    """Until the launch page (or a stock page) is complete: see DRAWN_JS."""
    page.wait_for_function(DRAWN_JS, timeout=60_000, polling=20)  # type: ignore[attr-defined]


def time_view(context: object, url: str) -> float:
    page = context.new_page()  # type: ignore[attr-defined]
    started = time.perf_counter()
    page.goto(url)
    wait_drawn(page)
    elapsed = time.perf_counter() - started
    page.close()
    return elapsed


def time_sidebar_link(context: object, url: str) -> float:
    """From the Runs page, drawn, to the launch page drawn after a click on the sidebar's "Launch a run"."""
    page = context.new_page()  # type: ignore[attr-defined]
    page.goto(f"{url}Runs")
    page.get_by_text("Runs: watch and compare").first.wait_for()
    page.wait_for_timeout(1000)  # the Runs page settles
    started = time.perf_counter()
    page.get_by_test_id("stSidebar").get_by_role("link", name="Launch a run").click()
    wait_drawn(page)
    elapsed = time.perf_counter() - started
    page.close()
    return elapsed


def time_server(
    browser: object, home: Path, warm: int, *, script: Path | None = None
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """One server start: its cold view, `warm` warm views and, for the app, `warm` sidebar hops to the launch page
    and the widgets it draws (kind → count)."""
    port = free_port()
    app = start_app(home, port, script=script)
    # A new browser context: an empty cache, as on a participant's first visit. Later tabs share it.
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}/"
    try:
        times = {"cold": [time_view(context, url)]}
        time.sleep(3)  # the app's worker and warm spare settle, as between two people's clicks (peers: alike)
        times["warm"] = [time_view(context, url) for _ in range(warm)]
        if script is not None:
            return times, {}
        times["link"] = [time_sidebar_link(context, url) for _ in range(warm)]
        page = context.new_page()
        page.goto(url)
        wait_drawn(page)
        return times, page.evaluate(COUNT_JS, list(WIDGETS))
    finally:
        context.close()
        stop_app(app, home)


def peer_script(folder: Path, counts: dict[str, int]) -> Path:
    """A stock page with `counts` widgets of each kind, run with the repository's `.streamlit/` settings."""
    shutil.copytree(ROOT / ".streamlit", folder / ".streamlit", dirs_exist_ok=True)
    script = folder / "stock.py"
    kinds = [kind for kind, n in counts.items() for _ in range(n)]
    widgets = [f"columns[{i % 3}].{WIDGETS[kind].format(label=f'Knob {i}')}" for i, kind in enumerate(kinds)]
    script.write_text(PEER.format(widgets="\n".join(["columns = st.columns(3)", *widgets] if widgets else [])))
    return script


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh starts of each server (cold views)")
    parser.add_argument("--warm", type=int, default=5, help="warm views after each cold one")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    results: dict[str, dict[str, list[float]]] = {"launch page": {}, "stock page": {}, "stock page + widgets": {}}
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as tmp:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for repeat in range(args.repeats):  # the three interleaved, so that drift on the machine hits them alike
            times, counts = time_server(browser, Path(tmp) / f"lab{repeat}", args.warm)
            runs = [("launch page", times)]
            for name, kinds in (("stock page", {}), ("stock page + widgets", counts)):
                folder = Path(tmp) / f"{name}{repeat}"
                runs.append((name, time_server(browser, folder, args.warm, script=peer_script(folder, kinds))[0]))
            for name, times in runs:
                for key, values in times.items():
                    results[name].setdefault(key, []).extend(values)
                print(f"{name}: " + "; ".join(f"{k} {', '.join(f'{v:.2f}' for v in vs)}" for k, vs in times.items()))
        browser.close()
    widgets = ", ".join(f"{n} {kind.removeprefix('st')}" for kind, n in counts.items() if n)
    print(f"\nrequest → every widget drawn, headless Chromium on {cpu()}; median (range)")
    print(f"{'':40s} {'cold':>22s} {'warm':>22s}")
    for name, times in results.items():
        print(f"{name:40s} {median(times['cold']):>22s} {median(times['warm']):>22s}")
    print(f"(stock widgets: {widgets}, as the launch page draws)")
    print(f"launch page reached from the Runs page by the sidebar link: {median(results['launch page']['link'])}")
    ratio = statistics.median(results["launch page"]["warm"]) / statistics.median(
        results["stock page + widgets"]["warm"]
    )
    print(f"launch page / stock page with the same widgets, warm: {ratio:.2f}×. Targets: cold < 2 s, warm < 1 s")


if __name__ == "__main__":
    main()
