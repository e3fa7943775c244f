"""`python -m lab_ui.serve [streamlit flags]`: `streamlit run app.py`, ready before the first page view.

`bert-lab app` (and so `make run` and `make workshop`) starts the app this way, from any folder: the app's scripts are
found beside this package in an installed wheel and at the repository's root in a checkout, with the lab's Streamlit
settings beside them (`.streamlit/config.toml`: Streamlit reads it beside its main script). Plain `streamlit run app.py`
works too, from the checkout, but its first page view pays for what this does beforehand (bench/first_render.py, 2
cores): importing what the pages import, reading and tokenizing the default dataset for the launch page's padding note
(the first script run took 1.5 s in the server, 0.26 s after this), and starting the background worker and waiting until
it is warm (its spare run process importing torch took CPU from the first view: cold 2.7-3.1 s, 2.1 s without a worker
starting). Streamlit runs every page in this process, so what is imported here is imported for them. The price: the
server answers ~5 s after it starts instead of ~2 s.

It refuses to serve (exit 2, saying why) a workshop whose passcodes do not hold (`workshop.problems`: a passcode of
spaces is none), whether the environment asks for one (either passcode given) or the address reaches beyond this
machine: the full single-user app must never be open to the network.

While it serves, it starts the worker again if that dies (`keep_worker_alive`, whether or not a page is viewed); when
it stops (Ctrl-C, SIGTERM) it stops the worker it started, and that worker's runs stop where they are, resumable.
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
import tomllib
from collections.abc import Sequence
from pathlib import Path

from bert_lab.runs import workshop

HERE = Path(__file__).resolve().parent
APP = HERE / "app.py" if (HERE / "app.py").is_file() else HERE.parent / "app.py"  # in a wheel; in a checkout
SETTINGS = APP.parent / ".streamlit" / "config.toml"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
WORKER_CHECK_S = 5.0  # how often the app checks that its worker is alive (and starts it again if it died)
WARM_TIMEOUT_S = 30.0  # serve anyway after this long (a slow disk; a worker that failed to start says so itself)


def warm_up() -> None:
    """Import the pages' modules and start the worker (unless `$BERT_LAB_NO_AUTOSTART`), as the first view would."""
    import altair  # noqa: F401
    import pandas  # noqa: F401
    import plotly.graph_objects  # noqa: F401

    import lab_ui.launched  # noqa: F401
    import lab_ui.link  # noqa: F401
    import lab_ui.live  # noqa: F401
    import lab_ui.lr_finder  # noqa: F401
    import lab_ui.sweep_form  # noqa: F401
    from bert_lab.core.config import RunConfig
    from bert_lab.engine import (
        data,  # noqa: F401
        model_files,  # noqa: F401
        schedules,  # noqa: F401
    )
    from bert_lab.figures import curves  # noqa: F401
    from bert_lab.processes import worker  # noqa: F401
    from lab_ui import page

    data.training_token_lengths(
        RunConfig()
    )  # the default data read and tokenized once (bert_lab.engine.data keeps both)
    inspect.stack()  # Streamlit's first element in a process looks at the stack, which reads every module's path once
    with page.open_lab() as lab:
        if page.ensure_worker(lab):
            worker.wait_until_warm(lab.data, timeout_s=WARM_TIMEOUT_S)


def keep_worker_alive(stopping: threading.Event) -> None:
    """Start the worker again whenever it has died, whether or not anyone is viewing a page (each view checks too)."""
    from lab_ui import page

    while not stopping.wait(WORKER_CHECK_S):
        with page.open_lab() as lab:
            page.ensure_worker(lab)


def stop_own_worker() -> None:
    """Stop the worker this process started, if it is the one serving (a worker started by hand is left alone), and
    wait for its runs to stop where they are (`interrupted`: resumable)."""
    import psutil

    from bert_lab.processes import worker
    from lab_ui import page

    with page.open_lab() as lab:
        pid = worker.worker_pid(lab.data)
        if pid is None or psutil.Process(pid).ppid() != os.getpid():
            return
        print("Stopping the background worker and its runs (resume them later)...", file=sys.stderr, flush=True)
        worker.stop_worker(lab.data, lab.store)


def address(argv: Sequence[str]) -> str:
    """The address Streamlit will listen on: `--server.address`, else `$STREAMLIT_SERVER_ADDRESS`, else the
    project's `.streamlit/config.toml`; "" (every interface) when none says."""
    for i, arg in enumerate(argv):
        if arg.startswith("--server.address="):
            return arg.partition("=")[2]
        if arg == "--server.address" and i + 1 < len(argv):
            return argv[i + 1]
    if env := os.environ.get("STREAMLIT_SERVER_ADDRESS"):
        return env
    try:
        return str(tomllib.loads(SETTINGS.read_text())["server"]["address"])
    except (OSError, KeyError, ValueError):
        return ""


def refusal(argv: Sequence[str]) -> str | None:
    """Why this server must not start (None: it may): a workshop asked for, or an address beyond this machine,
    while the workshop's passcodes do not hold."""
    found = workshop.problems()
    if not found or not (workshop.requested() or address(argv) not in LOOPBACK):
        return None
    where = address(argv) or "every interface"
    return f"lab_ui.serve: not serving a workshop on {where}: {'; '.join(found)}. Nothing was started."


def main(argv: list[str]) -> int:
    from streamlit.web import cli

    if why := refusal(argv):
        print(why, file=sys.stderr)
        return 2
    warm_up()
    stopping = threading.Event()
    threading.Thread(target=keep_worker_alive, args=(stopping,), name="worker-keeper", daemon=True).start()
    print("Ctrl-C stops the app and the worker it started; `bert-lab stop` ends a worker left behind.", file=sys.stderr)
    sys.argv = ["streamlit", "run", str(APP), *argv]
    try:
        return cli.main()
    finally:  # Streamlit ends on SIGINT and SIGTERM by raising SystemExit
        stopping.set()
        stop_own_worker()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
