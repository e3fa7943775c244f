"""User text (run names, owners, CSV cells, errors) kept as text wherever markdown would read it: a page's label, a
model card."""

from __future__ import annotations

import re

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md(text: str) -> str:
    """`text` escaped so that markdown shows it as typed."""
    return _MARKDOWN.sub(r"\\\1", str(text))
