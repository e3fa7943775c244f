"""The lab as a user installs it: the wheel that `pip wheel .` builds, installed into a new venv, gives a `bert-lab`
command that serves the whole lab from any folder, in a real browser.

The new venv borrows this one's dependencies (a `.pth` line, added after the wheel is in: installing torch and the
rest again would take minutes), and checks that they meet every requirement the wheel declares, pins included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import CHROMIUM, CHROMIUM_ARGS, healthy
from local_postgres import free_port
from waiting import wait_for

import bert_lab
from bert_lab.core.layout import DataFolder
from bert_lab.processes.executor import pid_alive
from bert_lab.processes.worker import worker_pid

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "package"
TIMEOUT_MS = 120_000

UNMET = """
from importlib.metadata import requires, version
from packaging.requirements import Requirement
print([str(r) for r in map(Requirement, requires("bert-lab")) if version(r.name) not in r.specifier])
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the wheel, the new venv's bin folder)."""
    where = tmp_path_factory.mktemp("package")
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", where, ROOT]
    subprocess.run(build, check=True, timeout=300)
    (wheel,) = where.glob("bert_lab-*.whl")
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", wheel], check=True, timeout=300)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    yield wheel, venv / "bin"


def run(bin_: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([bin_ / args[0], *args[1:]], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_the_wheel_holds_the_library_and_the_app_and_declares_what_it_needs(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    wheel, bin_ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"bert_lab", "lab_ui", f"bert_lab-{bert_lab.__version__}.dist-info"}
    pages = sorted(n.removeprefix("lab_ui/") for n in names if n.startswith("lab_ui/pages/"))
    assert pages == sorted(f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py"))
    assert {"lab_ui/app.py", "lab_ui/.streamlit/config.toml", "bert_lab/requirements-data.txt"} <= set(names)
    entry = zipfile.ZipFile(wheel).read(f"bert_lab-{bert_lab.__version__}.dist-info/entry_points.txt").decode()
    assert "bert-lab = bert_lab.cli:main" in entry
    assert run(bin_, "python", "-c", UNMET, cwd=tmp_path).stdout.strip() == "[]"  # every pin met by this venv
    code = "import bert_lab, lab_ui; print(bert_lab.__file__, lab_ui.__file__)"
    where = run(bin_, "python", "-c", code, cwd=tmp_path)
    assert all(Path(f).is_relative_to(bin_.parent) for f in where.stdout.split()), where.stdout  # not the checkout
    version = run(bin_, "bert-lab", "--version", cwd=tmp_path)
    assert version.stdout == f"bert-lab {bert_lab.__version__}\n"
    doctor = run(bin_, "bert-lab", "doctor", "--home", str(tmp_path / "lab"), cwd=tmp_path)
    assert doctor.returncode == 0 and doctor.stdout.endswith("everything the lab needs is here\n"), doctor.stdout


def test_bert_lab_app_serves_every_page_from_any_folder_and_stops_its_worker(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    _, bin_ = installed
    home, port = tmp_path / "lab", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BERT_LAB_", "STREAMLIT_"))}
    app = subprocess.Popen(
        [bin_ / "bert-lab", "app", "--port", str(port), "--home", str(home)],
        cwd=tmp_path,  # no .streamlit/ here: the lab's settings must come with the package
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(url), 120, "the installed app")
        worker = wait_for(lambda: worker_pid(DataFolder(home)), 60, "its worker")
        SHOTS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            page.goto(url)
            expect(page.get_by_role("heading", name="Launch a fine-tuning run")).to_be_visible()
            expect(page.get_by_text("Runs: watch and compare")).to_be_visible()  # the lab's own sidebar links …
            expect(page.locator('[data-testid="stSidebarNav"]')).to_have_count(0)  # … not Streamlit's: its settings
            page.screenshot(path=str(SHOTS / "installed-launch.png"))
            page.get_by_text("Lessons: one idea at a time").click()
            expect(page.get_by_role("heading", name="Lessons", exact=False).first).to_be_visible()
            page.screenshot(path=str(SHOTS / "installed-lessons.png"))
            browser.close()
        app.send_signal(signal.SIGINT)  # Ctrl-C
        assert app.wait(timeout=60) in (0, -signal.SIGINT)
        assert not pid_alive(worker) and worker_pid(DataFolder(home)) is None
    finally:
        if app.poll() is None:
            os.killpg(app.pid, signal.SIGKILL)
        if (left := worker_pid(DataFolder(home))) is not None:
            os.kill(left, signal.SIGKILL)
