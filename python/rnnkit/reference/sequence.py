"""One generic loop over time, forward and backward, for every cell of ``cells.py``.

Shape legend: T = time steps, B = batch, I = input size, H = hidden size; the weights' and biases'
shapes are the cell's (`rnnkit._cells.CellSpec.kernel_shapes`).
    x (T, B, I)   h0, c0, h_n, c_n (B, H)   y (T, B, H)
An embedded input is a table x (V, I) with ids (T, B): the inputs are x[ids], and dx is the table's
gradient (V, I).

The loop is backpropagation through time as it is usually stated: run forward over the whole
sequence keeping each step's cache, then backward over it in the opposite order, summing each step's
weight gradients (the weights are shared across steps).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from .._checks import (
    ForwardArgs,
    accepts_mode_alias,
    check_accumulate_into,
    check_backward,
    check_recurrent_weights,
)
from .._types import ForwardResult, Gradients
from .cells import STEPS


class Workspace:
    """What ``backward`` needs from a training forward.

    args: the checked ForwardArgs. steps: one (t, live, cache) per processed step in processing order,
    where live holds the batch rows updated at step t and cache is the cell's step cache for them.
    """

    def __init__(self, args: ForwardArgs, steps: List[Tuple[int, np.ndarray, tuple]]):
        self.args = args
        self.steps = steps


def _parameters(args: ForwardArgs) -> Tuple[np.ndarray, ...]:
    """(w_ih, w_hh, *biases): (b_ih, b_hh), or (b,) for a cell with one bias vector. A layer without bias
    is the layer with zero bias (its bias gradients are dropped at the end), so no cell needs a bias-free
    variant."""
    if args.has_bias:
        return (args.w_ih, args.w_hh) + args.biases
    shapes = args.spec.kernel_shapes(args.I, args.H)
    return (args.w_ih, args.w_hh) + tuple(np.zeros(shapes[k], args.dtype) for k in ("b_ih", "b_hh") if k in shapes)


def _rounded_to_half(name: str, w: np.ndarray) -> np.ndarray:
    """``w`` rounded to the nearest IEEE half (ties to even) and back to its dtype: the values the kernels
    read from a half weight. ValueError if a value has no half (magnitude >= 65520, inf, NaN)."""
    with np.errstate(over="ignore", invalid="ignore"):
        half = w.astype(np.float16)
    if not np.isfinite(half).all():
        raise ValueError(
            f"a half {name}: {name} holds a value of magnitude >= 65520, an infinity or a NaN, which no IEEE half holds"
        )
    return half.astype(w.dtype)


def _schedule(args: ForwardArgs):
    """Yields (t, live) in processing order: live are the rows with t < length, the only rows a step
    updates. The same rule serves both directions: in reverse each row starts at its own last step."""
    lengths = args.lengths if args.lengths is not None else np.full(args.B, args.T)
    order = range(args.T - 1, -1, -1) if args.reverse else range(args.T)
    for t in order:
        yield t, np.flatnonzero(t < lengths)


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
    """Run one layer in one direction over a time-major sequence.

    cell: one of CELL_NAMES. x (T, B, I); h0 (B, H); c0 (B, H), a cell with a cell state only (LSTM),
    None = zeros; w_ih, w_hh, b_ih, b_hh in the cell's shapes (b_hh None for a cell with one bias vector,
    and both biases None for none). lengths: optional (B,) ints in 1..T; row b is
    updated only at steps t < lengths[b], its state frozen and its output zero elsewhere.
    reverse: process t = T-1 down to 0. training: keep the caches ``backward`` needs. ids: (T, B) rows
    of x, then a table (V, I): the inputs are x[ids]. recurrent_weights: "float32", or "float16"
    (inference of float32 only): W_hh rounded to the nearest IEEE half, everything else float32.

    Returns ForwardResult(y (T, B, H), h_n (B, H), c_n (B, H) or None, workspace or None).
    """
    args = ForwardArgs(cell, x, h0, w_ih, w_hh, b_ih, b_hh, c0, lengths, reverse, ids)
    if check_recurrent_weights(recurrent_weights, args.dtype, training):
        args.w_hh = _rounded_to_half("w_hh", args.w_hh)
    inputs = args.inputs
    step_forward = STEPS[args.cell].forward
    params = _parameters(args)
    state = [s.copy() for s in (args.h0, args.c0) if s is not None]  # [h] or, for LSTM, [h, c]
    y = np.zeros((args.T, args.B, args.H), args.dtype)
    steps = []
    for t, live in _schedule(args):
        *new_state, cache = step_forward(inputs[t, live], *(s[live] for s in state), *params)
        for s, new in zip(state, new_state):
            s[live] = new
        y[t, live] = new_state[0]
        if training:
            steps.append((t, live, cache))
    c_n = state[1] if len(state) == 2 else None
    return ForwardResult(y, state[0], c_n, Workspace(args, steps) if training else None)


def backward(
    workspace: Workspace,
    dy: np.ndarray,
    dh_n: Optional[np.ndarray] = None,
    dc_n: Optional[np.ndarray] = None,
    *,
    accumulate_into: Optional[tuple] = None,
    projection_grad: bool = False,
) -> Gradients:
    """Backpropagation through time for the forward that returned ``workspace``.

    dy (T, B, H) gradient w.r.t. y; dh_n, dc_n (B, H) gradients w.r.t. h_n and (LSTM only) c_n,
    None = zeros. Returns the gradients of sum(y*dy) + sum(h_n*dh_n) + sum(c_n*dc_n) w.r.t. x, h0, c0,
    w_ih, w_hh, b_ih, b_hh as fresh arrays of the forward's dtype (db_* None for a bias-free forward).
    accumulate_into: (dw_ih, dw_hh, db_ih, db_hh) arrays the weight and bias gradients are added to
    (and returned as), or None. projection_grad: dx is the gradient w.r.t. the input projection
    x W_ih^T (T, B, Gi*H) and dw_ih is None (not for a cell that reads x directly). With ids, dx is the gradient w.r.t. the table x (V, I).
    """
    if workspace is None:
        raise RuntimeError(
            "backward needs a training-mode forward (forward(..., training=True)); "
            "got workspace None from an inference forward"
        )
    if not isinstance(workspace, Workspace):
        raise TypeError(f"workspace must come from rnnkit.reference.forward, got {type(workspace).__name__}")
    args = workspace.args
    dy, dh_n, dc_n = check_backward(args, dy, dh_n, dc_n)
    into = check_accumulate_into(args, accumulate_into)
    if projection_grad:
        if args.spec.raw_input:
            raise ValueError(
                f"the projection gradient leaves out where x enters the cell directly: not available for {args.cell}"
            )
        return _projection_backward(args, dy, dh_n, dc_n, into)
    step_backward, num_states = STEPS[args.cell].backward, args.spec.states
    dstate = [d.copy() for d in (dh_n, dc_n) if d is not None]  # [dh] or, for LSTM, [dh, dc]
    dx = np.zeros((args.T, args.B, args.I), args.dtype)
    dparams = [np.zeros_like(p) for p in _parameters(args)]
    for t, live, cache in reversed(workspace.steps):
        dstate_live = [d[live] for d in dstate]
        dstate_live[0] += dy[t, live]  # h_t feeds both the output y_t and the next step
        dx_t, *grads = step_backward(*dstate_live, cache)
        dx[t, live] = dx_t
        for d, g in zip(dstate, grads[:num_states]):
            d[live] = g
        for total, g in zip(dparams, grads[num_states:]):
            total += g
    dw_ih, dw_hh, db_ih, db_hh = (dparams + [None])[:4]
    if not args.has_bias:
        db_ih = db_hh = None
    if into is not None:
        for total, g in zip(into, (dw_ih, dw_hh, db_ih, db_hh)):
            if g is not None:
                total += g
        dw_ih, dw_hh, db_ih, db_hh = into
    dc0 = dstate[1] if len(dstate) == 2 else None
    if args.ids is not None:  # a row of the table receives the gradient of every input that is it
        dtable = np.zeros_like(args.x)
        np.add.at(dtable, args.ids.reshape(-1), dx.reshape(-1, args.I))
        dx = dtable
    return Gradients(dx, dstate[0], dc0, dw_ih, dw_hh, db_ih, db_hh)


def _projection_backward(args: ForwardArgs, dy, dh_n, dc_n, into) -> Gradients:
    """The gradient w.r.t. x W_ih^T, by definition: the same layer run on that projection with an
    identity W_ih, whose dx it is."""
    GH = args.w_ih.shape[0]
    proj = args.inputs @ args.w_ih.T
    ws = forward(
        args.cell,
        proj,
        args.h0,
        np.eye(GH, dtype=args.dtype),
        args.w_hh,
        args.b_ih,
        args.b_hh,
        c0=args.c0,
        lengths=args.lengths,
        reverse=args.reverse,
    ).workspace
    if into is not None:  # the identity's gradient goes to scratch, the caller's dw_ih stays untouched
        into = (np.zeros((GH, GH), args.dtype),) + tuple(into[1:])
    return backward(ws, dy, dh_n, dc_n, accumulate_into=into)._replace(dw_ih=None)


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
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """One inference time step: x (B, I), h (B, H), c (B, H) a cell with a cell state only (None = zeros).

    Returns (h_new, c_new), c_new None unless the cell has a cell state; one step of ``forward``.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"x must have shape (B, input_size) for one step, got ndim {x.ndim} shape {x.shape}")
    _, h_new, c_new, _ = forward(cell, x[None], h, w_ih, w_hh, b_ih, b_hh, c0=c, training=False)
    return h_new, c_new
