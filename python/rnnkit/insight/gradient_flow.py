"""How a gradient flows back through time: the norm of dL/dh_t for a loss L at the last step T, against the
distance T - t, for vanilla RNN, LSTM and GRU cells (Pascanu, Mikolov and Bengio 2013; the lecture's
argument for the LSTM).

`state_gradients` gets dL/dh_t for every t from rnnkit's own kernels with one forward and one backward
(no finite differences): the backward returns the gradient with respect to a sequence's *initial*
state, so the batch of the backward holds, for every distance d = 1..T, a copy of each sequence that
starts from the state h_{T-d} the full run went through (and c_{T-d} for an LSTM) and reads the last d
inputs. With reverse=True and lengths = d all copies end at step T on the same inputs, so one call
serves every distance; its dh_0 of copy d is dL/dh_{T-d}. The price is T times the batch (and about
T^2/2 wasted steps of padding), which at T = 100, H = 128 takes seconds.

The loss is L = <v, h_T> with v a random unit vector per sequence, so dL/dh_T = v (norm 1 at distance
0) and the curves of different cells start together. dL/dh_t is the gradient with respect to h_t alone
(an LSTM's c_t held fixed), as a layer's backward gives it.

Shape legend: T = steps, B = sequences (random inputs), I = inputs, H = hidden units.
"""
from __future__ import annotations

import math
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np

from .. import kernels
from .._cells import cell_spec

__all__ = ["Curve", "state_gradients", "grad_norm_curve", "clip_coefficients", "orthogonal", "cell_weights",
           "standard_curves", "charlm_curves", "CLIP_NORM", "CELL_FAMILIES", "INPUT_SCALE"]

#: The global-norm clipping threshold of the second panel.
CLIP_NORM = 5.0
#: Standard deviation of the random inputs of `standard_curves`.
INPUT_SCALE = 0.01
#: Characters read before each window of `charlm_curves`, so that its states are those of running text.
WARMUP = 256
#: The cell families `standard_curves` draws (the --cells choices).
CELL_FAMILIES = ("rnn", "lstm", "gru")


class Curve(NamedTuple):
    """Mean ||dL/dh_{T-d}|| over the sequences, for d = 0..T."""

    distance: np.ndarray
    grad_norm: np.ndarray

    def to_json(self) -> Dict[str, List[float]]:
        return {"distance": [int(d) for d in self.distance], "grad_norm": [float(g) for g in self.grad_norm]}


def state_gradients(mode: str, x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: Optional[np.ndarray],
                    b_hh: Optional[np.ndarray], v: np.ndarray, h0: Optional[np.ndarray] = None,
                    c0: Optional[np.ndarray] = None) -> np.ndarray:
    """dL/dh_t for t = 0..T, shape (T+1, B, H), of L = sum_b <v[b], h_T[b]> for one layer of ``mode``
    (`rnnkit.kernels.MODES`) run over x (T, B, I) from h0 (B, H) (and c0 for a cell with a cell state;
    None: zeros).
    Row T is v itself; row t < T comes from the kernels' backward (see the module docstring)."""
    x = np.ascontiguousarray(x)
    T, B, I = x.shape
    H = w_hh.shape[1]
    dtype = x.dtype
    h0 = np.zeros((B, H), dtype) if h0 is None else h0
    run = kernels.forward(mode, x, h0, w_ih, w_hh, b_ih, b_hh, c0=c0)  # c0 None: zeros for a cell with c
    hs, cs = run.workspace.states()  # slot t: the state before step t; cs None for a cell without c
    # Copy (d, b), batch element (d - 1) * B + b: starts at h_{T-d} of sequence b and reads x[T-d .. T-1],
    # reversed in time, so that step s of the reverse run (s = d-1 .. 0) reads x[T-1-s].
    d = np.repeat(np.arange(1, T + 1), B)
    b = np.tile(np.arange(B), T)
    start = T - d
    table = x.reshape(T * B, I)
    ids = (T - 1 - np.arange(T))[:, None] * B + b[None, :]  # (T, T*B): row s reads x[T-1-s, b]
    out = kernels.forward(mode, table, np.ascontiguousarray(hs[start, b]), w_ih, w_hh, b_ih, b_hh,
                          c0=None if cs is None else np.ascontiguousarray(cs[start, b]), lengths=d, reverse=True,
                          ids=ids)
    grads = kernels.backward(out.workspace, np.zeros((T, T * B, H), dtype),
                             np.ascontiguousarray(np.tile(v, (T, 1))))
    result = np.empty((T + 1, B, H), dtype)
    result[T] = v
    result[:T] = grads.dh0.reshape(T, B, H)[::-1]  # copy d = T - t holds dL/dh_t
    return result


def grad_norm_curve(grads: np.ndarray, scale: Optional[np.ndarray] = None) -> Curve:
    """The curve of `state_gradients`' output (T+1, B, H): the mean over b of scale[b] * ||dL/dh_t||
    (``scale`` per sequence, e.g. `clip_coefficients`; None: 1), against distance T - t."""
    norms = np.linalg.norm(grads.astype(np.float64), axis=2)  # (T+1, B)
    if scale is not None:
        norms = norms * scale[None, :]
    T = grads.shape[0] - 1
    return Curve(np.arange(T + 1), norms.mean(axis=1)[::-1])


def clip_coefficients(mode: str, x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: Optional[np.ndarray],
                      b_hh: Optional[np.ndarray], v: np.ndarray, max_norm: float = CLIP_NORM) -> np.ndarray:
    """Per sequence b (a training example of its own), min(1, max_norm / ||g_b||) with g_b the gradient of
    L_b = <v[b], h_T> w.r.t. the layer's parameters (global norm over W_ih, W_hh, b_ih, b_hh): what
    global-norm clipping multiplies that gradient by. Backpropagation is linear in the loss, so clipping
    scales every dL/dh_t of the sequence by the same factor."""
    T, B, _ = x.shape
    H = w_hh.shape[1]
    out = np.empty(B)
    for k in range(B):
        xb = np.ascontiguousarray(x[:, k:k + 1])
        run = kernels.forward(mode, xb, np.zeros((1, H), x.dtype), w_ih, w_hh, b_ih, b_hh)
        g = kernels.backward(run.workspace, np.zeros((T, 1, H), x.dtype), np.ascontiguousarray(v[k:k + 1]))
        parts = [g.dw_ih, g.dw_hh] + ([g.db_ih, g.db_hh] if g.db_ih is not None else [])
        norm = math.sqrt(sum(float(np.sum(p.astype(np.float64) ** 2)) for p in parts))
        out[k] = min(1.0, max_norm / norm) if norm > 0 else 1.0
    return out


def orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random orthogonal n x n matrix (QR of a Gaussian one, signs fixed so it is uniform)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def cell_weights(mode: str, I: int, H: int, rng: np.random.Generator, dtype=np.float32) -> List[np.ndarray]:
    """[w_ih, w_hh, b_ih, b_hh] in the cell's shapes (b_hh None for a cell with one bias vector), drawn as
    torch.nn initialises them: U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(H)
    shapes = cell_spec(mode).kernel_shapes(I, H)
    return [rng.uniform(-bound, bound, shapes[k]).astype(dtype) if k in shapes else None
            for k in ("w_ih", "w_hh", "b_ih", "b_hh")]


def random_units(B: int, H: int, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    v = rng.standard_normal((B, H))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(dtype)


def standard_curves(families: Sequence[str] = CELL_FAMILIES, steps: int = 100, hidden: int = 128,
                    samples: int = 8, input_scale: float = INPUT_SCALE, seed: int = 0, progress: bool = False
                    ) -> Dict[str, Curve]:
    """The lecture's curves, name -> Curve, on ``samples`` random input sequences x ~ N(0, input_scale^2)
    of ``steps`` steps with I = H = ``hidden``, from zero states, loss <v, h_T>. Small inputs keep tanh
    units in their linear range, where the singular values of W_hh set the growth per step; with
    inputs of scale 1 the vanilla RNN saturates and its gradients vanish at every sigma.

    - "rnn sigma=0.9/1.0/1.1": tanh RNN, W_hh = sigma * a random orthogonal matrix (every singular value,
      so also the largest, is sigma: vanishing, borderline, exploding), W_ih as torch initialises it,
      no bias; plus "rnn sigma=1.1, clipped at 5": the exploding case with global-norm clipping;
    - "lstm forget bias 0/1": torch's initial weights, biases 0 except the forget gate's (0 or 1);
    - "gru": torch's initial weights.
    """
    unknown = [f for f in families if f not in CELL_FAMILIES]
    if unknown:
        raise ValueError(f"unknown cell {unknown[0]!r}: choose among {', '.join(CELL_FAMILIES)}")
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    H = hidden
    x = (input_scale * rng.standard_normal((steps, samples, H))).astype(np.float32)
    v = random_units(samples, H, rng)
    jobs = []
    if "rnn" in families:
        w_ih = cell_weights("rnn_tanh", H, H, rng)[0]
        q = orthogonal(H, rng)
        for sigma in (0.9, 1.0, 1.1):
            jobs.append((f"rnn sigma={sigma:.1f}", "rnn_tanh", [w_ih, (sigma * q).astype(np.float32), None, None]))
    if "lstm" in families:
        w = cell_weights("lstm", H, H, rng)
        for fb in (0.0, 1.0):
            b_ih = np.zeros(4 * H, np.float32)
            b_ih[H:2 * H] = fb
            jobs.append((f"lstm forget bias {fb:.0f}", "lstm", [w[0], w[1], b_ih, np.zeros(4 * H, np.float32)]))
    if "gru" in families:
        jobs.append(("gru", "gru", cell_weights("gru", H, H, rng)))
    curves: Dict[str, Curve] = {}
    for name, mode, weights in tqdm(jobs, disable=not progress, unit="cell", dynamic_ncols=True):
        grads = state_gradients(mode, x, *weights, v)
        curves[name] = grad_norm_curve(grads)
        if name == "rnn sigma=1.1":
            scale = clip_coefficients(mode, x, *weights, v)
            curves[f"{name}, clipped at {CLIP_NORM:g}"] = grad_norm_curve(grads, scale)
    return curves


def charlm_curves(model, text: str, steps: int = 100, samples: int = 8, seed: int = 0) -> Dict[str, Curve]:
    """One curve per layer of a trained `rnnkit.charlm.CharLM` on windows of ``text``: ``samples`` random
    windows of ``steps`` characters, each after WARMUP characters of the text, so that every layer starts
    from the state (h, and c for an LSTM) running text leaves it in and reads its real inputs (layer
    0 the characters' embeddings, layer k the outputs of layer k-1). Loss <v, h_T> of the layer itself;
    dL/dh_t of that layer (for the top layer this is the whole model's: nothing above it feeds back)."""
    need = WARMUP + steps
    if len(text) < need + 1:
        raise ValueError(f"the text has {len(text)} characters; the char-LM curves need at least {need + 1}")
    rng = np.random.default_rng(seed)
    starts = rng.integers(WARMUP, len(text) - steps + 1, size=samples)
    layers, H, cell = model.config["layers"], model.config["hidden"], model.config["cell"]
    hs, cs = [], []
    for p in starts:
        h_run, c_run = model.states(text[p - WARMUP:p + steps])
        hs.append(h_run)
        cs.append(c_run)
    h = np.stack(hs, axis=1)  # (WARMUP + steps, B, L, H)
    c = np.stack(cs, axis=1) if model.has_cell_state else None
    window = slice(WARMUP, WARMUP + steps)
    table = model._input_table()
    ids = np.stack([model.vocab.encode(text[p:p + steps]) for p in starts], axis=1)  # (T, B)
    v = random_units(samples, H, rng, model.dtype)
    curves = {}
    for k in range(layers):
        x = table[ids] if k == 0 else h[window, :, k - 1]
        w = model.rnn._layer_parameters(k, 0)
        h0 = np.ascontiguousarray(h[WARMUP - 1, :, k])
        c0 = np.ascontiguousarray(c[WARMUP - 1, :, k]) if c is not None else None
        grads = state_gradients(model.rnn.cell, np.ascontiguousarray(x), *w, v, h0=h0, c0=c0)
        curves[f"char-LM layer {k} ({cell} {layers}x{H}, trained)"] = grad_norm_curve(grads)
    return curves
