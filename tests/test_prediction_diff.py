"""Two runs example by example: the four counts, McNemar's exact test against the binomial by hand, and refusing
runs evaluated on different examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bert_lab.teaching.prediction_diff import DiffError, compare_predictions, read_report


def report(predicted: list[int], labels: list[int], texts: list[str] | None = None) -> dict[str, object]:
    return {
        "label_names": ["ham", "spam"],
        "texts": texts or [f"text {i}" for i in range(len(labels))],
        "labels": labels,
        "predicted": predicted,
    }


def test_counts_and_mcnemar_against_the_binomial_by_hand() -> None:
    # 40 examples: both right on 20, both wrong on 8, A alone right on 10, B alone right on 2.
    labels = [0] * 40
    a = [0] * 20 + [1] * 8 + [0] * 10 + [1] * 2
    b = [0] * 20 + [1] * 8 + [1] * 10 + [0] * 2
    diff = compare_predictions(report(a, labels), report(b, labels))
    assert (diff.only_a, diff.only_b, diff.both_right, diff.both_wrong, diff.total) == (10, 2, 20, 8, 40)
    # Exact McNemar: two-sided binomial on the 12 discordant pairs, P = 2·(C(12,10)+C(12,11)+C(12,12))/2¹² = 158/4096.
    assert diff.p_value == pytest.approx(158 / 4096) and diff.real
    assert len(diff.disagreements) == 12
    assert diff.disagreements[0] == {"text": "text 28", "label": "ham", "a": "ham", "b": "spam"}
    assert diff.words("#1", "#2").startswith("#1 is right where #2 is wrong on 10 examples, #2 where #1 is wrong on 2")
    assert "+20.0 points of accuracy for #1" in diff.words("#1", "#2") and "real difference at 95%" in diff.words()


def test_a_small_gap_is_within_chance() -> None:
    labels = [1] * 10
    a, b = [1] * 6 + [0] * 4, [0] * 6 + [1] * 4
    diff = compare_predictions(report(a, labels), report(b, labels))
    # P = 2·P(X ≥ 6 | n = 10) = 2·(210+120+45+10+1)/1024 = 772/1024.
    assert diff.p_value == pytest.approx(772 / 1024) and not diff.real and "within chance" in diff.words()
    same = compare_predictions(report(a, labels), report(a, labels))
    assert (same.only_a, same.only_b, same.p_value, same.disagreements) == (0, 0, 1.0, [])


def test_runs_on_different_examples_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DiffError, match="evaluated on different examples"):
        compare_predictions(report([0], [0], ["a"]), report([0], [0], ["b"]))
    with pytest.raises(DiffError, match="no evaluation report"):
        read_report(tmp_path / "missing.json")
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"label_names": ["a", "b"], "accuracy": 0.5}))
    with pytest.raises(DiffError, match="predates per-example predictions"):
        read_report(old)
