from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test gets its own data folder; the tokenization cache is shared by the session (it is content-keyed).
    Pages never start a background worker on their own in tests (a Streamlit thread left over from one test must not
    start one in another test's folder); tests that want a worker start it themselves."""
    monkeypatch.setenv("BERT_LAB_HOME", str(tmp_path / "lab_data"))
    monkeypatch.setenv("BERT_LAB_NO_AUTOSTART", "1")
    monkeypatch.setenv("BERT_LAB_CACHE", str(tmp_path_factory.getbasetemp() / "token-cache"))
