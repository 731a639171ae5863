"""Result types shared by the C++ kernels (`rnnkit.kernels`) and the NumPy reference (`rnnkit.reference`).

Both back-ends expose the same three functions, ``forward``, ``backward`` and ``step``, for one layer in
one direction, so the layers, the tests and the benchmark can swap one for the other.

Shape legend: T = time steps, B = batch, I = input size, H = hidden size; a cell's weight shapes are
in its `rnnkit._cells.CellSpec`.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np

from ._cells import CELLS, cell_spec

#: The names of the kernels' cells, in id order (the registry, `rnnkit._cells.CELLS`): vanilla RNN with
#: tanh or relu, LSTM (gate rows i, f, g, o), GRU with the reset applied after the hidden product
#: (PyTorch/cuDNN, rows r, z, n), GRU in the original Cho et al. 2014 form (reset applied to h before
#: the hidden product), and Jozefowicz et al. 2015's MUT1, MUT2, MUT3.
CELL_NAMES = tuple(CELLS)
#: The same names under their former name (a kernel's ``mode`` argument is its cell).
MODES = CELL_NAMES


def num_gates(cell: str) -> int:
    """Number of gate blocks stacked in the rows of ``w_ih`` for ``cell`` (for every cell but MUT1-3, also
    those of ``w_hh``, ``b_ih`` and ``b_hh``; `rnnkit._cells.CellSpec` has each)."""
    return cell_spec(cell).gates_ih


class ForwardResult(NamedTuple):
    """What a sequence forward returns.

    y: (T, B, H) hidden state at every step, zero past each sequence's length.
    h_n: (B, H) state after each sequence's last valid step.
    c_n: (B, H) cell state after the last valid step (LSTM); None for cells without one.
    workspace: what ``backward`` needs (opaque, back-end specific); None after an inference forward.
    """

    y: np.ndarray
    h_n: np.ndarray
    c_n: Optional[np.ndarray]
    workspace: Any


class Gradients(NamedTuple):
    """What a sequence backward returns; each has the shape of what it is the gradient of.

    dx (T, B, I), dh0 (B, H), dc0 (B, H) or None (a cell without a cell state), dw_ih, dw_hh, db_ih and
    db_hh in the shapes of w_ih, w_hh, b_ih and b_hh; db_* None when the forward had no bias (db_hh also
    for a cell with one bias vector, which is b_ih).
    """

    dx: np.ndarray
    dh0: np.ndarray
    dc0: Optional[np.ndarray]
    dw_ih: np.ndarray
    dw_hh: np.ndarray
    db_ih: Optional[np.ndarray]
    db_hh: Optional[np.ndarray]
