"""Lessons: one concept of fine-tuning each, taught by a small group of runs that shows its effect in about two minutes
on a 2-core CPU. A lesson says the concept in plain words, its formula, what to look for; one click queues its runs as
a group; once they finish, `reading` puts what happened in numbers, and says so when a gap is within seed noise.

Settings are chosen for the slower kind of CPU (AVX2, fp32: MiniLM trains about 25-35 samples/s there): short
sequences, a few hundred examples, and effects large enough to show in one run each (or seeds, where noise is the
lesson). Every lesson here was run on this project's machines and showed its effect (README, "Lessons").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from bert_lab.config import RunConfig
from bert_lab.runs.metrics import METRICS
from bert_lab.runs.records import Group
from bert_lab.runs.service import Lab, submit_group
from bert_lab.sweeps.report import ConfigResult, GroupReport

QUICK = RunConfig(dataset="rotten_tomatoes", train_size=800, eval_size=400, max_length=48, batch_size=16)


@dataclass(frozen=True)
class Lesson:
    slug: str
    title: str
    concept: str  # plain words, a short paragraph
    formula: str  # LaTeX for st.latex
    look_for: str
    base: RunConfig
    arms: tuple[tuple[str, dict[str, Any]], ...]  # (what a person calls it, the changes to the base)
    seeds: int = 1
    metric: str = "f1"

    def configs(self, model: str | None = None) -> list[tuple[str, RunConfig]]:
        """Every run of the lesson: each arm with each seed (on `model` instead of the lesson's, e.g. the tiny demo
        BERT to see the mechanics in seconds; the effect itself needs the pretrained model)."""
        base = self.base if model is None else replace(self.base, model=model)
        return [
            (f"{label} · seed {base.seed + i}", replace(base, **changes, seed=base.seed + i))
            for label, changes in self.arms
            for i in range(self.seeds)
        ]

    def arm_of(self, config: ConfigResult) -> str:
        """The arm a config of the lesson's group is (by its knob values)."""
        for label, changes in self.arms:
            if all(config.params.get(k) == v for k, v in changes.items() if k in config.params):
                return label
        return config.label


def launch(lab: Lab, lesson: Lesson, *, owner: str = "", model: str | None = None) -> Group:
    """Queue the lesson's runs as one group (on `model` instead of the lesson's own, if given)."""
    pairs = lesson.configs(model)
    knobs = sorted({k for _, changes in lesson.arms for k in changes})
    spec = {"lesson": lesson.slug, "knobs": knobs, "seeds": lesson.seeds}
    return submit_group(
        lab,
        [config for _, config in pairs],
        name=f"Lesson: {lesson.title}",
        owner=owner,
        method="lesson",
        metric=lesson.metric,
        spec=spec,
        run_names=[f"{lesson.title}: {label}" for label, _ in pairs],
    )


def reading(lesson: Lesson, report: GroupReport) -> list[str]:
    """What happened, in numbers: each arm's final accuracy, F1 and eval loss (mean over seeds), the verdict between
    the two best arms (which says when the gap is within seed noise), and runs that learned nothing."""
    lines = []
    for config in report.configs:
        acc, f1, loss = (config.stats(m) for m in ("accuracy", "f1", "eval_loss"))
        if not acc.n:
            continue
        spread = f" (seeds from {min(config.values['accuracy']):.3f} to {max(config.values['accuracy']):.3f})"
        lines.append(
            f"{lesson.arm_of(config)}: accuracy {acc.mean:.3f}, F1 {f1.mean:.3f}, eval loss {loss.mean:.3f}"
            + (spread if acc.n > 1 else "")
            + (f"; {config.degenerate} of {len(config.runs)} learned nothing" if config.degenerate else "")
        )
    verdict = report.verdict()
    if verdict is not None:
        a, b = lesson.arm_of(verdict.a), lesson.arm_of(verdict.b)
        size = f"{abs(verdict.diff):.1f} points" if verdict.unit == "points" else f"{abs(verdict.diff):.3f}"
        gap = f"{METRICS[lesson.metric].label}: {a} beats {b} by {size}"
        if size.startswith("0.0 ") or size == "0.000":
            gap = f"{METRICS[lesson.metric].label}: {a} and {b} end level"
        if math.isnan(verdict.ci95[0]):
            lines.append(f"{gap}, one run each: large gaps like this are the lesson; small ones need seeds.")
        elif verdict.real:
            lines.append(f"{gap}: real at 95% (interval {verdict.ci95[0]:+.1f} to {verdict.ci95[1]:+.1f}).")
        else:
            lines.append(f"{gap}: within seed noise (interval {verdict.ci95[0]:+.1f} to {verdict.ci95[1]:+.1f}).")
    return lines


LESSONS: dict[str, Lesson] = {
    lesson.slug: lesson
    for lesson in (
        Lesson(
            slug="learning-rate",
            title="Learning rate: too small, right, too large",
            concept=(
                "Each step moves every weight against its gradient, scaled by the learning rate. Too small and the "
                "model barely moves from where it started; too large and the steps overshoot: the loss jumps, and a "
                "classifier often collapses to answering one class for everything."
            ),
            formula=r"\theta_{t+1} = \theta_t - \eta \, \nabla_\theta L(\theta_t)",
            look_for=(
                "Training loss: flat for the small rate, falling for the right one, stuck high (or spiking) for the "
                "large one. F1: the large rate ends near the score of always answering the majority class."
            ),
            base=QUICK,
            arms=(
                ("too small (1e-6)", {"lr": 1e-6}),
                ("right (1e-4)", {"lr": 1e-4}),
                ("too large (3e-3)", {"lr": 3e-3}),
            ),
        ),
        Lesson(
            slug="accuracy-vs-f1",
            title="Accuracy against F1 on imbalanced data",
            concept=(
                "sms_spam is 87% ham. A model that always says ham is right 87% of the time, yet it never finds a "
                "single spam. Macro F1 averages the F1 of each class, so a class the model ignores counts as zero."
            ),
            formula=r"F_1 = \frac{2\,PR}{P + R}, \qquad \text{macro } F_1 = \frac{1}{K}\sum_{k=1}^{K} F_1^{(k)}",
            look_for=(
                "The run whose learning rate is far too high collapses to saying ham for everything: it still scores "
                "about 0.87 accuracy, but its F1 is about 0.47. The one that learned scores high on both."
            ),
            base=replace(QUICK, dataset="sms_spam", train_size=600, eval_size=400, max_length=48),
            arms=(("says ham to everything (lr 3e-3)", {"lr": 3e-3}), ("learned (lr 1e-4)", {"lr": 1e-4})),
        ),
        Lesson(
            slug="dropout",
            title="Dropout and overfitting",
            concept=(
                "With few examples and many passes over them, a model starts to memorise: the training loss keeps "
                "falling, but the loss on held-out examples turns up. Dropout zeroes a random share p of the hidden "
                "activations at every training step (and scales the rest), so no unit can rely on another: it slows "
                "memorising."
            ),
            formula=r"\tilde h = \frac{m \odot h}{1 - p}, \qquad m_i \sim \mathrm{Bernoulli}(1 - p)",
            look_for=(
                "Eval loss: without dropout it reaches its lowest early and then climbs while the training loss goes "
                "on falling (the ★ note marks the onset on the Runs page); with heavy dropout it climbs later and less."
            ),
            base=replace(QUICK, train_size=128, eval_size=300, num_epochs=8.0, eval_every_steps=8, lr=1e-4),
            arms=(
                ("no dropout", {"dropout": 0.0, "attention_dropout": 0.0}),
                ("heavy dropout (0.3)", {"dropout": 0.3, "attention_dropout": 0.3}),
            ),
            metric="eval_loss",
        ),
        Lesson(
            slug="seed-noise",
            title="Seed noise: one config, five seeds",
            concept=(
                "The seed decides the head's first weights, dropout and the batch order. On a short run, that alone "
                "can move the score by several points, and some seeds learn nothing at all. One run tells you little "
                "about a setting: compare settings by their means over seeds, with an interval."
            ),
            formula=r"\bar{x} \pm t_{0.975,\,n-1}\,\frac{s}{\sqrt{n}}",
            look_for="The spread of the five final scores, and any seed that stayed at the majority class.",
            base=replace(QUICK, train_size=512, lr=2e-4),
            arms=(("lr 2e-4", {}),),
            seeds=5,
        ),
    )
}
