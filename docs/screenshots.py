"""`make screenshots`: one screenshot of each page of the real app, taken in headless Chromium, into docs/screenshots/.

A temporary data folder is filled through the library as people would fill it: Ana sweeps the learning rate (2 rates
× 2 seeds), Ben runs the "learning rate" lesson, all on the bundled MiniLM and real data, trained for real by the
app's own worker (a few minutes on 2 idle cores, far longer on busy ones). The app is started as `make run` starts it
(`python -m lab_ui.serve`) on a free port, then again as `make workshop` does for the host's view. Everything this
script starts (the app, its worker and their runs) is stopped at the end, error or not, and the data folder is
removed. A page that shows an error is taken cut above it, and the script then exits 1 naming it.

    .venv/bin/python docs/screenshots.py [--out docs/screenshots] [--keep DIR]

`--keep DIR` fills DIR and keeps it; given again, the pictures are taken from the runs already there (seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bert_lab.core.layout import DataFolder  # noqa: E402
from bert_lab.runs import names, workshop  # noqa: E402
from bert_lab.runs.describe import run_label  # noqa: E402
from bert_lab.runs.service import Lab, resume, submit  # noqa: E402
from bert_lab.runs.status import Status  # noqa: E402
from bert_lab.runs.workshop import Settings  # noqa: E402
from bert_lab.sweeps import launch as sweeps  # noqa: E402
from bert_lab.sweeps.spec import SweepSpec  # noqa: E402
from bert_lab.teaching.lessons import LESSONS, QUICK  # noqa: E402
from bert_lab.teaching.lessons import launch as launch_lesson  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
VIEWPORT = {"width": 1440, "height": 900}
MAX_HEIGHT = 2400  # a full-page shot is cut here (the README shows them small; the top says what the page is)
PASSCODE, HOST_PASSCODE = "tulip-42", "host-only-7"
TRAIN_TIMEOUT_S = 2400  # 7 runs: ~3 min on 2 idle cores, far longer when others share them
SEEDED_BY = ("Ana", "Ben")
SENTENCES = (
    "A warm, funny and beautifully acted film.",
    "Two hours of my life I will never get back.",
    "The plot is thin, but the performances carry it.",
)
PAGES = ("launch", "runs", "playground", "groups", "lessons", "host")  # docs/screenshots/<name>.png, one each

# The settled page: Streamlit idle, no spinner or skeleton, every plotly chart drawn.
SETTLED_JS = """() => {
  const app = document.querySelector('[data-test-script-state]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector('[data-testid="stSpinner"], [data-testid="stSkeleton"]')) return false;
  return [...document.querySelectorAll('.js-plotly-plot')].every(g => g._fullData && g._fullData.length);
}"""
# Streamlit scrolls its main block, not the window: how tall the page's content is.
HEIGHT_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  return main ? main.scrollHeight : document.body.scrollHeight;
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every_s)
    raise TimeoutError(f"gave up waiting for {what} after {timeout_s:g} s")


def kill_group(pid: int, sig: int = signal.SIGTERM) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


# --- the lab's content ------------------------------------------------------------------------------------------------
def seed(lab: Lab) -> None:
    """What two people did: Ana swept the learning rate with two seeds each, Ben ran the learning-rate lesson."""
    base = replace(QUICK, eval_size=300)
    spec = SweepSpec(method="grid", grid={"lr": [1e-4, 2e-4]}, seeds=2, metric="f1")
    sweeps.launch(lab, base, spec, name="learning rate", owner="Ana")
    launch_lesson(lab, LESSONS["learning-rate"], owner="Ben")


def seed_or_resume(lab: Lab) -> None:
    """Seed an empty lab; in a kept one (`--keep`) seeded before, resume what an earlier attempt left unfinished."""
    Settings().update(lab.data, paused=False)  # an earlier attempt may have paused the queue for the host's view
    runs = lab.store.list_runs()
    if not runs:
        seed(lab)
    for run in runs:
        if run.status in (Status.INTERRUPTED, Status.CANCELLED):
            resume(lab, run.id)


def trained(lab: Lab, said: list[int]) -> bool:
    runs = [r for r in lab.store.list_runs() if r.owner in SEEDED_BY]
    done = sum(r.status in (Status.FINISHED, Status.DIVERGED) for r in runs)
    if done not in said:
        said.append(done)
        print(f"screenshots: {done} of {len(runs)} runs trained", flush=True)
    failed = [r for r in runs if r.status in (Status.FAILED, Status.INTERRUPTED)]
    if failed:
        raise RuntimeError(f"run #{failed[0].id} {failed[0].status}: {failed[0].error}")
    return all(r.status in (Status.FINISHED, Status.DIVERGED) for r in runs)


# --- the app ----------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def served(env: dict[str, str], log: Path, *args: str) -> Iterator[str]:
    """The app as `make run` starts it, on a free loopback port; stops it, its worker and their runs."""
    port = free_port()
    command = [sys.executable, "-m", "lab_ui.serve", "--server.address", "127.0.0.1", "--server.port", str(port)]
    with log.open("ab") as out:
        app = subprocess.Popen(
            [*command, "--server.headless", "true", "--browser.gatherUsageStats", "false", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if app.poll() is not None:
            raise RuntimeError(f"the app exited with code {app.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, 120, "the app to serve")
        yield url
    finally:
        kill_group(app.pid)  # lab_ui.serve stops the worker it started on SIGTERM
        try:
            app.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kill_group(app.pid, signal.SIGKILL)
        stop_leftovers(DataFolder(Path(env["BERT_LAB_HOME"])))


def stop_leftovers(data: DataFolder) -> None:
    """The worker (it runs in a session of its own) and any run process still alive, should the app not have."""
    lock = data.worker_lock
    if lock.exists() and (text := lock.read_text().strip()).isdigit():
        kill_group(int(text))
    with Lab.open(data.path) as lab:
        for run in lab.store.list_runs(statuses=[Status.RUNNING]):
            if run.pid:
                kill_group(run.pid, signal.SIGKILL)


# --- the browser ------------------------------------------------------------------------------------------------------
class Camera:
    def __init__(self, page: Any, out: Path, errors: list[str]) -> None:
        self.page, self.out, self.errors = page, out, errors

    def settle(self, timeout_s: float = 120) -> None:
        """Wait until the page is drawn and idle, twice in a row a second apart (a fragment may rerun)."""
        self.page.wait_for_load_state("networkidle")
        for _ in range(2):
            wait_for(lambda: self.page.evaluate(SETTLED_JS), timeout_s, "the page to settle", every_s=0.25)
            self.page.wait_for_timeout(1000)

    def shoot(self, name: str, max_height: int = MAX_HEIGHT, until: str | None = None) -> None:
        """The page from its top, as tall as its content (at most `max_height`; cut above the heading `until`); a
        page showing an error is cut above it, and the error is said (the run then fails once every page is taken)."""
        self.page.evaluate("() => document.activeElement && document.activeElement.blur()")  # no focus ring
        self.settle()
        height = min(max(self.page.evaluate(HEIGHT_JS), VIEWPORT["height"]), max_height)
        self.page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        self.settle()
        if until is not None:
            heading = self.page.get_by_role("heading", name=until).first
            height = min(height, int(heading.bounding_box()["y"]) - 8)
        error = self.page.locator('[data-testid="stException"]').first
        if error.count():
            top = int(error.bounding_box()["y"]) - 16
            text = error.inner_text().splitlines()[0]
            self.errors.append(f"{name}: {text}")
            print(f"screenshots: {name}: the page shows an error, cut above it: {text}", file=sys.stderr, flush=True)
            height = min(height, max(top, VIEWPORT["height"] // 2))
        self.page.screenshot(
            path=str(self.out / f"{name}.png"), clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height}
        )
        self.page.set_viewport_size(VIEWPORT)
        print(f"screenshots: {name}.png ({VIEWPORT['width']}×{height})", flush=True)

    def goto(self, url: str, heading: str) -> None:
        from playwright.sync_api import expect

        self.page.goto(url)
        expect(self.page.get_by_role("heading", name=heading).first).to_be_visible()

    def pick(self, label: str, option: str) -> None:
        """Choose `option` in the select box labelled `label`."""
        self.page.get_by_label(label, exact=True).click()
        self.page.get_by_role("option", name=option).click()
        self.settle()


@contextlib.contextmanager
def camera(out: Path, errors: list[str], debug: Path) -> Iterator[Camera]:
    """Headless Chromium; where something fails, the page as it was goes to `debug`."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=VIEWPORT, device_scale_factor=1).new_page()
            page.set_default_timeout(120_000)
            expect.set_options(timeout=120_000)
            yield Camera(page, out, errors)
        except BaseException:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(debug), full_page=True)
                print(f"screenshots: the page when it failed: {debug}", file=sys.stderr)
            raise
        finally:
            browser.close()


def shoot_single_user(cam: Camera, url: str, lab: Lab) -> None:
    cam.goto(f"{url}/Runs", "Runs")
    cam.shoot("runs", max_height=2000)  # the table, the per-step and the evaluation curves

    [sweep] = [g for g in lab.store.list_groups() if g.method == "grid"]
    cam.goto(f"{url}/Groups?group={sweep.id}", "Groups: sweeps and seeds")
    cam.shoot("groups")

    cam.goto(f"{url}/Lessons?lesson=learning-rate", "Learning rate: too small, right, too large")
    cam.page.get_by_text("What happened").wait_for()
    cam.shoot("lessons")

    runs = lab.store.list_runs()
    right = next(r for r in runs if "right (2e-4)" in r.name)
    best = max(
        (r for r in runs if r.group_id == sweep.id),
        key=lambda r: lab.store.latest_metrics([r.id], names=["f1"]).get(r.id, {}).get("f1", 0.0),
    )
    cam.goto(f"{url}/Playground", "Playground")
    cam.pick("Model", run_label(right))
    cam.page.get_by_text("Compare with a second run").click()
    cam.settle()
    cam.pick("Second model", run_label(best))
    sentences = cam.page.locator("textarea").first  # typed, as a person would (Ctrl+Enter predicts)
    sentences.fill("\n".join(SENTENCES))
    sentences.press("Control+Enter")
    cam.settle()
    cam.page.get_by_text("Side by side", exact=True).wait_for(timeout=300_000)  # two models loaded: slow on a busy box
    cam.shoot("playground", until="Example by example")


def shoot_host(cam: Camera, url: str) -> None:
    cam.page.goto(f"{url}/Host")
    cam.page.get_by_label("Passcode").fill(HOST_PASSCODE)
    cam.page.get_by_role("button", name="Enter").click()
    from playwright.sync_api import expect

    expect(cam.page.get_by_role("heading", name="Host view").first).to_be_visible()
    cam.page.get_by_text("Leaderboard").first.wait_for()
    cam.shoot("host")


# --- the whole of it --------------------------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument(
        "--keep", type=Path, help="fill this data folder and keep it (default: a temporary one); again: reuse its runs"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still stop what it started (the finally blocks)
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="bert-lab-screenshots-"))
    home = args.keep or tmp / "lab_data"
    log = tmp / "app.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BERT_LAB_", "STREAMLIT_"))}
    env |= {"BERT_LAB_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if cache := os.environ.get("BERT_LAB_CACHE"):
        env["BERT_LAB_CACHE"] = cache
    os.environ.clear()
    os.environ.update(env)  # this process opens the same lab
    try:
        with Lab.open(home) as lab:
            with served(env, log) as url, camera(args.out, errors, tmp / "failed.png") as cam:
                seed_or_resume(lab)  # the app's worker trains them while the launch page is taken
                cam.goto(f"{url}/?schedule=cosine&warmup_steps=10&lr=0.0002", "Launch a fine-tuning run")
                cam.page.get_by_text("Training uses exactly this function").wait_for()
                cam.shoot("launch")
                said: list[int] = []
                wait_for(lambda: trained(lab, said), TRAIN_TIMEOUT_S, "the seeded runs to finish", every_s=2)
                print(f"screenshots: runs trained after {time.monotonic() - started:.0f} s", flush=True)
                shoot_single_user(cam, url, lab)

            # The host's view of a workshop: three people signed in, Chloé's run waiting in a paused queue.
            os.environ |= {workshop.PASSCODE_ENV: PASSCODE, workshop.HOST_PASSCODE_ENV: HOST_PASSCODE}
            claimed = {c.name for c in names.claims(lab.data).values()}
            for name in {"Ana", "Ben", "Chloé"} - claimed:
                workshop.sign_in(PASSCODE, name, lab.data)
            if not lab.store.list_runs(owner="Chloé"):
                chloe = replace(QUICK, lr=3e-4, schedule="cosine", warmup_steps=5)
                submit(lab, chloe, name="cosine 3e-4", owner="Chloé")
            Settings().update(lab.data, paused=True)
            workshop_env = env | {workshop.PASSCODE_ENV: PASSCODE, workshop.HOST_PASSCODE_ENV: HOST_PASSCODE}
            with served(workshop_env, log) as url, camera(args.out, errors, tmp / "failed.png") as cam:
                shoot_host(cam, url)
    except BaseException:
        print(f"screenshots: failed; the app's log is {log}", file=sys.stderr)
        raise
    for stale in set(args.out.glob("*.png")) - {args.out / f"{name}.png" for name in PAGES}:
        stale.unlink()
    shutil.rmtree(tmp, ignore_errors=True)  # the app's log, and the data folder unless --keep put it elsewhere
    print(f"screenshots: {len(PAGES)} pages in {args.out} ({time.monotonic() - started:.0f} s)")
    if errors:
        print("screenshots: pages showed errors (fix them, then run again):\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
