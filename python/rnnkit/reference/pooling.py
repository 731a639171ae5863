"""Pooling over time, forward and backward, in plain NumPy: the specification of ``rnnkit.pooling``.

A many-to-one model (lecture: "many-to-one", e.g. the sentiment of a sentence) reads one vector per
sequence from the recurrent stack's outputs x_1..x_n of a sequence of n valid steps (the padding steps
past n are never read):

    last: out = x_n for the columns of a forward direction, x_1 for those of a reverse direction
          (columns >= split), i.e. each direction's final state
    mean: out = (1/n) sum_{t<=n} x_t
    max:  out = max_{t<=n} x_t per column (the first step holding the maximum takes the gradient)

Shape legend: T = steps, B = batch, F = features. x (T, B, F) time-major; lengths (B,) in 1..T or None;
out (B, F).

API (the same in ``rnnkit.pooling``):
    forward(kind, x, lengths=None, split=None, *, training=True) -> PoolResult(out, cache)
    backward(cache, dout) -> dx (T, B, F), exactly zero at every step the forward did not read
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .._pooling_checks import KINDS, PoolArgs, PoolResult, check_dout, check_forward

__all__ = ["KINDS", "PoolResult", "forward", "backward"]


class ReferenceCache:
    """The checked arguments and, for last and max, the step each output element was read from."""

    __slots__ = ("args", "index")

    def __init__(self, args: PoolArgs, index: Optional[np.ndarray]):
        self.args, self.index = args, index


def forward(kind: str, x: np.ndarray, lengths: Any = None, split: Optional[int] = None, *,
            training: bool = True) -> PoolResult:
    """Pool x (T, B, F) over each element's valid steps (see the module docstring)."""
    a = check_forward(kind, x, lengths, split)
    T, B, F = a.x.shape
    n = np.full(B, T, np.int64) if a.lengths is None else a.lengths
    valid = np.arange(T)[:, None] < n[None, :]                        # (T, B): step t of element b is real
    index = None
    if kind == "last":
        index = np.empty((B, F), np.int64)
        index[:, :a.split] = (n - 1)[:, None]                         # forward direction: x_n
        index[:, a.split:] = 0                                        # reverse direction: x_1
        out = np.take_along_axis(a.x, index[None], axis=0)[0]
    elif kind == "mean":
        out = np.where(valid[:, :, None], a.x, 0).sum(axis=0) / n[:, None]
    else:
        masked = np.where(valid[:, :, None], a.x, -np.inf)
        index = masked.argmax(axis=0)                                 # argmax: the first maximum
        out = np.take_along_axis(a.x, index[None], axis=0)[0]
    return PoolResult(out.astype(a.x.dtype, copy=False), ReferenceCache(a, index) if training else None)


def backward(cache: ReferenceCache, dout: np.ndarray) -> np.ndarray:
    """d loss / d x (T, B, F) from d loss / d out (B, F)."""
    if not isinstance(cache, ReferenceCache):
        raise TypeError(f"cache must come from rnnkit.reference.pooling.forward(training=True), got "
                        f"{type(cache).__name__}")
    a = cache.args
    dout = check_dout(a, dout)
    T, B, F = a.x.shape
    n = np.full(B, T, np.int64) if a.lengths is None else a.lengths
    dx = np.zeros_like(a.x)
    if a.kind == "mean":
        valid = np.arange(T)[:, None] < n[None, :]
        dx[...] = np.where(valid[:, :, None], dout / n[:, None], 0)   # d out / d x_t = 1/n for t <= n
    else:
        np.put_along_axis(dx, cache.index[None], dout[None], axis=0)  # only the step that was read
    return dx
