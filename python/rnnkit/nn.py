"""Embedding and Linear modules with explicit forward/backward, in the style of `rnnkit.layers`:
NumPy in, NumPy out; ``backward`` adds parameter gradients into ``grads`` (keys as ``state_dict``).

Shape legend: N = rows (e.g. T*B), V = vocabulary, E = embedding width, I = in features, O = out.
"""

from __future__ import annotations

import math
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from . import _C

__all__ = ["Module", "Embedding", "Linear"]


def _check_dtype(dtype) -> None:
    """The native kernels behind the modules take float32 and float64."""
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")


class Module:
    """Parameters in ``params`` (name -> array, updated in place by optimisers) and their gradients in
    ``grads``. A subclass fills ``params`` in its constructor and calls ``_init_grads``."""

    params: Dict[str, np.ndarray]
    grads: Dict[str, np.ndarray]

    def _init_grads(self) -> None:
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g.fill(0)

    def state_dict(self) -> Dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Strict: the same keys and shapes; values are copied into the existing arrays."""
        if set(state) != set(self.params):
            raise KeyError(f"expected keys {sorted(self.params)}, got {sorted(state)}")
        for k, v in state.items():
            if np.shape(v) != self.params[k].shape:
                raise ValueError(f"{k} must have shape {self.params[k].shape}, got {np.shape(v)}")
        for k, v in state.items():
            np.copyto(self.params[k], v)


class Embedding(Module):
    """``weight`` (V, E), initialised N(0, 1) like torch.nn.Embedding; forward(idx) = weight[idx]."""

    def __init__(self, num: int, dim: int, dtype=np.float32, rng: Optional[np.random.Generator] = None):
        _check_dtype(dtype)
        rng = rng or np.random.default_rng()
        self.params = {"weight": rng.standard_normal((num, dim)).astype(dtype)}
        self._init_grads()
        self._idx: Optional[np.ndarray] = None

    def forward(self, idx: np.ndarray) -> np.ndarray:
        """idx (...) integers -> (..., E); remembers idx for backward."""
        self._idx = idx
        return self.params["weight"][idx]

    def backward(self, dout: np.ndarray) -> None:
        """Adds the rows of dout (..., E) into grads['weight'] at the remembered indices."""
        if self._idx is None:
            raise RuntimeError("Embedding.backward needs a forward first")
        g = self.grads["weight"]
        # Repeated indices sum, in row order as np.add.at would, in one native pass.
        _C.embedding_backward(g, self._idx.reshape(-1), np.ascontiguousarray(dout, g.dtype).reshape(-1, g.shape[1]))


class Linear(Module):
    """y = x weight^T + bias with ``weight`` (O, I) and ``bias`` (O,), initialised
    U(-1/sqrt(I), 1/sqrt(I)) like torch.nn.Linear. Inputs (..., I) are taken in the weight's dtype.

    The products run in rnnkit's native kernels on its own threads (`rnnkit.set_num_threads`), not in
    NumPy's matmul, whose BLAS threads would compete with the recurrent kernels' in a training loop."""

    def __init__(
        self, in_features: int, out_features: int, dtype=np.float32, rng: Optional[np.random.Generator] = None
    ):
        _check_dtype(dtype)
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ValueError(f"{name} must be a positive int, got {n!r}")
        rng = rng or np.random.default_rng()
        bound = 1.0 / math.sqrt(in_features)
        self.params = {
            "weight": rng.uniform(-bound, bound, (out_features, in_features)).astype(dtype),
            "bias": rng.uniform(-bound, bound, out_features).astype(dtype),
        }
        self._init_grads()
        self._x: Optional[np.ndarray] = None  # the last forward's input as (N, I)
        self._lead: Tuple[int, ...] = ()  # ...and its leading dimensions

    def _rows(self, x: np.ndarray) -> np.ndarray:
        """x (..., I) as a C-contiguous (N, I) array of the weight's dtype."""
        x = np.asarray(x)
        in_features = self.params["weight"].shape[1]
        if x.ndim < 1 or x.shape[-1] != in_features:
            raise ValueError(f"x must have shape (..., {in_features}), got {x.shape}")
        return np.ascontiguousarray(x.reshape(-1, in_features), self.params["weight"].dtype)

    def _affine(self, rows: np.ndarray, lead: Tuple[int, ...]) -> np.ndarray:
        w, b = self.params["weight"], self.params["bias"]  # a user may have replaced them: any layout reads
        y = _C.linear_forward(rows, np.ascontiguousarray(w), np.ascontiguousarray(b, w.dtype))
        return y.reshape(*lead, y.shape[1])

    def apply(self, x: np.ndarray) -> np.ndarray:
        """x (..., I) -> (..., O), remembering nothing (inference)."""
        return self._affine(self._rows(x), np.shape(x)[:-1])

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (..., I) -> (..., O); remembers x for backward."""
        self._x, self._lead = self._rows(x), np.shape(x)[:-1]
        return self._affine(self._x, self._lead)

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        """dy (..., O) of the last forward -> dx (..., I), or None without ``input_grad`` (a first layer
        skips that product); adds into grads['weight'] and grads['bias']."""
        if self._x is None:
            raise RuntimeError("Linear.backward needs a forward first")
        w = self.params["weight"]
        dy = np.ascontiguousarray(np.asarray(dy).reshape(self._x.shape[0], -1), w.dtype)
        dx = _C.linear_backward(
            dy, self._x, np.ascontiguousarray(w), self.grads["weight"], self.grads["bias"], input_grad
        )
        return None if dx is None else dx.reshape(*self._lead, w.shape[1])
