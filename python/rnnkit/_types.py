"""Result types shared by the C++ kernels (`rnnkit.kernels`) and the NumPy reference (`rnnkit.reference`).

Both back-ends expose the same three functions, ``forward``, ``backward`` and ``step``, for one layer in
one direction, so the layers, the tests and the benchmark can swap one for the other.

Shape legend: T = time steps, B = batch, I = input size, H = hidden size, G = gates per cell
(1 vanilla RNN, 3 GRU, 4 LSTM).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np

#: The cell of a kernel call: vanilla RNN with tanh or relu, LSTM (gate rows i, f, g, o), GRU with
#: the reset applied after the hidden product (PyTorch/cuDNN, rows r, z, n) and GRU in the original
#: Cho et al. 2014 form, reset applied to h before the hidden product.
MODES = ("rnn_tanh", "rnn_relu", "lstm", "gru", "gru_cho")

_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3, "gru_cho": 3}


def num_gates(mode: str) -> int:
    """Number of gate blocks G stacked in the rows of ``w_ih`` / ``w_hh`` for ``mode``."""
    try:
        return _GATES[mode]
    except KeyError:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}") from None


class ForwardResult(NamedTuple):
    """What a sequence forward returns.

    y: (T, B, H) hidden state at every step, zero past each sequence's length.
    h_n: (B, H) state after each sequence's last valid step.
    c_n: (B, H) LSTM cell state after the last valid step; None for other cells.
    workspace: what ``backward`` needs (opaque, back-end specific); None after an inference forward.
    """

    y: np.ndarray
    h_n: np.ndarray
    c_n: Optional[np.ndarray]
    workspace: Any


class Gradients(NamedTuple):
    """What a sequence backward returns; each has the shape of what it is the gradient of.

    dx (T, B, I), dh0 (B, H), dc0 (B, H) or None (not LSTM), dw_ih (G*H, I), dw_hh (G*H, H),
    db_ih and db_hh (G*H,) or None when the forward had no bias.
    """

    dx: np.ndarray
    dh0: np.ndarray
    dc0: Optional[np.ndarray]
    dw_ih: Optional[np.ndarray]  # None for the projection's gradient (projection_grad=True)
    dw_hh: np.ndarray
    db_ih: Optional[np.ndarray]
    db_hh: Optional[np.ndarray]
