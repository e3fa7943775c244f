"""Classification metrics: accuracy, macro precision/recall/F1 and the confusion matrix (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(labels: Sequence[int], preds: Sequence[int], num_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)), 1)
    return counts


def classification_metrics(labels: Sequence[int], preds: Sequence[int], num_classes: int) -> dict[str, object]:
    """accuracy, macro precision, recall and F1 (a class never predicted/present scores 0), and the confusion matrix."""
    cm = confusion_matrix(labels, preds, num_classes)
    true_pos = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)
    actual = cm.sum(axis=1)
    precision = np.divide(true_pos, predicted, out=np.zeros_like(true_pos), where=predicted > 0)
    recall = np.divide(true_pos, actual, out=np.zeros_like(true_pos), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(true_pos), where=denom > 0)
    return {
        "accuracy": float(true_pos.sum() / max(1, cm.sum())),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
        "confusion": cm.tolist(),
    }
