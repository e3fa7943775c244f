"""Workshop mode: many participants on one lab, each acting on their own runs, the host on all of them.

A lab is in workshop mode when `$BERT_LAB_PASSCODE` is set (`make workshop` refuses to start without it): the app
asks every browser session for that passcode and a name, and the name owns the runs that session launches. Whoever
enters `$BERT_LAB_HOST_PASSCODE` is the host. The host's settings (the cap on each participant's queued runs, a paused
queue) live in the data folder's `workshop.json`, where the worker and every page read them.
"""

from __future__ import annotations

import hmac
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bert_lab.runs.describe import owner_label
from bert_lab.runs.layout import DataFolder
from bert_lab.runs.records import Run
from bert_lab.runs.status import Status

PASSCODE_ENV, HOST_PASSCODE_ENV = "BERT_LAB_PASSCODE", "BERT_LAB_HOST_PASSCODE"
MAX_NAME = 40
UPLOAD_LIMIT_MB = 5  # a participant's CSV upload, in workshop mode


class NotAllowedError(PermissionError):
    """An action on a run its actor may not touch; the message names the run and its owner."""


class QueueFullError(ValueError):
    """A participant already has as many runs queued as the host allows."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a participant (by name) or the host. Outside workshop mode there is no actor: anyone acts on all."""

    name: str
    host: bool = False

    def may_change(self, owner: str) -> bool:
        """Whether this actor may change what `owner` owns (a run, a group)."""
        return self.host or owner == self.name

    def check(self, owner: str, thing: str, verb: str) -> None:
        """NotAllowedError naming `thing` ("run 5") and its owner, unless this actor may `verb` it."""
        if not self.may_change(owner):
            raise NotAllowedError(f"{thing} {whose(owner)} can {verb} it")


def whose(owner: str) -> str:
    """Whose a run or group is and who may change it: "belongs to Ana: only Ana or the host" ("belongs to nobody:
    only the host" for one launched without an owner)."""
    return f"belongs to {owner_label(owner)}: only {owner + ' or ' if owner else ''}the host"


@dataclass(frozen=True)
class Settings:
    queue_cap: int = 24  # queued runs per participant: a sweep of 8 configs × 3 seeds fits
    paused: bool = False  # the worker starts nothing while the host has paused the queue

    @classmethod
    def read(cls, data: DataFolder) -> Settings:
        try:
            stored = json.loads(data.workshop.read_text())
            return cls(queue_cap=int(stored["queue_cap"]), paused=bool(stored["paused"]))
        except (OSError, ValueError, KeyError, TypeError):
            return cls()

    def write(self, data: DataFolder) -> None:
        tmp = data.workshop.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(data.workshop)

    def update(self, data: DataFolder, **changes: object) -> Settings:
        new = replace(self, **changes)
        if new.queue_cap < 1:
            raise ValueError(f"queue cap: must be at least 1, got {new.queue_cap}")
        new.write(data)
        return new


def enabled() -> bool:
    """Workshop mode: a participants' passcode is set."""
    return bool(os.environ.get(PASSCODE_ENV, "").strip())


def sign_in(passcode: str, name: str) -> Actor:
    """The actor for a passcode and a name, or ValueError saying what is wrong (never which passcode was close)."""
    if not enabled():
        raise ValueError("this lab is not running a workshop: there is nothing to sign in to")
    name = " ".join(name.split())
    given = passcode.strip().encode()
    host = os.environ.get(HOST_PASSCODE_ENV, "").strip().encode()
    if host and hmac.compare_digest(given, host):
        return Actor(name or "host", host=True)
    if not hmac.compare_digest(given, os.environ.get(PASSCODE_ENV, "").strip().encode()):
        raise ValueError("that passcode is not this workshop's")
    if not name:
        raise ValueError("enter your name: it marks your runs")
    if len(name) > MAX_NAME:
        raise ValueError(f"a name of at most {MAX_NAME} characters, please")
    return Actor(name)


# --- what the host sees ---------------------------------------------------------------------------------------------
def participants(runs: Sequence[Run]) -> list[dict[str, object]]:
    """One row per owner, most runs first: how many of their runs are in each status."""
    counts: dict[str, Counter[str]] = {}
    for run in runs:
        counts.setdefault(run.owner, Counter())[str(run.status)] += 1
    return [
        {"participant": owner, "runs": sum(c.values()), **{str(s): c.get(str(s), 0) for s in Status}}
        for owner, c in sorted(counts.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    ]


def leaderboard(runs: Sequence[Run], latest: Mapping[int, Mapping[str, float]]) -> dict[str, list[dict[str, object]]]:
    """Per dataset, each participant's best finished run by accuracy (then F1), best first, with the settings that
    got it (runs without an owner count as one participant, "nobody")."""
    best: dict[str, dict[str, tuple[float, float, Run]]] = {}
    for run in runs:
        scores = latest.get(run.id, {})
        if run.status != Status.FINISHED or "accuracy" not in scores:
            continue
        dataset = Path(str(run.config.get("dataset", ""))).name
        mine = (scores["accuracy"], scores.get("f1", float("nan")), run)
        current = best.setdefault(dataset, {}).get(run.owner)
        if current is None or mine[:2] > current[:2]:
            best[dataset][run.owner] = mine
    return {
        dataset: [
            {
                "participant": owner_label(owner),
                "accuracy": acc,
                "f1": f1,
                "run": run.id,
                "settings": settings_of(run.config),
            }
            for owner, (acc, f1, run) in sorted(by_owner.items(), key=lambda item: item[1][:2], reverse=True)
        ]
        for dataset, by_owner in sorted(best.items())
    }


def settings_of(config: Mapping[str, object]) -> str:
    """The knobs that matter most, in one line: model, optimizer and learning rate, schedule, batch, data size."""
    c = config
    return (
        f"{Path(str(c.get('model'))).name} · {c.get('optimizer')} lr {float(c.get('lr', 0)):.0e} · "  # type: ignore[arg-type]
        f"{c.get('schedule')} · batch {c.get('batch_size')} · {c.get('train_size')} examples × "
        f"{c.get('num_epochs')} epoch(s) · seed {c.get('seed')}"
    )
