"""One time step of every cell, forward and backward in pairs, in plain NumPy.

Shape legend: B = batch, I = input size, H = hidden size, G = gates per cell (1 RNN, 4 LSTM, 3 GRU).
    x (B, I)   h_prev, c_prev, h, c (B, H)   w_ih (G*H, I)   w_hh (G*H, H)   b_ih, b_hh (G*H,)
Weights are stored like PyTorch's (one row block per gate), so a pre-activation is x @ w_ih.T. The MUT
cells have the weights their equations have (see there) and one bias b = [b_z; b_r; b_h] (3H,).

Every ``*_step_forward`` returns its new state(s) and a ``cache``; the matching ``*_step_backward``
takes the gradients w.r.t. those states and the cache, and returns the gradients w.r.t. the step's
input, previous state(s) and parameters, in the order of the forward's arguments. `STEPS` maps each
cell of the registry (`rnnkit._cells.CELLS`) to its pair.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import numpy as np


def sigmoid(a: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-a)) overflows exp for very negative a; this identity is the same function, never
    # overflows and keeps float32 in float32.
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def tanh(a: np.ndarray) -> np.ndarray:
    return np.tanh(a)


def relu(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0)


def projections_backward(da_x, da_h, x, h_in, w_ih, w_hh):
    """Backward of the two affine maps a_x = x @ w_ih.T + b_ih and a_h = h_in @ w_hh.T + b_hh.

    da_x, da_h: (B, G*H) gradients w.r.t. a_x and a_h (equal unless the cell uses them apart, as GRU).
    Returns dx (B, I), dh_in (B, H), dw_ih, dw_hh, db_ih, db_hh.
    """
    return (da_x @ w_ih, da_h @ w_hh,
            da_x.T @ x, da_h.T @ h_in,
            da_x.sum(axis=0), da_h.sum(axis=0))


# ---------------------------------------------------------------------------------------------------
# Vanilla RNN:  h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),  act = tanh or relu

def rnn_step_forward(x, h_prev, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    """One vanilla RNN step; returns (h, cache)."""
    a = x @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh
    h = tanh(a) if nonlinearity == "tanh" else relu(a)
    return h, (x, h_prev, h, w_ih, w_hh, nonlinearity)


def rnn_step_backward(dh, cache):
    """Returns (dx, dh_prev, dw_ih, dw_hh, db_ih, db_hh)."""
    x, h_prev, h, w_ih, w_hh, nonlinearity = cache
    # tanh' = 1 - tanh^2 and relu' = [a > 0] both read off the output h.
    da = dh * (1 - h * h) if nonlinearity == "tanh" else dh * (h > 0)
    return projections_backward(da, da, x, h_prev, w_ih, w_hh)


# ---------------------------------------------------------------------------------------------------
# LSTM (rows i, f, g, o):
#   [i; f; g; o] = [sigmoid; sigmoid; tanh; sigmoid](W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
#   c_t = f * c_{t-1} + i * g
#   h_t = o * tanh(c_t)

def lstm_step_forward(x, h_prev, c_prev, w_ih, w_hh, b_ih, b_hh):
    """One LSTM step; returns (h, c, cache)."""
    a = x @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
    c = f * c_prev + i * g
    tanh_c = tanh(c)
    h = o * tanh_c
    return h, c, (x, h_prev, c_prev, i, f, g, o, tanh_c, w_ih, w_hh)


def lstm_step_backward(dh, dc, cache):
    """Returns (dx, dh_prev, dc_prev, dw_ih, dw_hh, db_ih, db_hh)."""
    x, h_prev, c_prev, i, f, g, o, tanh_c, w_ih, w_hh = cache
    do = dh * tanh_c
    dc = dc + dh * o * (1 - tanh_c * tanh_c)
    di, df, dg = dc * g, dc * c_prev, dc * i
    dc_prev = dc * f  # the "gradient highway": no matrix product between c_t and c_{t-1}
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g), do * o * (1 - o)], axis=1)
    dx, dh_prev, dw_ih, dw_hh, db_ih, db_hh = projections_backward(da, da, x, h_prev, w_ih, w_hh)
    return dx, dh_prev, dc_prev, dw_ih, dw_hh, db_ih, db_hh


# ---------------------------------------------------------------------------------------------------
# GRU, PyTorch/cuDNN form (rows r, z, n), reset applied after the hidden product:
#   r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
#   z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
#   n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
#   h_t = (1 - z_t) * n_t + z_t * h_{t-1}

def gru_step_forward(x, h_prev, w_ih, w_hh, b_ih, b_hh):
    """One GRU step (PyTorch form); returns (h, cache)."""
    a_xr, a_xz, a_xn = np.split(x @ w_ih.T + b_ih, 3, axis=1)
    a_hr, a_hz, a_hn = np.split(h_prev @ w_hh.T + b_hh, 3, axis=1)
    r = sigmoid(a_xr + a_hr)
    z = sigmoid(a_xz + a_hz)
    n = tanh(a_xn + r * a_hn)
    h = (1 - z) * n + z * h_prev
    return h, (x, h_prev, r, z, n, a_hn, w_ih, w_hh)


def gru_step_backward(dh, cache):
    """Returns (dx, dh_prev, dw_ih, dw_hh, db_ih, db_hh)."""
    x, h_prev, r, z, n, a_hn, w_ih, w_hh = cache
    da_n = dh * (1 - z) * (1 - n * n)
    da_z = dh * (h_prev - n) * z * (1 - z)
    da_r = da_n * a_hn * r * (1 - r)
    # The reset gate scales only the hidden half of n's pre-activation, so the two halves differ.
    da_x = np.concatenate([da_r, da_z, da_n], axis=1)
    da_h = np.concatenate([da_r, da_z, da_n * r], axis=1)
    dx, dh_prev, dw_ih, dw_hh, db_ih, db_hh = projections_backward(da_x, da_h, x, h_prev, w_ih, w_hh)
    return dx, dh_prev + dh * z, dw_ih, dw_hh, db_ih, db_hh


# ---------------------------------------------------------------------------------------------------
# GRU, original Cho et al. 2014 form (rows r, z, n), reset applied to h before the hidden product:
#   r_t, z_t as above
#   n_t = tanh(W_in x_t + b_in + W_hn (r_t * h_{t-1}) + b_hn)
#   h_t = (1 - z_t) * n_t + z_t * h_{t-1}

def gru_cho_step_forward(x, h_prev, w_ih, w_hh, b_ih, b_hh):
    """One GRU step (Cho et al. form); returns (h, cache)."""
    w_hr, w_hz, w_hn = np.split(w_hh, 3, axis=0)
    b_hr, b_hz, b_hn = np.split(b_hh, 3)
    a_xr, a_xz, a_xn = np.split(x @ w_ih.T + b_ih, 3, axis=1)
    r = sigmoid(a_xr + h_prev @ w_hr.T + b_hr)
    z = sigmoid(a_xz + h_prev @ w_hz.T + b_hz)
    rh = r * h_prev
    n = tanh(a_xn + rh @ w_hn.T + b_hn)
    h = (1 - z) * n + z * h_prev
    return h, (x, h_prev, r, z, n, rh, w_ih, w_hh)


def gru_cho_step_backward(dh, cache):
    """Returns (dx, dh_prev, dw_ih, dw_hh, db_ih, db_hh)."""
    x, h_prev, r, z, n, rh, w_ih, w_hh = cache
    w_hr, w_hz, w_hn = np.split(w_hh, 3, axis=0)
    da_n = dh * (1 - z) * (1 - n * n)
    da_z = dh * (h_prev - n) * z * (1 - z)
    drh = da_n @ w_hn
    da_r = drh * h_prev * r * (1 - r)
    da_x = np.concatenate([da_r, da_z, da_n], axis=1)
    dx, dw_ih, db_ih = da_x @ w_ih, da_x.T @ x, da_x.sum(axis=0)
    # n's hidden product reads r * h_{t-1}, the r and z rows read h_{t-1} itself.
    dw_hh = np.concatenate([da_r.T @ h_prev, da_z.T @ h_prev, da_n.T @ rh], axis=0)
    db_hh = db_ih.copy()  # each hidden bias enters its gate's pre-activation exactly as b_ih does
    dh_prev = dh * z + da_r @ w_hr + da_z @ w_hz + drh * r
    return dx, dh_prev, dw_ih, dw_hh, db_ih, db_hh


# ---------------------------------------------------------------------------------------------------
# Jozefowicz, Zaremba and Sutskever 2015, "An Empirical Exploration of Recurrent Network Architectures":
# the three cells their architecture search found. Weights stacked z, r, h over the ones each cell has.
#   MUT1: z = sigm(W_xz x_t + b_z)
#         r = sigm(W_xr x_t + W_hr h_t + b_r)
#         h_{t+1} = tanh(W_hh (r * h_t) + tanh(x_t) + b_h) * z + h_t * (1 - z)
#   MUT2: z = sigm(W_xz x_t + W_hz h_t + b_z)
#         r = sigm(x_t + W_hr h_t + b_r)
#         h_{t+1} = tanh(W_hh (r * h_t) + W_xh x_t + b_h) * z + h_t * (1 - z)
#   MUT3: z = sigm(W_xz x_t + W_hz tanh(h_t) + b_z)
#         r = sigm(W_xr x_t + W_hr h_t + b_r)
#         h_{t+1} = tanh(W_hh (r * h_t) + W_xh x_t + b_h) * z + h_t * (1 - z)
# MUT1 and MUT2 add x itself to a pre-activation, so their input size equals H.

def _mut_update(a_h, z, h_prev):
    """The last line all three share: h_new = tanh(a_h) * z + h_prev * (1 - z)."""
    n = tanh(a_h)
    return n * z + h_prev * (1 - z), n


def _mut_update_backward(dh, z, n, h_prev):
    """(da_h, da_z, the part of dh_prev through the update)."""
    return dh * z * (1 - n * n), dh * (n - h_prev) * z * (1 - z), dh * (1 - z)


def mut1_step_forward(x, h_prev, w_ih, w_hh, b):
    """One MUT1 step; w_ih = [W_xz; W_xr] (2H, I), w_hh = [W_hr; W_hh] (2H, H); returns (h, cache)."""
    w_xz, w_xr = np.split(w_ih, 2, axis=0)
    w_hr, w_hh_ = np.split(w_hh, 2, axis=0)
    b_z, b_r, b_h = np.split(b, 3)
    z = sigmoid(x @ w_xz.T + b_z)
    r = sigmoid(x @ w_xr.T + h_prev @ w_hr.T + b_r)
    rh = r * h_prev
    tanh_x = tanh(x)
    h, n = _mut_update(rh @ w_hh_.T + tanh_x + b_h, z, h_prev)
    return h, (x, h_prev, z, r, rh, tanh_x, n, w_ih, w_hh)


def mut1_step_backward(dh, cache):
    """Returns (dx, dh_prev, dw_ih, dw_hh, db)."""
    x, h_prev, z, r, rh, tanh_x, n, w_ih, w_hh = cache
    w_xz, w_xr = np.split(w_ih, 2, axis=0)
    w_hr, w_hh_ = np.split(w_hh, 2, axis=0)
    da_h, da_z, dh_prev = _mut_update_backward(dh, z, n, h_prev)
    drh = da_h @ w_hh_
    da_r = drh * h_prev * r * (1 - r)
    dx = da_z @ w_xz + da_r @ w_xr + da_h * (1 - tanh_x * tanh_x)
    dh_prev = dh_prev + drh * r + da_r @ w_hr
    dw_ih = np.concatenate([da_z.T @ x, da_r.T @ x], axis=0)
    dw_hh = np.concatenate([da_r.T @ h_prev, da_h.T @ rh], axis=0)
    db = np.concatenate([da_z.sum(0), da_r.sum(0), da_h.sum(0)])
    return dx, dh_prev, dw_ih, dw_hh, db


def mut2_step_forward(x, h_prev, w_ih, w_hh, b):
    """One MUT2 step; w_ih = [W_xz; W_xh] (2H, I), w_hh = [W_hz; W_hr; W_hh] (3H, H); returns (h, cache)."""
    w_xz, w_xh = np.split(w_ih, 2, axis=0)
    w_hz, w_hr, w_hh_ = np.split(w_hh, 3, axis=0)
    b_z, b_r, b_h = np.split(b, 3)
    z = sigmoid(x @ w_xz.T + h_prev @ w_hz.T + b_z)
    r = sigmoid(x + h_prev @ w_hr.T + b_r)
    rh = r * h_prev
    h, n = _mut_update(rh @ w_hh_.T + x @ w_xh.T + b_h, z, h_prev)
    return h, (x, h_prev, z, r, rh, n, w_ih, w_hh)


def mut2_step_backward(dh, cache):
    """Returns (dx, dh_prev, dw_ih, dw_hh, db)."""
    x, h_prev, z, r, rh, n, w_ih, w_hh = cache
    w_xz, w_xh = np.split(w_ih, 2, axis=0)
    w_hz, w_hr, w_hh_ = np.split(w_hh, 3, axis=0)
    da_h, da_z, dh_prev = _mut_update_backward(dh, z, n, h_prev)
    drh = da_h @ w_hh_
    da_r = drh * h_prev * r * (1 - r)
    dx = da_z @ w_xz + da_h @ w_xh + da_r
    dh_prev = dh_prev + drh * r + da_z @ w_hz + da_r @ w_hr
    dw_ih = np.concatenate([da_z.T @ x, da_h.T @ x], axis=0)
    dw_hh = np.concatenate([da_z.T @ h_prev, da_r.T @ h_prev, da_h.T @ rh], axis=0)
    db = np.concatenate([da_z.sum(0), da_r.sum(0), da_h.sum(0)])
    return dx, dh_prev, dw_ih, dw_hh, db


def mut3_step_forward(x, h_prev, w_ih, w_hh, b):
    """One MUT3 step; w_ih = [W_xz; W_xr; W_xh] (3H, I), w_hh = [W_hz; W_hr; W_hh] (3H, H); returns
    (h, cache)."""
    w_xz, w_xr, w_xh = np.split(w_ih, 3, axis=0)
    w_hz, w_hr, w_hh_ = np.split(w_hh, 3, axis=0)
    b_z, b_r, b_h = np.split(b, 3)
    tanh_h = tanh(h_prev)
    z = sigmoid(x @ w_xz.T + tanh_h @ w_hz.T + b_z)
    r = sigmoid(x @ w_xr.T + h_prev @ w_hr.T + b_r)
    rh = r * h_prev
    h, n = _mut_update(rh @ w_hh_.T + x @ w_xh.T + b_h, z, h_prev)
    return h, (x, h_prev, tanh_h, z, r, rh, n, w_ih, w_hh)


def mut3_step_backward(dh, cache):
    """Returns (dx, dh_prev, dw_ih, dw_hh, db)."""
    x, h_prev, tanh_h, z, r, rh, n, w_ih, w_hh = cache
    w_xz, w_xr, w_xh = np.split(w_ih, 3, axis=0)
    w_hz, w_hr, w_hh_ = np.split(w_hh, 3, axis=0)
    da_h, da_z, dh_prev = _mut_update_backward(dh, z, n, h_prev)
    drh = da_h @ w_hh_
    da_r = drh * h_prev * r * (1 - r)
    dx = da_z @ w_xz + da_r @ w_xr + da_h @ w_xh
    dh_prev = dh_prev + drh * r + da_r @ w_hr + (da_z @ w_hz) * (1 - tanh_h * tanh_h)
    dw_ih = np.concatenate([da_z.T @ x, da_r.T @ x, da_h.T @ x], axis=0)
    dw_hh = np.concatenate([da_z.T @ tanh_h, da_r.T @ h_prev, da_h.T @ rh], axis=0)
    db = np.concatenate([da_z.sum(0), da_r.sum(0), da_h.sum(0)])
    return dx, dh_prev, dw_ih, dw_hh, db


class StepPair(NamedTuple):
    """A cell's step forward and backward (the number of states it carries is its CellSpec's)."""

    forward: Callable
    backward: Callable


#: The reference step of every cell of the registry, by name (tests/test_cells.py checks they match).
STEPS = {
    "rnn_tanh": StepPair(partial(rnn_step_forward, nonlinearity="tanh"), rnn_step_backward),
    "rnn_relu": StepPair(partial(rnn_step_forward, nonlinearity="relu"), rnn_step_backward),
    "lstm": StepPair(lstm_step_forward, lstm_step_backward),
    "gru": StepPair(gru_step_forward, gru_step_backward),
    "gru_cho": StepPair(gru_cho_step_forward, gru_cho_step_backward),
    "mut1": StepPair(mut1_step_forward, mut1_step_backward),
    "mut2": StepPair(mut2_step_forward, mut2_step_backward),
    "mut3": StepPair(mut3_step_forward, mut3_step_backward),
}
