"""Scores of predicted classes against the true ones.

* accuracy: the fraction predicted right.
* confusion matrix C (K, K): C[i, j] counts examples of true class i predicted as j.
* per class: precision C[k, k] / (column sum), recall C[k, k] / (row sum), F1 their harmonic mean
  (0 when undefined, as scikit-learn's zero_division=0).
* macro-F1: the unweighted mean of F1 over the classes that occur in the truth or the predictions
  (scikit-learn's ``f1_score(average="macro")`` with its default labels).
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

import numpy as np

__all__ = ["confusion_matrix", "scores"]


def confusion_matrix(true: np.ndarray, pred: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) int64 counts, rows the true class, columns the predicted one."""
    true, pred = np.asarray(true, np.int64), np.asarray(pred, np.int64)
    if true.shape != pred.shape or true.ndim != 1:
        raise ValueError(f"true and pred must be 1-D of the same length, got {true.shape} and {pred.shape}")
    if len(true) == 0:
        raise ValueError("no examples to score")
    return np.bincount(true * classes + pred, minlength=classes * classes).reshape(classes, classes)


def scores(true: np.ndarray, pred: np.ndarray, names: Sequence[str]) -> Dict[str, Any]:
    """{"accuracy", "macro_f1", "confusion" (list of rows), "labels", "per_class": {name: {"precision",
    "recall", "f1", "support"}}, "examples"} of the predictions."""
    K = len(names)
    c = confusion_matrix(true, pred, K)
    hits = np.diag(c).astype(np.float64)
    support, predicted = c.sum(axis=1), c.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(support > 0, hits / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = (support > 0) | (predicted > 0)
    return {
        "accuracy": float(hits.sum() / c.sum()),
        "macro_f1": float(f1[present].mean()),
        "confusion": c.tolist(),
        "labels": list(names),
        "per_class": {n: {"precision": float(precision[k]), "recall": float(recall[k]), "f1": float(f1[k]),
                          "support": int(support[k])} for k, n in enumerate(names)},
        "examples": int(c.sum()),
    }
