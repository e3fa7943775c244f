from __future__ import annotations

import pytest

from bert_lab.engine.scores import classification_metrics


def test_metrics_by_hand() -> None:
    labels = [0, 0, 0, 1, 1, 2]
    preds = [0, 0, 1, 1, 2, 2]
    m = classification_metrics(labels, preds, 3)
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    precision = [1.0, 0.5, 0.5]
    recall = [2 / 3, 0.5, 1.0]
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall)]
    assert m["precision"] == pytest.approx(sum(precision) / 3)
    assert m["recall"] == pytest.approx(sum(recall) / 3)
    assert m["f1"] == pytest.approx(sum(f1) / 3)


def test_a_class_never_predicted_scores_zero_not_nan() -> None:
    m = classification_metrics([0, 1, 1], [1, 1, 1], 2)
    assert m["precision"] == pytest.approx((0 + 2 / 3) / 2)
    assert m["f1"] == pytest.approx((0 + 0.8) / 2)
