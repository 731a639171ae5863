"""`export_layer`: an RNN / LSTM / GRU stack as an ONNX graph of ONNX's own recurrent operators."""
from __future__ import annotations

import json
from typing import Any

from .graph import FLOAT, INT64, OPSET, Graph, stack_spec, write_model

__all__ = ["export_layer"]


def export_layer(layer: Any, path: str, *, lengths: bool = False, opset: int = OPSET) -> None:
    """Write ``layer`` to ``path`` as an ONNX model (float32; one ONNX RNN/LSTM/GRU operator per layer,
    both directions in one, not unrolled; T and B dynamic).

    Args:
        layer: an rnnkit ``RNN``, ``LSTM`` or ``GRU`` (any layers, directions, bias, batch_first, either
            GRU form), or a torch.nn / rnnkit.torch one (without proj_size).
        path: the .onnx file, written atomically.
        lengths: add the input ``lengths`` (B,) int64, each sequence's length in 1..T: y is zero past
            it and h_n (c_n) is the state at each sequence's last valid step, as with rnnkit's
            ``forward(x, hx, lengths)``.
        opset: the ONNX opset (15 up to the installed onnx's newest).

    Graph inputs: ``x`` (T, B, I), (B, T, I) if the layer is batch_first; ``h0`` (L*D, B, H); for an
    LSTM ``c0`` (L*D, B, H); ``lengths`` if asked. Outputs: ``y`` in x's layout with D*H features,
    ``h_n`` and for an LSTM ``c_n`` (L*D, B, H): rnnkit's shapes. Feed zeros for a zero initial state.
    A float64 layer is exported in float32, the precision onnxruntime's recurrent kernels run in.
    """
    spec = stack_spec(layer)
    LD, H, I = spec.num_layers * spec.directions, spec.hidden_size, spec.input_size
    g = Graph("rnnkit_" + spec.cell, opset)
    x_shape = ["B", "T", I] if spec.batch_first else ["T", "B", I]
    x = g.input("x", FLOAT, x_shape)
    h0 = g.input("h0", FLOAT, [LD, "B", H])
    c0 = g.input("c0", FLOAT, [LD, "B", H]) if spec.has_cell_state else None
    seq_lens = None
    if lengths:
        seq_lens = g.op1("Cast", g.input("lengths", INT64, ["B"]), to=6)  # ONNX wants int32 lengths
    if spec.batch_first:
        x = g.op1("Transpose", x, perm=[1, 0, 2])
    y, h_n, c_n = g.recurrent_stack(spec, x, h0, c0, seq_lens)
    if spec.batch_first:
        g.op("Transpose", [y], out=["y"], perm=[1, 0, 2])
    else:
        g.rename(y, "y")
    g.output("y", FLOAT, x_shape[:2] + [spec.directions * H])
    g.rename(h_n, "h_n")
    g.output("h_n", FLOAT, [LD, "B", H])
    if c_n is not None:
        g.rename(c_n, "c_n")
        g.output("c_n", FLOAT, [LD, "B", H])
    config = {"cell": spec.cell, "input_size": I, "hidden_size": H, "num_layers": spec.num_layers,
              "bidirectional": spec.bidirectional, "bias": spec.bias, "batch_first": spec.batch_first,
              "lengths": bool(lengths)}
    write_model(g.model(f"rnnkit {spec.cell} stack", {"rnnkit.layer": json.dumps(config)}), path)
