"""Two finished runs, example by example: on the same evaluation set, how many examples A gets right and B wrong and
the reverse, McNemar's test on those two counts (the paired "is this difference real?" for a single pair of runs: it
looks only at the examples where the runs disagree), and the disagreements with their texts.

Reads the runs' eval reports (`RunFolder.eval_report`, written at a run's last evaluation); torch-free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class DiffError(ValueError):
    """Two runs that cannot be compared example by example; the message says why."""


@dataclass(frozen=True)
class PredictionDiff:
    only_a: int  # examples A gets right and B wrong
    only_b: int  # examples B gets right and A wrong
    both_right: int
    both_wrong: int
    p_value: float  # exact McNemar (a two-sided binomial test on the discordant pairs)
    disagreements: list[dict[str, Any]]  # text, true label, A's and B's predictions (where they differ)

    @property
    def total(self) -> int:
        return self.only_a + self.only_b + self.both_right + self.both_wrong

    @property
    def real(self) -> bool:
        return self.p_value < 0.05

    def words(self, a: str = "A", b: str = "B") -> str:
        gap = (self.only_a - self.only_b) / self.total * 100 if self.total else 0.0
        lead = f"{a} is right where {b} is wrong on {self.only_a} examples, {b} where {a} is wrong on {self.only_b}"
        verdict = (
            f"a real difference at 95% (McNemar p = {self.p_value:.3g})"
            if self.real
            else f"within chance at 95% (McNemar p = {self.p_value:.3g}): more evaluation examples or seeds would tell"
        )
        return f"{lead} ({gap:+.1f} points of accuracy for {a}): {verdict}."

    def to_dict(self) -> dict[str, Any]:
        return {
            "only_a": self.only_a,
            "only_b": self.only_b,
            "both_right": self.both_right,
            "both_wrong": self.both_wrong,
            "p_value": self.p_value,
            "real": self.real,
            "disagreements": self.disagreements,
        }


def read_report(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DiffError(f"no evaluation report at {path}: the run has not finished an evaluation")
    report = json.loads(path.read_text())
    if "predicted" not in report:
        raise DiffError("this run's evaluation report predates per-example predictions: run it again to compare")
    return report


def compare_predictions(a: dict[str, Any], b: dict[str, Any]) -> PredictionDiff:
    """The example-by-example comparison of two eval reports; DiffError unless they share the evaluation set."""
    from scipy import stats

    if a["texts"] != b["texts"] or a["labels"] != b["labels"]:
        raise DiffError(
            "the two runs were evaluated on different examples (their dataset, eval size or seed differ): "
            "only runs with the same evaluation set can be compared example by example"
        )
    names = a["label_names"]
    only_a = only_b = both_right = both_wrong = 0
    disagreements = []
    for text, label, pa, pb in zip(a["texts"], a["labels"], a["predicted"], b["predicted"]):
        right_a, right_b = pa == label, pb == label
        only_a += right_a and not right_b
        only_b += right_b and not right_a
        both_right += right_a and right_b
        both_wrong += not (right_a or right_b)
        if pa != pb:
            disagreements.append({"text": text, "label": names[label], "a": names[pa], "b": names[pb]})
    discordant = only_a + only_b
    p_value = stats.binomtest(only_a, discordant, 0.5).pvalue if discordant else 1.0
    return PredictionDiff(only_a, only_b, both_right, both_wrong, float(p_value), disagreements)
