"""What the two attention back-ends share: the result type and the argument checks, so that
``rnnkit.attention`` (C++) and ``rnnkit.reference.attention`` (NumPy) accept the same input and raise the
same exceptions with the same messages.

Shape legend: B = batch, T = queries (decoder steps), N = keys (source positions), Hq = query size,
Hk = key size, A = additive attention size.
"""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from ._checks import FLOAT_DTYPES

#: "dot": e = s . h (Hq == Hk); "general" (Luong): e = s^T W h; "additive" (Bahdanau):
#: e = v^T tanh(W_q s + W_k h).
KINDS = ("dot", "general", "additive")

#: The parameter names of each kind, in the order of the equations.
PARAM_NAMES: Dict[str, Tuple[str, ...]] = {
    "dot": (),
    "general": ("weight",),
    "additive": ("w_query", "w_key", "v"),
}


class AttentionResult(NamedTuple):
    """What an attention forward returns.

    context: (B, T, Hk) a_t = sum_i alpha_ti h_i for every query.
    weights: (B, T, N) alpha_t, each row summing to 1 over the unmasked positions and exactly 0 on the
        masked ones.
    cache: what ``backward`` needs (opaque, back-end specific); None after ``training=False``.
    """

    context: np.ndarray
    weights: np.ndarray
    cache: Any


def check_kind(kind) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def param_shapes(kind: str, query_size: int, key_size: int, attn_size: Optional[int]) -> Dict[str, tuple]:
    """The shape of each parameter of ``kind``."""
    if kind == "dot":
        return {}
    if kind == "general":
        return {"weight": (query_size, key_size)}
    return {"w_query": (attn_size, query_size), "w_key": (attn_size, key_size), "v": (attn_size,)}


def _array(name: str, a, dtype: Optional[np.dtype], like: str = "queries") -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if dtype is None:
        if a.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
    elif a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} like {like}, got {a.dtype}")
    return a


class AttentionArgs:
    """The checked, C-contiguous arguments of one attention forward.

    Attributes: kind, B, T, N, Hq, Hk, A (additive, else None), dtype, queries, keys, params (a new dict
    of contiguous arrays, exactly the kind's keys) and mask (a contiguous bool (B, N) array or None).
    """

    def __init__(self, kind, queries, keys, params, mask):
        self.kind = check_kind(kind)
        queries = _array("queries", queries, None)
        self.dtype = queries.dtype
        if queries.ndim != 3:
            raise ValueError(
                f"queries must have shape (B, T, query_size), got ndim {queries.ndim} shape {queries.shape}"
            )
        keys = _array("keys", keys, self.dtype)
        if keys.ndim != 3:
            raise ValueError(f"keys must have shape (B, N, key_size), got ndim {keys.ndim} shape {keys.shape}")
        B, T, Hq = queries.shape
        N, Hk = keys.shape[1:]
        if min(B, T, Hq) < 1:
            raise ValueError(f"queries must have B, T and query_size >= 1, got shape {queries.shape}")
        if keys.shape[0] != B:
            raise ValueError(
                f"keys must have the batch size B = {B} of queries {queries.shape}, got shape {keys.shape}"
            )
        if min(N, Hk) < 1:
            raise ValueError(f"keys must have N and key_size >= 1, got shape {keys.shape}")
        if kind == "dot" and Hq != Hk:
            raise ValueError(
                f"kind 'dot' needs query_size == key_size, got queries {queries.shape} and keys {keys.shape}"
            )
        self.B, self.T, self.N, self.Hq, self.Hk = B, T, N, Hq, Hk
        self.queries = np.ascontiguousarray(queries)
        self.keys = np.ascontiguousarray(keys)
        self.params = self._check_params(params)
        self.mask = self._check_mask(mask)

    def _check_params(self, params) -> Dict[str, np.ndarray]:
        kind, names = self.kind, PARAM_NAMES[self.kind]
        if not isinstance(params, dict):
            raise TypeError(f"params must be a dict, got {type(params).__name__}")
        missing = [n for n in names if n not in params]
        if missing:
            raise ValueError(f"params is missing {missing} (kind {kind!r} needs {list(names)})")
        unexpected = sorted(str(n) for n in params if n not in names)
        if unexpected:
            raise ValueError(f"params has unexpected keys {unexpected} for kind {kind!r} (it takes {list(names)})")
        self.A = None
        if kind == "additive":
            v = _array("params['v']", params["v"], self.dtype)
            if v.ndim != 1 or v.shape[0] < 1:
                raise ValueError(f"params['v'] must have shape (attn_size,) with attn_size >= 1, got {v.shape}")
            self.A = v.shape[0]
        out = {}
        for name, shape in param_shapes(kind, self.Hq, self.Hk, self.A).items():
            p = _array(f"params[{name!r}]", params[name], self.dtype)
            if p.shape != shape:
                raise ValueError(
                    f"params[{name!r}] must have shape {shape} for queries of size {self.Hq}, keys of "
                    f"size {self.Hk}" + (f" and attn_size {self.A}" if self.A else "") + f", got {p.shape}"
                )
            out[name] = np.ascontiguousarray(p)
        return out

    def _check_mask(self, mask) -> Optional[np.ndarray]:
        if mask is None:
            return None
        if not isinstance(mask, np.ndarray):
            raise TypeError(f"mask must be a numpy.ndarray of bool or None, got {type(mask).__name__}")
        if mask.dtype != np.bool_:
            raise TypeError(f"mask must have dtype bool (True = a real source position), got {mask.dtype}")
        if mask.shape != (self.B, self.N):
            raise ValueError(f"mask must have shape (B, N) = {(self.B, self.N)}, got {mask.shape}")
        empty = np.flatnonzero(~mask.any(axis=1))
        if empty.size:
            raise ValueError(
                f"mask rows {empty.tolist()} have no True entry: every batch element needs at least "
                "one source position to attend to"
            )
        return np.ascontiguousarray(mask)


def check_cache(cache, cache_type: type, module: str):
    """The cache of a training forward of this back-end, else RuntimeError (None) or TypeError."""
    if cache is None:
        raise RuntimeError("backward needs the cache of a training forward: this forward ran with training=False")
    if not isinstance(cache, cache_type):
        raise TypeError(f"cache must come from {module}.forward, got {type(cache).__name__}")
    return cache


def check_backward(args: AttentionArgs, dcontext, dweights) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """``dcontext`` (B, T, Hk) and ``dweights`` (B, T, N) or None, checked against the forward."""
    out: List[Any] = []  # dcontext, then dweights or None
    for name, a, shape in (
        ("dcontext", dcontext, (args.B, args.T, args.Hk)),
        ("dweights", dweights, (args.B, args.T, args.N)),
    ):
        if a is None and name == "dweights":
            out.append(None)
            continue
        a = _array(name, a, args.dtype, like="the forward's queries")
        if a.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
        out.append(np.ascontiguousarray(a))
    return out[0], out[1]
