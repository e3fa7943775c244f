"""`python -m lab_ui.serve [streamlit flags]`: `streamlit run app.py`, ready before the first page view.

`make run` and `make workshop` start the app this way. Plain `streamlit run app.py` works too, but its first page view
pays for what this does beforehand (bench/first_render.py, 2 cores): importing what the pages import, reading and
tokenizing the default dataset for the launch page's padding note (the first script run took 1.5 s in the server,
0.26 s after this), and starting the background worker and waiting until it is warm (its spare run process importing
torch took CPU from the first view: cold 2.7-3.1 s, 2.1 s without a worker starting). Streamlit runs every page in
this process, so what is imported here is imported for them. The price: the server answers ~5 s after it starts
instead of ~2 s.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app.py"
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
    from bert_lab import data, model_files, plots, schedules, worker  # noqa: F401
    from bert_lab.config import RunConfig
    from lab_ui import page

    data.training_token_lengths(RunConfig())  # the default data read and tokenized once (bert_lab.data keeps both)
    inspect.stack()  # Streamlit's first element in a process looks at the stack, which reads every module's path once
    with page.open_lab() as lab:
        if page.ensure_worker(lab):
            worker.wait_until_warm(lab.data, timeout_s=WARM_TIMEOUT_S)


def main(argv: list[str]) -> int:
    from streamlit.web import cli

    warm_up()
    sys.argv = ["streamlit", "run", str(APP), *argv]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
