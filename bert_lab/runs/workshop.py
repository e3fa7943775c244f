"""Workshop mode: many participants on one lab, each acting on their own runs, the host on all of them.

A lab is in workshop mode when `$BERT_LAB_PASSCODE` is set (spaces alone are no passcode; `bert-lab app --workshop` and
`lab_ui.serve` refuse to serve a workshop without both passcodes, told apart: `problems()`). The app asks every browser
for that passcode and a name, and the name owns the runs that browser launches: it is claimed for the workshop
(`runs/names.py`; look-alikes count as the same name), and the browser keeps a signed token in its address (`token`,
`signed_in`) so reloads and new tabs stay signed in, until the host releases the name. Wrong passcodes from one client
make it wait longer each time (`Tries`). Whoever enters `$BERT_LAB_HOST_PASSCODE` is the host. A participant's config
names no file or folder of the server (`check_config`, called by every service verb that stores a config). The host's
settings (the cap on each participant's queued runs, a paused queue) live in the data folder's `workshop.json`, where
the worker and every page read them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from bert_lab.core.config import MINILM_ALIASES
from bert_lab.core.layout import DataFolder
from bert_lab.runs import names
from bert_lab.runs.describe import owner_label
from bert_lab.runs.records import Run
from bert_lab.runs.status import Status

PASSCODE_ENV, HOST_PASSCODE_ENV = "BERT_LAB_PASSCODE", "BERT_LAB_HOST_PASSCODE"
MAX_NAME = 40
UPLOAD_LIMIT_MB = 5  # a participant's CSV upload, in workshop mode
OFFERED_MODELS = ("minilm", "tiny")  # the only models a participant may name (the launch page's two choices)
TOKEN_PARAM = "signin"  # the page address's query parameter that holds a browser's sign-in token
FREE_TRIES = 3  # wrong passcodes a client may give before it has to wait
FIRST_WAIT_S, MAX_WAIT_S = 5.0, 300.0  # the wait after the first wrong passcode past the free ones; doubling up to this


class NotAllowedError(PermissionError):
    """An action on a run its actor may not touch; the message names the run and its owner."""


class QueueFullError(ValueError):
    """A participant already has as many runs queued as the host allows."""


class ServerPathError(ValueError):
    """A participant's config names a file or folder of the server (a model or dataset path)."""


class TooManyTriesError(ValueError):
    """A client gave too many wrong passcodes lately; the message says when it may try again."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a participant (by name) or the host. Outside workshop mode there is no actor: anyone acts on all."""

    name: str
    host: bool = False

    def may_change(self, owner: str) -> bool:
        """Whether this actor may change what `owner` owns (a run, a group)."""
        return self.host or owner == self.name

    def may_read(self, run: Run) -> bool:
        """Whether this actor may read the texts `run` trained and was evaluated on (its mistakes, its evaluation
        report, its model zip): a bundled dataset's are everyone's, an upload's only its owner's (and the host's)."""
        from bert_lab.engine.data import BUNDLED

        return self.may_change(run.owner) or str(run.config.get("dataset")) in BUNDLED

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
    class_group: str | None = None  # the class lesson's group: every participant predicts on it (teaching/classroom)
    revealed: bool = False  # the host revealed the class lesson's result: participants see it from now on

    @classmethod
    def read(cls, data: DataFolder) -> Settings:
        try:
            stored = json.loads(data.workshop.read_text())
            group = stored.get("class_group")
            return cls(
                queue_cap=int(stored["queue_cap"]),
                paused=bool(stored["paused"]),
                class_group=str(group) if group else None,
                revealed=bool(stored.get("revealed", False)),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return cls()

    def hides(self, actor: Actor | None) -> set[str]:
        """The groups whose runs `actor` may not see yet: the class lesson's, for a participant, until it is
        revealed (its runs would tell the result before the host does)."""
        if actor is None or actor.host or self.class_group is None or self.revealed:
            return set()
        return {self.class_group}

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


# --- passcodes -------------------------------------------------------------------------------------------------------
def passcode(env: str) -> str:
    """The passcode in environment variable `env`, stripped: "" (no passcode) when unset or only spaces."""
    return os.environ.get(env, "").strip()


def enabled() -> bool:
    """Workshop mode: a participants' passcode is set (after stripping)."""
    return bool(passcode(PASSCODE_ENV))


def requested() -> bool:
    """Whether the environment asks for a workshop: either passcode variable holds anything, even only spaces."""
    return any(os.environ.get(env, "") for env in (PASSCODE_ENV, HOST_PASSCODE_ENV))


def problems() -> list[str]:
    """Why this environment cannot serve a workshop ([] when it can): both passcodes set, not spaces, not equal."""
    found = []
    for env, whose_ in ((PASSCODE_ENV, "participants'"), (HOST_PASSCODE_ENV, "host's")):
        if not passcode(env):
            state = "only spaces" if os.environ.get(env, "") else "not set"
            found.append(f"${env} (the {whose_} passcode) is {state}")
    if passcode(PASSCODE_ENV) and passcode(PASSCODE_ENV) == passcode(HOST_PASSCODE_ENV):
        found.append(f"${PASSCODE_ENV} and ${HOST_PASSCODE_ENV} must differ")
    return found


# --- signing in -------------------------------------------------------------------------------------------------------
def sign_in(passcode_: str, name: str, data: DataFolder, *, client: str = "") -> Actor:
    """The actor for a passcode and a name, its name claimed for this workshop; ValueError saying what is wrong (never
    which passcode was close): a wrong passcode (`client` then waits longer each time: TooManyTriesError), a missing
    or long name, or a name another browser holds (names.NameTakenError)."""
    if not enabled():
        raise ValueError("this lab is not running a workshop: there is nothing to sign in to")
    TRIES.check(data, client)
    name, given = names.clean(name), passcode_.strip().encode()
    if passcode(HOST_PASSCODE_ENV) and hmac.compare_digest(given, passcode(HOST_PASSCODE_ENV).encode()):
        actor = Actor(name or "host", host=True)
    elif hmac.compare_digest(given, passcode(PASSCODE_ENV).encode()):
        actor = Actor(name)
    else:
        TRIES.failed(data, client)
        raise ValueError("that passcode is not this workshop's")
    TRIES.forget(data, client)
    if not actor.host and names.key(actor.name) == "host":
        raise names.NameTakenError("the name 'host' is the host's: pick another")
    if not actor.name:
        raise ValueError("enter your name: it marks your runs")
    if len(actor.name) > MAX_NAME:
        raise ValueError(f"a name of at most {MAX_NAME} characters, please")
    names.claim(data, actor.name, host=actor.host)
    return actor


def token(data: DataFolder, actor: Actor) -> str:
    """The token that signs `actor` in again (kept in the page's address): its name and claim, signed."""
    held = names.holder(data, actor.name)
    if held is None:
        raise ValueError(f"the name {actor.name!r} is not claimed in this workshop")
    payload = f"{held.claim}.{base64.urlsafe_b64encode(held.name.encode()).decode().rstrip('=')}"  # URL-clean
    return f"{payload}.{_mac(data, payload)}"


def signed_in(data: DataFolder, token_: str) -> Actor | None:
    """The actor a token signs in: None unless its signature holds (this workshop's passcodes and secret) and its
    name is still claimed by the same claim (a released name's old tokens sign nobody in)."""
    payload, _, mac = token_.rpartition(".")
    if not enabled() or not payload or not hmac.compare_digest(mac.encode(), _mac(data, payload).encode()):
        return None
    claim, _, encoded = payload.partition(".")
    try:
        name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except ValueError:
        return None
    held = names.holder(data, name)
    if held is None or not hmac.compare_digest(held.claim.encode(), claim.encode()):
        return None
    return Actor(held.name, host=held.host)


def release(data: DataFolder, name: str) -> bool:
    """Free a claimed name (the host's button): whoever held it is signed out at their next page view, and the name
    (with its runs) can be claimed again. False if it was not claimed."""
    return names.release(data, name)


def _mac(data: DataFolder, payload: str) -> str:
    """HMAC-SHA256 of `payload` under a key from this workshop's passcodes and the data folder's random secret."""
    material = f"{passcode(PASSCODE_ENV)}\0{passcode(HOST_PASSCODE_ENV)}".encode()
    key = hmac.new(_secret(data), material, hashlib.sha256).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()[:32]


def _secret(data: DataFolder) -> bytes:
    """The data folder's signing secret, made once (32 random bytes, readable by its owner only)."""
    path = data.workshop_secret
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}")
        tmp.write_bytes(secrets.token_bytes(32))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # atomic, and the first process to make it wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


@dataclass
class Tries:
    """Wrong passcodes per client (its address) in this process, which serves every browser: after `FREE_TRIES`, a
    client waits `FIRST_WAIT_S`, then twice as long after each further wrong one, up to `MAX_WAIT_S`."""

    failures: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, data: DataFolder, client: str, now: float | None = None) -> None:
        """TooManyTriesError saying how long to wait, while `client` must wait."""
        _, until = self.failures.get((str(data.root), client), (0, 0.0))
        wait_s = until - (time.time() if now is None else now)
        if wait_s > 0:
            raise TooManyTriesError(f"too many wrong passcodes from here: try again in {math.ceil(wait_s)} s")

    def failed(self, data: DataFolder, client: str, now: float | None = None) -> None:
        with self.lock:
            count, _ = self.failures.get((str(data.root), client), (0, 0.0))
            count += 1
            wait_s = 0.0 if count < FREE_TRIES else min(MAX_WAIT_S, FIRST_WAIT_S * 2 ** (count - FREE_TRIES))
            self.failures[(str(data.root), client)] = (count, (time.time() if now is None else now) + wait_s)

    def forget(self, data: DataFolder, client: str) -> None:
        with self.lock:
            self.failures.pop((str(data.root), client), None)


TRIES = Tries()


# --- what a participant may name -------------------------------------------------------------------------------------
def check_config(config: Mapping[str, object], data: DataFolder, actor: Actor | None) -> None:
    """ServerPathError unless `config` names nothing of the server's, when a participant (not the host; no actor:
    the operator) submits it in a workshop: the model one of `OFFERED_MODELS`, the dataset a bundled one or the
    participant's own upload. The message is the same whether a named path exists or not."""
    if actor is None or actor.host or not enabled():
        return
    from bert_lab.engine.data import BUNDLED  # numpy: only when a participant submits

    found = []
    if str(config.get("model", "")).lower() not in {*OFFERED_MODELS, *MINILM_ALIASES}:
        found.append(f"model: a workshop offers {' and '.join(OFFERED_MODELS)} only, not a folder or another name")
    dataset = str(config.get("dataset", ""))
    if dataset not in BUNDLED and not _own_upload(data, actor.name, dataset):
        found.append("dataset: a bundled dataset or a CSV you upload; the server's files are out of reach")
    if found:
        raise ServerPathError("; ".join(found))


def _own_upload(data: DataFolder, owner: str, dataset: str) -> bool:
    """Whether `dataset` is a CSV in `owner`'s uploads (as written and with links followed)."""
    mine = data.uploads_of(owner)
    written = Path(os.path.abspath(dataset))
    return written.parent == Path(os.path.abspath(mine)) and Path(dataset).resolve().parent == mine.resolve()


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


RANKED_BY = ("accuracy", "f1")  # the leaderboard's order: accuracy, then F1 between equals


def leaderboard(runs: Sequence[Run], latest: Mapping[int, Mapping[str, float]]) -> dict[str, list[dict[str, object]]]:
    """Per dataset, each participant's best finished run by accuracy (then F1), best first, with the settings that
    got it (runs without an owner count as one participant, "nobody"). An LR range test is no entry: its scores come
    from a model its rising learning rate blew up."""
    best: dict[str, dict[str, tuple[tuple[float, ...], Run]]] = {}
    for run in runs:
        scores = latest.get(run.id, {})
        if run.status != Status.FINISHED or RANKED_BY[0] not in scores or run.is_range_test:
            continue
        dataset = Path(str(run.config.get("dataset", ""))).name
        mine = tuple(scores.get(name, float("nan")) for name in RANKED_BY)
        current = best.setdefault(dataset, {}).get(run.owner)
        if current is None or mine > current[0]:
            best[dataset][run.owner] = (mine, run)
    return {
        dataset: [
            {
                "participant": owner_label(owner),
                **dict(zip(RANKED_BY, ranked)),
                "run": run.id,
                "settings": settings_of(run.config),
            }
            for owner, (ranked, run) in sorted(by_owner.items(), key=lambda item: item[1][0], reverse=True)
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
