"""Export rnnkit models to ONNX, to serve them where rnnkit is not installed (onnxruntime and others).

Install with ``pip install "rnnkit[onnx]"``; ``import rnnkit`` alone never imports onnx.

* `export_layer`: an RNN / LSTM / GRU stack as ONNX's own recurrent operators.
* `export_charlm`, `export_seq2seq`: trained models (also ``rnnkit export-onnx DIR OUT.onnx``).
"""
try:
    import onnx as _onnx  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without onnx
    raise ImportError('rnnkit.onnx needs the onnx package: pip install "rnnkit[onnx]"') from exc

from .graph import OPSET
from .layer import export_layer
from .models import export_charlm, export_seq2seq

__all__ = ["export_layer", "export_charlm", "export_seq2seq", "OPSET"]
