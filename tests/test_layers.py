"""The layers hold (docs/architecture.md): the library never imports the pages' toolkit or their shared code."""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "bert_lab"


def imported(path: Path) -> set[str]:
    """The top-level names of every module `path` imports, wherever in the file (function-level imports too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_nothing_in_the_library_imports_streamlit_or_the_pages_code() -> None:
    modules = sorted(LIBRARY.rglob("*.py"))
    assert len(modules) > 30
    offending = {str(m.relative_to(LIBRARY)): imported(m) & {"streamlit", "lab_ui", "pages"} for m in modules}
    assert {m: names for m, names in offending.items() if names} == {}
