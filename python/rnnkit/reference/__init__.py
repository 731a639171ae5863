"""The NumPy reference of rnnkit's kernels: the specification and the test oracle of ``rnnkit.kernels``.

Plain NumPy, written line for line like the lecture's equations (``cells.py``: one forward/backward
pair per cell step; ``sequence.py``: one loop over time for all cells). It exposes the same three
functions as the C++ back-end, so the two are interchangeable:

    forward(mode, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, c0=None, lengths=None, reverse=False,
            training=True) -> ForwardResult(y, h_n, c_n, workspace)
    backward(workspace, dy, dh_n=None, dc_n=None) -> Gradients(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh)
    step(mode, x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, c=None) -> (h_new, c_new or None)

Modes: "rnn_tanh", "rnn_relu", "lstm" (gate rows i, f, g, o), "gru" (PyTorch/cuDNN, rows r, z, n,
reset after the hidden product) and "gru_cho" (Cho et al. 2014, reset applied to h before it).
"""

from .._types import MODES, num_gates
from .sequence import backward, forward, step

__all__ = ["MODES", "num_gates", "forward", "backward", "step"]
