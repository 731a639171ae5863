"""The C++ kernels of rnnkit for one layer in one direction: the functions the layers call, for people
who want the kernels without the layers.

The same three functions, with the same arguments and results, exist in plain NumPy in
`rnnkit.reference`, which specifies them.

Shapes (time-major, one layer, one direction): T steps, B batch, I inputs, H hidden units; the cell
(one of CELL_NAMES) sets the row blocks of w_ih, w_hh, b_ih and b_hh (`rnnkit._cells.CellSpec`): 1 for
"rnn_tanh"/"rnn_relu", 4 for "lstm" with rows i, f, g, o, 3 for "gru"/"gru_cho" with rows r, z, n;
"mut1", "mut2", "mut3" (Jozefowicz et al. 2015) have the input and recurrent weights their equations
have, rows z, r, h, one bias [b_z; b_r; b_h] as b_ih and no b_hh, and MUT1 and MUT2 need I == H.

Example::

    import numpy as np, rnnkit.kernels as K
    T, B, I, H = 5, 2, 3, 4
    rng = np.random.default_rng(0)
    x, h0 = rng.standard_normal((T, B, I)), np.zeros((B, H))
    w_ih, w_hh = rng.standard_normal((3 * H, I)), rng.standard_normal((3 * H, H))
    y, h_n, _, ws = K.forward("gru", x, h0, w_ih, w_hh)
    grads = K.backward(ws, dy=np.ones_like(y))
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from . import _C
from ._checks import ForwardArgs, accepts_mode_alias, check_accumulate_into, check_backward, check_recurrent_weights
from ._types import CELL_NAMES, MODES, ForwardResult, Gradients, num_gates

__all__ = ["forward", "backward", "step", "Workspace", "CELL_NAMES", "MODES", "num_gates"]


class Workspace:
    """What a training forward keeps for its backward: the checked arguments and the kernel's buffer
    of gate values and states (about T*B*(G+2)*H numbers). Backward turns that buffer into gate
    gradients in place, so one workspace serves exactly one backward."""

    __slots__ = ("args", "buffer", "used")

    def __init__(self, args: ForwardArgs, buffer: np.ndarray):
        self.args, self.buffer, self.used = args, buffer, False

    @property
    def nbytes(self) -> int:
        return self.buffer.nbytes

    def states(self) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Every state the forward went through, in time order: (h, c), each (T+1, B, H), c None for a
        cell without a cell state. Slot 0 holds the state before step 0 and slot t+1 the state after
        step t (reverse=True: slot T the initial state, slot t the state after step t); past an
        element's length its state is carried. Views of the workspace (no copy; the cell state of
        every step costs nothing extra to read), so only before backward, which reuses the buffer.

        The workspace holds the records, then the T+1 states h, then the T+1 states c of a cell
        that has them, then one element (csrc/rnnkit/loop/sequence.h, workspace_elements)."""
        if self.used:
            raise RuntimeError("the workspace's states are gone: a backward has used it")
        a = self.args
        n = (a.T + 1) * a.B * a.H
        shape = (a.T + 1, a.B, a.H)
        if a.c0 is None:
            return self.buffer[-1 - n : -1].reshape(shape), None
        return self.buffer[-1 - 2 * n : -1 - n].reshape(shape), self.buffer[-1 - n : -1].reshape(shape)


def _native_args(a: ForwardArgs):
    return (a.spec.id, a.x, a.h0, a.c0, a.w_ih, a.w_hh, a.b_ih, a.b_hh, a.lengths, a.reverse)


@accepts_mode_alias
def forward(
    cell: str,
    x: np.ndarray,
    h0: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: Optional[np.ndarray] = None,
    b_hh: Optional[np.ndarray] = None,
    *,
    c0: Optional[np.ndarray] = None,
    lengths: Optional[np.ndarray] = None,
    reverse: bool = False,
    training: bool = True,
    ids: Optional[np.ndarray] = None,
    recurrent_weights: str = "float32",
) -> ForwardResult:
    """Run one layer over a sequence.

    Args:
        cell: one of CELL_NAMES (``mode=``, its former name, still works).
        x: (T, B, I) inputs; h0: (B, H) initial state; c0: (B, H) initial cell state of a cell that has
            one (LSTM; None = zeros).
        w_ih: (Gi*H, I), w_hh: (Gh*H, H), b_ih / b_hh: (Bi*H,) / (Bh*H,) or None, with the cell's block
            counts (a cell with one bias vector takes it as b_ih, and b_hh None). One dtype for all,
            float32 or float64.
        lengths: (B,) integers in 1..T, or None: y is zero past each length, h_n is the state at the
            last valid step, and with reverse=True each sequence starts at its own last valid step.
        reverse: process the sequence from the last step to the first.
        training: keep what backward needs; False keeps O(B*H) memory independent of T.
        ids: (T, B) integers, or None. Given, x is a table (V, I) and the input of step t, element b is
            its row ids[t, b]: an embedding lookup fused with the layer, which projects the V rows once
            and gathers the projections (cheaper than T*B projections when V is small); backward's dx is
            then the table's gradient (V, I).
        recurrent_weights: how inference reads W_hh: "float32", or "float16" (training=False, float32
            arrays): rounded to the nearest IEEE half, with W_ih, biases, states and every sum in float32,
            as the reference computes with ``w_hh.astype(np.float16).astype(np.float32)``. A batch of one
            reads all of W_hh from memory every step, and a half W_hh is half the bytes: the speed
            option for streaming inference (bench/hosts/amd-epyc/SPEED2.md has the figures). Other batch
            sizes compute on the rounded values at float32 speed. ValueError if a value of W_hh has no
            half (magnitude >= 65520, inf, NaN).

    Returns:
        ForwardResult(y (T, B, H), h_n (B, H), c_n (B, H) or None, workspace or None).
    """
    a = ForwardArgs(cell, x, h0, w_ih, w_hh, b_ih, b_hh, c0, lengths, reverse, ids)
    half = check_recurrent_weights(recurrent_weights, a.dtype, bool(training))
    y, h_n, c_n, buf = _C.forward(*_native_args(a), bool(training), a.ids, half)
    return ForwardResult(y, h_n, c_n, Workspace(a, buf) if training else None)


def backward(
    workspace: Workspace,
    dy: np.ndarray,
    dh_n: Optional[np.ndarray] = None,
    dc_n: Optional[np.ndarray] = None,
    *,
    accumulate_into: Optional[tuple] = None,
    projection_grad: bool = False,
) -> Gradients:
    """Backpropagation through time for the training forward that returned ``workspace``.

    Args:
        dy: (T, B, H) gradient of the loss w.r.t. y (ignored past each sequence's length).
        dh_n, dc_n: (B, H) gradients w.r.t. the final states (None = zeros; dc_n LSTM only).
        accumulate_into: (dw_ih, dw_hh, db_ih, db_hh) arrays to add the weight and bias gradients to, in
            place (as gradients accumulate over a training step), or None for fresh arrays. Adding
            costs the kernel nothing; adding fresh arrays afterwards costs a pass over each.
        projection_grad: return in dx the gradient w.r.t. the input projection x W_ih^T, shape
            (T, B, Gi*H), instead of w.r.t. x, and leave dw_ih out (None); not for a cell that reads x
            directly (MUT1, MUT2), whose dx has a part the projection does not carry.

    Returns:
        Gradients(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh): fresh arrays, except that with
        accumulate_into the weight and bias entries are those arrays.
    """
    if workspace is None:
        raise RuntimeError("backward needs a training-mode forward: this forward ran with training=False")
    if not isinstance(workspace, Workspace):
        raise TypeError(f"workspace must come from rnnkit.kernels.forward, got {type(workspace).__name__}")
    if workspace.used:
        raise RuntimeError("this workspace has already been used by a backward; run forward again")
    a = workspace.args
    dy, dh_n, dc_n = check_backward(a, dy, dh_n, dc_n)
    into = check_accumulate_into(a, accumulate_into) or (None,) * 4
    workspace.used = True
    return Gradients(
        *_C.backward(*_native_args(a), workspace.buffer, dy, dh_n, dc_n, *into, bool(projection_grad), a.ids)
    )


@accepts_mode_alias
def step(
    cell: str,
    x: np.ndarray,
    h: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: Optional[np.ndarray] = None,
    b_hh: Optional[np.ndarray] = None,
    *,
    c: Optional[np.ndarray] = None,
    out: Optional[Tuple[np.ndarray, Optional[np.ndarray]]] = None,
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """One inference step: x (B, I), h (B, H), c (B, H) for a cell with a cell state (LSTM) ->
    (h_new, c_new or None).

    ``out=(h_out, c_out)`` writes the new state into existing C-contiguous arrays of the right dtype
    (they may be ``h`` and ``c`` themselves), so a decoding loop allocates nothing per step.
    """
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise ValueError(f"x must be an array of shape (B, input_size), got {getattr(x, 'shape', type(x))}")
    a = ForwardArgs(cell, x[None], h, w_ih, w_hh, b_ih, b_hh, c, None, False)
    if out is None:
        h_out = np.empty_like(a.h0)
        c_out = np.empty_like(a.c0) if a.c0 is not None else None
    else:
        h_out, c_out = out
        for name, arr in (("h_out", h_out), ("c_out", c_out)):
            if arr is not None and not (
                isinstance(arr, np.ndarray)
                and arr.dtype == a.dtype
                and arr.shape == (a.B, a.H)
                and arr.flags.c_contiguous
            ):
                raise ValueError(f"{name} must be a C-contiguous {a.dtype} array of shape {(a.B, a.H)}")
        if a.c0 is not None and c_out is None:
            raise ValueError("out must hold (h_out, c_out) for a cell with a cell state (LSTM)")
    _C.step(a.spec.id, a.x[0], a.h0, a.c0, a.w_ih, a.w_hh, a.b_ih, a.b_hh, h_out, c_out if a.c0 is not None else None)
    return h_out, (c_out if a.c0 is not None else None)
