"""Attention for seq2seq on the C++ kernels (csrc/rnnkit/ops/attention.h): Luong "dot" and "general" and
Bahdanau "additive" attention, forward and backward, float32 and float64.

``rnnkit.reference.attention`` specifies these functions in plain NumPy; both take the same arguments,
return the same results and raise the same errors, so either can back a model.

For each decoder state s_t (a query) and the encoder states h_1..h_N (keys = values)::

    dot:      e_ti = s_t . h_i                          (query_size == key_size)
    general:  e_ti = s_t^T W h_i                        W (Hq, Hk)
    additive: e_ti = v^T tanh(W_q s_t + W_k h_i)        W_q (A, Hq), W_k (A, Hk), v (A,)
    alpha_t = softmax_i(e_ti) over the unmasked i       (masked positions get exactly 0 weight)
    a_t     = sum_i alpha_ti h_i

Shapes: B = batch, T = queries (decoder steps), N = keys (source positions), Hq / Hk = query / key
size, A = additive attention size. queries (B, T, Hq), keys (B, N, Hk), mask (B, N) bool (True = a real
source position), context (B, T, Hk), weights (B, T, N).

Example::

    import numpy as np
    from rnnkit import attention
    rng = np.random.default_rng(0)
    B, T, N, H = 2, 3, 5, 8
    params = attention.init_params("additive", H, H, attn_size=16, dtype=np.float64, rng=rng)
    s, h = rng.standard_normal((B, T, H)), rng.standard_normal((B, N, H))
    mask = np.array([[True] * 5, [True] * 3 + [False] * 2])     # second source has 3 tokens
    context, weights, cache = attention.forward("additive", s, h, params, mask)
    dq, dk, dparams = attention.backward(cache, np.ones_like(context))
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from . import _C
from ._attention_checks import KINDS, PARAM_NAMES, AttentionArgs, AttentionResult, check_backward, check_cache
from .reference.attention import init_params

__all__ = ["KINDS", "PARAM_NAMES", "AttentionResult", "AttentionCache", "init_params", "forward", "backward"]

_KIND_ID = {kind: i for i, kind in enumerate(KINDS)}  # the order of rnnkit::AttentionKind in attention.h


class AttentionCache:
    """What a training forward keeps for its backward: the checked arguments and the kernel's workspace
    (alpha, plus the projected queries for "general" and W_q s_t, W_k h_i for "additive"). Backward only
    reads it, so one cache serves any number of backwards."""

    __slots__ = ("args", "buffer")

    def __init__(self, args: AttentionArgs, buffer: np.ndarray):
        self.args, self.buffer = args, buffer

    @property
    def nbytes(self) -> int:
        return self.buffer.nbytes


def _native_args(a: AttentionArgs):
    p = a.params
    return (_KIND_ID[a.kind], a.queries, a.keys, p.get("weight"), p.get("w_query"), p.get("w_key"), p.get("v"),
            a.mask)


def forward(kind: str, queries: np.ndarray, keys: np.ndarray, params: Dict[str, np.ndarray],
            mask: Optional[np.ndarray] = None, *, training: bool = True) -> AttentionResult:
    """Attention of every query over the keys of its batch element.

    Args:
        kind: one of KINDS.
        queries: (B, T, Hq) decoder states s_t; keys: (B, N, Hk) encoder states h_i (also the values).
        params: the kind's parameters (see ``init_params``), same dtype as queries (float32 or float64).
        mask: (B, N) bool, True for real source positions, or None for all; every row needs a True.
        training: keep the cache for ``backward`` (about B*T*N numbers, plus B*T*Hk for "general" and
            B*(T+N)*A for "additive").

    Returns:
        AttentionResult(context (B, T, Hk), weights (B, T, N), cache or None).
    """
    a = AttentionArgs(kind, queries, keys, params, mask)
    context, weights, buf = _C.attention_forward(*_native_args(a), bool(training))
    return AttentionResult(context, weights, AttentionCache(a, buf) if training else None)


def backward(cache: AttentionCache, dcontext: np.ndarray, dweights: Optional[np.ndarray] = None
             ) -> Tuple[np.ndarray, np.ndarray, Dict[str, np.ndarray]]:
    """Gradients of a loss through the forward that returned ``cache``.

    Args:
        dcontext: (B, T, Hk) gradient w.r.t. the context; dweights: (B, T, N) w.r.t. the weights, or None
            (zeros).

    Returns:
        (dqueries (B, T, Hq), dkeys (B, N, Hk), dparams: a dict with the same keys as the params), fresh
        arrays. Masked keys get exactly zero gradient.
    """
    cache = check_cache(cache, AttentionCache, "rnnkit.attention")
    a = cache.args
    dcontext, dweights = check_backward(a, dcontext, dweights)
    dq, dk, dweight, dw_query, dw_key, dv = _C.attention_backward(*_native_args(a), cache.buffer, dcontext,
                                                                  dweights)
    grads = {"weight": dweight, "w_query": dw_query, "w_key": dw_key, "v": dv}
    return dq, dk, {name: grads[name] for name in PARAM_NAMES[a.kind]}
