"""Softmax cross-entropy fused with its gradient: in NumPy, and natively together with the output layer
that produces the logits.

Shape legend: N = predictions (e.g. T*B characters), V = classes (the vocabulary), I = the output
layer's input width.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from . import _C
from .nn import Linear

__all__ = ["softmax_cross_entropy", "log_softmax", "linear_softmax_cross_entropy"]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, computed stably (the maximum is subtracted first)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _check_loss_args(logits, targets, weights):
    """(logits, targets, weights) as arrays, or ValueError/TypeError naming the argument that is wrong
    (the checks `_C.output_loss` makes for the fused path)."""
    if not isinstance(logits, np.ndarray) or logits.dtype.kind != "f":
        raise TypeError(f"logits must be a floating-point numpy.ndarray, got {getattr(logits, 'dtype', type(logits))}")
    if logits.ndim != 2 or logits.shape[0] < 1 or logits.shape[1] < 1:
        raise ValueError(f"logits must have shape (N, V) with N, V >= 1, got {logits.shape}")
    n, v = logits.shape
    targets = np.asarray(targets)
    if targets.shape != (n,) or targets.dtype.kind not in "iu":
        raise ValueError(f"targets must be integers of shape ({n},), got {targets.dtype} {targets.shape}")
    if targets.min() < 0 or targets.max() >= v:
        raise ValueError(f"targets must lie in 0..{v - 1}, got {targets.min()}..{targets.max()}")
    if weights is not None:
        weights = np.asarray(weights)
        if weights.shape != (n,) or weights.dtype.kind not in "biuf":
            raise ValueError(f"weights must be numbers of shape ({n},), got {weights.dtype} {weights.shape}")
        if not (weights >= 0).all() or not np.isfinite(weights).all():
            raise ValueError("weights must be finite and non-negative")
        if not weights.any():
            raise ValueError("weights must not all be zero")
    return logits, targets, weights


def softmax_cross_entropy(
    logits: np.ndarray, targets: np.ndarray, weights: Optional[np.ndarray] = None, grad: bool = True
) -> Tuple[float, Optional[np.ndarray]]:
    """Mean negative log-likelihood of ``targets`` under softmax(``logits``), and its gradient.

    Args:
        logits: (N, V) unnormalised scores. targets: (N,) class indices in 0..V-1.
        weights: (N,) non-negative weights (e.g. 0 for padding), or None for all ones. The loss is
            sum_n w_n * nll_n / sum_n w_n.
        grad: also return d loss / d logits.

    Returns:
        (loss in nats, float; gradient (N, V) in the dtype of logits, or None). The gradient is
        (softmax(logits) - onehot(targets)) * w_n / sum(w), computed from one exponentiation.
    """
    logits, targets, weights = _check_loss_args(logits, targets, weights)
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    nll = np.log(s[:, 0]) - z[rows, targets]
    if weights is None:
        total = float(n)
        loss = float(nll.astype(np.float64).sum()) / total
    else:
        total = float(np.sum(weights, dtype=np.float64))
        loss = float(np.dot(nll.astype(np.float64), weights.astype(np.float64))) / total
    if not grad:
        return loss, None
    e /= s
    e[rows, targets] -= 1
    if weights is None:
        e *= e.dtype.type(1.0 / total)
    else:
        e *= (weights.astype(e.dtype) / total)[:, None]  # in the logits' precision, whatever the weights' dtype
    return loss, e


def linear_softmax_cross_entropy(
    head: Linear, x: np.ndarray, targets: np.ndarray, weights: Optional[np.ndarray] = None, grad: bool = True
) -> Tuple[float, Optional[np.ndarray]]:
    """``softmax_cross_entropy(head.forward(x), targets, weights)`` and, with ``grad``, the
    ``head.backward`` of its gradient, in one native call: the logits never reach Python, the two
    threads share the rows, and the softmax runs on each row while it is in cache.

    Args:
        head: the output layer; with ``grad`` its ``grads`` are added to. x: (N, I) its input.
        targets: (N,) class indices in 0..V-1. weights: (N,) non-negative, not all zero, or None.

    Returns:
        (mean loss in nats, dx (N, I) or None without ``grad``).
    """
    w, b = head.params["weight"], head.params["bias"]
    x = np.ascontiguousarray(x, w.dtype)
    if x.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x must have shape (N, {w.shape[1]}), got {x.shape}")
    if weights is not None:
        weights = np.asarray(weights, w.dtype)
    dw, db = (head.grads["weight"], head.grads["bias"]) if grad else (None, None)
    return _C.output_loss(x, w, b, np.asarray(targets), weights, dw, db)
