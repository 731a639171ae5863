"""Checks and conversions of what a user hands to the layers (`rnnkit.layers`).

The one-layer kernels refuse anything but contiguous arrays of one float dtype (see `_checks`); the
layers are the place where user input (lists, integer arrays, the other float precision, torch
tensors, strided views) becomes exactly that, and where a bad argument is reported in the user's own
terms: the argument's name, the expected shape in the user's layout, and the actual shape.
"""

from __future__ import annotations

import numbers
from typing import Any, Optional, Tuple

import numpy as np

from ._checks import FLOAT_DTYPES

#: dtype kinds converted to the layer dtype: signed and unsigned integers and floats. Booleans,
#: complex numbers, strings, objects and datetimes are refused: converting them would hide a bug.
_NUMERIC_KINDS = "iuf"


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int >= 1; TypeError if it is not an integer (bool included), ValueError if < 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def dropout_probability(value: Any) -> float:
    """``value`` as a float in [0, 1); p = 1 would zero every activation and divide by zero."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"dropout must be a float in [0, 1), got {type(value).__name__} {value!r}")
    p = float(value)
    if not 0.0 <= p < 1.0:  # also refuses nan, for which every comparison is False
        raise ValueError(f"dropout must be in [0, 1), got {value!r}")
    return p


def layer_dtype(value: Any) -> np.dtype:
    """``value`` (np.float32, "float64", np.dtype(...)) as float32 or float64, else TypeError."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {value!r}") from None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be numpy.float32 or numpy.float64, got {dtype}")
    return dtype


def as_float_array(name: str, value: Any, dtype: np.dtype) -> np.ndarray:
    """A fresh C-contiguous copy of ``value`` in ``dtype``; integers and floats only, else TypeError.

    Always a copy: the kernels' workspaces may keep a view of their inputs until backward, so the
    caller's later in-place edits of its own array must not reach them.
    """
    # A torch tensor that requires grad refuses __array__; detaching it is what the user means here.
    detach = getattr(value, "detach", None)
    if callable(detach):
        value = detach()
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested lists, objects without __array__
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}: {exc}") from None
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"{name} must hold real numbers (integer or float), got dtype {arr.dtype}")
    return np.array(arr, dtype=dtype, order="C", copy=True)


def check_shape(name: str, arr: np.ndarray, expected: Tuple[int, ...], legend: str) -> None:
    """ValueError naming ``name``, the expected shape (with its ``legend``) and the actual shape."""
    if arr.shape != tuple(expected):
        raise ValueError(f"{name} must have shape {legend} = {tuple(expected)}, got {arr.shape}")


def lengths_array(value: Any, T: int, B: int) -> Optional[np.ndarray]:
    """Sequence lengths as int64 (B,) in 1..T, or None when absent.

    Lengths that are all T are returned as None too: that is the same computation, and the kernels'
    path without lengths does less bookkeeping.
    """
    if value is None:
        return None
    detach = getattr(value, "detach", None)
    if callable(detach):
        value = detach()
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"lengths must hold integers, got dtype {arr.dtype}")
    if arr.shape != (B,):
        raise ValueError(f"lengths must have shape (B,) = ({B},), one length per batch element, got {arr.shape}")
    if arr.min() < 1 or arr.max() > T:
        raise ValueError(f"lengths must lie in 1..T = 1..{T}, got min {arr.min()} and max {arr.max()}")
    if (arr == T).all():
        return None
    return np.ascontiguousarray(arr, dtype=np.int64)
