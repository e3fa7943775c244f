"""How `make run` serves the app (`lab_ui.serve`, `.streamlit/config.toml`): what is ready before the first view."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from bert_lab import data
from bert_lab.config import RunConfig
from bert_lab.runs.service import Lab
from lab_ui import serve

ROOT = Path(__file__).resolve().parents[1]


def test_warm_up_reads_and_tokenizes_the_launch_pages_default_data(lab: Lab) -> None:
    data._TOKEN_LENGTHS.clear()
    serve.warm_up()  # $BERT_LAB_NO_AUTOSTART (conftest): no worker is started
    (computed,) = data._TOKEN_LENGTHS.values()
    assert computed and data.training_token_lengths(RunConfig()) is computed  # the first view's answer, ready
    assert not lab.data.worker_lock.exists()


def test_no_page_relies_on_magic() -> None:
    """The served app runs with `runner.magicEnabled = false`: a bare expression in a page would silently vanish."""
    shown = []
    for script in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        tree = ast.parse(script.read_text())
        bodies = [tree.body] + [n.body for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
        docstrings = {id(body[0]) for body in bodies if isinstance(getattr(body[0], "value", None), ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Expr) and not isinstance(node.value, ast.Call | ast.Await | ast.Yield):
                if id(node) not in docstrings:
                    shown.append(f"{script.name}:{node.lineno}")
    assert not shown, f"bare expressions that magic would have shown: {shown}"


def test_the_served_app_skips_magic_and_the_forced_collection_after_each_run() -> None:
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert settings["runner"] == {"magicEnabled": False, "postScriptGC": False}
