"""What the two pooling back-ends share: the kinds, the result type and the argument checks, so that
``rnnkit.pooling`` (C++) and ``rnnkit.reference.pooling`` (NumPy) accept the same input and raise the
same exceptions with the same messages.

Shape legend: T = steps, B = batch, F = features.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np

from ._checks import FLOAT_DTYPES
from ._layer_args import lengths_array

#: The pooling kinds of the kernels (attention pooling, which has parameters, is `rnnkit.pooling.Pool`'s).
KINDS = ("last", "mean", "max")


class PoolResult(NamedTuple):
    """out (B, F) the pooled vectors; cache: what ``backward`` needs (None after ``training=False``)."""

    out: np.ndarray
    cache: Any


class PoolArgs(NamedTuple):
    """Checked arguments of a forward: x (T, B, F) contiguous float32/float64, lengths int64 (B,) or
    None for all T, split in 0..F."""

    kind: str
    x: np.ndarray
    lengths: Optional[np.ndarray]
    split: int


def check_forward(kind: Any, x: Any, lengths: Any, split: Optional[int]) -> PoolArgs:
    """PoolArgs of a forward's arguments, or ValueError / TypeError naming the first bad one."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    if x.ndim != 3 or 0 in x.shape:
        raise ValueError(f"x must have shape (T, B, F) with no zero size, got {x.shape}")
    T, B, F = x.shape
    lengths = lengths_array(lengths, T, B)
    if split is None:
        split = F
    if isinstance(split, bool) or not isinstance(split, (int, np.integer)) or not 0 <= split <= F:
        raise ValueError(f"split must be an integer in 0..F = 0..{F}, got {split!r}")
    return PoolArgs(kind, np.ascontiguousarray(x), lengths, int(split))


def check_dout(args: PoolArgs, dout: Any) -> np.ndarray:
    """dout as a contiguous (B, F) array of x's dtype, or ValueError."""
    shape = (args.x.shape[1], args.x.shape[2])
    dout = np.asarray(dout)
    if dout.shape != shape:
        raise ValueError(f"dout must have shape (B, F) = {shape}, got {dout.shape}")
    return np.ascontiguousarray(dout, args.x.dtype)
