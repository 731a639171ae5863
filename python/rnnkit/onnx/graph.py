"""Building ONNX graphs of rnnkit models: a small graph builder, the recurrent stack as ONNX's own
RNN / LSTM / GRU operators (one per layer, both directions in one), and the atomic file write.

Gate orders differ: rnnkit (and torch) stack LSTM rows i, f, g, o and GRU rows r, z, n; ONNX wants
LSTM i, o, f, c and GRU z, r, h. ONNX's bias B is [input biases; recurrent biases] per direction.
rnnkit's GRU (reset after the hidden product) is ONNX's linear_before_reset=1; the Cho form is 0.

Shape legend: T = time steps, B = batch, I = input size, H = hidden size, L = layers, D = directions,
G = gates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .._atomic import atomic_write
from .._cells import cell_spec

__all__ = ["OPSET", "MIN_OPSET", "check_opset", "StackSpec", "Graph", "stack_spec", "write_model"]

#: The default ONNX opset of the exported graphs: the recurrent operators' semantics are unchanged since
#: opset 14, and 17 is run by every onnxruntime since 1.11.
OPSET = 17
#: The oldest opset the graphs can use (Shape with start/end).
MIN_OPSET = 15


def check_opset(opset) -> int:
    """``opset`` if the graphs can be written at it (MIN_OPSET up to the installed onnx's newest), else
    ValueError."""
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an int in {MIN_OPSET}..{newest} (the installed onnx's newest), got {opset!r}")
    return opset

#: rnnkit gate blocks in the order ONNX wants them.
_ONNX_GATE_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "gru_cho": (1, 0, 2), "rnn_tanh": (0,), "rnn_relu": (0,)}
#: rnnkit's cell -> ONNX's operator and the attributes that select the cell's form (ONNX has no other cells)
_ONNX_OP = {"lstm": ("LSTM", {}), "gru": ("GRU", {"linear_before_reset": 1}),
            "gru_cho": ("GRU", {"linear_before_reset": 0}), "rnn_tanh": ("RNN", {"activation": "Tanh"}),
            "rnn_relu": ("RNN", {"activation": "Relu"})}
#: torch.nn's ``mode`` attribute -> rnnkit's cell
_TORCH_MODES = {"RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu", "LSTM": "lstm", "GRU": "gru"}


@dataclass
class StackSpec:
    """A recurrent stack as exported: its cell (rnnkit's kernel mode), sizes, and parameters in
    torch.nn's state_dict keys as float32 arrays."""

    cell: str
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    bias: bool
    batch_first: bool
    params: Dict[str, np.ndarray]

    @property
    def has_cell_state(self) -> bool:
        return cell_spec(self.cell).has_cell_state

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1


def stack_spec(layer) -> StackSpec:
    """The `StackSpec` of an rnnkit layer (`rnnkit.RNN`, `LSTM`, `GRU`), or of a torch.nn / rnnkit.torch
    RNN, LSTM or GRU module (read through its state_dict; torch is not imported here)."""
    # rnnkit.torch modules name their kernel cell ``cell``; rnnkit's layers ``mode`` (rnnkit's names);
    # torch.nn's ``mode`` holds torch's names.
    cell = getattr(layer, "cell", None)
    mode = getattr(layer, "mode", None)
    if cell not in _ONNX_OP:
        named = cell if isinstance(cell, str) else mode
        cell = mode if mode in _ONNX_OP else _TORCH_MODES.get(mode)
        if cell is None and isinstance(named, str) and named.lower() not in _TORCH_MODES.values():
            raise ValueError(f"ONNX has no operator for the {named!r} cell of {type(layer).__name__}; "
                             f"exportable cells: {', '.join(_ONNX_OP)}")
    if cell is None or not callable(getattr(layer, "state_dict", None)):
        raise TypeError(f"expected an rnnkit or torch RNN/LSTM/GRU layer, got {type(layer).__name__}")
    if getattr(layer, "proj_size", 0):
        raise ValueError("an LSTM with proj_size has no ONNX LSTM equivalent")
    params = {}
    for k, v in layer.state_dict().items():
        v = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
        params[k] = np.ascontiguousarray(v, np.float32)
    return StackSpec(cell, int(layer.input_size), int(layer.hidden_size), int(layer.num_layers),
                     bool(layer.bidirectional), bool(layer.bias), bool(layer.batch_first), params)


def _onnx_gates(a: np.ndarray, cell: str, H: int) -> np.ndarray:
    """Rows of ``a`` (G*H, ...) regrouped from rnnkit's gate order to ONNX's."""
    return np.concatenate([a[g * H:(g + 1) * H] for g in _ONNX_GATE_ORDER[cell]], axis=0)


class Graph:
    """Nodes, initializers, inputs and outputs of one ONNX graph, with unique names for intermediates."""

    def __init__(self, name: str, opset: int = OPSET):
        self.name, self.opset = name, check_opset(opset)
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []
        self.inputs: List[onnx.ValueInfoProto] = []
        self.outputs: List[onnx.ValueInfoProto] = []
        self._count = 0
        self._small: Dict[tuple, str] = {}

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value: np.ndarray) -> str:
        """An initializer holding ``value``; small constants (axes, shapes) are shared by value."""
        value = np.asarray(value)
        key = (hint, value.dtype.str, value.shape, value.tobytes()) if value.size <= 8 else None
        if key in self._small:
            return self._small[key]
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(value, name))
        if key is not None:
            self._small[key] = name
        return name

    def op(self, op_type: str, inputs: Sequence[str], n_out: int = 1, out: Optional[Sequence[str]] = None,
           **attrs) -> List[str]:
        """Add a node; returns its output names (``out`` names them, else fresh names)."""
        outs = list(out) if out is not None else [self.fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs

    def op1(self, op_type: str, *inputs: str, **attrs) -> str:
        return self.op(op_type, inputs, **attrs)[0]

    def input(self, name: str, elem: int, shape: Sequence) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem, list(shape)))
        return name

    def output(self, name: str, elem: int, shape: Sequence) -> None:
        self.outputs.append(helper.make_tensor_value_info(name, elem, list(shape)))

    def rename(self, src: str, dst: str) -> str:
        """Expose ``src`` under the graph-level name ``dst``."""
        return self.op("Identity", [src], out=[dst])[0]

    def model(self, doc: str, metadata: Mapping[str, str]) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        opsets = [helper.make_opsetid("", self.opset)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="rnnkit", doc_string=doc)
        model.ir_version = helper.find_min_ir_version_for(opsets)  # what older runtimes can still read
        helper.set_model_props(model, dict(metadata))
        onnx.checker.check_model(model, full_check=True)
        return model

    def recurrent_stack(self, spec: StackSpec, x: str, h0: str, c0: Optional[str], lengths: Optional[str],
                        ) -> Tuple[str, str, Optional[str]]:
        """x (T, B, I) float32, h0 / c0 (L*D, B, H), lengths (B,) int32 or None -> (y (T, B, D*H),
        h_n (L*D, B, H), c_n or None): one ONNX recurrent operator per layer."""
        H, D, L, cell = spec.hidden_size, spec.directions, spec.num_layers, spec.cell
        p = spec.params
        is_lstm = spec.has_cell_state
        h_parts, c_parts = [], []
        layer_input = x
        for layer in range(L):
            sfx = [f"_l{layer}" + ("_reverse" if d else "") for d in range(D)]
            W = np.stack([_onnx_gates(p["weight_ih" + s], cell, H) for s in sfx])
            R = np.stack([_onnx_gates(p["weight_hh" + s], cell, H) for s in sfx])
            args = [layer_input, self.const(f"W_l{layer}", W), self.const(f"R_l{layer}", R)]
            if spec.bias:
                B = np.stack([np.concatenate([_onnx_gates(p["bias_ih" + s], cell, H),
                                              _onnx_gates(p["bias_hh" + s], cell, H)]) for s in sfx])
                args.append(self.const(f"B_l{layer}", B))
            else:
                args.append("")
            args.append(lengths or "")
            args.append(self._layer_slice(h0, layer, D, L))
            if is_lstm:
                args.append(self._layer_slice(c0, layer, D, L))
            attrs = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward"}
            op, form = _ONNX_OP[cell]
            if "activation" in form:
                attrs["activations"] = [form["activation"]] * D
            if "linear_before_reset" in form:
                attrs["linear_before_reset"] = form["linear_before_reset"]
            outs = self.op(op, args, n_out=3 if is_lstm else 2, **attrs)
            y = outs[0]  # (T, D, B, H)
            if D == 1:
                layer_input = self.op1("Squeeze", y, self.const("axis1", np.array([1], np.int64)))
            else:
                yt = self.op1("Transpose", y, perm=[0, 2, 1, 3])
                layer_input = self.op1("Reshape", yt, self.const("shape_TB_", np.array([0, 0, -1], np.int64)))
            h_parts.append(outs[1])
            if is_lstm:
                c_parts.append(outs[2])
        h_n = h_parts[0] if L == 1 else self.op1("Concat", *h_parts, axis=0)
        c_n = None if not is_lstm else (c_parts[0] if L == 1 else self.op1("Concat", *c_parts, axis=0))
        return layer_input, h_n, c_n

    def _layer_slice(self, state: str, layer: int, D: int, L: int) -> str:
        if L == 1:
            return state
        return self.op1("Slice", state, self.const("start", np.array([layer * D], np.int64)),
                        self.const("end", np.array([(layer + 1) * D], np.int64)),
                        self.const("axis0", np.array([0], np.int64)))


FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64
BOOL = TensorProto.BOOL


def write_model(model: onnx.ModelProto, path: str) -> None:
    """Write ``model`` to ``path`` atomically (a temporary file in the same directory, then renamed)."""
    atomic_write(path, lambda f: f.write(model.SerializeToString()))
