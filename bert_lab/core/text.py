"""User text (run names, owners, CSV cells, errors) kept as text wherever markdown would read it: a page's label, a
model card; and names kept readable: direction controls out, a cap on their length, labels shortened."""

from __future__ import annotations

import re
import unicodedata

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")
MAX_NAME_CHARS = 80  # a run's, a group's or an owner's name: past this it fills every legend
LABEL_CHARS = 60  # a run's label in legends, tables and pickers: a longer one loses its middle to "…"
# Bidirectional controls: embeddings and overrides (U+202A–U+202E: U+202E shows "abc" as "cba"), isolates
# (U+2066–U+2069), the left-to-right, right-to-left and Arabic letter marks (U+200E, U+200F, U+061C).
DIRECTION_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


class TextTooLongError(ValueError):
    """A name longer than its field allows; the message names the field."""


def md(text: str) -> str:
    """`text` escaped so that markdown shows it as typed."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def clean_name(text: str) -> str:
    """A name as it is stored and shown: direction controls out (a right-to-left override would reverse it on every
    page), control characters (newlines, tabs, escapes) made spaces, one space between words."""
    kept = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text if c not in DIRECTION_CONTROLS)
    return " ".join(kept.split())


def checked_name(text: str, field: str = "name", max_chars: int = MAX_NAME_CHARS) -> str:
    """`clean_name(text)`, or TextTooLongError naming `field` when that is longer than `max_chars` (a name a person
    typed: they are told, not cut)."""
    name = clean_name(text)
    if len(name) > max_chars:
        raise TextTooLongError(f"{field}: at most {max_chars} characters (this one has {len(name)})")
    return name


def shorten(text: str, max_chars: int = LABEL_CHARS) -> str:
    """`text` in at most `max_chars` characters: a longer one keeps its start and its end (where a sweep's run names
    differ) around "…"."""
    if len(text) <= max_chars:
        return text
    head = (max_chars - 1) // 2
    tail = max_chars - 1 - head
    return text[:head].rstrip() + "…" + text[len(text) - tail :].lstrip()
