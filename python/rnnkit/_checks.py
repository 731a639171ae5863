"""Argument checks shared by both kernel back-ends: every message names the argument and the expected
and actual shapes, so bad input fails in Python before any native code runs."""

from __future__ import annotations

import functools
import warnings
from typing import Optional, Sequence

import numpy as np

from ._cells import cell_spec

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def accepts_mode_alias(fn):
    """Lets ``fn(cell, ...)`` be called as ``fn(mode=...)``, the argument's former name (deprecated)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if "mode" in kwargs:
            if args or "cell" in kwargs:
                raise TypeError(f"{fn.__name__}() got both cell and its deprecated alias mode")
            warnings.warn("the 'mode' argument is now called 'cell'", DeprecationWarning, stacklevel=2)
            kwargs["cell"] = kwargs.pop("mode")
        return fn(*args, **kwargs)

    return wrapper


def float_dtype(name: str, a: np.ndarray) -> np.dtype:
    """The dtype of ``a`` if it is float32 or float64, else TypeError naming ``name``."""
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
    return a.dtype


def as_array(name: str, a, dtype: np.dtype, shape: Sequence[int]) -> np.ndarray:
    """``a`` as a C-contiguous array of ``dtype`` and exactly ``shape``.

    Refuses (TypeError) anything that is not already of the kernel's dtype: the kernels never change
    precision behind the caller's back. The layers convert user input before it gets here.
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} like x, got {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")
    return np.ascontiguousarray(a)


def optional_array(name: str, a, dtype: np.dtype, shape: Sequence[int]) -> Optional[np.ndarray]:
    return None if a is None else as_array(name, a, dtype, shape)


RECURRENT_WEIGHTS = ("float32", "float16")


def check_recurrent_weights(recurrent_weights: str, dtype: np.dtype, training: bool) -> bool:
    """Whether ``recurrent_weights`` asks for a half W_hh; ValueError for a storage there is not, or a half
    W_hh where it does not apply (training, float64)."""
    if recurrent_weights not in RECURRENT_WEIGHTS:
        raise ValueError(f"recurrent_weights must be one of {RECURRENT_WEIGHTS}, got {recurrent_weights!r}")
    if recurrent_weights == "float32":
        return False
    if training:
        raise ValueError("recurrent_weights='float16' is for inference: pass training=False (a layer: call eval())")
    if dtype != np.float32:
        raise ValueError(f"recurrent_weights='float16' takes float32 arrays, got {dtype}")
    return True


def check_lengths(lengths, T: int, B: int) -> Optional[np.ndarray]:
    """``lengths`` as a contiguous int64 array of B values in 1..T, or None."""
    if lengths is None:
        return None
    arr = np.asarray(lengths)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"lengths must hold integers, got dtype {arr.dtype}")
    if arr.shape != (B,):
        raise ValueError(f"lengths must have shape ({B},) (one per batch element), got {arr.shape}")
    if B and (arr.min() < 1 or arr.max() > T):
        raise ValueError(f"lengths must lie in 1..{T} (T = x.shape[0]), got min {arr.min()} max {arr.max()}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_ids(ids, table: np.ndarray) -> np.ndarray:
    """``ids`` as a contiguous (T, B) int64 array of rows of ``table`` (V, I), which must be 2-D."""
    if table.ndim != 2 or table.shape[0] < 1:
        raise ValueError(f"with ids, x must be a table (V, input_size) with at least one row, got shape {table.shape}")
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"ids must hold integers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"ids must have shape (T, B), got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= table.shape[0]):
        raise ValueError(f"ids must lie in 0..{table.shape[0] - 1} (rows of x), got min {arr.min()} max {arr.max()}")
    return np.ascontiguousarray(arr, dtype=np.int64)


class ForwardArgs:
    """The checked, contiguous arguments of one sequence forward (one layer, one direction)."""

    def __init__(self, cell, x, h0, w_ih, w_hh, b_ih, b_hh, c0, lengths, reverse, ids=None):
        spec = cell_spec(cell)
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a numpy.ndarray, got {type(x).__name__}")
        dtype = float_dtype("x", x)
        self.ids = None if ids is None else check_ids(ids, x)
        if self.ids is not None:
            (T, B), I = self.ids.shape, x.shape[1]
        elif x.ndim != 3:
            raise ValueError(f"x must have shape (T, B, input_size), got ndim {x.ndim} shape {x.shape}")
        else:
            T, B, I = x.shape
        if T < 1 or B < 1:
            raise ValueError(f"x must have at least one step and one batch element, got shape {x.shape}")
        if not isinstance(w_hh, np.ndarray):
            raise TypeError(f"w_hh must be a numpy.ndarray, got {type(w_hh).__name__}")
        if w_hh.ndim != 2:
            raise ValueError(
                f"w_hh must be a 2-D array of shape ({spec.gates_hh}*H, H), got {getattr(w_hh, 'shape', None)}"
            )
        H = w_hh.shape[1]
        if H < 1:
            raise ValueError(f"w_hh must have at least one hidden unit, got shape {w_hh.shape}")
        self.cell, self.spec, self.reverse = cell, spec, bool(reverse)
        self.T, self.B, self.I, self.H = T, B, I, H
        self.dtype = dtype
        self.x = np.ascontiguousarray(x)
        shapes = spec.kernel_shapes(I, H)
        # Weights first: H is read off w_hh, so a w_hh of the wrong shape must be named as such.
        self.w_hh = as_array("w_hh", w_hh, dtype, shapes["w_hh"])
        self.w_ih = as_array("w_ih", w_ih, dtype, shapes["w_ih"])
        self.h0 = as_array("h0", h0, dtype, (B, H))
        if not spec.bias_hh and b_hh is not None:
            raise ValueError(f"b_hh must be None for {cell!r}: its one bias vector is b_ih {shapes['b_ih']}")
        if spec.bias_hh and (b_ih is None) != (b_hh is None):
            raise ValueError("b_ih and b_hh must both be given or both be None")
        self.b_ih = optional_array("b_ih", b_ih, dtype, shapes["b_ih"])
        self.b_hh = optional_array("b_hh", b_hh, dtype, shapes["b_hh"]) if spec.bias_hh else None
        if spec.raw_input and I != H:
            raise ValueError(
                f"{cell!r} reads x directly, so its input size must equal the hidden size: "
                f"got input size {I} and hidden size {H}"
            )
        if spec.has_cell_state:
            self.c0 = as_array("c0", c0, dtype, (B, H)) if c0 is not None else np.zeros((B, H), dtype)
        elif c0 is not None:
            raise ValueError(f"c0 is only for a cell with a cell state (lstm), got it with cell {cell!r}")
        else:
            self.c0 = None
        self.lengths = check_lengths(lengths, T, B)

    @property
    def mode(self) -> str:
        """The cell's name (its former name)."""
        return self.cell

    @property
    def has_bias(self) -> bool:
        return self.b_ih is not None

    @property
    def biases(self) -> tuple:
        """The biases the cell has: (b_ih, b_hh), or (b_ih,) for a cell with one bias vector."""
        return (self.b_ih, self.b_hh) if self.spec.bias_hh else (self.b_ih,)

    @property
    def inputs(self) -> np.ndarray:
        """The (T, B, I) inputs: x, or with ids the rows of the table x they pick."""
        return self.x if self.ids is None else self.x[self.ids]


def check_backward(args: ForwardArgs, dy, dh_n, dc_n):
    """``dy`` (T, B, H), ``dh_n`` and ``dc_n`` (B, H) checked against the forward's shapes; None -> zeros."""
    T, B, H, dtype = args.T, args.B, args.H, args.dtype
    dy = as_array("dy", dy, dtype, (T, B, H))
    dh_n = np.zeros((B, H), dtype) if dh_n is None else as_array("dh_n", dh_n, dtype, (B, H))
    if args.spec.has_cell_state:
        dc_n = np.zeros((B, H), dtype) if dc_n is None else as_array("dc_n", dc_n, dtype, (B, H))
    elif dc_n is not None:
        raise ValueError(f"dc_n is only for a cell with a cell state (lstm), got it with cell {args.cell!r}")
    return dy, dh_n, dc_n


def check_accumulate_into(args: ForwardArgs, into) -> Optional[tuple]:
    """The (dw_ih, dw_hh, db_ih, db_hh) arrays a backward adds its weight gradients to, or None. They are
    updated in place, so they must already be writeable C-contiguous arrays of the forward's dtype and
    the weights' shapes (no copy is made); db_* are given exactly when the forward had biases."""
    if into is None:
        return None
    if not isinstance(into, (tuple, list)) or len(into) != 4:
        raise TypeError("accumulate_into must be a tuple (dw_ih, dw_hh, db_ih, db_hh)")
    kernel = args.spec.kernel_shapes(args.I, args.H)
    shapes = {"d" + k: kernel.get(k) for k in ("w_ih", "w_hh", "b_ih", "b_hh")}
    for (name, shape), a in zip(shapes.items(), into):
        absent = shape is None or (name.startswith("db") and not args.has_bias)
        if a is None and absent:
            continue
        if a is None or absent:
            need = (
                "given"
                if a is None
                else "None: the forward had no bias"
                if shape is not None
                else f"None: {args.cell!r} has one bias vector, b_ih"
            )
            raise ValueError(f"accumulate_into's {name} must be {need}")
        if not isinstance(a, np.ndarray) or a.dtype != args.dtype or not a.flags.c_contiguous or not a.flags.writeable:
            raise TypeError(f"accumulate_into's {name} must be a writeable C-contiguous {args.dtype} array")
        if a.shape != shape:
            raise ValueError(f"accumulate_into's {name} must have shape {shape}, got {a.shape}")
    return tuple(into)
