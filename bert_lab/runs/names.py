"""Workshop names: a name is an identity. Each name is claimed once per workshop (the data folder's `names.json`,
where every process sees it), and look-alikes of a claimed name count as that name: `ana`, `Ana`, `ana` with a
zero-width space and `аna` with a Cyrillic а are one person.

Two names are the same when their keys are: Unicode NFKC (full-width and styled letters become plain ones),
casefolded, invisible and direction-control characters removed (category Cf: zero-width spaces, joiners, bidi
marks), letters of other scripts that look Latin mapped to the Latin letter (`CONFUSABLES`, after Unicode's
confusables list for Cyrillic and Greek), and runs of spaces made one.
"""

from __future__ import annotations

import fcntl
import json
import secrets
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from bert_lab.core.layout import DataFolder

# Cyrillic and Greek letters (lowercase: keys are casefolded first) drawn like a Latin one; digits like letters.
CONFUSABLES = str.maketrans(
    {
        **dict(zip("авгԁеёһіјкӏмнопрԛѕтуѵԝхѡь", "abrdeehijklmhonpqstyvwxwb")),  # Cyrillic
        **dict(zip("αβγεηικνορτυχωϲϳ", "abyenikvoptuxwcj")),  # Greek
        "ı": "i",
        "ɑ": "a",
        "ɡ": "g",
        "0": "o",
        "1": "l",
        "|": "l",
    }
)


class NameTakenError(ValueError):
    """The name (or one that looks the same) belongs to another browser in this workshop."""


@dataclass(frozen=True)
class Claim:
    """A claimed name: as typed (cleaned), its claim id (in the holder's token), the host's or a participant's."""

    name: str
    claim: str
    host: bool = False
    at: float = 0.0  # when it was claimed (s since the epoch)


def clean(name: str) -> str:
    """The name as shown: NFKC, without invisible or control characters, one space between words."""
    kept = "".join(c for c in unicodedata.normalize("NFKC", name) if unicodedata.category(c) not in ("Cf", "Cc"))
    return " ".join(kept.split())


def key(name: str) -> str:
    """What two names share when they look the same (see the module's docstring)."""
    folded = clean(name).casefold().translate(CONFUSABLES)
    return " ".join(unicodedata.normalize("NFKC", folded).split())


def claims(data: DataFolder) -> dict[str, Claim]:
    """Every claimed name by its key (none when the file is missing or unreadable)."""
    try:
        stored = json.loads(data.names.read_text())
        return {k: Claim(**v) for k, v in stored.items()}
    except (OSError, ValueError, TypeError):
        return {}


def holder(data: DataFolder, name: str) -> Claim | None:
    """The claim on `name` or a look-alike of it, if any."""
    return claims(data).get(key(name))


def claim(data: DataFolder, name: str, *, host: bool = False) -> Claim:
    """Claim `name` for a new browser: a fresh claim id. NameTakenError if it (or a look-alike) is claimed, unless
    both are the host's (the host passcode proves who the host is, on every device)."""
    with _locked(data):
        current = claims(data)
        held = current.get(key(name))
        if held is not None and not (host and held.host):
            raise NameTakenError(
                f"the name {held.name!r} is taken in this workshop (names that look the same count as one): pick "
                "another, or ask the host to release it if it is yours"
            )
        new = held or Claim(clean(name), secrets.token_hex(8), host, time.time())
        _write(data, {**current, key(name): new})
        return new


def release(data: DataFolder, name: str) -> bool:
    """Free `name` (the host's button): its holder's token no longer signs anyone in. False if it was not claimed."""
    with _locked(data):
        current = claims(data)
        if current.pop(key(name), None) is None:
            return False
        _write(data, current)
        return True


def _write(data: DataFolder, current: dict[str, Claim]) -> None:
    tmp = data.names.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: asdict(c) for k, c in current.items()}))
    tmp.replace(data.names)


@contextmanager
def _locked(data: DataFolder) -> Iterator[None]:
    """One process at a time reads, changes and writes the claims."""
    data.root.mkdir(parents=True, exist_ok=True)
    with open(data.names.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
