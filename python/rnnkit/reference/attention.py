"""Attention for seq2seq, forward and backward, in plain NumPy: the specification of ``rnnkit.attention``.

For each decoder state s_t (a query) and the encoder states h_1..h_N (the keys, which are also the
values) of the same batch element (Luong et al. 2015; Bahdanau et al. 2015):

    dot:      e_ti = s_t . h_i                          (query_size == key_size)
    general:  e_ti = s_t^T W h_i                        W (Hq, Hk)
    additive: e_ti = v^T tanh(W_q s_t + W_k h_i)        W_q (A, Hq), W_k (A, Hk), v (A,)
    alpha_t = softmax_i(e_ti) over the unmasked i       (masked positions get exactly 0 weight)
    a_t     = sum_i alpha_ti h_i

Shape legend: B = batch, T = queries (decoder steps), N = keys (source positions), Hq = query size,
Hk = key size, A = additive attention size.
    queries (B, T, Hq)   keys (B, N, Hk)   mask (B, N) bool, True = a real source position
    context (B, T, Hk)   weights (B, T, N)

API (the same in ``rnnkit.attention``):
    init_params(kind, query_size, key_size, attn_size=None, dtype=np.float32, rng=None) -> dict
    forward(kind, queries, keys, params, mask=None, *, training=True) -> AttentionResult(context, weights, cache)
    backward(cache, dcontext, dweights=None) -> (dqueries, dkeys, dparams)
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from .._attention_checks import KINDS, PARAM_NAMES, AttentionArgs, AttentionResult, check_backward, check_cache, \
    check_kind, param_shapes
from .._checks import FLOAT_DTYPES

__all__ = ["KINDS", "PARAM_NAMES", "AttentionResult", "init_params", "forward", "backward", "masked_softmax"]


def init_params(kind: str, query_size: int, key_size: int, attn_size: Optional[int] = None,
                dtype=np.float32, rng=None) -> Dict[str, np.ndarray]:
    """Fresh parameters of one attention ``kind``, initialised like ``torch.nn.Linear`` weights.

    Each matrix is a linear map whose input is its second axis (W maps h to the query space, W_q and
    W_k map into the A-dimensional attention space, v maps that space to a score), and is drawn from
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in its input size.

    Args:
        kind: one of KINDS.
        query_size, key_size: Hq and Hk; "dot" needs them equal.
        attn_size: A, additive only (default: key_size); must be None for "dot" and "general".
        dtype: float32 or float64.
        rng: a numpy Generator, a seed, or None (fresh entropy).

    Returns:
        {} for "dot"; {"weight": (Hq, Hk)} for "general"; {"w_query": (A, Hq), "w_key": (A, Hk),
        "v": (A,)} for "additive".
    """
    check_kind(kind)
    for name, n in (("query_size", query_size), ("key_size", key_size)) + ((("attn_size", attn_size),)
                                                                          if attn_size is not None else ()):
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    if kind == "dot" and query_size != key_size:
        raise ValueError(f"kind 'dot' needs query_size == key_size, got {query_size} and {key_size}")
    if kind != "additive" and attn_size is not None:
        raise ValueError(f"attn_size is only for kind 'additive', got attn_size={attn_size} with kind {kind!r}")
    if np.dtype(dtype) not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
    if kind == "additive" and attn_size is None:
        attn_size = key_size
    rng = np.random.default_rng(rng)
    params = {}
    for name, shape in param_shapes(kind, int(query_size), int(key_size), attn_size).items():
        fan_in = shape[-1] if len(shape) == 2 else shape[0]  # v is the weight of a Linear(A, 1)
        bound = 1.0 / np.sqrt(fan_in)
        params[name] = rng.uniform(-bound, bound, size=shape).astype(dtype)
    return params


def masked_softmax(e: np.ndarray, mask: Optional[np.ndarray]) -> np.ndarray:
    """softmax over the last axis of ``e`` (B, T, N), restricted to ``mask`` (B, N); exactly 0 elsewhere."""
    if mask is None:
        p = np.exp(e - e.max(axis=-1, keepdims=True))
    else:
        m = mask[:, None, :]
        top = np.where(m, e, -np.inf).max(axis=-1, keepdims=True)
        p = np.where(m, np.exp(np.where(m, e, top) - top), 0)
    return p / p.sum(axis=-1, keepdims=True)


class ReferenceCache:
    """What the reference forward keeps for its backward: the checked arguments, alpha, and for
    additive the tanh values (B, T, N, A)."""

    __slots__ = ("args", "projected", "alpha", "tanh")

    def __init__(self, args, projected, alpha, tanh):
        self.args, self.projected, self.alpha, self.tanh = args, projected, alpha, tanh


def forward(kind: str, queries: np.ndarray, keys: np.ndarray, params: Dict[str, np.ndarray],
            mask: Optional[np.ndarray] = None, *, training: bool = True) -> AttentionResult:
    """Attention of every query over the keys of its batch element.

    Args:
        kind: one of KINDS.
        queries: (B, T, Hq) decoder states s_t; keys: (B, N, Hk) encoder states h_i (also the values).
        params: the kind's parameters (see ``init_params``), same dtype as queries (float32 or float64).
        mask: (B, N) bool, True for real source positions, or None for all; every row needs a True.
        training: keep the cache for ``backward``.

    Returns:
        AttentionResult(context (B, T, Hk), weights (B, T, N), cache or None).
    """
    a = AttentionArgs(kind, queries, keys, params, mask)
    S, H, p = a.queries, a.keys, a.params
    projected = tnh = None
    if kind == "dot":
        e = S @ H.transpose(0, 2, 1)                                  # e_ti = s_t . h_i
    elif kind == "general":
        projected = S @ p["weight"]                                   # s_t^T W, (B, T, Hk)
        e = projected @ H.transpose(0, 2, 1)                          # e_ti = s_t^T W h_i
    else:
        q = S @ p["w_query"].T                                        # W_q s_t, (B, T, A)
        k = H @ p["w_key"].T                                          # W_k h_i, (B, N, A)
        tnh = np.tanh(q[:, :, None, :] + k[:, None, :, :])            # (B, T, N, A)
        e = tnh @ p["v"]                                              # e_ti = v^T tanh(W_q s_t + W_k h_i)
    alpha = masked_softmax(e, a.mask)                                 # alpha_t = softmax_i(e_ti)
    context = alpha @ H                                               # a_t = sum_i alpha_ti h_i
    # The cache keeps its own alpha: the caller may write to the returned weights.
    cache = ReferenceCache(a, projected, alpha.copy(), tnh) if training else None
    return AttentionResult(context, alpha, cache)


def backward(cache: ReferenceCache, dcontext: np.ndarray, dweights: Optional[np.ndarray] = None
             ) -> Tuple[np.ndarray, np.ndarray, Dict[str, np.ndarray]]:
    """Gradients of a loss through the forward that returned ``cache``.

    Args:
        dcontext: (B, T, Hk) gradient w.r.t. the context; dweights: (B, T, N) w.r.t. the weights, or None
            (zeros).

    Returns:
        (dqueries (B, T, Hq), dkeys (B, N, Hk), dparams: a dict with the same keys as the params).
    """
    cache = check_cache(cache, ReferenceCache, "rnnkit.reference.attention")
    a = cache.args
    dcontext, dweights = check_backward(a, dcontext, dweights)
    S, H, p, alpha = a.queries, a.keys, a.params, cache.alpha
    # a_t = sum_i alpha_ti h_i
    dalpha = dcontext @ H.transpose(0, 2, 1)
    if dweights is not None:
        dalpha = dalpha + dweights
    dkeys = alpha.transpose(0, 2, 1) @ dcontext
    # softmax: de_ti = alpha_ti (dalpha_ti - sum_j alpha_tj dalpha_tj); zero where alpha is (masked)
    de = alpha * (dalpha - np.sum(alpha * dalpha, axis=-1, keepdims=True))
    dparams = {}
    if a.kind == "dot":
        dqueries = de @ H
        dkeys += de.transpose(0, 2, 1) @ S
    elif a.kind == "general":
        dprojected = de @ H                                           # w.r.t. s_t^T W
        dkeys += de.transpose(0, 2, 1) @ cache.projected
        dqueries = dprojected @ p["weight"].T
        dparams["weight"] = np.einsum("btq,btk->qk", S, dprojected)
    else:
        tnh = cache.tanh
        dparams_v = np.einsum("btn,btna->a", de, tnh)
        dpre = de[..., None] * p["v"] * (1 - tnh * tnh)               # w.r.t. W_q s_t + W_k h_i, (B, T, N, A)
        dq, dk = dpre.sum(axis=2), dpre.sum(axis=1)                   # (B, T, A), (B, N, A)
        dqueries = dq @ p["w_query"]
        dkeys += dk @ p["w_key"]
        dparams["w_query"] = np.einsum("bta,btq->aq", dq, S)
        dparams["w_key"] = np.einsum("bna,bnk->ak", dk, H)
        dparams["v"] = dparams_v
    return dqueries, dkeys, dparams
