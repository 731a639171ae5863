"""rnnkit.charlm's model: gradients by finite differences, the fused loss, the vocabulary, evaluation,
the C++ sampler (against the Python forward, determinism), and the lecture's "hello" toy."""
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


@pytest.mark.parametrize("mode", rnnkit.MODES)
@pytest.mark.parametrize("one_hot", [False, True])
def test_cpp_sampler_steps_like_the_kernels(mode, one_hot):
    """Every cell (also relu and Cho's GRU, which CharLM does not offer), against a greedy decoding loop
    written with rnnkit.kernels.step: same symbols, for a model big enough to use several threads."""
    from rnnkit import _C, kernels

    rng = np.random.default_rng(7)
    V, E, H, L, G = 7, 5, 192, 2, rnnkit.num_gates(mode)
    I0 = V if one_hot else E
    embed = None if one_hot else rng.standard_normal((V, E)).astype(np.float32)
    w = [(rng.standard_normal((G * H, I0 if k == 0 else H)).astype(np.float32) * 0.2,
          rng.standard_normal((G * H, H)).astype(np.float32) * 0.1,
          rng.standard_normal(G * H).astype(np.float32) * 0.1,
          rng.standard_normal(G * H).astype(np.float32) * 0.1) for k in range(L)]
    w_out, b_out = rng.standard_normal((V, H)).astype(np.float32), rng.standard_normal(V).astype(np.float32)
    prime = np.array([1, 4, 2], np.int32)
    rnnkit.set_num_threads(2)
    got = _C.sample(rnnkit.MODES.index(mode), embed, [p[0] for p in w], [p[1] for p in w], [p[2] for p in w],
                    [p[3] for p in w], w_out, b_out, prime, 30, 0.0, 0, 0, -1)
    h = [np.zeros((1, H), np.float32) for _ in range(L)]
    c = [np.zeros((1, H), np.float32) if mode == "lstm" else None for _ in range(L)]
    expected, v = [], None
    for t in range(len(prime) + 29):
        v = prime[t] if t < len(prime) else expected[-1]
        x = (np.eye(V, dtype=np.float32)[v] if one_hot else embed[v])[None]
        for k in range(L):
            h[k], c[k] = kernels.step(mode, x, h[k], *w[k], c=c[k])
            x = h[k]
        if t >= len(prime) - 1:
            expected.append(int(np.argmax(w_out @ h[-1][0] + b_out)))
    assert got.tolist() == expected


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
