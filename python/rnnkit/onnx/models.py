"""ONNX graphs of trained rnnkit models: the char-LM, and the seq2seq encoder and decoder step.

The recurrent stacks are ONNX's own RNN/LSTM/GRU operators (`Graph.recurrent_stack`). ONNX has no
attention operator, so the seq2seq decoder's attention is built from standard operators (MatMul,
Tanh, Where, Softmax); embeddings are Gather, output layers MatMul + Add.

Shape legend: T = time steps, B = batch, N = source length, L = layers, H = hidden size, V = vocabulary.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Tuple

import numpy as np
from onnx import numpy_helper

from .graph import BOOL, FLOAT, INT64, OPSET, Graph, stack_spec, write_model

__all__ = ["export_charlm", "export_seq2seq", "charlm_model", "seq2seq_models"]


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32)


def _linear(g: Graph, x: str, weight: np.ndarray, bias: np.ndarray, hint: str) -> str:
    """x (..., I) -> x weight^T + bias (..., O)."""
    y = g.op1("MatMul", x, g.const(hint + "_weight_T", _f32(weight.T)))
    return g.op1("Add", y, g.const(hint + "_bias", _f32(bias)))


def _states(g: Graph, is_lstm: bool, LD: int, H: int, names: Tuple[str, str]):
    h = g.input(names[0], FLOAT, [LD, "B", H])
    c = g.input(names[1], FLOAT, [LD, "B", H]) if is_lstm else None
    return h, c


def _state_outputs(g: Graph, h: str, c: Any, LD: int, H: int, names: Tuple[str, str]) -> None:
    for src, name in ((h, names[0]), (c, names[1])):
        if src is not None:
            g.rename(src, name)
            g.output(name, FLOAT, [LD, "B", H])


def charlm_model(model, opset: int = OPSET) -> Any:
    """The ONNX model of a `rnnkit.charlm.CharLM`: ids (T, B) int64, h0 (L, B, H) [, c0] -> logits
    (T, B, V), h_n [, c_n]; the vocabulary (ids index ``[unknown] + chars``) in the metadata."""
    spec = stack_spec(model.rnn)
    L, H, V = spec.num_layers, spec.hidden_size, len(model.vocab)
    is_lstm = spec.has_cell_state
    g = Graph("rnnkit_charlm", opset)
    ids = g.input("ids", INT64, ["T", "B"])
    h0, c0 = _states(g, is_lstm, L, H, ("h0", "c0"))
    table = model.params["embed.weight"] if model.embed else np.eye(V, dtype=np.float32)
    x = g.op1("Gather", g.const("embed", _f32(table)), ids, axis=0)  # (T, B, E)
    y, h_n, c_n = g.recurrent_stack(spec, x, h0, c0, None)
    logits = _linear(g, y, model.head.params["weight"], model.head.params["bias"], "head")
    g.rename(logits, "logits")
    g.output("logits", FLOAT, ["T", "B", V])
    _state_outputs(g, h_n, c_n, L, H, ("h_n", "c_n"))
    meta = {"rnnkit.format": "rnnkit-charlm", "rnnkit.model": json.dumps(model.config),
            "rnnkit.vocab": json.dumps(["\ufffd"] + model.vocab.to_json())}
    return g.model("rnnkit character language model: next-character logits", meta)


def _encoder_model(model, meta: Dict[str, str], opset: int) -> Any:
    """src (B, N) int64, src_len (B,) int64 -> h0 (L, B, H) [, c0] [, keys (B, N, H), mask (B, N)]."""
    cfg = model.config
    spec = stack_spec(model.encoder)
    L, H, D = cfg["layers"], cfg["hidden"], spec.directions
    is_lstm, attention = spec.has_cell_state, cfg["attention"] != "none"
    g = Graph("rnnkit_seq2seq_encoder", opset)
    src = g.input("src", INT64, ["B", "N"])
    src_len = g.input("src_len", INT64, ["B"])
    x = g.op1("Gather", g.const("src_embed", _f32(model.params["src_embed.weight"])),
              g.op1("Transpose", src, perm=[1, 0]), axis=0)  # (N, B, E)
    zeros = g.op1("ConstantOfShape", g.op1("Concat", g.const("LD", np.array([L * D], np.int64)),
                                           g.op1("Shape", src, start=0, end=1),
                                           g.const("He", np.array([spec.hidden_size], np.int64)), axis=0),
                  value=numpy_helper.from_array(np.zeros(1, np.float32)))  # the initial states
    y, h_n, c_n = g.recurrent_stack(spec, x, zeros, zeros if is_lstm else None, g.op1("Cast", src_len, to=6))

    def bridge(s: str) -> str:  # (L*2, B, H/2) -> (L, B, H): layer l's [forward; reverse]
        if D == 1:
            return s
        s = g.op1("Reshape", s, g.const("shape_L2BH", np.array([L, 2, -1, H // 2], np.int64)))
        s = g.op1("Transpose", s, perm=[0, 2, 1, 3])
        return g.op1("Reshape", s, g.const("shape_LBH", np.array([L, -1, H], np.int64)))

    _state_outputs(g, bridge(h_n), None if c_n is None else bridge(c_n), L, H, ("h0", "c0"))
    if attention:
        g.op("Transpose", [y], out=["keys"], perm=[1, 0, 2])
        g.output("keys", FLOAT, ["B", "N", H])
        positions = g.op1("Range", g.const("zero", np.array(0, np.int64)),
                          g.op1("Squeeze", g.op1("Shape", src, start=1, end=2), g.const("axis0", np.array([0], np.int64))),
                          g.const("one", np.array(1, np.int64)))
        g.op("Less", [g.op1("Unsqueeze", positions, g.const("axis0", np.array([0], np.int64))),
                      g.op1("Unsqueeze", src_len, g.const("axis1", np.array([1], np.int64)))], out=["mask"])
        g.output("mask", BOOL, ["B", "N"])
    return g.model("rnnkit seq2seq encoder: the decoder's initial state (and attention keys) of a source batch",
                   meta)


def _decoder_model(model, meta: Dict[str, str], opset: int) -> Any:
    """One decoder step: tokens (B,) int64, h (L, B, H) [, c] [, keys (B, N, H), mask (B, N) bool] ->
    log_probs (B, V), h_new [, c_new] [, attention (B, N)]."""
    cfg = model.config
    dec = model.decoder
    spec = stack_spec(dec.rnn)
    L, H, V = cfg["layers"], cfg["hidden"], dec.vocab_size
    is_lstm, kind = spec.has_cell_state, cfg["attention"]
    p = model.params
    g = Graph("rnnkit_seq2seq_decoder_step", opset)
    tokens = g.input("tokens", INT64, ["B"])
    h, c = _states(g, is_lstm, L, H, ("h", "c"))
    x = g.op1("Gather", g.const("tgt_embed", _f32(p["tgt_embed.weight"])),
              g.op1("Unsqueeze", tokens, g.const("axis0", np.array([0], np.int64))), axis=0)  # (1, B, E)
    y, h_n, c_n = g.recurrent_stack(spec, x, h, c, None)
    s = g.op1("Squeeze", y, g.const("axis0", np.array([0], np.int64)))  # (B, H)
    features = s
    if kind != "none":
        keys = g.input("keys", FLOAT, ["B", "N", H])
        mask = g.input("mask", BOOL, ["B", "N"])
        axis1 = g.const("axis1", np.array([1], np.int64))
        if kind == "additive":
            q = g.op1("MatMul", s, g.const("w_query_T", _f32(p["attention.w_query"].T)))  # (B, A)
            k = g.op1("MatMul", keys, g.const("w_key_T", _f32(p["attention.w_key"].T)))  # (B, N, A)
            t = g.op1("Tanh", g.op1("Add", g.op1("Unsqueeze", q, axis1), k))  # (B, N, A)
            scores = g.op1("MatMul", t, g.const("v", _f32(p["attention.v"])))  # (B, N)
        else:
            query = s if kind == "dot" else g.op1("MatMul", s, g.const("weight", _f32(p["attention.weight"])))
            scores = g.op1("Squeeze", g.op1("MatMul", keys, g.op1("Unsqueeze", query, g.const("axis2", np.array([2], np.int64)))),
                           g.const("axis2", np.array([2], np.int64)))  # (B, N)
        masked = g.op1("Where", mask, scores, g.const("minus_inf", np.array(-np.inf, np.float32)))
        weights = g.op1("Softmax", masked, axis=-1)  # masked positions get exactly 0
        context = g.op1("Squeeze", g.op1("MatMul", g.op1("Unsqueeze", weights, axis1), keys), axis1)  # (B, H)
        features = g.op1("Concat", s, context, axis=1)
        g.rename(weights, "attention")
    logits = _linear(g, features, p["head.weight"], p["head.bias"], "head")
    g.op("LogSoftmax", [logits], out=["log_probs"], axis=-1)
    g.output("log_probs", FLOAT, ["B", V])
    _state_outputs(g, h_n, c_n, L, H, ("h_new", "c_new"))
    if kind != "none":
        g.output("attention", FLOAT, ["B", "N"])
    return g.model("rnnkit seq2seq decoder: one step of the whole batch", meta)


def seq2seq_models(model, opset: int = OPSET) -> Dict[str, Any]:
    """{"encoder": ..., "decoder": ...}: the ONNX models of a `rnnkit.seq2seq.Seq2Seq` (see
    `export_seq2seq`)."""
    meta = {"rnnkit.format": "rnnkit-seq2seq", "rnnkit.model": json.dumps(model.config),
            "rnnkit.src_vocab": json.dumps(model.src_vocab.to_json()),
            "rnnkit.tgt_vocab": json.dumps(model.tgt_vocab.to_json())}
    return {"encoder": _encoder_model(model, meta, opset), "decoder": _decoder_model(model, meta, opset)}


def export_charlm(model, path: str, *, opset: int = OPSET) -> None:
    """Write a `rnnkit.charlm.CharLM` to ``path`` as one ONNX model (float32): inputs ``ids`` (T, B)
    int64 (time-major, as `CharLM.logits`), ``h0`` (L, B, H) and for an LSTM ``c0``; outputs ``logits``
    (T, B, V), ``h_n`` (and ``c_n``). Feed zeros for a fresh state and each call's states to the next
    call to carry it; metadata ``rnnkit.vocab`` lists the characters of ids 0.. (0 is the unknown one)."""
    write_model(charlm_model(model, opset), path)


def export_seq2seq(model, encoder_path: str, decoder_path: str, *, opset: int = OPSET) -> None:
    """Write a `rnnkit.seq2seq.Seq2Seq` as two ONNX models (float32).

    Encoder: ``src`` (B, N) int64 ids (padded with 0, each ending with </s> as rnnkit's data does),
    ``src_len`` (B,) int64 -> ``h0`` (L, B, H) (``c0`` for an LSTM), the decoder's initial state; with
    attention also ``keys`` (B, N, H) and ``mask`` (B, N) bool.
    Decoder step: ``tokens`` (B,) int64 (first <s> = 1), ``h`` (``c``) (and ``keys``, ``mask``) ->
    ``log_probs`` (B, V), ``h_new`` (``c_new``) and with attention ``attention`` (B, N) weights: greedy
    decoding feeds the argmax and the new states back until </s> (id 2). The attention is made of
    standard operators (MatMul, Tanh, Where, Softmax): ONNX has no attention operator for it.
    Metadata: ``rnnkit.src_vocab`` / ``rnnkit.tgt_vocab`` (tokens by id) and ``rnnkit.model``."""
    models = seq2seq_models(model, opset)
    write_model(models["encoder"], encoder_path)
    write_model(models["decoder"], decoder_path)
