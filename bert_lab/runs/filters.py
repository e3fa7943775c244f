"""Which runs a list shows: by status, dataset, group, owner and tag, each a set of values (a run must match one
value of every dimension that has any), written into a page's address so that a filtered list can be shared.

The address carries each dimension as a repeated query parameter (`?status=finished&status=failed&tag=keep`), with
the words a person reads: a status, a dataset's file name, a group's id, an owner's name ("nobody" for a run
launched without one), a tag.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import PurePath

from bert_lab.runs.describe import owner_label
from bert_lab.runs.records import Run

DIMENSIONS = ("status", "dataset", "group", "owner", "tag")


def values_of(run: Run) -> dict[str, tuple[str, ...]]:
    """What `run` is, in each dimension (a run has any number of tags, one value of everything else)."""
    return {
        "status": (str(run.status),),
        "dataset": (PurePath(str(run.config.get("dataset", ""))).name,),
        "group": (run.group_id or "",),
        "owner": (owner_label(run.owner),),
        "tag": run.tags,
    }


@dataclass(frozen=True)
class RunFilter:
    """The values a run may have in each dimension; an empty one lets every run through."""

    status: frozenset[str] = frozenset()
    dataset: frozenset[str] = frozenset()
    group: frozenset[str] = frozenset()
    owner: frozenset[str] = frozenset()
    tag: frozenset[str] = frozenset()

    @classmethod
    def from_query(cls, get_all: Callable[[str], Iterable[str]]) -> RunFilter:
        """The filter an address holds (`get_all`: a query parameter's values, as `st.query_params.get_all`)."""
        return cls(**{name: frozenset(v for v in get_all(name) if v) for name in DIMENSIONS})

    def to_query(self) -> dict[str, list[str]]:
        """The address's query parameters for this filter (sorted, so that one filter has one address)."""
        return {name: sorted(getattr(self, name)) for name in DIMENSIONS if getattr(self, name)}

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def keeps(self, run: Run) -> bool:
        return all(not (wanted := getattr(self, name)) or wanted & set(have) for name, have in values_of(run).items())

    def apply(self, runs: Iterable[Run]) -> list[Run]:
        return [run for run in runs if self.keeps(run)]


def choices(runs: Iterable[Run], chosen: RunFilter) -> dict[str, list[str]]:
    """Each dimension's values among `runs`, sorted, plus any `chosen` value no run has now (an address names it)."""
    found: dict[str, set[str]] = {name: set(getattr(chosen, name)) for name in DIMENSIONS}
    for run in runs:
        for name, have in values_of(run).items():
            found[name].update(v for v in have if v or name != "group")
    return {name: sorted(values) for name, values in found.items()}


def group_names(groups: Mapping[str, str]) -> Callable[[str], str]:
    """How a group id is shown in a filter: its group's name and the id's start (names repeat; ids do not)."""
    return lambda group_id: f"{groups.get(group_id, 'a deleted group')} ({group_id[:6]})"
