"""Lessons: one concept of fine-tuning each, taught by a small group of runs that shows its effect in about two minutes
on a 2-core CPU. A lesson says the concept in plain words, its formula, what to look for; one click queues its runs as
a group; once they finish, `reading` puts what happened in numbers, and says so when a gap is within seed noise.

Settings are chosen for the slower kind of CPU (AVX2, fp32: MiniLM trains about 25-35 samples/s there): short
sequences, a few hundred examples, and effects large enough to show in one run each (or seeds, where noise is the
lesson). Every lesson here was run on this project's machines and showed its effect (bench/README.md, "The lessons,
each run once").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from bert_lab.core.config import RunConfig
from bert_lab.core.metrics import HEADLINE, METRICS
from bert_lab.runs.records import Group
from bert_lab.runs.service import Lab, submit_group
from bert_lab.runs.workshop import Actor
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
    shows: tuple[str, ...] = ()  # more metrics the reading gives for each arm, and the page charts (catalogue names)
    charts: tuple[str, ...] = ()  # more metrics only charted
    versus: str | None = None  # the arm the best one is weighed against (default: the runner-up)
    x: str = "step"  # the charts' x axis: step, or epoch where arms take different numbers of steps per epoch

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
        """The arm a config of the lesson's group is (by its knob values; an arm leaves the others at the base's)."""
        for label, changes in self.arms:
            values = {k: changes.get(k, getattr(self.base, k)) for k in self.knobs}
            if all(config.params.get(k) == v for k, v in values.items() if k in config.params):
                return label
        return config.label

    @property
    def knobs(self) -> list[str]:
        """The knobs its arms set."""
        return sorted({k for _, changes in self.arms for k in changes})


def launch(lab: Lab, lesson: Lesson, *, owner: str = "", model: str | None = None, actor: Actor | None = None) -> Group:
    """Queue the lesson's runs as one group (on `model` instead of the lesson's own, if given; in a workshop a
    participant `actor` may not name a model folder: workshop.ServerPathError)."""
    pairs = lesson.configs(model)
    spec = {"lesson": lesson.slug, "knobs": lesson.knobs, "seeds": lesson.seeds}
    return submit_group(
        lab,
        [config for _, config in pairs],
        name=f"Lesson: {lesson.title}",
        owner=owner,
        method="lesson",
        metric=lesson.metric,
        spec=spec,
        run_names=[f"{lesson.title}: {label}" for label, _ in pairs],
        actor=actor,
    )


def reading(lesson: Lesson, report: GroupReport) -> list[str]:
    """What happened, in numbers: each arm's final accuracy, F1 and eval loss (mean over seeds), the verdict between
    the two best arms (which says when the gap is within seed noise), and runs that learned nothing."""
    lines = []
    for config in report.configs:
        acc, f1, loss = (config.stats(m) for m in HEADLINE)
        if not acc.n:
            continue
        spread = f" (seeds from {min(config.values['accuracy']):.3f} to {max(config.values['accuracy']):.3f})"
        shown = [f"{METRICS[m].label.lower()} {_fmt(m, config.stats(m).mean)}" for m in lesson.shows]
        lines.append(
            f"{lesson.arm_of(config)}: accuracy {acc.mean:.3f}, F1 {f1.mean:.3f}, eval loss {loss.mean:.3f}"
            + (spread if acc.n > 1 else "")
            + "".join(f"; {text}" for text in shown)
            + (f"; {config.degenerate} of {len(config.runs)} learned nothing" if config.degenerate else "")
        )
    scored = report.scored
    versus = next((c for c in scored[1:] if lesson.arm_of(c) == lesson.versus), None)
    verdict = report.verdict(scored[0], versus) if versus is not None else report.verdict()
    if verdict is not None:
        a, b = lesson.arm_of(verdict.a), lesson.arm_of(verdict.b)
        size = f"{abs(verdict.diff):.1f} points" if verdict.unit == "points" else f"{abs(verdict.diff):.3f}"
        gap = f"{METRICS[lesson.metric].label}: {a} beats {b} by {size}"
        level = size.startswith("0.0 ") or size == "0.000"
        if level:
            gap = f"{METRICS[lesson.metric].label}: {a} and {b} end level"
        # One run each: no interval. Gaps of 5 points (or 5%) and more are what lessons are built to show; smaller
        # ones are the size of seed noise on runs this short (the seed-noise lesson measures it).
        large = abs(verdict.diff) >= (
            5.0 if verdict.unit == "points" else 0.05 * abs(verdict.b.stats(lesson.metric).mean)
        )
        if verdict.learned_nothing:
            lines.append(f"{a} and {b}: every run learned nothing, so neither is better (each run's notes say why).")
        elif math.isnan(verdict.ci95[0]):
            tail = (
                ""
                if level
                else (": a gap this large is the lesson" if large else ": a gap this small can be seed noise")
            )
            lines.append(f"{gap} (one run each){tail}.")
        elif verdict.real:
            lines.append(f"{gap}: real at 95% (interval {verdict.ci95[0]:+.1f} to {verdict.ci95[1]:+.1f}).")
        else:
            lines.append(f"{gap}: within seed noise (interval {verdict.ci95[0]:+.1f} to {verdict.ci95[1]:+.1f}).")
    return lines


def _fmt(metric: str, value: float) -> str:
    return f"{value:.1%}" if METRICS[metric].share else f"{value:,.1f}"


LESSONS: dict[str, Lesson] = {
    lesson.slug: lesson
    for lesson in (
        Lesson(
            slug="optimizers",
            title="The gradient step: SGD, momentum, Adam, AdamW",
            concept=(
                "Every optimizer steps against the gradient; they differ in how far, per weight. SGD takes the raw "
                "gradient times the learning rate. Momentum keeps a running sum of past steps, so it builds speed "
                "along a steady direction. Adam divides each weight's step by the running size of that weight's own "
                "gradient: every weight moves about the learning rate per step, so rarely-moved weights catch up. "
                "AdamW is Adam plus weight decay taken apart from the gradient (see the regularization lesson): with "
                "the usual decay of 0.01, it changes next to nothing in 50 steps. Each runs at a rate that suits it."
            ),
            formula=(
                r"\text{SGD: } \theta \leftarrow \theta - \eta g \qquad "
                r"\text{momentum: } v \leftarrow \mu v + g,\ \theta \leftarrow \theta - \eta v \qquad "
                r"\text{Adam: } \theta \leftarrow \theta - \eta \frac{\hat m}{\sqrt{\hat v} + \epsilon}"
                r"\qquad \text{AdamW: } \ldots - \eta \lambda \theta"
            ),
            look_for=(
                "Eval loss and F1 after the same 50 steps: SGD has barely left the start, momentum gets most of the "
                "way, Adam goes furthest. Adam's and AdamW's curves lie on top of each other."
            ),
            base=replace(QUICK, schedule="constant"),
            arms=(
                ("SGD (lr 0.1)", {"optimizer": "sgd", "lr": 0.1}),
                ("momentum 0.9 (lr 0.03)", {"optimizer": "momentum", "lr": 0.03}),
                ("Adam (lr 1e-4)", {"optimizer": "adam", "lr": 1e-4}),
                ("AdamW (lr 1e-4, decay 0.01)", {"optimizer": "adamw", "lr": 1e-4, "weight_decay": 0.01}),
            ),
            metric="eval_loss",
        ),
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
                ("right (2e-4)", {"lr": 2e-4}),
                ("too large (3e-3)", {"lr": 3e-3}),
            ),
        ),
        Lesson(
            slug="schedules",
            title="Schedules: constant, step and exponential decay, warmup",
            concept=(
                "A learning rate large enough to make quick progress is too large to settle: late in training the "
                "steps keep bouncing the model around a good point. A schedule changes the rate as training goes. "
                "Step decay multiplies it by γ every few steps; exponential decay shrinks it a little every step. "
                "Warmup does the opposite at the start: it ramps the rate up from zero, because Adam's first steps "
                "move every weight by nearly the full rate before its gradient statistics mean anything."
            ),
            formula=(
                r"\eta_t^{\text{step}} = \eta\,\gamma^{\lfloor t/s \rfloor} \qquad "
                r"\eta_t^{\text{exp}} = \eta\,r^{t/d} \qquad "
                r"\eta_t^{\text{warmup}} = \eta \min(1, t/w)"
            ),
            look_for=(
                "Eval loss at a rate on the high side (3e-4): at a constant rate it bounces up and down and ends "
                "highest; the decayed schedules and warmup fall more steadily and end lower. The learning-rate chart "
                "below shows each schedule's shape."
            ),
            base=replace(QUICK, schedule="constant", lr=3e-4),
            arms=(
                ("constant", {"schedule": "constant", "warmup_steps": 0}),
                ("step decay (×0.3 every 15 steps)", {"schedule": "step", "step_size": 15, "gamma": 0.3}),
                ("exponential decay (×0.5 every 10 steps)", {"schedule": "exponential", "decay_steps": 10}),
                ("warmup 10 steps, then constant", {"schedule": "constant", "warmup_steps": 10}),
            ),
            metric="eval_loss",
            versus="constant",
            charts=("lr",),
        ),
        Lesson(
            slug="regularization",
            title="L1, L2 and weight decay",
            concept=(
                "Three ways to keep weights small. The L1 penalty adds λ·Σ|w| to the loss: its pull towards zero has "
                "the same strength for every weight, so small weights reach zero and stay there. The L2 penalty adds "
                "λ/2·Σw²: its pull grows with the weight. Decoupled weight decay shrinks every weight by the same "
                "factor each step, outside the loss. With plain SGD, L2 and weight decay are the same thing; with "
                "Adam they are not: Adam divides each weight's gradient, the L2 pull included, by that weight's "
                "typical gradient size, so L2 pulls small weights as hard as large ones, much like L1. That is why "
                "AdamW decays weights outside the gradient. Strengths here are far above the usual, so that 50 steps "
                "show what thousands would."
            ),
            formula=(
                r"L_1:\ L + \lambda \sum_i |w_i| \qquad L_2:\ L + \tfrac{\lambda}{2} \sum_i w_i^2 \qquad "
                r"\text{decay: } w \leftarrow w\,(1 - \eta \lambda) \text{ each step}"
            ),
            look_for=(
                "Weight norm and near-zero weights (the charts below, and on the Runs page): all three shrink the "
                "norm by about 5%; "
                "weight decay does it without making weights near zero and barely slows learning, while L1 and L2 "
                "through Adam push several times more weights to near zero, and F1 pays for it."
            ),
            base=replace(QUICK, schedule="constant", optimizer="adam"),
            arms=(
                ("no penalty", {}),
                ("L1 (λ 1e-4)", {"l1": 1e-4}),
                ("L2 (λ 1e-2)", {"l2": 1e-2}),
                ("weight decay (10)", {"weight_decay": 10.0}),
            ),
            shows=("weight_norm", "near_zero"),
        ),
        Lesson(
            slug="padding",
            title="Max length and padding",
            concept=(
                "A batch is a rectangle: every text in it is filled up with padding tokens to the same length, and "
                "the model computes over padding as over words (the attention mask only hides it from the result). "
                "Padding every batch to max length wastes that work on short texts; padding each batch to its own "
                "longest text (dynamic padding) does not, and computes the same thing. Max length itself is a "
                "trade: texts longer than it are cut, so the model never sees their ends."
            ),
            formula=r"\text{cost per batch} \propto B \times W, \qquad W = \max_{i \in \text{batch}} "
            r"\min(\ell_i, L) \ \text{(dynamic)} \quad \text{or} \quad W = L",
            look_for=(
                "Throughput: padding to max length trains slower than dynamic padding at the same max length, to "
                "the same scores (dropout is off in this lesson: its random masks depend on the batch's shape, which "
                "would blur that). Cutting texts to 16 tokens is fastest, but the model sees less of each review and "
                "ends with a higher eval loss. The launch page shows, for your settings, the share of texts cut and "
                "the padding per batch."
            ),
            base=replace(QUICK, schedule="constant", dropout=0.0, attention_dropout=0.0),
            arms=(
                ("64 tokens, every batch padded to 64", {"max_length": 64, "padding": "max_length"}),
                ("64 tokens, dynamic padding", {"max_length": 64, "padding": "dynamic"}),
                ("16 tokens, dynamic padding", {"max_length": 16, "padding": "dynamic"}),
            ),
            metric="eval_loss",
            shows=("samples_per_s",),
            versus="16 tokens, dynamic padding",
        ),
        Lesson(
            slug="batch-size",
            title="Batch size and learning rate together",
            concept=(
                "A bigger batch averages the gradient over more examples: a steadier step, and more examples per "
                "second on the same hardware. But one pass over the data then takes fewer steps: 800 examples are "
                "100 steps in batches of 8 and 13 in batches of 64. At the same learning rate the big batch simply "
                "moves less. Raising the rate with the batch (by √k for k times the batch, a common rule for Adam) "
                "wins most of it back; raising it too far makes the steps unstable."
            ),
            formula=r"g_B = \frac{1}{B} \sum_{i=1}^{B} \nabla \ell_i, \qquad "
            r"\text{steps per epoch} = \lceil N / B \rceil, \qquad \eta_{kB} \approx \sqrt{k}\,\eta_B",
            look_for=(
                "F1 after one epoch: batch 64 at the small batch's rate learns almost nothing in its 13 steps; at "
                "√8 ≈ 3× the rate it gets much closer. Throughput: batch 64 trains faster per example."
            ),
            base=replace(QUICK, schedule="constant"),
            arms=(
                ("batch 8, lr 1e-4", {"batch_size": 8, "lr": 1e-4}),
                ("batch 64, lr 1e-4", {"batch_size": 64, "lr": 1e-4}),
                ("batch 64, lr 3e-4", {"batch_size": 64, "lr": 3e-4}),
            ),
            shows=("samples_per_s",),
            x="epoch",
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
