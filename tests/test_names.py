"""Workshop names (`runs/names.py`): look-alikes share a key; a name is claimed once, in a file every process reads."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from bert_lab.core.layout import DataFolder
from bert_lab.runs import names


@pytest.mark.parametrize(
    "look_alike",
    [
        "Ana",
        " ana ",
        "ana\u200b",  # zero-width space
        "a\u200dna",  # zero-width joiner
        "\u202eana",  # right-to-left override
        "\u0430na",  # Cyrillic а
        "an\u03b1",  # Greek α
        "ＡＮＡ",  # full-width letters (NFKC)
        "\U0001d41a\U0001d427\U0001d41a",  # mathematical bold letters (NFKC)
    ],
)
def test_look_alikes_share_a_key(look_alike: str) -> None:
    assert names.key(look_alike) == names.key("ana") == "ana"


def test_different_names_keep_different_keys_and_show_as_typed() -> None:
    assert len({names.key(n) for n in ("ana", "anna", "ana b", "bea")}) == 4
    assert names.clean("  Ana\u200b   B\u202e ") == "Ana B"


def _claim(folder: str, name: str) -> str:
    try:
        return names.claim(DataFolder(Path(folder)), name).claim
    except names.NameTakenError:
        return ""


def test_one_of_many_processes_claiming_a_name_at_once_gets_it(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        got = pool.starmap(_claim, [(str(tmp_path), name) for name in ("ana", "Ana", "\u0430na", "ANA")])
    assert len([g for g in got if g]) == 1
    assert list(names.claims(DataFolder(tmp_path))) == ["ana"]


def test_a_released_name_can_be_claimed_again_with_a_new_claim(tmp_path: Path) -> None:
    data = DataFolder(tmp_path)
    first = names.claim(data, "Ana")
    with pytest.raises(names.NameTakenError, match="'Ana' is taken"):
        names.claim(data, "ana")
    assert names.release(data, "ANA") and names.holder(data, "ana") is None
    assert names.claim(data, "ana").claim != first.claim


def test_a_claim_is_frozen_and_release_of_a_free_name_is_false(tmp_path: Path) -> None:
    import dataclasses

    data = DataFolder(tmp_path / "not" / "made" / "yet")  # the first claim makes the folder
    held = names.claim(data, "Ana")
    with pytest.raises(dataclasses.FrozenInstanceError):
        held.host = True  # type: ignore[misc]
    assert names.release(data, "bea") is False and names.release(data, "ana") is True


def test_a_claim_written_without_host_or_time_is_a_participants(tmp_path: Path) -> None:
    data = DataFolder(tmp_path)
    data.names.write_text('{"ana": {"name": "Ana", "claim": "c1"}}')  # as an older lab wrote it
    assert names.holder(data, "ANA") == names.Claim("Ana", "c1", host=False, at=0.0)
