"""Shareable links, as TensorFlow Playground does them: the launch page's settings live in the address (only the
fields that differ from the defaults), opening the link restores them, and `?hide=l1,l2` hides knobs for a
presenter. Pure functions over the query's text, tested without a browser. A workshop's sign-in token rides in the
same address (`workshop.TOKEN_PARAM`): it is no setting, and a shared link never carries it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from bert_lab.core.config import DEFAULTS, ConfigError, RunConfig, parse_field
from bert_lab.runs.workshop import TOKEN_PARAM

HIDE = "hide"
FIELDS = tuple(DEFAULTS)


def hidden(query: Mapping[str, str]) -> frozenset[str]:
    """The knobs `?hide=a,b` names (unknown names are ignored: nothing to hide)."""
    return frozenset(name.strip() for name in query.get(HIDE, "").split(",") if name.strip() in FIELDS)


def config_from_query(
    query: Mapping[str, str], *, allow: Callable[[Mapping[str, Any]], None] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The RunConfig fields the query sets, typed and checked together, and what was wrong with the rest (each
    named, then ignored: a stale or mistyped link still opens with everything else it says). `allow` refuses a
    model or dataset by raising ValueError (a workshop's rule: a link cannot bring in the server's files)."""
    fields, problems = {}, []
    for name, text in query.items():
        if name in (HIDE, TOKEN_PARAM):
            continue
        if name not in FIELDS:
            problems.append(f"{name}: not a setting")
            continue
        try:
            fields[name] = parse_field(name, text)
        except ValueError as exc:
            problems.append(str(exc))
    try:
        RunConfig(**fields)
    except ConfigError as exc:
        problems += [f"{name}: {message}" for name, message in exc.problems.items()]
        fields = {k: v for k, v in fields.items() if k not in exc.problems}
    for name in ("model", "dataset"):
        if allow is not None and name in fields:
            try:
                allow({**DEFAULTS, name: fields[name]})
            except ValueError as exc:
                problems.append(str(exc))
                del fields[name]
    return fields, problems


def query_from_config(config: RunConfig, *, hidden: Iterable[str] = ()) -> dict[str, str]:
    """The fields that differ from the defaults, as text (and the hidden knobs, so the link keeps hiding them)."""
    query = {k: _text(v) for k, v in config.to_dict().items() if v != DEFAULTS[k]}
    if hidden:
        query[HIDE] = ",".join(sorted(hidden))
    return query


def url(base: str | None, query: Mapping[str, str]) -> str:
    """The page's address (unknown outside a browser: then just the query) with `query`."""
    base = (base or "").split("?")[0]
    return f"{base}?{urlencode(query)}" if query else base


def _text(value: Any) -> str:
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
