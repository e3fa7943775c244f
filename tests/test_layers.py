"""The layers hold (docs/architecture.md): the library never imports the pages' toolkit or their shared code, its
modules import each other without a circle (function-level imports included), and the store's interface knows none of
its backends (they are registered by URL scheme in `runs/backends.py`)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "bert_lab"


def imports(path: Path) -> set[str]:
    """Every module `path` imports, by its full name, wherever in the file (function-level imports too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_nothing_in_the_library_imports_streamlit_or_the_pages_code() -> None:
    modules = sorted(LIBRARY.rglob("*.py"))
    assert len(modules) > 30
    found = {
        str(m.relative_to(LIBRARY)): {n for n in imports(m) if n.split(".")[0] in ("streamlit", "lab_ui")}
        for m in modules
    }
    assert {m: names for m, names in found.items() if names} == {}


def test_the_store_interface_imports_none_of_its_backends() -> None:
    backends = {"bert_lab.runs.sqlite", "bert_lab.runs.postgres", "bert_lab.runs.backends"}
    assert imports(LIBRARY / "runs" / "store.py") & backends == set()
    assert {"bert_lab.runs.sqlite", "bert_lab.runs.postgres"} <= imports(LIBRARY / "runs" / "backends.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_librarys_modules_import_each_other_without_a_circle() -> None:
    """`spec` ↔ `search` ↔ `report` and `store` ↔ its backends once imported each other behind function-level
    imports; a circle like that hides which module is the lower one."""
    modules = {module_name(m): m for m in LIBRARY.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        named = imports(path) | {f"{n}.{a}" for n in imports(path) for a in _imported_names(path, n)}
        graph[name] = {
            m for m in named if m in modules and m not in (name, "bert_lab") and not name.startswith(m + ".")
        }
    order = list(graphlib.TopologicalSorter(graph).static_order())  # CycleError names the circle
    assert order.index("bert_lab.runs.store") < order.index("bert_lab.runs.backends")


def _imported_names(path: Path, module: str) -> set[str]:
    """The names `from module import …` takes in `path` (a submodule among them counts as imported)."""
    return {
        alias.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == module
        for alias in node.names
    }


# The library's parts, lowest floor first: a module may import its own part and the parts below it, never above.
FLOORS = ("core", "engine", "runs", "sweeps", "figures", "teaching", "processes", "doctor", "cli")


def part_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "bert_lab"


def test_every_part_imports_only_its_own_floor_and_those_below() -> None:
    """`ls bert_lab` is the map: each package one part, each import pointing down (`config` importing the run
    store's metric catalogue once ran back up a floor)."""
    modules = {module_name(m): m for m in LIBRARY.rglob("*.py")}
    parts = {part_of(m) for m in modules} - {"bert_lab", "__main__"}
    assert parts == set(FLOORS), "a part the floors do not place"
    upward = []
    for name, path in modules.items():
        if part_of(name) not in FLOORS:
            continue
        floor = FLOORS.index(part_of(name))
        for imported in imports(path):
            if imported.startswith("bert_lab.") and FLOORS.index(part_of(imported)) > floor:
                upward.append(f"{name} → {imported}")
    assert upward == []


def test_the_newcomers_map_names_every_part() -> None:
    """docs/architecture.md's tree lists each package of `bert_lab` (and nothing that is not there)."""
    text = (LIBRARY.parent / "docs" / "architecture.md").read_text()
    tree = text[text.index("bert_lab/") : text.index("\nbench/")]
    named = {line.split("/")[0].strip() for line in tree.splitlines()[1:] if line.startswith("  ") and "/" in line[:16]}
    packages = {p.name for p in LIBRARY.iterdir() if (p / "__init__.py").is_file()}
    assert named == packages
