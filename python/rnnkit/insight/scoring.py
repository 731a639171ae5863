"""Which units track which feature: every unit's activation per character against every feature of the
text (`rnnkit.insight.features`), by Pearson correlation and, for 0/1 features, by the accuracy of the
best one-threshold classifier on the unit.

Shape legend: N = characters, L = layers, U = units per layer.
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np

from .features import Feature

__all__ = ["UnitScore", "correlations", "threshold_accuracy", "score_units", "rank"]


class UnitScore(NamedTuple):
    """How well one unit tracks one feature. ``accuracy`` (0/1 features only, else None) is the best
    threshold classifier's and ``baseline`` the majority class's, which it must beat to mean anything."""

    layer: int
    unit: int
    feature: str
    correlation: float
    accuracy: Optional[float] = None
    baseline: Optional[float] = None

    def row(self) -> Dict[str, object]:
        """The JSON row: {"layer", "unit", "feature", "correlation"} (and "accuracy", "baseline" for 0/1
        features)."""
        out: Dict[str, object] = {"layer": self.layer, "unit": self.unit, "feature": self.feature,
                                  "correlation": round(self.correlation, 6)}
        if self.accuracy is not None:
            out["accuracy"] = round(self.accuracy, 6)
            out["baseline"] = round(self.baseline, 6)
        return out


class _Columns(NamedTuple):
    """One layer's activations prepared once for every feature: centred (N, U) with the column norms, and
    each unit's values sorted (U, N) with the order that sorts them."""

    centred: np.ndarray
    norms: np.ndarray
    order: Optional[np.ndarray]
    sorted: Optional[np.ndarray]

    @classmethod
    def of(cls, acts: np.ndarray, sort: bool = True) -> "_Columns":
        a = np.asarray(acts, np.float64)
        centred = a - a.mean(axis=0)
        norms = np.sqrt(np.einsum("nu,nu->u", centred, centred))
        if not sort:
            return cls(centred, norms, None, None)
        rows = np.ascontiguousarray(a.T)  # sorting along the last axis is much faster than along the first
        order = np.argsort(rows, axis=1, kind="stable")
        return cls(centred, norms, order, np.take_along_axis(rows, order, axis=1))

    def correlations(self, values: np.ndarray) -> np.ndarray:
        v = np.asarray(values, np.float64)
        v = v - v.mean()
        v_norm = np.sqrt(v @ v)
        if v_norm == 0:
            raise ValueError("the feature is constant over the text: it has no correlation with anything")
        cov = v @ self.centred
        return np.divide(cov, self.norms * v_norm, out=np.zeros_like(cov), where=self.norms > 0)

    def threshold_accuracy(self, labels: np.ndarray) -> np.ndarray:
        y = np.asarray(labels) > 0
        n, positives = len(y), int(y.sum())
        # positives among each unit's k lowest values, k = 0..N
        pos_below = np.zeros((self.order.shape[0], n + 1), np.int64)
        np.cumsum(y[self.order], axis=1, out=pos_below[:, 1:])
        # "above t is 1", the k lowest below t: right are the negatives below and the positives above.
        right = np.arange(n + 1) - 2 * pos_below + positives
        # A threshold falls between distinct values: cut k (0 < k < N) needs sorted[k-1] < sorted[k];
        # a cut between equal values counts as the constant "all 1" classifier.
        right[:, 1:n][self.sorted[:, 1:] == self.sorted[:, :-1]] = positives
        return np.maximum(right.max(axis=1), n - right.min(axis=1)) / n


def correlations(acts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Pearson correlation (U,) of each column of ``acts`` (N, U) with ``values`` (N,), in float64; 0 for a
    constant column. ValueError if ``values`` is constant (no correlation is defined)."""
    return _Columns.of(acts, sort=False).correlations(values)


def threshold_accuracy(acts: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For each column of ``acts`` (N, U), the accuracy of the best classifier "label = 1 where the unit
    is above t" or "... below t", over every threshold t between two of its distinct values (and the
    two constant classifiers). ``labels`` (N,) are 0/1."""
    return _Columns.of(acts).threshold_accuracy(labels)


def score_units(acts: np.ndarray, features: Sequence[Feature], layers: Optional[Sequence[int]] = None
                ) -> List[UnitScore]:
    """Every (unit, feature) pair scored: ``acts`` (N, L, U) activations per character (as
    `rnnkit.charlm.CharLM.activations` gives them), ``features`` of the same N characters. ``layers``
    restricts to those layers (default all). Features constant over the text are left out (they have no
    correlation). Unsorted; `rank` orders them."""
    acts = np.asarray(acts)
    if acts.ndim != 3:
        raise ValueError(f"activations must have shape (characters, layers, units), got {acts.shape}")
    N, L, U = acts.shape
    layers = list(range(L)) if layers is None else list(layers)
    for k in layers:
        if not 0 <= k < L:
            raise ValueError(f"layer {k} does not exist: the model has layers 0..{L - 1}")
    for f in features:
        if len(f.values) != N:
            raise ValueError(f"feature {f.name} has {len(f.values)} values for {N} characters")
    varying = [f for f in features if np.ptp(f.values) > 0]
    scores = []
    for k in layers:
        cols = _Columns.of(acts[:, k], sort=any(f.discrete for f in varying))
        for f in varying:
            corr = cols.correlations(f.values)
            acc = cols.threshold_accuracy(f.values) if f.discrete else None
            base = float(max(f.values.mean(), 1 - f.values.mean())) if f.discrete else None
            for u in range(U):
                scores.append(UnitScore(k, u, f.name, float(corr[u]), None if acc is None else float(acc[u]), base))
    return scores


def rank(scores: Sequence[UnitScore], top: int) -> List[UnitScore]:
    """The table: each feature's best unit (by |correlation|), then the next best pairs of any feature,
    ``top`` rows in all, best first."""
    if top < 1:
        raise ValueError(f"top must be a positive integer, got {top}")
    ordered = sorted(scores, key=lambda s: (-abs(s.correlation), s.feature, s.layer, s.unit))
    chosen, seen = [], set()
    for s in ordered:
        if s.feature not in seen:
            seen.add(s.feature)
            chosen.append(s)
    firsts = {id(s) for s in chosen}
    rest = [s for s in ordered if id(s) not in firsts]
    picked = (chosen + rest)[:top]
    return sorted(picked, key=lambda s: (-abs(s.correlation), s.feature, s.layer, s.unit))
