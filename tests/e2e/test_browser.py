"""End to end in a real browser: headless Debian Chromium, driven by Playwright, against the app as `make run` starts
it (`python -m lab_ui.serve`: `streamlit run app.py`, warmed up first).

A person's path through the lab: launch a tiny-model run from the sliders, watch its curve appear and grow on the
Runs page, launch a second run with another learning rate, cancel the first, compare the two overlaid, open the
playground. The app starts the real background worker itself on a temporary data folder.
Screenshots of every stage go to test-artifacts/e2e/ (git-ignored).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, healthy
from local_postgres import free_port
from waiting import wait_for

from bert_lab.core.layout import DataFolder
from bert_lab.runs.service import Lab
from bert_lab.runs.status import Status

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
TIMEOUT_MS = 120_000  # generous: two shared cores run the app, the worker, a training process and the browser

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian chromium at /usr/bin/chromium (.ci/run installs it)"
)

# The drawn points of each line of the chart titled `title` (raw lines under smoothing and note markers are skipped).
TRACES_JS = """(title) => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')]
    .find(g => g.layout && g.layout.title && String(g.layout.title.text).replace(/<[^>]+>/g, '') === title);
  if (!gd || !gd._fullData) return null;
  return gd._fullData.filter(t => !String(t.name).endsWith('(raw)') && !String(t.name).endsWith(' note'))
    .map(t => ({name: t.name, n: t.x ? t.x.length : 0, last: t.x && t.x.length ? t.x[t.x.length - 1] : null}));
}"""


# The launch page's curve of the run it launched: a Vega-Lite chart drawn as SVG, whose line has points.
LAUNCHED_CURVE_HAS_POINTS_JS = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"] svg')]
  .filter(svg => svg.textContent.includes('Training loss'))
  .some(svg => [...svg.querySelectorAll('.mark-line path')].some(p => (p.getAttribute('d') || '').length > 0))"""


def stop_group(pid: int, sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture
def app_env() -> dict[str, str]:
    """More environment for the served app (a test parametrizes it: a workshop's passcodes)."""
    return {}


@pytest.fixture
def served_app(app_env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """The app as `make run` starts it, on a free port over the test's own data folder; stops the app, its worker and
    runs."""
    home = Path(os.environ["BERT_LAB_HOME"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "BERT_LAB_NO_AUTOSTART"} | app_env
    log = open(ARTIFACTS / "streamlit.log", "wb")  # noqa: SIM115 - closed below
    app = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab_ui.serve",  # as `make run` starts it: `streamlit run app.py`, warmed up first
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(url), 90, "the Streamlit server")
        yield url, home
    finally:
        stop_group(app.pid)
        app.wait(timeout=30)
        log.close()
        lock = DataFolder(home).worker_lock  # the worker writes its pid there; it runs in its own session
        if lock.exists() and (text := lock.read_text().strip()).isdigit():
            stop_group(int(text))
        with Lab.open(home) as lab:
            time.sleep(1)
            for run in lab.store.list_runs(statuses=[Status.RUNNING]):
                if run.pid:
                    stop_group(run.pid, signal.SIGKILL)


def test_launch_watch_compare_cancel_and_try(served_app: tuple[str, Path]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, home = served_app
    lab = Lab.open(home)
    store = lab.store

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1900})
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)

        def shot(name: str) -> None:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

        def idle() -> None:
            page.wait_for_selector('[data-test-script-state="notRunning"]', state="attached")
            page.wait_for_timeout(300)  # let the last delta paint before the next interaction

        def set_number(label: str, value: float) -> None:
            box = page.get_by_label(label, exact=True)
            box.fill(str(value))
            box.press("Enter")
            idle()

        def move_slider(label: str, presses: int) -> None:
            slider = page.locator(f'input[type=range][aria-label="{label}"]')  # the label also names its group
            for _ in range(abs(presses)):
                slider.press("ArrowRight" if presses > 0 else "ArrowLeft")
                idle()

        def set_text(label: str, value: str) -> None:
            box = page.get_by_label(label, exact=True)
            box.fill(value)
            box.press("Enter")
            idle()

        def goto_page(link: str, heading: str) -> None:
            page.get_by_role("link", name=link).click()
            expect(page.get_by_role("heading", name=heading)).to_be_visible()

        def traces(title: str) -> list[dict] | None:
            return page.evaluate(TRACES_JS, title)

        # --- 1. the launch page, as a newcomer finds it -------------------------------------------------------------
        page.goto(url)
        expect(page.get_by_role("heading", name="Launch a fine-tuning run")).to_be_visible()
        expect(page.get_by_text("Training uses exactly this function")).to_be_visible()
        idle()
        shot("01-launch-defaults")

        # --- 2. a long tiny-model run from the sliders: lr 1e-3, batch 4, max length 32, 600 examples ---------------
        page.get_by_text("Tiny demo BERT").click()
        idle()
        set_number("Training examples", 600)  # long enough to be cancelled mid-run on a fast CPU (7,500 steps: 82 s)
        set_number("Epochs", 100)
        move_slider("Max length (tokens)", -2)  # 128 → 32
        move_slider("Batch size", -3)  # 32 → 4
        move_slider("Learning rate", +4)  # 1e-4 → 1e-3
        set_text("Name (optional)", "tiny-lr1e-3")
        expect(page.get_by_text("15,000 optimizer steps", exact=True)).to_be_visible()
        shot("02-launch-filled")
        page.get_by_role("button", name="Launch run").click()
        expect(page.get_by_text("Queued run #1 tiny-lr1e-3")).to_be_visible()
        # The launch page follows the run it launched: its first loss points are drawn there, with no second page.
        expect(page.get_by_text("#1 tiny-lr1e-3 · ▶ running · step")).to_be_visible(timeout=120_000)
        wait_for(lambda: page.evaluate(LAUNCHED_CURVE_HAS_POINTS_JS), 30, "the launched run's curve on the launch page")
        shot("03-launched")
        first = store.get_run(1)
        assert (first.config["model"], first.config["lr"], first.config["batch_size"]) == ("tiny", 1e-3, 4)
        assert (first.config["train_size"], first.config["max_length"]) == (600, 32)

        # --- 3. the Runs page: the curve appears, then grows (live, no reload) --------------------------------------
        goto_page("Runs: watch and compare", "Runs")
        drawn = wait_for(
            lambda: (t := traces("Training loss")) and t[0]["n"] > 0 and t, 120, "the first training-loss points"
        )
        first_last = drawn[0]["last"]
        stored = len(store.read_metrics(1, names=["train_loss"]))
        shot("04-runs-first-points")
        wait_for(
            lambda: (t := traces("Training loss")) and t[0]["last"] > first_last + 20,
            60,
            "the training-loss curve to grow",
        )
        wait_for(lambda: len(store.read_metrics(1, names=["train_loss"])) > stored, 60, "the run's points in the store")
        # The evaluation curves are redrawn only when an evaluation lands (not at every refresh), still without reload.
        wait_for(lambda: (t := traces("Accuracy")) and t[0]["n"] > 0, 120, "the first evaluation on the Runs page")
        shot("05-runs-growing")

        # --- 4. a second run with another learning rate (the launch page kept the other settings) -------------------
        goto_page("Launch a run", "Launch a fine-tuning run")
        idle()
        move_slider("Learning rate", -4)  # 1e-3 → 1e-4
        set_number("Epochs", 2)
        set_text("Name (optional)", "tiny-lr1e-4")
        page.get_by_role("button", name="Launch run").click()
        expect(page.get_by_text("Queued run #2 tiny-lr1e-4")).to_be_visible()
        second = store.get_run(2)
        assert (second.config["lr"], second.config["model"], second.config["batch_size"]) == (1e-4, "tiny", 4)

        # --- 5. cancel the first run; the second starts after it -----------------------------------------------------
        goto_page("Runs: watch and compare", "Runs")
        page.get_by_label("Act on run", exact=True).click()
        page.get_by_role("option", name="#1 tiny-lr1e-3").click()
        page.get_by_role("button", name="Cancel").click()
        wait_for(lambda: store.get_run(1).status == Status.CANCELLED, 90, "run 1 to be cancelled")
        shot("06-runs-cancelled")

        # --- 6. both runs overlaid, one line each ---------------------------------------------------------------------
        wait_for(lambda: store.get_run(2).status == Status.FINISHED, 150, "run 2 to finish")
        lines = wait_for(
            lambda: (t := traces("Training loss")) and len([x for x in t if x["n"] > 0]) == 2 and t,
            60,
            "two training-loss lines",
        )
        assert {line["name"] for line in lines} == {"#1 tiny-lr1e-3", "#2 tiny-lr1e-4"}
        wait_for(
            lambda: (t := traces("Accuracy")) and all(x["n"] > 0 for x in t) and len(t) == 2, 60, "two accuracy lines"
        )
        expect(page.get_by_text("Shaded rows differ between the selected runs.")).to_be_visible()
        page.wait_for_timeout(2500)  # one more refresh, so the screenshot shows the final state
        shot("07-runs-compare")
        page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollBy(0, 1500)")  # it scrolls, not
        page.wait_for_timeout(500)  # the window
        shot("08-runs-hyperparameters-results")
        page.get_by_text("Side by side", exact=True).click()
        expect(page.locator(".js-plotly-plot").first).to_be_visible()
        page.wait_for_timeout(1500)
        shot("09-runs-side-by-side")

        # --- 7. the playground: predictions of both runs on the same sentences ---------------------------------------
        goto_page("Playground: try a model", "Playground")
        expect(page.get_by_role("heading", name="Evaluation set")).to_be_visible()
        page.get_by_text("Compare with a second run").click()
        wait_for(
            lambda: (
                page.evaluate(
                    "() => [...document.querySelectorAll('.js-plotly-plot')]"
                    ".filter(g => g._fullData && g._fullData.some(t => t.type === 'bar' "
                    "&& t.orientation === 'h')).length"
                )
                == 2
            ),
            180,
            "two probability charts",
        )
        expect(page.get_by_text("Side by side", exact=True)).to_be_visible()
        page.wait_for_timeout(1000)
        shot("10-playground")
        browser.close()
    lab.close()


def test_a_lesson_end_to_end_with_the_tiny_model(served_app: tuple[str, Path]) -> None:
    """Open a lesson by its link, run it on the tiny model, and read what happened once its runs finish."""
    from playwright.sync_api import expect, sync_playwright

    url, home = served_app
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1900})
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        page.goto(f"{url}/?lesson=accuracy-vs-f1")
        expect(page.get_by_role("heading", name="Accuracy against F1 on imbalanced data")).to_be_visible()
        page.get_by_text("Tiny demo BERT: seconds").click()
        page.get_by_role("button", name="Run this lesson").click()
        expect(page.get_by_text("What happened")).to_be_visible(timeout=240_000)
        expect(page.get_by_text("says ham to everything (lr 3e-3): accuracy")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "10-lesson-done.png"))
        browser.close()
    with Lab.open(home) as lab:
        [group] = lab.store.list_groups()
        runs = lab.store.list_runs(group_id=group.id)
        assert group.spec["lesson"] == "accuracy-vs-f1" and len(runs) == 2
        assert {r.config["model"] for r in runs} == {"tiny"} and {r.status for r in runs} == {Status.FINISHED}


WORKSHOP_ENV = {"BERT_LAB_PASSCODE": "tulip-42", "BERT_LAB_HOST_PASSCODE": "host-only-7", "BERT_LAB_NO_AUTOSTART": "1"}


@pytest.mark.parametrize("app_env", [WORKSHOP_ENV])
def test_a_workshop_two_participants_each_see_their_own_runs(served_app: tuple[str, Path]) -> None:
    """Nothing shows before the passcode; then Ana and Ben, in two browser contexts (two people), each see only
    their own runs by default."""
    from playwright.sync_api import expect, sync_playwright

    url, home = served_app
    with Lab.open(home) as lab:
        tiny = {"model": "tiny", "dataset": "sms_spam"}
        lab.store.create_run(tiny, name="ana-first", owner="Ana")
        lab.store.create_run(tiny, name="ben-first", owner="Ben")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        pages = {}
        for name in ("Ana", "Ben"):
            page = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{url}/Runs")
            expect(page.get_by_text("BERT Lab workshop")).to_be_visible()
            assert "ana-first" not in page.inner_text("body") and "Launch a run" not in page.inner_text("body")
            page.get_by_label("Passcode").fill("tulip-41")
            page.get_by_label("Your name").fill(name)
            page.get_by_role("button", name="Enter").click()
            expect(page.get_by_text("that passcode is not this workshop's")).to_be_visible()
            page.get_by_label("Passcode").fill("tulip-42")
            page.get_by_role("button", name="Enter").click()
            expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()
            pages[name] = page

        def table_with(page: Any, run_name: str) -> list[str]:
            """The runs table's cells (the grid keeps them in the page, hidden) once one names `run_name`."""
            cells = page.locator("td[role=gridcell]").all_text_contents()
            return cells if any(c.endswith(run_name) for c in cells) else []

        for name, page in pages.items():
            mine, theirs = ("ana-first", "ben-first") if name == "Ana" else ("ben-first", "ana-first")
            cells = wait_for(partial(table_with, page, mine), 60, f"{mine} in {name}'s table")
            assert not [c for c in cells if theirs in c] and theirs not in (page.text_content("body") or "")
            page.screenshot(path=str(ARTIFACTS / f"20-workshop-{name}.png"), full_page=True)
        pages["Ana"].get_by_text("Everyone's runs").click()
        wait_for(partial(table_with, pages["Ana"], "ben-first"), 60, "everyone's runs in Ana's table")
        browser.close()


@pytest.mark.parametrize("app_env", [WORKSHOP_ENV])
def test_a_workshop_name_survives_a_reload_and_belongs_to_one_browser(served_app: tuple[str, Path]) -> None:
    """Ana signs in; a reload and a new tab keep her signed in (the token in the address). Another browser typing
    "ana", or a look-alike with a Cyrillic а, is refused."""
    from playwright.sync_api import expect, sync_playwright

    url, _ = served_app
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)

        def sign_in(name: str) -> Any:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            page.get_by_label("Passcode").fill("tulip-42")
            page.get_by_label("Your name").fill(name)
            page.get_by_role("button", name="Enter").click()
            return page

        ana = sign_in("ana")
        expect(ana.get_by_text("Signed in as ana")).to_be_visible()
        wait_for(lambda: "signin=" in ana.url, 30, "the sign-in token in the address")
        ana.reload()
        expect(ana.get_by_text("Signed in as ana")).to_be_visible()
        token = ana.url.split("signin=")[1].split("&")[0]
        tab = ana.context.new_page()  # a new tab, as the host view's "their runs" link opens one
        tab.goto(f"{url}/Runs?signin={token}")
        expect(tab.get_by_text("Signed in as ana")).to_be_visible()
        for other in ("ana", "\u0430na"):
            ben = sign_in(other)
            expect(ben.get_by_text("the name 'ana' is taken")).to_be_visible()
            assert "Signed in as" not in ben.inner_text("body")
        ana.screenshot(path=str(ARTIFACTS / "21-workshop-reloaded.png"), full_page=True)
        browser.close()


CLASSROOM_ENV = {"BERT_LAB_PASSCODE": "tulip-42", "BERT_LAB_HOST_PASSCODE": "host-only-7"}
CLASS = ["P1", "P2", "P3", "P4", "P5"]
ARMS = ["too small (1e-6)", "right (2e-4)", "too large (3e-3)"]  # the learning-rate lesson's


@pytest.mark.parametrize("app_env", [CLASSROOM_ENV])
def test_a_class_lesson_for_a_room_of_five(served_app: tuple[str, Path]) -> None:
    """The host opens the learning-rate lesson for the room; five participants (five browser contexts) predict; the
    host sees the count, runs it once and, after it has finished, reveals it. Until then no participant's page shows
    a curve or a reading; then each shows the result beside that participant's own prediction. The presenter view
    and the Runs page at 1280×720 are shot for a look."""
    from playwright.sync_api import expect, sync_playwright

    url, home = served_app
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)

        def sign_in(name: str, passcode: str = "tulip-42", path: str = "Lessons") -> Any:
            page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{url}/{path}")
            page.get_by_label("Passcode").fill(passcode)
            page.get_by_label("Your name").fill(name)
            page.get_by_role("button", name="Enter").click()
            expect(page.get_by_text(f"Signed in as {name or 'host'}")).to_be_visible()
            return page

        host = sign_in("", "host-only-7", "Host")
        host.get_by_role("combobox", name="Lesson", exact=True).click()
        host.get_by_role("option", name="Learning rate: too small").click()
        host.get_by_text("tiny", exact=True).click()
        host.get_by_role("button", name="Open for the class").click()
        expect(host.get_by_text("0 of 0 participant(s) predicted")).to_be_visible()

        room = {}
        for i, name in enumerate(CLASS):
            page = sign_in(name)
            expect(page.get_by_text("Class lesson")).to_be_visible()
            expect(page.get_by_text("The result is hidden until your host reveals it")).to_be_visible()
            arm = ARMS[i % len(ARMS)]
            page.get_by_test_id("stForm").get_by_text(arm, exact=True).click()
            page.get_by_role("button", name="Save my prediction").click()
            expect(page.get_by_text(f"Your prediction: {arm}.")).to_be_visible()
            room[name] = (page, arm)
        expect(host.get_by_text("5 of 5 participant(s) predicted")).to_be_visible()
        host.screenshot(path=str(ARTIFACTS / "30-class-predicted-host.png"), full_page=True)

        host.get_by_role("button", name="Run it").click()
        with Lab.open(home) as lab:
            group_id = lab.store.list_groups()[0].id

            def finished() -> bool:
                runs = lab.store.list_runs(group_id=group_id)
                return len(runs) == 3 and all(r.status == Status.FINISHED for r in runs)

            wait_for(finished, 600, "the class lesson's three runs")
        time.sleep(4)  # a participant's page looks every 3 s: give it a look after the runs finished
        for name, (page, _) in room.items():
            body = page.inner_text("body")
            assert "The result is hidden" in body and "What happened" not in body, name
            assert page.locator(".js-plotly-plot").count() == 0, name  # not one curve
        room["P1"][0].screenshot(path=str(ARTIFACTS / "31-class-hidden-participant.png"), full_page=True)

        host.get_by_role("button", name="Reveal to the room").click()
        for name, (page, arm) in room.items():
            expect(page.get_by_text("What happened")).to_be_visible()
            expect(page.get_by_text(f"You predicted {arm} would end best on F1 (macro).")).to_be_visible()
            assert "The result is hidden" not in page.inner_text("body"), name
        room["P2"][0].screenshot(path=str(ARTIFACTS / "32-class-revealed-participant.png"), full_page=True)

        host.goto(f"{url}/Lessons?lesson=learning-rate&present=1&{host.url.split('?')[1]}")
        expect(host.get_by_text("What happened")).to_be_visible()
        host.wait_for_timeout(3000)
        host.screenshot(path=str(ARTIFACTS / "33-presenter-lessons-1280x720.png"))
        host.goto(f"{url}/Runs?present=1&{host.url.split('?')[1]}")
        expect(host.locator(".js-plotly-plot").first).to_be_visible()
        host.wait_for_timeout(3000)
        host.screenshot(path=str(ARTIFACTS / "34-presenter-runs-1280x720.png"))
        browser.close()
