"""User text: escaped for markdown, names cleaned of direction controls, capped, and shortened for labels."""

from __future__ import annotations

import pytest

from bert_lab.core.text import (
    DIRECTION_CONTROLS,
    MAX_NAME_CHARS,
    TextTooLongError,
    checked_name,
    clean_name,
    md,
    shorten,
)


def test_md_escapes_what_markdown_would_read() -> None:
    assert md("**bold** [link](x)") == "\\*\\*bold\\*\\* \\[link\\]\\(x\\)"


def test_every_direction_control_is_taken_out_of_a_name() -> None:
    for control in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f":
        assert control in DIRECTION_CONTROLS
        assert clean_name(f"ab{control}c") == "abc"
    assert clean_name("\u202eexe.txt") == "exe.txt"  # not shown reversed as "txt.exe"
    assert clean_name(" two\twords\nand\x1b[31m red ") == "two words and [31m red"  # controls become spaces
    assert clean_name("élan 🚀 naïve") == "élan 🚀 naïve"  # letters and emoji stay


def test_a_name_past_the_cap_is_refused_naming_its_field() -> None:
    assert checked_name("x" * MAX_NAME_CHARS) == "x" * MAX_NAME_CHARS
    assert checked_name("\u202e" * 10 + "y" * MAX_NAME_CHARS) == "y" * MAX_NAME_CHARS  # counted once cleaned
    with pytest.raises(TextTooLongError, match="^owner: at most 80 characters \\(this one has 81\\)$"):
        checked_name("z" * 81, "owner")
    assert issubclass(TextTooLongError, ValueError)


def test_shorten_keeps_the_start_and_the_end_around_an_ellipsis() -> None:
    assert shorten("short") == "short"
    assert shorten("abcdefghij", 7) == "abc…hij"
    assert shorten("abcdefghijk", 6) == "ab…ijk"
    cut = shorten("grid lr × batch_size × dropout lr=0.0001 batch_size=32 dropout=0.1 seed 1")
    assert len(cut) == 60 and cut.endswith("dropout=0.1 seed 1")
