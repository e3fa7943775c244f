"""The class lesson: in a workshop the host picks one lesson for the whole room, everyone predicts, the host runs it
once and reveals the result to all at the same moment (peer instruction: vote, then evidence, then the explanation).

The host opens it (`open_class`: an empty lesson group, so predictions have a home before any run exists), watches
the predictions come in, runs it (`run_class`: the lesson's runs queued into that group; a participant who runs the
same lesson later is answered from the cache), and reveals it (`reveal`). Until then a participant's pages leave the
group's runs out (`workshop.Settings.hides`) and the Lessons page shows only the prediction form. The state lives in
the workshop's settings (workshop.json), which every page and process of the lab reads.
"""

from __future__ import annotations

from dataclasses import replace

from bert_lab.runs import service, workshop
from bert_lab.runs.records import Group, Run
from bert_lab.runs.service import Lab
from bert_lab.runs.workshop import Actor, Settings
from bert_lab.teaching.lessons import LESSONS, Lesson


def class_lesson(lab: Lab) -> tuple[Group, Lesson] | None:
    """The class lesson now open, with its group (None when the host has opened none, or its group was deleted)."""
    group_id = Settings.read(lab.data).class_group
    if group_id is None:
        return None
    group = next((g for g in lab.store.list_groups() if g.id == group_id), None)
    slug = group.spec.get("lesson") if group is not None else None
    return (group, LESSONS[slug]) if group is not None and slug in LESSONS else None


def open_class(lab: Lab, lesson: Lesson, *, actor: Actor | None, model: str | None = None) -> Group:
    """Open `lesson` for the class (the host only): a new, empty group that the predictions belong to; the result is
    hidden from participants until `reveal`. Replaces any class lesson open before (its group stays, revealed)."""
    _host_only(actor, "open a class lesson")
    base = lesson.base if model is None else replace(lesson.base, model=model)
    spec = {"lesson": lesson.slug, "knobs": lesson.knobs, "seeds": lesson.seeds, "model": base.model}
    owner = "" if actor is None else actor.name
    group = lab.store.create_group(
        name=f"Class lesson: {lesson.title}", method="lesson", metric=lesson.metric, spec=spec, owner=owner
    )
    Settings.read(lab.data).update(lab.data, class_group=group.id, revealed=False)
    return group


def run_class(lab: Lab, *, actor: Actor | None) -> list[Run]:
    """Queue the class lesson's runs into its group (once: ValueError if they are queued already)."""
    _host_only(actor, "run the class lesson")
    found = class_lesson(lab)
    if found is None:
        raise ValueError("no class lesson is open: open one first")
    group, lesson = found
    if lab.store.list_runs(group_id=group.id):
        raise ValueError(f"the class lesson's runs are already queued (group {group.id})")
    pairs = lesson.configs(group.spec.get("model"))
    names = [f"{lesson.title}: {label}" for label, _ in pairs]
    return service.add_to_group(lab, group, [config for _, config in pairs], names)


def reveal(lab: Lab, *, actor: Actor | None) -> Settings:
    """Show the class lesson's result to every participant (their pages see it at their next refresh)."""
    _host_only(actor, "reveal the class lesson")
    if class_lesson(lab) is None:
        raise ValueError("no class lesson is open: nothing to reveal")
    return Settings.read(lab.data).update(lab.data, revealed=True)


def close_class(lab: Lab, *, actor: Actor | None) -> Settings:
    """End the class lesson: participants' Lessons pages go back to their own choice. Its group and runs stay (and
    become everyone's to see, like any run)."""
    _host_only(actor, "close the class lesson")
    return Settings.read(lab.data).update(lab.data, class_group=None, revealed=False)


def _host_only(actor: Actor | None, verb: str) -> None:
    if actor is not None and not actor.host:
        raise workshop.NotAllowedError(f"only the host can {verb}")
