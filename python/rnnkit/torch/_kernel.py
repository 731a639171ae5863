"""The one place where rnnkit.torch calls rnnkit's kernels: one layer in one direction, forward and
backward, as a `torch.autograd.Function`.

Tensors cross to NumPy without copies (``Tensor.numpy()`` of a CPU tensor shares its memory, and
``torch.from_numpy`` shares it back); the kernels copy only what their layout needs (a strided view, such
as batch-first input read time-major, becomes contiguous). The forward's workspace (gate values and
states) stays in the autograd context until the backward.

Shape legend: T = time steps, B = batch, I = input features, H = hidden units, G = gates.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from .. import kernels

__all__ = ["run_layer"]


def _np(t: Optional[torch.Tensor]) -> Optional[np.ndarray]:
    return None if t is None else t.detach().numpy()


def _t(a: Optional[np.ndarray]) -> Optional[torch.Tensor]:
    return None if a is None else torch.from_numpy(a)


def _kernel_forward(
    cell: str,
    lengths: Optional[np.ndarray],
    reverse: bool,
    training: bool,
    x,
    h0,
    c0,
    w_ih,
    w_hh,
    b_ih,
    b_hh,
    recurrent_weights: str = "float32",
):
    # The cell is passed by position: the kernels' keyword for it is being renamed (mode -> cell).
    return kernels.forward(
        cell,
        _np(x),
        _np(h0),
        _np(w_ih),
        _np(w_hh),
        _np(b_ih),
        _np(b_hh),
        c0=_np(c0),
        lengths=lengths,
        reverse=reverse,
        training=training,
        recurrent_weights=recurrent_weights,
    )


class _Layer(torch.autograd.Function):
    """(x (T, B, I), h0 (B, H), c0 (B, H) or None, w_ih, w_hh, b_ih, b_hh) -> y (T, B, H), h_n (B, H) and,
    for an LSTM, c_n (B, H)."""

    @staticmethod
    def forward(ctx, cell, lengths, reverse, x, h0, c0, w_ih, w_hh, b_ih, b_hh):  # type: ignore[override]
        res = _kernel_forward(cell, lengths, reverse, True, x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        ctx.spec = (cell, lengths, reverse)
        ctx.workspace = res.workspace
        # Saved only so that autograd refuses a backward after any of them is modified in place: the
        # workspace reads their memory.
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        ctx.has_c = c0 is not None
        out = (_t(res.y), _t(res.h_n))
        return out + (_t(res.c_n),) if ctx.has_c else out

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dh_n, dc_n=None):  # type: ignore[override]
        saved = ctx.saved_tensors
        ws = ctx.workspace
        if ws is None:
            # A second backward through the same graph (retain_graph=True, gradcheck): the first one
            # consumed the workspace, so the forward runs again from the same (unmodified) tensors.
            ws = _kernel_forward(*ctx.spec, True, *saved).workspace
        ctx.workspace = None
        g = kernels.backward(ws, _np(dy), _np(dh_n), _np(dc_n) if ctx.has_c else None)
        return (None, None, None, _t(g.dx), _t(g.dh0), _t(g.dc0), _t(g.dw_ih), _t(g.dw_hh), _t(g.db_ih), _t(g.db_hh))


def run_layer(
    cell: str,
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: Optional[torch.Tensor],
    weights: Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]],
    lengths: Optional[np.ndarray],
    reverse: bool,
    record: bool,
    recurrent_weights: str = "float32",
) -> Tuple[torch.Tensor, ...]:
    """One layer and direction: (y, h_n) or, with c0, (y, h_n, c_n).

    ``record`` builds the autograd node (training forward, workspace kept); otherwise the kernels run
    in inference mode and keep nothing. ``lengths`` (B,) int64 or None: y is zero past each length and
    the states are taken at each sequence's last valid step. ``recurrent_weights`` ("float32" or
    "float16") is how an inference call reads W_hh (`rnnkit.kernels.forward`).
    """
    if record:
        return _Layer.apply(cell, lengths, reverse, x, h0, c0, *weights)
    res = _kernel_forward(cell, lengths, reverse, False, x, h0, c0, *weights, recurrent_weights=recurrent_weights)
    out = (_t(res.y), _t(res.h_n))
    return out + (_t(res.c_n),) if c0 is not None else out
