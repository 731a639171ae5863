"""The NumPy reference of rnnkit's kernels: the specification and the test oracle of ``rnnkit.kernels``.

Plain NumPy, written line for line like the cells' equations (``cells.py``: one forward/backward pair
per cell step; ``sequence.py``: one loop over time for all cells). It exposes the same three functions
as the C++ back-end, so the two are interchangeable:

    forward(cell, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, c0=None, lengths=None, reverse=False,
            training=True, ids=None) -> ForwardResult(y, h_n, c_n, workspace)
    backward(workspace, dy, dh_n=None, dc_n=None, *, accumulate_into=None, projection_grad=False)
        -> Gradients(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh)
    step(cell, x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, c=None) -> (h_new, c_new or None)

Cells (CELL_NAMES, the registry's): "rnn_tanh", "rnn_relu", "lstm" (gate rows i, f, g, o), "gru"
(PyTorch/cuDNN, rows r, z, n, reset after the hidden product), "gru_cho" (Cho et al. 2014, reset
applied to h before it), "mut1", "mut2", "mut3" (Jozefowicz et al. 2015). ``mode=`` is the cell
argument's former name.
"""
from .._types import CELL_NAMES, MODES, num_gates
from .sequence import backward, forward, step

__all__ = ["CELL_NAMES", "MODES", "num_gates", "forward", "backward", "step"]
