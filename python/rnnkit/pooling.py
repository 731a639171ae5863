"""Pooling over time on the C++ kernels (csrc/rnnkit/ops/pooling.h), and `Pool`, the layer a many-to-one
model puts between its recurrent stack and its output layer.

``rnnkit.reference.pooling`` specifies the kernels in plain NumPy; both take the same arguments, return
the same results and raise the same errors. Over the valid steps x_1..x_n of each sequence (padding past
n is never read and gets exactly zero gradient)::

    last:      out = x_n (forward-direction columns), x_1 (reverse-direction columns, >= split)
    mean:      out = (1/n) sum_t x_t
    max:       out = max_t x_t per column
    attention: out = sum_t alpha_t x_t, alpha = softmax_t(v^T tanh(W_k x_t + b))   (`Pool` only)

Attention pooling (Yang et al. 2016's word attention; Raffel and Ellis 2015) is `rnnkit.attention`'s
additive attention with a single query, the constant 1: W_q times it is the bias b, so its kernels and
their masking serve unchanged.

Shape legend: T = steps, B = batch, F = features, A = attention size.

Example::

    import numpy as np
    from rnnkit import pooling
    x = np.random.default_rng(0).standard_normal((5, 2, 4))      # (T, B, F)
    out, cache = pooling.forward("max", x, lengths=[5, 3])
    dx = pooling.backward(cache, np.ones_like(out))              # zero at steps 3, 4 of element 1
"""
from __future__ import annotations

import importlib
from typing import Any, Optional

import numpy as np

from . import _C
from ._pooling_checks import KINDS, PoolArgs, PoolResult, check_dout, check_forward
from .nn import Module, _check_dtype

__all__ = ["KINDS", "POOLS", "PoolResult", "forward", "backward", "Pool"]

#: What `Pool` offers: the kernels' kinds and attention.
POOLS = KINDS + ("attention",)

_KIND_ID = {kind: i for i, kind in enumerate(KINDS)}  # the order of rnnkit::PoolKind in pooling.h


class PoolCache:
    """The checked arguments and the kernel's index (the step each output element came from)."""

    __slots__ = ("args", "index")

    def __init__(self, args: PoolArgs, index: Optional[np.ndarray]):
        self.args, self.index = args, index


def forward(kind: str, x: np.ndarray, lengths: Any = None, split: Optional[int] = None, *,
            training: bool = True) -> PoolResult:
    """Pool x (T, B, F) over each element's valid steps.

    Args:
        kind: "last", "mean" or "max".
        x: (T, B, F) float32 or float64, time-major (the layers' output).
        lengths: (B,) integers in 1..T, or None for all T.
        split: columns >= split are a reverse direction's ("last" reads them at the first step); None
            for F (one direction). A bidirectional stack of H units per direction has split = H.
        training: keep the cache for ``backward``.

    Returns:
        PoolResult(out (B, F), cache or None).
    """
    a = check_forward(kind, x, lengths, split)
    out, index = _C.pool_forward(_KIND_ID[kind], a.x, a.lengths, a.split)
    return PoolResult(out, PoolCache(a, index) if training else None)


def backward(cache: PoolCache, dout: np.ndarray) -> np.ndarray:
    """d loss / d x (T, B, F) from d loss / d out (B, F); exactly zero at every step not read."""
    if not isinstance(cache, PoolCache):
        raise TypeError(f"cache must come from rnnkit.pooling.forward(training=True), got {type(cache).__name__}")
    a = cache.args
    return _C.pool_backward(_KIND_ID[a.kind], a.x.shape[0], a.lengths, cache.index, check_dout(a, dout))


def _backends(name: Optional[str]):
    """(pooling kernels, attention kernels) of back-end "native" (C++, the default) or "reference"."""
    if name in (None, "native"):
        return importlib.import_module("rnnkit.pooling"), importlib.import_module("rnnkit.attention")
    if name == "reference":
        return (importlib.import_module("rnnkit.reference.pooling"),
                importlib.import_module("rnnkit.reference.attention"))
    raise ValueError(f"backend must be 'native' or 'reference', got {name!r}")


class Pool(Module):
    """Pooling of a recurrent stack's outputs (T, B, F) into (B, F), over valid steps only.

    Args:
        kind: one of POOLS. features: F. split: see `forward` (None: F).
        attn_size: A, attention only (default F). dtype: float32 or float64. rng: attention's initial
        weights (a Generator, a seed or None). backend: "native" or "reference".

    Attention's parameters (``params``/``grads``): ``w_query`` (A, 1) the bias b, ``w_key`` (A, F) and
    ``v`` (A,); the other kinds have none. After a forward, ``weights`` holds attention's (B, T) weights
    (zero on padding), None for the other kinds.
    """

    def __init__(self, kind: str, features: int, split: Optional[int] = None, attn_size: Optional[int] = None,
                 dtype: Any = np.float32, rng: Any = None, backend: Optional[str] = None):
        if kind not in POOLS:
            raise ValueError(f"pooling must be one of {', '.join(POOLS)}, got {kind!r}")
        _check_dtype(dtype)
        if attn_size is not None and kind != "attention":
            raise ValueError(f"attn_size is attention pooling's, got attn_size={attn_size} with pooling {kind!r}")
        self.kind, self.features, self.split = kind, int(features), split
        self._kernels, self._attention = _backends(backend)
        self.params = {}
        if kind == "attention":
            self.params = self._attention.init_params("additive", 1, self.features, attn_size or self.features,
                                                      dtype=dtype, rng=rng)
        self._init_grads()
        self.dtype = np.dtype(dtype)
        self.weights: Optional[np.ndarray] = None
        self._cache: Any = None

    def forward(self, x: np.ndarray, lengths: Any = None, training: bool = True) -> np.ndarray:
        """x (T, B, F), lengths (B,) or None -> (B, F); in training mode it keeps what `backward` needs."""
        x = np.asarray(x, self.dtype)
        if self.kind != "attention":
            out, self._cache = self._kernels.forward(self.kind, x, lengths, self.split, training=training)
            return out
        if x.ndim != 3 or x.shape[2] != self.features:
            raise ValueError(f"x must have shape (T, B, {self.features}), got {x.shape}")
        T, B, _ = x.shape
        keys = np.ascontiguousarray(x.transpose(1, 0, 2))
        mask = None if lengths is None else np.arange(T)[None, :] < np.asarray(lengths)[:, None]
        ones = np.ones((B, 1, 1), self.dtype)
        res = self._attention.forward("additive", ones, keys, self.params, mask, training=training)
        self.weights = res.weights[:, 0, :]
        self._cache = res.cache
        return res.context[:, 0, :]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout (B, F) of the last training forward -> dx (T, B, F); adds attention's parameter gradients."""
        if self._cache is None:
            raise RuntimeError("Pool.backward needs a forward in training mode first")
        cache, self._cache = self._cache, None
        if self.kind != "attention":
            return self._kernels.backward(cache, dout)
        dout = np.ascontiguousarray(np.asarray(dout, self.dtype)[:, None, :])
        _, dkeys, dparams = self._attention.backward(cache, dout)
        for k, g in dparams.items():
            self.grads[k] += g
        return np.ascontiguousarray(dkeys.transpose(1, 0, 2))
