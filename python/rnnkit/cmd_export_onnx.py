"""``rnnkit export-onnx DIR OUT.onnx``: a trained char-LM or seq2seq model as ONNX graphs.

Outside `rnnkit.onnx` so that the command starts (and reports a missing onnx package in one line)
without importing onnx."""
from __future__ import annotations

import os
from typing import List, Tuple

from .cliutil import Parser, check_output_file, require_module, run


def seq2seq_paths(out: str) -> Tuple[str, str]:
    """OUT.onnx -> (OUT.encoder.onnx, OUT.decoder.onnx)."""
    stem = out[:-len(".onnx")] if out.endswith(".onnx") else out
    return stem + ".encoder.onnx", stem + ".decoder.onnx"


def main(argv: List[str], prog: str = "rnnkit export-onnx") -> int:
    """``rnnkit export-onnx DIR OUT.onnx``: write the model trained into DIR as ONNX (float32)."""
    p = Parser(prog=prog, description=(
        "Write the model saved in DIR (by train-charlm or train-seq2seq) as ONNX graphs that onnxruntime "
        "runs without rnnkit. A char-LM becomes OUT.onnx: ids (T, B) and states in, logits (T, B, V) and "
        "states out. A seq2seq model becomes two graphs, OUT.encoder.onnx (source ids and lengths in, "
        "the decoder's initial state and attention keys out) and OUT.decoder.onnx (one decoding step: "
        "tokens and states in, log-probabilities and states out). The vocabularies are in the models' "
        "metadata."))
    p.add_argument("dir", metavar="DIR", help="directory of a trained model (its checkpoint.npz)")
    p.add_argument("out", metavar="OUT.onnx", help="output file (seq2seq: the stem of the two files)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset of the graphs (15 up to the installed onnx's "
                   "newest; older runtimes need older opsets)")
    a = p.parse_args(argv)

    def body() -> int:
        from . import checkpoint

        if not os.path.isdir(a.dir):
            raise checkpoint.CheckpointError(f"not a directory: {a.dir}")
        path = os.path.join(a.dir, "checkpoint.npz")
        arrays, meta = checkpoint.load(path)
        fmt = meta.get("format")
        if fmt not in ("rnnkit-charlm", "rnnkit-seq2seq"):
            raise checkpoint.CheckpointError(f"{path} holds neither a char-LM nor a seq2seq model (format {fmt!r})")
        outputs = [a.out] if fmt == "rnnkit-charlm" else list(seq2seq_paths(a.out))
        for out in outputs:
            check_output_file(out, "OUT")
        require_module("onnx", "export-onnx", "onnx")
        from .onnx import export_charlm, export_seq2seq
        from .onnx.graph import check_opset

        check_opset(a.opset)

        if fmt == "rnnkit-charlm":
            from .charlm.model import CharLM

            export_charlm(CharLM.from_checkpoint(arrays, meta, path), a.out, opset=a.opset)
        else:
            from .seq2seq.model import Seq2Seq

            export_seq2seq(Seq2Seq.from_checkpoint(arrays, meta, path, attention_backend="reference"), *outputs,
                           opset=a.opset)
        print("\n".join(f"wrote {out}" for out in outputs))
        return 0

    return run(prog, body)
