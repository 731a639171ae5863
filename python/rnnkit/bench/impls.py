"""The implementations a case is timed on, each behind the same small interface.

* "rnnkit": rnnkit's layer on its default back-end, the C++ kernels.
* "reference": the same layer with ``_backend = rnnkit.reference``, the NumPy specification.
* "torch": torch.nn.RNN/LSTM/GRU loaded with the same weights through ``load_state_dict`` (optional).

Each implementation gets the same problem (`Problem`): inputs, initial states, upstream gradients
and lengths. ``bind`` returns the untimed setup and the timed call; ``outputs`` runs once and returns
every result by name, so that `compare` can check it against the reference before it is timed.
"""
from __future__ import annotations

import tracemalloc
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np

import rnnkit

from .grid import Case

Outputs = Dict[str, np.ndarray]

#: torch.nn's module and arguments for the cells it has.
_TORCH_MODULES = {"rnn_tanh": ("RNN", {"nonlinearity": "tanh"}), "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
                  "lstm": ("LSTM", {}), "gru": ("GRU", {})}
#: The arguments that pick a cell among those of one rnnkit layer class.
_LAYER_ARGS = {"rnn_relu": {"nonlinearity": "relu"}, "gru_cho": {"linear_before_reset": False}}


@dataclass
class Problem:
    """One case's data, time-major. x (T, B, I); h0, c0 (L*D, B, H) (c0 None unless LSTM);
    dy (T, B, D*H); dh, dc like h0, c0; lengths (B,) or None."""

    x: np.ndarray
    h0: np.ndarray
    c0: Optional[np.ndarray]
    dy: np.ndarray
    dh: np.ndarray
    dc: Optional[np.ndarray]
    lengths: Optional[np.ndarray]


def make_problem(case: Case, T: Optional[int] = None, seed: int = 0) -> Problem:
    """Random float32 data for ``case``, with T steps (default: the case's)."""
    s = case.size
    T = s.T if T is None else T
    D = 2 if s.bidirectional else 1
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    lstm = rnnkit.CELLS[case.cell].has_cell_state
    lengths = case.lengths(T)
    dy = normal(T, s.B, D * s.H)
    if lengths is not None:
        dy[np.arange(T)[:, None] >= lengths[None, :]] = 0  # y is zero there, so its gradient is moot
    return Problem(
        x=normal(T, s.B, s.input_size),
        h0=0.5 * normal(s.L * D, s.B, s.H),
        c0=0.5 * normal(s.L * D, s.B, s.H) if lstm else None,
        dy=dy,
        dh=normal(s.L * D, s.B, s.H),
        dc=normal(s.L * D, s.B, s.H) if lstm else None,
        lengths=lengths,
    )


def make_layer(case: Case, seed: int = 0):
    """rnnkit's layer for ``case`` (float32, no dropout) on its default back-end."""
    from ..layers import LAYER_OF_CELL

    s = case.size
    extra = _LAYER_ARGS.get(case.cell, {})
    return LAYER_OF_CELL[case.cell](s.input_size, s.H, num_layers=s.L, bidirectional=s.bidirectional,
                                     dtype=np.float32, seed=seed, **extra)


class RnnkitImpl:
    """rnnkit's layer on a back-end: the kernels (``backend=None``) or ``rnnkit.reference``."""

    def __init__(self, name: str, case: Case, state_dict: Dict[str, np.ndarray], backend=None):
        self.name, self.case = name, case
        self.layer = make_layer(case)
        self.layer.load_state_dict(state_dict)
        if backend is not None:
            self.layer._backend = backend
        self.layer.train(case.mode == "training")
        self.lstm = self.layer.spec.has_cell_state

    def _state(self, h, c):
        return (h, c) if self.lstm else h

    def bind(self, p: Problem) -> Tuple[Optional[Callable], Callable]:
        m, hx, dstate = self.layer, self._state(p.h0, p.c0), self._state(p.dh, p.dc)
        if self.case.mode == "inference":
            return None, lambda: m.forward(p.x, hx, lengths=p.lengths)

        def train():
            m.forward(p.x, hx, lengths=p.lengths)
            m.backward(p.dy, dstate)

        # Parameter gradients accumulate in m.grads; adding to them is part of rnnkit's backward, and
        # their values do not matter while timing, so they are not cleared between calls.
        return None, train

    def outputs(self, p: Problem) -> Outputs:
        m = self.layer
        m.zero_grad()
        y, state = m.forward(p.x, self._state(p.h0, p.c0), lengths=p.lengths)
        out = {"y": y}
        out.update(zip(("h_n", "c_n"), state) if self.lstm else [("h_n", state)])
        if self.case.mode == "training":
            dx, dstate = m.backward(p.dy, self._state(p.dh, p.dc))
            out["dx"] = dx
            out.update(zip(("dh_0", "dc_0"), dstate) if self.lstm else [("dh_0", dstate)])
            out.update((f"grad {k}", v.copy()) for k, v in m.grads.items())
        return out

    def memory(self, p: Problem) -> Dict[str, Optional[float]]:
        """MiB of the training workspaces the layer keeps between forward and backward (None in
        inference, which keeps none) and the peak MiB of NumPy allocations during one call (outputs,
        input copies and workspaces; tracemalloc sees every NumPy array but not the kernels' own
        small C++ scratch buffers)."""
        m, hx = self.layer, self._state(p.h0, p.c0)
        workspace = None
        tracemalloc.start()
        try:
            m.forward(p.x, hx, lengths=p.lengths)
            if self.case.mode == "training":
                saved = getattr(m, "_saved", None)  # the layer's private record of its workspaces
                if saved is not None:
                    workspace = sum(getattr(ws, "nbytes", 0) for per_layer in saved.workspaces for ws in per_layer)
                m.backward(p.dy, self._state(p.dh, p.dc))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        mib = 1 << 20
        return {"workspace_mib": None if workspace is None else workspace / mib, "traced_peak_mib": peak / mib}


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


class TorchImpl:
    """torch.nn's layer with the same weights; inference under ``torch.inference_mode``, training as
    forward + ``torch.autograd.backward`` with the same upstream gradients; variable lengths through
    pack_padded_sequence / pad_packed_sequence (part of the timed call, as a torch user pays it)."""

    def __init__(self, case: Case, state_dict: Dict[str, np.ndarray]):
        import torch

        self.torch, self.case = torch, case
        s = case.size
        if case.cell not in _TORCH_MODULES:
            raise NotImplementedError(f"torch.nn has no {case.cell} cell")
        kind, extra = _TORCH_MODULES[case.cell]
        self.module = getattr(torch.nn, kind)(s.input_size, s.H, num_layers=s.L, bidirectional=s.bidirectional,
                                              dtype=torch.float32, **extra)
        self.module.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state_dict.items()})
        self.module.train(case.mode == "training")
        self.lstm = rnnkit.CELLS[case.cell].has_cell_state

    def _tensors(self, p: Problem):
        torch, training = self.torch, self.case.mode == "training"

        def t(a):
            return None if a is None else torch.from_numpy(a.copy()).requires_grad_(training)

        return t(p.x), t(p.h0), t(p.c0)

    def _forward(self, x, h0, c0, lengths):
        nn_utils, T = self.torch.nn.utils.rnn, x.shape[0]
        hx = (h0, c0) if self.lstm else h0
        if lengths is None:
            y, state = self.module(x, hx)
        else:
            packed = nn_utils.pack_padded_sequence(x, self.torch.from_numpy(lengths), enforce_sorted=False)
            y_packed, state = self.module(packed, hx)
            y, _ = nn_utils.pad_packed_sequence(y_packed, total_length=T)
        return y, (list(state) if self.lstm else [state])

    def bind(self, p: Problem) -> Tuple[Optional[Callable], Callable]:
        torch = self.torch
        x, h0, c0 = self._tensors(p)
        if self.case.mode == "inference":
            def infer():
                with torch.inference_mode():
                    return self._forward(x, h0, c0, p.lengths)

            return None, infer
        grads = [torch.from_numpy(a) for a in (p.dy, p.dh, p.dc) if a is not None]
        leaves = [a for a in (x, h0, c0) if a is not None]

        def clear():  # torch would otherwise accumulate; rnnkit's += costs about the same as a copy
            self.module.zero_grad(set_to_none=True)
            for a in leaves:
                a.grad = None

        def train():
            y, state = self._forward(x, h0, c0, p.lengths)
            torch.autograd.backward([y, *state], grads)

        return clear, train

    def outputs(self, p: Problem) -> Outputs:
        x, h0, c0 = self._tensors(p)
        training = self.case.mode == "training"
        with self.torch.set_grad_enabled(training):
            y, state = self._forward(x, h0, c0, p.lengths)
        out = {"y": y.detach().numpy()}
        out.update(zip(("h_n", "c_n"), (s.detach().numpy() for s in state)))
        if training:
            grads = [self.torch.from_numpy(a) for a in (p.dy, p.dh, p.dc) if a is not None]
            self.module.zero_grad(set_to_none=True)
            self.torch.autograd.backward([y, *state], grads)
            out["dx"] = x.grad.numpy()
            out.update(zip(("dh_0", "dc_0"), (a.grad.numpy() for a in (h0, c0) if a is not None)))
            out.update((f"grad {k}", v.grad.numpy()) for k, v in self.module.named_parameters())
        return out


def compare(outputs: Outputs, reference: Outputs) -> Tuple[float, str]:
    """The worst error over all outputs and which output it is.

    Error of one output: max |a - ref| / max(1, max |ref|), i.e. relative to the output's largest
    reference magnitude, absolute for outputs below 1 (hidden states live in [-1, 1]), so one tiny
    reference entry cannot blow the ratio up. A missing output or a shape mismatch is an error of inf.
    """
    worst, worst_name = 0.0, ""
    for name, ref in reference.items():
        a = outputs.get(name)
        if a is None or np.shape(a) != np.shape(ref):
            return float("inf"), f"{name} (missing or shape {np.shape(a)} != {np.shape(ref)})"
        ref64 = np.asarray(ref, np.float64)
        err = float(np.max(np.abs(np.asarray(a, np.float64) - ref64), initial=0.0)) / max(
            1.0, float(np.max(np.abs(ref64), initial=0.0)))
        if not np.isfinite(err) or err > worst:
            worst, worst_name = (float("inf") if not np.isfinite(err) else err), name
            if not np.isfinite(err):
                break
    return worst, worst_name
