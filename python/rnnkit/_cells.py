"""The registry of cells, as the kernels define it (csrc/rnnkit/cells/registry.h, read through ``_C.cells()``).

Everything in the package that depends on the cell reads it from here: the kernels' argument checks,
the layers' parameter names and shapes, the layer classes of the cells without a hand-written one,
the CLIs' ``--cell`` choices, the sampler's states, the benchmark grid. Ask a `CellSpec` what the cell
has (``has_cell_state``, ``states``, ``raw_input``), never compare its name.

Shape legend: H = hidden size, I = the layer's input size.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Dict, Tuple

from . import _C


@dataclass(frozen=True, eq=False)  # one instance per cell: identity is equality, and hashing is cheap
class CellSpec:
    """One cell of the registry.

    id: the kernels' cell id (rnnkit::CellId, the C API's enum rnnkit_cell). name: "lstm", "mut1", ...
    gates_ih, gates_hh: row blocks of H in w_ih (Gi*H, I) and w_hh (Gh*H, H).
    bias_ih, bias_hh: blocks of H in b_ih and b_hh; bias_hh == 0 means one bias vector, passed as b_ih.
    states: 1 (h) or 2 (h and the cell state c). raw_input: x enters the cell directly besides
    x W_ih^T, so the layer's input size must equal H.
    """

    id: int
    name: str
    gates_ih: int
    gates_hh: int
    bias_ih: int
    bias_hh: int
    states: int
    raw_input: bool

    @property
    def has_cell_state(self) -> bool:
        return self.states == 2

    @functools.lru_cache(maxsize=256)  # the kernels' checks ask per call; the answer is the same every time
    def kernel_shapes(self, I: int, H: int) -> Dict[str, Tuple[int, ...]]:
        """Shapes of one layer's kernel arguments w_ih, w_hh, b_ih and (if the cell has it) b_hh (do not
        modify the returned dict: it is cached)."""
        shapes = {"w_ih": (self.gates_ih * H, I), "w_hh": (self.gates_hh * H, H), "b_ih": (self.bias_ih * H,)}
        if self.bias_hh:
            shapes["b_hh"] = (self.bias_hh * H,)
        return shapes

    def parameter_names(self) -> Tuple[str, ...]:
        """state_dict names (without the _l{k} suffix) of w_ih, w_hh and the biases, in that order:
        torch's weight_ih, weight_hh, bias_ih, bias_hh, or bias for a cell with one bias vector."""
        return ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias_hh else ("bias",))


#: name -> CellSpec, in id order.
CELLS: Dict[str, CellSpec] = {c["name"]: CellSpec(**c) for c in _C.cells()}


def cell_spec(name: str) -> CellSpec:
    """The CellSpec of ``name``; ValueError listing the cells otherwise."""
    try:
        return CELLS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown cell (the kernels' mode argument) {name!r}: cell must be one of {tuple(CELLS)}") from None
