from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from local_postgres import LocalPostgres
    from streamlit.testing.v1 import AppTest

    from bert_lab.runs.service import Lab

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test gets its own data folder; the tokenization cache is shared by the session (it is content-keyed).
    Pages never start a background worker on their own in tests (a Streamlit thread left over from one test must not
    start one in another test's folder); tests that want a worker start it themselves."""
    monkeypatch.setenv("BERT_LAB_HOME", str(tmp_path / "lab_data"))
    monkeypatch.setenv("BERT_LAB_NO_AUTOSTART", "1")
    monkeypatch.setenv("BERT_LAB_CACHE", str(tmp_path_factory.getbasetemp() / "token-cache"))


@pytest.fixture
def lab() -> Iterator[Lab]:
    """The test's lab: its SQLite store in the test's own data folder (the one the pages and workers open too)."""
    from bert_lab.runs.service import Lab

    with Lab.open() as opened:
        yield opened


@pytest.fixture
def open_page() -> Callable[..., AppTest]:
    """`open_page(page, state, timeout)`: an AppTest of the app on `page` (a path like `pages/1_Runs.py`) after
    setting session `state`, already run and free of exceptions."""
    from streamlit.testing.v1 import AppTest

    def open_(page: str = "app.py", state: dict[str, Any] | None = None, timeout: float = 60) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
        if page != "app.py":
            at.run()
            at.switch_page(page)
        for key, value in (state or {}).items():
            at.session_state[key] = value
        at.run()
        assert not at.exception, at.exception
        return at

    return open_


@pytest.fixture(params=["sqlite", "postgresql"])
def each_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test runs twice: on the data folder's SQLite store, then on a new PostgreSQL database (`$BERT_LAB_STORE`,
    which the pages, the `lab` fixture and any subprocess open). Pages ask only the store interface: they must
    behave the same on each. Use it before `lab` (a module's `pytestmark` does)."""
    if request.param == "postgresql":
        monkeypatch.setenv("BERT_LAB_STORE", request.getfixturevalue("postgres_database"))
    return request.param


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    """A real PostgreSQL server for the session: the binaries of the PyPI package `pgserver`, in a temporary folder,
    on a loopback TCP port (tests/local_postgres.py). If it cannot start, the tests that need it fail (never skip)."""
    from local_postgres import LocalPostgres

    server = LocalPostgres(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


@pytest.fixture
def postgres_database(postgres_server: LocalPostgres) -> str:
    """The URL of a new, empty database on the session's PostgreSQL server."""
    return postgres_server.create_database()
