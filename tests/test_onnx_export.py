"""rnnkit.onnx: layers, char-LMs and seq2seq models exported to ONNX and run by onnxruntime give
rnnkit's outputs (float32, within 1e-5); the graphs pass onnx.checker and use ONNX's own recurrent
operators; `rnnkit export-onnx` end to end and its errors."""
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import rnnkit  # noqa: E402
from rnnkit import checkpoint  # noqa: E402
from rnnkit.charlm.model import CharLM  # noqa: E402
from rnnkit.charlm.vocab import Vocab  # noqa: E402
from rnnkit.cli import main as cli  # noqa: E402
from rnnkit.onnx import export_charlm, export_layer, export_seq2seq  # noqa: E402
from rnnkit.seq2seq.decode import greedy  # noqa: E402
from rnnkit.seq2seq.model import Seq2Seq  # noqa: E402
from rnnkit.seq2seq.vocab import BOS, EOS, TokenVocab  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

TOL = 1e-5
LAYERS = {"rnn_tanh": (rnnkit.RNN, {}), "rnn_relu": (rnnkit.RNN, {"nonlinearity": "relu"}),
          "lstm": (rnnkit.LSTM, {}), "gru": (rnnkit.GRU, {}), "gru_cho": (rnnkit.GRU, {"linear_before_reset": False})}


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def max_err(outs, refs):
    assert len(outs) == len(refs)
    for a, b in zip(outs, refs):
        assert a.shape == b.shape
    return max(float(np.abs(a.astype(np.float64) - b).max()) for a, b in zip(outs, refs))


def layer_io(m, rng, T, B, lengths):
    """Inputs for layer m (its layout), rnnkit's outputs, and the graph's feed."""
    D = 2 if m.bidirectional else 1
    x = rng.standard_normal((B, T, m.input_size) if m.batch_first else (T, B, m.input_size)).astype(np.float32)
    h0 = rng.standard_normal((m.num_layers * D, B, m.hidden_size)).astype(np.float32)
    c0 = rng.standard_normal(h0.shape).astype(np.float32)
    is_lstm = m.mode == "lstm"
    y, hn = m.forward(x, (h0, c0) if is_lstm else h0, lengths=lengths)
    feed = {"x": x, "h0": h0}
    if is_lstm:
        feed["c0"] = c0
    if lengths is not None:
        feed["lengths"] = np.asarray(lengths, np.int64)
    return feed, [y] + (list(hn) if is_lstm else [hn])


@pytest.mark.parametrize("cell", sorted(LAYERS))
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_layer_round_trip(tmp_path, cell, layers, bidirectional, with_lengths):
    cls, kw = LAYERS[cell]
    m = cls(3, 5, layers, bidirectional=bidirectional, batch_first=layers == 2 and not bidirectional, seed=1, **kw)
    m.eval()
    path = tmp_path / "layer.onnx"
    export_layer(m, str(path), lengths=with_lengths)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count({"lstm": "LSTM", "rnn_tanh": "RNN", "rnn_relu": "RNN"}.get(cell, "GRU")) == layers
    assert not {"Loop", "Scan"} & set(ops)
    s = session(path)
    rng = np.random.default_rng(layers)
    for T, B in ((6, 4), (3, 1)):  # dynamic T and B: one graph, two shapes
        lengths = ([T, max(1, T - 3), 1, T - 1][:B] if with_lengths else None)
        feed, refs = layer_io(m, rng, T, B, lengths)
        assert max_err(s.run(None, feed), refs) < TOL


def test_layer_without_bias_and_float64_layer(tmp_path):
    m = rnnkit.LSTM(4, 3, 2, bias=False, bidirectional=True, dtype=np.float64, seed=2).eval()
    path = tmp_path / "l.onnx"
    export_layer(m, str(path))
    feed, refs = layer_io(m, np.random.default_rng(0), 5, 2, None)
    feed = {k: v.astype(np.float32) for k, v in feed.items()}
    assert max_err(session(path).run(None, feed), refs) < TOL
    assert [i.name for i in onnx.load(str(path)).graph.input] == ["x", "h0", "c0"]


def test_torch_module_export(tmp_path):
    torch = pytest.importorskip("torch")
    import rnnkit.torch as rt

    torch.manual_seed(0)
    for m in (torch.nn.GRU(3, 4, 2, bidirectional=True, batch_first=True), rt.LSTM(3, 4, 1),
              rt.GRU(3, 4, linear_before_reset=False), torch.nn.RNN(3, 4, nonlinearity="relu")):
        path = tmp_path / "t.onnx"
        export_layer(m, str(path))
        x = torch.randn(2, 5, 3) if m.batch_first else torch.randn(5, 2, 3)
        D = 2 if m.bidirectional else 1
        h0 = torch.randn(m.num_layers * D, 2, 4)
        with torch.no_grad():
            y, hn = m(x, (h0, h0) if isinstance(m, torch.nn.LSTM) else h0)
        feed = {"x": x.numpy(), "h0": h0.numpy()}
        refs = [y.numpy()] + ([t.numpy() for t in hn] if isinstance(hn, tuple) else [hn.numpy()])
        if isinstance(m, torch.nn.LSTM):
            feed["c0"] = h0.numpy()
        assert max_err(session(path).run(None, feed), refs) < TOL


@pytest.mark.parametrize("opset", [15, 21])
def test_other_opsets(tmp_path, opset):
    m = rnnkit.GRU(3, 4, 2, bidirectional=True, seed=0).eval()
    path = tmp_path / "g.onnx"
    export_layer(m, str(path), lengths=True, opset=opset)
    model = onnx.load(str(path))
    assert model.opset_import[0].version == opset
    onnx.checker.check_model(model, full_check=True)
    feed, refs = layer_io(m, np.random.default_rng(0), 4, 3, [4, 2, 1])
    assert max_err(session(path).run(None, feed), refs) < TOL


def test_export_layer_refuses_other_objects(tmp_path):
    with pytest.raises(ValueError, match="opset must be an int in 15"):
        export_layer(rnnkit.GRU(3, 4), str(tmp_path / "x.onnx"), opset=14)
    with pytest.raises(TypeError, match="RNN/LSTM/GRU"):
        export_layer(object(), str(tmp_path / "x.onnx"))
    assert not os.listdir(tmp_path)


# ---------------------------------------------------------------------------------------- char-LM


@pytest.mark.parametrize("cell,embed", [("lstm", 8), ("gru", 0), ("rnn", 6)])
def test_charlm_round_trip(tmp_path, cell, embed):
    model = CharLM(Vocab.from_text("hello, world\n"), cell, layers=2, hidden=12, embed=embed, seed=3)
    path = tmp_path / "lm.onnx"
    export_charlm(model, str(path))
    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    props = {p.key: p.value for p in m.metadata_props}
    assert props["rnnkit.format"] == "rnnkit-charlm"
    s = session(path)
    rng = np.random.default_rng(0)
    state = model.initial_state(3)
    feed_state = {"h0": state[0]} | ({"c0": state[1]} if cell == "lstm" else {})
    for T in (5, 2):  # state carried from one call to the next
        ids = rng.integers(0, len(model.vocab), (T, 3))
        logits, state = model.logits(ids.astype(np.int32), state)
        outs = s.run(None, {"ids": ids.astype(np.int64), **feed_state})
        refs = [logits.reshape(T, 3, -1), state[0]] + ([state[1]] if cell == "lstm" else [])
        assert max_err(outs, refs) < TOL
        feed_state = {"h0": outs[1]} | ({"c0": outs[2]} if cell == "lstm" else {})


# ---------------------------------------------------------------------------------------- seq2seq


def source_batch(rng, V, B, N):
    src_len = rng.integers(2, N + 1, B)
    src_len[0] = N
    src = np.zeros((B, N), np.int64)
    for b, n in enumerate(src_len):
        src[b, :n - 1] = rng.integers(4, V, n - 1)
        src[b, n - 1] = EOS
    return src, src_len.astype(np.int64)


def onnx_greedy(enc, dec, src, src_len, is_lstm, attention, max_len):
    outs = dict(zip([o.name for o in enc.get_outputs()], enc.run(None, {"src": src, "src_len": src_len})))
    state = {"h": outs["h0"]} | ({"c": outs["c0"]} if is_lstm else {})
    extra = {"keys": outs["keys"], "mask": outs["mask"]} if attention else {}
    tokens = np.full(src.shape[0], BOS, np.int64)
    steps = []
    for _ in range(max_len):
        res = dict(zip([o.name for o in dec.get_outputs()], dec.run(None, {"tokens": tokens, **state, **extra})))
        steps.append(res)
        tokens = res["log_probs"].argmax(1).astype(np.int64)
        state = {"h": res["h_new"]} | ({"c": res["c_new"]} if is_lstm else {})
    return outs, steps


@pytest.mark.parametrize("cell,attention,bidirectional", [
    ("lstm", "none", False), ("gru", "dot", True), ("lstm", "general", True), ("rnn", "additive", False),
    ("gru", "additive", True)])
def test_seq2seq_round_trip(tmp_path, cell, attention, bidirectional):
    vocab = TokenVocab(list("abcdefg"))
    model = Seq2Seq(vocab, vocab, cell, layers=2, hidden=10, embed=6, bidirectional=bidirectional,
                    attention=attention, attn_size=7 if attention == "additive" else None, seed=4)
    enc_path, dec_path = tmp_path / "m.encoder.onnx", tmp_path / "m.decoder.onnx"
    export_seq2seq(model, str(enc_path), str(dec_path))
    for p in (enc_path, dec_path):
        onnx.checker.check_model(onnx.load(str(p)), full_check=True)
    rng = np.random.default_rng(1)
    src, src_len = source_batch(rng, len(vocab), 4, 6)
    is_lstm, att = cell == "lstm", attention != "none"
    outs, steps = onnx_greedy(session(enc_path), session(dec_path), src, src_len, is_lstm, att, 5)
    state = model.start(src, src_len)
    refs = [state.h] + ([state.c] if is_lstm else []) + ([state.keys, state.mask] if att else [])
    assert max_err([outs[k] for k in ["h0"] + ["c0"] * is_lstm + ["keys", "mask"] * att], refs) < TOL
    tokens = np.full(4, BOS, np.int32)
    for res in steps:  # the same steps through rnnkit's decoder, fed the ONNX graph's choices
        logp, w = model.decoder.step(tokens, state, want_weights=att)
        got = [res["log_probs"], res["h_new"]] + ([res["c_new"]] if is_lstm else []) + ([res["attention"]] if att else [])
        assert max_err(got, [logp, state.h] + ([state.c] if is_lstm else []) + ([w] if att else [])) < TOL
        tokens = res["log_probs"].argmax(1).astype(np.int32)
    hyps = greedy(model.decoder, model.start(src, src_len), max_len=5)
    onnx_tokens = np.stack([r["log_probs"].argmax(1) for r in steps], 1)
    for b, h in enumerate(hyps):
        assert list(onnx_tokens[b, :len(h.tokens)]) == h.tokens


# ---------------------------------------------------------------------------------------- CLI


def test_cli_exports_a_trained_charlm_and_seq2seq(tmp_path, capsys):
    lm_dir = tmp_path / "lm"
    lm = CharLM(Vocab.from_text("abc \n"), "gru", layers=1, hidden=8, embed=4, seed=0)
    lm.save(str(lm_dir))
    assert cli(["export-onnx", str(lm_dir), str(tmp_path / "lm.onnx")]) == 0
    assert "lm.onnx" in capsys.readouterr().out
    s = session(tmp_path / "lm.onnx")
    assert [i.name for i in s.get_inputs()] == ["ids", "h0"]
    assert [o.name for o in s.get_outputs()] == ["logits", "h_n"]

    vocab = TokenVocab(list("xyz"))
    s2s = Seq2Seq(vocab, vocab, "lstm", hidden=8, embed=4, attention="dot", seed=0)
    s2s_dir = tmp_path / "s2s"
    s2s_dir.mkdir()
    checkpoint.save(str(s2s_dir / "checkpoint.npz"), s2s.arrays(), s2s.meta())
    assert cli(["export-onnx", str(s2s_dir), str(tmp_path / "s2s.onnx")]) == 0
    enc, dec = session(tmp_path / "s2s.encoder.onnx"), session(tmp_path / "s2s.decoder.onnx")
    assert [o.name for o in enc.get_outputs()] == ["h0", "c0", "keys", "mask"]
    assert [i.name for i in dec.get_inputs()] == ["tokens", "h", "c", "keys", "mask"]
    assert [o.name for o in dec.get_outputs()] == ["log_probs", "h_new", "c_new", "attention"]


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli(["export-onnx", str(tmp_path / "missing"), str(tmp_path / "o.onnx")]) == 1
    assert "not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli(["export-onnx", str(tmp_path / "empty"), str(tmp_path / "o.onnx")]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    checkpoint.save(str(other / "checkpoint.npz"), {"a": np.zeros(2)}, {"format": "something-else"})
    assert cli(["export-onnx", str(other), str(tmp_path / "o.onnx")]) == 1
    err = capsys.readouterr().err
    assert "neither a char-LM nor a seq2seq model" in err and len(err.strip().splitlines()) == 1
    lm_dir = tmp_path / "lm"
    CharLM(Vocab.from_text("ab"), "gru", layers=1, hidden=4, embed=2).save(str(lm_dir))
    assert cli(["export-onnx", str(lm_dir), str(tmp_path / "o.onnx"), "--opset", "14"]) == 1
    assert "opset must be an int in 15" in capsys.readouterr().err
    assert not (tmp_path / "o.onnx").exists()


def test_cell_without_an_onnx_operator_is_named():
    with pytest.raises(ValueError, match="ONNX has no operator for the 'mut3' cell"):
        rnnkit.onnx.export_layer(rnnkit.MUT3(8, 8), "unused.onnx")
