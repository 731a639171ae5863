"""rnnkit.charlm's model: gradients by finite differences, the fused loss, the vocabulary, evaluation,
the C++ sampler (against the Python forward and the kernels, determinism, float16 and int8 weight storage), and
the lecture's "hello" toy."""
import math

import numpy as np
import pytest

import rnnkit
from rnnkit.charlm import CharLM, Vocab
from rnnkit.losses import softmax_cross_entropy
from rnnkit.optim import Adam


pytestmark = pytest.mark.usefixtures("one_thread")


def small_model(cell="lstm", embed=3, layers=2, dtype=np.float64, text="abcabd cab"):
    return CharLM(Vocab.from_text(text), cell, layers, hidden=4, embed=embed, dtype=dtype, seed=1)


@pytest.mark.parametrize("cell,embed", [("lstm", 3), ("gru", 3), ("rnn", 0)])
def test_whole_model_gradient_by_finite_differences(cell, embed):
    m = small_model(cell, embed)
    rng = np.random.default_rng(0)
    V, T, B = len(m.vocab), 5, 2
    x, y = rng.integers(0, V, (T, B)).astype(np.int32), rng.integers(0, V, (T, B)).astype(np.int32)
    state = m.initial_state(B)
    state = (rng.standard_normal(state[0].shape), None if state[1] is None else rng.standard_normal(state[1].shape))
    weights = rng.uniform(0.5, 1.5, (T, B))
    m.zero_grad()
    m.loss_and_grad(x, y, state, weights)
    analytic = {k: g.copy() for k, g in m.grads.items()}
    eps = 1e-6
    for name, p in m.params.items():
        for flat in rng.choice(p.size, size=min(6, p.size), replace=False):
            idx = np.unravel_index(flat, p.shape)
            old = p[idx]
            p[idx] = old + eps
            up = m.loss_and_grad(x, y, state, weights)[0]
            p[idx] = old - eps
            down = m.loss_and_grad(x, y, state, weights)[0]
            p[idx] = old
            assert analytic[name][idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-8), name


def test_softmax_cross_entropy_is_stable_and_right():
    logits = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    loss, grad = softmax_cross_entropy(logits, np.array([0, 2]))
    p = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    assert loss == pytest.approx((0.0 - np.log(p[2])) / 2)
    np.testing.assert_allclose(grad, np.array([[0, 0, 0], [p[0], p[1], p[2] - 1]]) / 2, atol=1e-15)


def test_vocab_is_unicode_with_an_unknown_symbol():
    v = Vocab.from_text("héllo wörld ∑𝄞")
    assert len(v) == len(set("héllo wörld ∑𝄞")) + 1
    ids = v.encode("∑𝄞xé")
    assert ids[2] == 0 and (ids[[0, 1, 3]] > 0).all()
    assert v.decode(ids) == "∑𝄞\ufffdé"
    assert Vocab.from_json(v.to_json()).encode("héllo").tolist() == v.encode("héllo").tolist()


def test_evaluate_counts_every_character_and_unknowns():
    m = small_model(dtype=np.float32)
    for n in (2, 3, 37, 100):  # with and without padding of the last stream
        d = m.evaluate_details(("abcd" * 30)[:n])
        assert d["chars"] == n - 1
    d = m.evaluate_details("abXcaYb")
    assert d["unknown_chars"] == 2 and d["chars"] == 6
    assert d["bpc"] == pytest.approx(d["nats_per_char"] / math.log(2))


def test_evaluate_matches_a_plain_forward():
    m = small_model()
    text = "abcabdcabca"
    ids = m.vocab.encode(text)
    total, count = m.nll_sum(ids, batch=1, seq_len=3)  # one stream, state carried across chunks
    logits, _ = m.logits(ids[:-1, None], m.initial_state(1))
    expected, _ = softmax_cross_entropy(logits, ids[1:], grad=False)
    assert count == len(text) - 1 and total / count == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("cell,embed", [("lstm", 3), ("gru", 0), ("rnn", 3)])
def test_greedy_sampling_in_cpp_follows_the_python_forward(cell, embed):
    m = small_model(cell, embed, dtype=np.float32)
    out = m.sample(20, temperature=0, prime="ab")
    assert out.startswith("ab") and len(out) == 22
    ids = m.vocab.encode(out)
    m.rnn.eval()
    logits, _ = m.logits(ids[:-1, None], m.initial_state(1))
    logits[:, 0] = -np.inf  # the unknown symbol is never produced
    assert (logits.argmax(axis=1)[1:] == ids[2:]).all()
    assert m.sample(20, temperature=0.7, top_k=1, prime="ab", seed=5) == out


def test_sampling_is_deterministic_for_a_seed():
    m = small_model(dtype=np.float32)
    a = m.sample(200, temperature=1.5, seed=42)
    assert a == m.sample(200, temperature=1.5, seed=42)
    assert a != m.sample(200, temperature=1.5, seed=43)
    assert "\ufffd" not in a  # never the unknown symbol
    assert set(m.sample(300, temperature=5.0, top_k=2, seed=1, prime="a")[1:]) <= set("abcd ")
    assert m.sample(0, prime="ab") == "ab"


def test_bad_sampling_arguments():
    m = small_model(dtype=np.float32)
    for kw in ({"temperature": -1}, {"top_k": 0}, {"length": -3}):
        with pytest.raises(ValueError):
            m.sample(**{"length": 5, **kw})


def test_the_lectures_hello():
    """Vocabulary h, e, l, o; one-hot input, one layer: it learns "hello" and samples it back."""
    vocab = Vocab("helo")
    m = CharLM(vocab, "rnn", layers=1, hidden=16, embed=0, seed=0)
    x, y = vocab.encode("hell")[:, None], vocab.encode("ello")[:, None]
    opt = Adam(m.params, lr=0.05)
    for _ in range(150):
        m.zero_grad()
        loss, _ = m.loss_and_grad(x, y, m.initial_state(1))
        opt.step(m.grads)
    assert loss < 0.05
    assert m.sample(4, temperature=0, prime="h") == "hello"
    assert m.sample(4, temperature=0.5, prime="h", seed=3) == "hello"


def random_sampler_model(mode, V, E, H, L=2, seed=7):
    """(embed or None for one-hot input, [(w_ih, w_hh, b_ih, b_hh)] per layer, w_out, b_out), float32, in the
    cell's shapes (b_hh None for a cell with one bias vector). A cell that adds x itself to a gate gets an
    embedding as wide as H; one-hot input does not apply to it (V symbols wide, not H)."""
    spec = rnnkit.CELLS[mode]
    if spec.raw_input:
        E = E and H
    rng = np.random.default_rng(seed)
    f32 = lambda *shape, scale=1.0: (rng.standard_normal(shape) * scale).astype(np.float32)  # noqa: E731
    embed = f32(V, E) if E else None
    layers = []
    for k in range(L):
        shapes = spec.kernel_shapes((E or V) if k == 0 else H, H)
        layers.append((f32(*shapes["w_ih"], scale=0.2), f32(*shapes["w_hh"], scale=0.1), f32(*shapes["b_ih"], scale=0.1),
                       f32(*shapes["b_hh"], scale=0.1) if "b_hh" in shapes else None))
    return embed, layers, f32(V, H), f32(V)


def assert_one_hot_refused(mode, V, H):
    """A cell that adds x itself to a gate (MUT1, MUT2) takes H inputs: one-hot input of V symbols is refused
    with a message naming the sizes (V == H would be a coincidence, not a model)."""
    spec = rnnkit.CELLS[mode]
    rng = np.random.default_rng(0)
    f32 = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    shapes = spec.kernel_shapes(V, H)
    layers = [(f32(*shapes["w_ih"]), f32(*shapes["w_hh"]), f32(*shapes["b_ih"]), None)]
    with pytest.raises(ValueError, match=f"input size must equal hidden size; got {V} and {H}|needs an embedding"):
        cpp_sample(mode, (None, layers, f32(V, H), f32(V)), [1], 3)


def cpp_sample(mode, model, prime, length, temperature=0.0, seed=0, weights="float32"):
    from rnnkit import _C

    embed, layers, w_out, b_out = model
    return _C.sample(rnnkit.MODES.index(mode), embed, *[[layer[i] for layer in layers] for i in range(4)], w_out,
                     b_out, np.asarray(prime, np.int32), length, temperature, 0, seed, -1, weights).tolist()


@pytest.mark.parametrize("mode", rnnkit.MODES)
@pytest.mark.parametrize("V,E", [(7, 5), (7, 0), (600, 4)])
@pytest.mark.parametrize("H,threads", [(7, 1), (100, 2), (192, 1), (192, 2)])
def test_cpp_sampler_steps_like_the_kernels(mode, V, E, H, threads):
    """Every cell (also relu and Cho's GRU, which CharLM does not offer), with an embedding, one-hot input
    and a vocabulary too large for a per-symbol input table, against a greedy decoding loop written with
    rnnkit.kernels.step: same symbols, on one thread and several, H a multiple of 16 or not."""
    from rnnkit import kernels

    if rnnkit.CELLS[mode].raw_input and not E:
        assert_one_hot_refused(mode, V, H)
        return
    model = random_sampler_model(mode, V, E, H)
    embed, layers, w_out, b_out = model
    prime = [1, 4, 2]
    rnnkit.set_num_threads(threads)
    got = cpp_sample(mode, model, prime, 30)
    h = [np.zeros((1, H), np.float32) for _ in layers]
    c = [np.zeros((1, H), np.float32) if rnnkit.CELLS[mode].has_cell_state else None for _ in layers]
    expected = []
    for t in range(len(prime) + 29):
        v = prime[t] if t < len(prime) else expected[-1]
        x = (embed[v] if E else np.eye(V, dtype=np.float32)[v])[None]
        for k, layer in enumerate(layers):
            h[k], c[k] = kernels.step(mode, x, h[k], *layer, c=c[k])
            x = h[k]
        if t >= len(prime) - 1:
            expected.append(int(np.argmax(w_out @ h[-1][0] + b_out)))
    assert got == expected


def to_half(a):
    return a.astype(np.float16).astype(np.float32)


@pytest.mark.parametrize("mode", rnnkit.MODES)
@pytest.mark.parametrize("E", [5, 0])
@pytest.mark.parametrize("threads", [1, 2])
def test_float16_weights_are_float32_storage_of_the_rounded_weights(mode, E, threads):
    """weights="float16" rounds each weight read per character to IEEE half as numpy does (layer 0's input
    weights become a float table of input products instead) and computes in float32 like float32 storage:
    the same symbols as float32 storage of the rounded weights, greedy and drawn, and again on a rerun."""
    if rnnkit.CELLS[mode].raw_input and not E:
        assert_one_hot_refused(mode, 7, 100)
        return
    model = random_sampler_model(mode, 7, E, 100)
    embed, layers, w_out, b_out = model
    rounded = (embed, [(w_ih if k == 0 else to_half(w_ih), to_half(w_hh), b_ih, b_hh)
                       for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers)], to_half(w_out), b_out)
    rnnkit.set_num_threads(threads)
    for temperature, seed in ((0.0, 0), (1.0, 3)):
        half = cpp_sample(mode, model, [1, 4], 40, temperature, seed, weights="float16")
        assert half == cpp_sample(mode, rounded, [1, 4], 40, temperature, seed)
        assert half == cpp_sample(mode, model, [1, 4], 40, temperature, seed, weights="float16")


def test_float16_weights_move_the_logits_little():
    """What float16 storage changes (see the test above): the states and logits of the model, here well
    within 1e-2 of the largest logit (2e-4 measured)."""
    m = CharLM(Vocab.from_text("the quick brown fox jumps over the lazy dog. THE END!"), "lstm", 2, 128, 16, seed=0)
    ids = np.random.default_rng(0).integers(1, len(m.vocab), 200).astype(np.int32)[:, None]
    m.rnn.eval()
    logits, (h, c) = m.logits(ids, m.initial_state(1))
    for name, p in m.params.items():
        if p.ndim == 2 and name not in ("embed.weight", "rnn.weight_ih_l0"):
            p[...] = to_half(p)
    logits16, (h16, c16) = m.logits(ids, m.initial_state(1))
    scale = np.abs(logits).max(axis=1, keepdims=True)
    assert np.abs(logits16 - logits).max() > 0
    assert (np.abs(logits16 - logits) / scale).max() < 1e-2
    assert np.abs(h16 - h).max() < 1e-2 and np.abs(c16 - c).max() < 1e-2


def quantised(*rows):
    """What int8 storage keeps of weight rows that share a panel column (the same output unit): q * s with
    m their largest magnitude, s = m / 127 and q = w * (127 / m) rounded to nearest even, in float32; one
    array per argument."""
    w = np.concatenate(rows, axis=1)
    largest = np.abs(w).max(axis=1)[:, None]
    inverse = np.float32(127) / np.where(largest > 0, largest, np.float32(1))
    q = np.round(w * inverse) * (largest / np.float32(127))
    return np.split(q.astype(np.float32), np.cumsum([r.shape[1] for r in rows])[:-1], axis=1)


@pytest.mark.parametrize("mode", ["rnn_tanh", "rnn_relu", "lstm"])
@pytest.mark.parametrize("V,H,threads", [(7, 100, 1), (7, 64, 2), (600, 33, 2), (7, 600, 1)])
def test_int8_weights_are_float32_storage_of_the_quantised_weights(mode, V, H, threads):
    """weights="int8" keeps q * s per panel column (for these cells a unit's W_ih row beside its W_hh row;
    layer 0's input weights become a float table instead, unless the vocabulary is too large for one) and
    multiplies it with the states quantised to 16 bits (1/65534 of the largest): the same symbols as
    float32 storage of the quantised weights, greedy and drawn. H a multiple of 16 or not, odd row counts
    (E = 5, H = 33: padded row pairs), and H = 600, whose 1200 rows of layer 1 are summed in int32 chunks.
    With 600 symbols only greedy: a draw among 600 close probabilities moves when the embedding moves by
    1e-5 relative (float32 storage does too), the size of the 16-bit rounding of the input. At H = 600
    the recurrent weights are damped to a contracting map: undamped, a tanh RNN that wide is chaotic and
    a 1e-5 change of float32 weights also changes the sample after ~30 symbols."""
    embed, layers, w_out, b_out = random_sampler_model(mode, V, 5, H)
    if H > 512:
        layers = [(w_ih, w_hh * np.float32(0.3), b_ih, b_hh) for w_ih, w_hh, b_ih, b_hh in layers]
    table = V <= 512
    stored = (embed, [(w_ih, *quantised(w_hh), b_ih, b_hh) if k == 0 and table else (*quantised(w_ih, w_hh), b_ih, b_hh)
                      for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers)], *quantised(w_out), b_out)
    model = (embed, layers, w_out, b_out)
    rnnkit.set_num_threads(threads)
    for temperature, seed in ((0.0, 0), (1.0, 3))[:2 if table else 1]:
        q8 = cpp_sample(mode, model, [1, 4], 40, temperature, seed, weights="int8")
        assert q8 == cpp_sample(mode, stored, [1, 4], 40, temperature, seed)
        assert q8 == cpp_sample(mode, model, [1, 4], 40, temperature, seed, weights="int8")
    assert any(not np.array_equal(a, b) for a, b in zip(stored[1][1], layers[1]))  # it did quantise


@pytest.mark.parametrize("mode", rnnkit.MODES)
def test_int8_weights_that_are_already_8_bit_sample_like_float32(mode):
    """Weights k * 2^-9 (|k| <= 127, each row reaching 127) lose nothing to int8 storage, whatever rows share
    a panel column: every cell, GRU's separate input and hidden columns included, samples as with float32
    (the states' 16-bit quantisation, 1/65534 of the largest, moves no symbol here)."""
    rng = np.random.default_rng(3)
    embed, layers, w_out, b_out = random_sampler_model(mode, 7, 5, 40)

    def exact(w):
        k = rng.integers(-100, 101, w.shape)
        k[np.arange(w.shape[0]), rng.integers(0, w.shape[1], w.shape[0])] = 127
        return (k * 2.0 ** -9).astype(np.float32)

    model = (embed, [(exact(a), exact(b), c, d) for a, b, c, d in layers], exact(w_out), b_out)
    for temperature, seed in ((0.0, 0), (1.0, 3)):
        assert cpp_sample(mode, model, [1, 4], 40, temperature, seed, weights="int8") == \
            cpp_sample(mode, model, [1, 4], 40, temperature, seed)


def test_int8_weights_move_the_logits_little():
    """What int8 storage changes: the logits of a model (2x128 LSTM) well within 2% of the largest logit
    (2.6e-3 measured), the states within 5e-3 (5e-4 measured). The weights' rounding, emulated here, is
    what moves them: the sampler's 16-bit rounding of the states is 1/65534 of the largest."""
    m = CharLM(Vocab.from_text("the quick brown fox jumps over the lazy dog. THE END!"), "lstm", 2, 128, 16, seed=0)
    ids = np.random.default_rng(0).integers(1, len(m.vocab), 200).astype(np.int32)[:, None]
    m.rnn.eval()
    logits, (h, c) = m.logits(ids, m.initial_state(1))
    p = m.params
    p["rnn.weight_hh_l0"][...], = quantised(p["rnn.weight_hh_l0"])
    p["rnn.weight_ih_l1"][...], p["rnn.weight_hh_l1"][...] = quantised(p["rnn.weight_ih_l1"], p["rnn.weight_hh_l1"])
    p["head.weight"][...], = quantised(p["head.weight"])
    logits8, (h8, c8) = m.logits(ids, m.initial_state(1))
    scale = np.abs(logits).max(axis=1, keepdims=True)
    assert np.abs(logits8 - logits).max() > 0
    assert (np.abs(logits8 - logits) / scale).max() < 2e-2
    assert np.abs(h8 - h).max() < 5e-3 and np.abs(c8 - c).max() < 5e-3


@pytest.mark.parametrize("cell,embed", [("lstm", 5), ("gru", 5), ("rnn", 0)])
@pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_evaluate_as_sampled_is_the_likelihood_of_one_stream(cell, embed, dtype, rtol):
    """The sampler's loop fed a text scores each next character like the model's own forward over the
    text as one stream from zero states (softmax in float64 here), unknown characters ('q') included."""
    text = "the quick brown fox jumps over the lazy dog. " * 6
    m = CharLM(Vocab.from_text(text.replace("q", "")), cell, 2, hidden=20, embed=embed, dtype=dtype, seed=2)
    ids = m.vocab.encode(text)
    assert np.count_nonzero(ids == 0) == 6
    m.rnn.eval()
    logits, _ = m.logits(ids[:-1, None], m.initial_state(1))
    logits = logits.astype(np.float64)
    top = logits.max(axis=1)
    nll = np.log(np.exp(logits - top[:, None]).sum(axis=1)) + top - logits[np.arange(len(ids) - 1), ids[1:]]
    assert m.evaluate_as_sampled(text) == pytest.approx(nll.mean() / math.log(2), rel=rtol)


@pytest.mark.parametrize("cell,embed,dtype,weights", [("lstm", 5, np.float32, "int8"), ("gru", 5, np.float32, "float32"),
                                                      ("rnn", 0, np.float32, "float16"), ("lstm", 5, np.float64, "float32")])
def test_evaluate_as_sampled_in_chunks_is_one_pass(cell, embed, dtype, weights, monkeypatch):
    """Long texts are scored in chunks with the states (h, and c for LSTM) carried from one to the next,
    for the progress bar: the same bits per character as a single pass, for every engine and storage."""
    import rnnkit.charlm.model as model_module

    text = "the quick brown fox jumps over the lazy dog. " * 5
    m = CharLM(Vocab.from_text(text), cell, 2, hidden=20, embed=embed, dtype=dtype, seed=3)
    whole = m.evaluate_as_sampled(text, weights)
    monkeypatch.setattr(model_module, "SCORE_CHUNK", 17)
    assert m.evaluate_as_sampled(text, weights, progress=True) == pytest.approx(whole, rel=1e-12)
    monkeypatch.setattr(model_module, "SCORE_CHUNK", 1)
    assert m.evaluate_as_sampled(text, weights) == pytest.approx(whole, rel=1e-12)


def test_evaluate_as_sampled_with_smaller_weights():
    """float16 scores as float32 storage of the rounded weights, to the last bit (same sums); int8 as
    float32 storage of the quantised weights up to the 16-bit rounding of the states; both within 1e-3
    bits per character of float32 for this untrained 2x128 LSTM (1.5e-6 and 7.6e-6 measured)."""
    text = "the quick brown fox jumps over the lazy dog. THE END! " * 8
    m = CharLM(Vocab.from_text(text), "lstm", 2, 128, 16, seed=0)
    full = m.evaluate_as_sampled(text)
    half, q8 = m.evaluate_as_sampled(text, "float16"), m.evaluate_as_sampled(text, "int8")
    p = m.params
    saved = {k: v.copy() for k, v in p.items()}
    for name in ("rnn.weight_hh_l0", "rnn.weight_ih_l1", "rnn.weight_hh_l1", "head.weight"):
        p[name][...] = to_half(p[name])
    assert half == m.evaluate_as_sampled(text)
    for k, v in saved.items():
        p[k][...] = v
    p["rnn.weight_hh_l0"][...], = quantised(p["rnn.weight_hh_l0"])
    p["rnn.weight_ih_l1"][...], p["rnn.weight_hh_l1"][...] = quantised(p["rnn.weight_ih_l1"], p["rnn.weight_hh_l1"])
    p["head.weight"][...], = quantised(p["head.weight"])
    assert q8 == pytest.approx(m.evaluate_as_sampled(text), rel=1e-6)
    assert half != full and q8 != full
    assert abs(half - full) < 1e-3 and abs(q8 - full) < 1e-3


def test_evaluate_as_sampled_bad_input():
    m = small_model(dtype=np.float32)
    with pytest.raises(ValueError, match="at least 2 characters"):
        m.evaluate_as_sampled("a")
    with pytest.raises(ValueError, match="weights"):
        m.evaluate_as_sampled("abc", "bfloat16")
    with pytest.raises(ValueError, match="float16 and int8 weight storage are for float32 models"):
        small_model(dtype=np.float64).evaluate_as_sampled("abc", "int8")
    from rnnkit import _C
    with pytest.raises(ValueError, match="symbol outside 0..V-1"):
        _C.score(*m._engine_model(), np.array([1, len(m.vocab)], np.int32))
    with pytest.raises(ValueError, match="1-D"):
        _C.score(*m._engine_model(), np.array([[1, 2]], np.int32))
    with pytest.raises(ValueError, match="state"):  # h and c of 2 layers of 4: 16 values
        _C.score(*m._engine_model(), np.array([1, 2], np.int32), "float32", np.zeros(8, np.float32))


@pytest.mark.parametrize("weights", ["float16", "int8"])
def test_charlm_samples_with_smaller_weights(weights):
    m = small_model(dtype=np.float32)
    a = m.sample(100, temperature=1.0, seed=5, weights=weights)
    assert len(a) == 100 and a == m.sample(100, temperature=1.0, seed=5, weights=weights)
    assert m.sample(100, temperature=1.0, seed=5, weights="float32") == m.sample(100, temperature=1.0, seed=5)


def test_bad_weight_storage():
    m = small_model(dtype=np.float32)
    with pytest.raises(ValueError, match="weights"):
        m.sample(5, weights="bfloat16")
    for weights in ("float16", "int8"):
        with pytest.raises(ValueError, match="float16 and int8 weight storage are for float32 models"):
            small_model(dtype=np.float64).sample(5, weights=weights)
    m.params["head.weight"][0, 0] = 7e4  # beyond half's range
    with pytest.raises(ValueError, match="below 65520"):
        m.sample(5, weights="float16")
    assert len(m.sample(5, weights="int8")) == 5
    m.params["rnn.weight_hh_l1"][2, 1] = np.nan
    with pytest.raises(ValueError, match="int8 weight storage needs finite weights"):
        m.sample(5, weights="int8")
    m.params["rnn.weight_hh_l1"][2, 1] = np.inf
    with pytest.raises(ValueError, match="int8 weight storage needs finite weights"):
        m.sample(5, weights="int8")
    m.params["rnn.weight_hh_l1"][2, 1] = 0.5
    assert len(m.sample(5, weights="float32")) == 5


def test_module_state_dicts_round_trip():
    from rnnkit.nn import Embedding, Linear

    makers = (lambda s: Linear(3, 2, rng=np.random.default_rng(s)),
              lambda s: Embedding(4, 3, rng=np.random.default_rng(s)))
    for make in makers:
        a, b = make(0), make(1)
        b.load_state_dict(a.state_dict())
        assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
        with pytest.raises(KeyError):
            b.load_state_dict({})
        with pytest.raises(ValueError, match="shape"):
            b.load_state_dict({k: np.zeros(7) for k in a.params})


def test_embedding_backward_sums_repeated_rows_like_add_at():
    from rnnkit.nn import Embedding

    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64):
        e = Embedding(5, 3, dtype, rng)
        idx = np.array([[0, 4, 4], [1, 4, 0]])
        e.forward(idx)
        dout = rng.standard_normal((2, 3, 3)).astype(dtype)
        expected = np.zeros((5, 3), dtype)
        np.add.at(expected, idx.reshape(-1), dout.reshape(-1, 3))
        e.backward(dout)
        assert np.array_equal(e.grads["weight"], expected)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        Embedding(5, 3, np.int32)


def test_embedding_backward_rejects_bad_indices():
    from rnnkit import _C

    grad = np.zeros((5, 3), np.float32)
    with pytest.raises(ValueError, match="index 5 outside 0..4"):
        _C.embedding_backward(grad, np.array([0, 5]), np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3\)"):
        _C.embedding_backward(grad, np.array([0, 1]), np.ones((2, 4), np.float32))
