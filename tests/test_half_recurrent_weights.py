"""Inference with W_hh read as IEEE half (``recurrent_weights="float16"``): the kernels against the NumPy
reference, which rounds W_hh with numpy's own float16 conversion. Three kernel paths are covered: a batch
of one (half panels), larger batches (float panels of the rounded values) and a single step (a rounded
copy read unpacked)."""

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels, reference
from rnnkit._cells import cell_spec

CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru", "gru_cho", "mut1", "mut2", "mut3"]


def _case(cell, T, B, H, I, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    shapes = cell_spec(cell).kernel_shapes(I, H)
    w = {k: (rng.standard_normal(v) * scale / np.sqrt(H)).astype(np.float32) for k, v in shapes.items()}
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    h0 = rng.standard_normal((B, H)).astype(np.float32) * 0.5
    c0 = rng.standard_normal((B, H)).astype(np.float32) * 0.5 if cell == "lstm" else None
    return (cell, x, h0, w["w_ih"], w["w_hh"], w["b_ih"], w.get("b_hh")), dict(c0=c0)


@pytest.fixture
def num_threads():
    saved = rnnkit.get_num_threads()
    yield rnnkit.set_num_threads
    rnnkit.set_num_threads(saved)


def _both(args, kw, **extra):
    k = kernels.forward(*args, **kw, training=False, recurrent_weights="float16", **extra)
    r = reference.forward(*args, **kw, training=False, recurrent_weights="float16", **extra)
    return k, r


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("T,B", [(7, 1), (7, 3), (1, 1), (1, 4)])
def test_matches_reference_with_rounded_w_hh(cell, T, B, threads, num_threads):
    # H = 120: 7.5 panels, so each thread's last panel is part-filled at both thread counts.
    H = 120
    args, kw = _case(cell, T, B, H, H if cell.startswith("mut") else 50)
    num_threads(threads)
    k, r = _both(args, kw)
    full = kernels.forward(*args, **kw, training=False)
    scale = np.abs(r.y).max()
    np.testing.assert_allclose(k.y, r.y, atol=2e-6 * scale * T, rtol=0)
    np.testing.assert_allclose(k.h_n, r.h_n, atol=2e-6 * scale * T, rtol=0)
    if r.c_n is not None:
        np.testing.assert_allclose(k.c_n, r.c_n, atol=2e-6 * np.abs(r.c_n).max() * T, rtol=0)
    # The option does something: the float32 result is far from it, the rounded reference close.
    assert np.abs(full.y - k.y).max() > 10 * np.abs(k.y - r.y).max()


@pytest.mark.parametrize("B", [1, 2])
def test_reverse_lengths_and_ids(B):
    H, I, T, V = 64, 24, 9, 11
    args, kw = _case("lstm", T, B, H, I, seed=3)
    table = args[1][0, :1].repeat(V, axis=0) + np.arange(V, dtype=np.float32)[:, None] * 0.1
    ids = np.random.default_rng(4).integers(0, V, size=(T, B))
    lengths = np.array([T, 4][:B])
    args = (args[0], table) + args[2:]
    k, r = _both(args, kw, ids=ids, lengths=lengths, reverse=True)
    np.testing.assert_allclose(k.y, r.y, atol=1e-5, rtol=0)
    np.testing.assert_allclose(k.h_n, r.h_n, atol=1e-5, rtol=0)


@pytest.mark.parametrize("B,T", [(1, 3), (2, 3), (1, 1)])
def test_subnormal_halves_keep_their_value(B, T):
    # W_hh entries below half's smallest normal (6.1e-5) become half subnormals; the kernels run with
    # denormals flushed in float arithmetic, which must not flush these. h = relu(W_hh h_prev) with a large
    # h_prev makes their rounding visible.
    H = 96
    rng = np.random.default_rng(5)
    w_hh = (rng.uniform(1e-7, 5e-5, (H, H)) * rng.choice([-1, 1], (H, H))).astype(np.float32)
    w_ih = np.zeros((H, 4), np.float32)
    x = np.zeros((T, B, 4), np.float32)
    h0 = np.full((B, H), 1e4, np.float32)
    args = ("rnn_relu", x, h0, w_ih, w_hh, None, None)
    k, r = _both(args, {})
    assert np.abs(r.y).max() > 1e-3
    np.testing.assert_allclose(k.y, r.y, rtol=1e-5, atol=1e-9)
    exact = reference.forward(*args, training=False)
    assert np.abs(exact.y - r.y).max() > 1e-4 * np.abs(r.y).max()


@pytest.mark.parametrize("backend", [kernels, reference])
@pytest.mark.parametrize("B,T", [(1, 5), (3, 5), (1, 1)])
def test_weights_without_a_half_raise(backend, B, T):
    args, kw = _case("gru", T, B, 32, 8)
    args[4][3, 5] = 70000.0
    with pytest.raises(ValueError, match="65520"):
        backend.forward(*args, **kw, training=False, recurrent_weights="float16")
    args[4][3, 5] = np.nan
    with pytest.raises(ValueError, match="65520"):
        backend.forward(*args, **kw, training=False, recurrent_weights="float16")


@pytest.mark.parametrize("backend", [kernels, reference])
def test_bad_uses_raise(backend):
    args, kw = _case("lstm", 4, 2, 16, 8)
    with pytest.raises(ValueError, match="inference"):
        backend.forward(*args, **kw, training=True, recurrent_weights="float16")
    with pytest.raises(ValueError, match="recurrent_weights must be one of"):
        backend.forward(*args, **kw, training=False, recurrent_weights="bfloat16")
    as64 = tuple(a.astype(np.float64) if isinstance(a, np.ndarray) else a for a in args)
    with pytest.raises(ValueError, match="float32"):
        backend.forward(*as64, c0=kw["c0"].astype(np.float64), training=False, recurrent_weights="float16")


def test_layer_eval_option():
    lstm = rnnkit.LSTM(20, 48, num_layers=2, seed=0)
    x = np.random.default_rng(1).standard_normal((6, 1, 20)).astype(np.float32)
    y32, _ = lstm.eval()(x)
    y16, (h16, c16) = lstm.eval(recurrent_weights="float16")(x)
    assert lstm.recurrent_weights == "float16"
    ref = rnnkit.LSTM(20, 48, num_layers=2, seed=0)
    ref._backend = reference
    yr, (hr, cr) = ref.eval(recurrent_weights="float16")(x)
    np.testing.assert_allclose(y16, yr, atol=1e-6, rtol=0)
    np.testing.assert_allclose(c16, cr, atol=1e-6, rtol=0)
    assert np.abs(y32 - y16).max() > 10 * np.abs(y16 - yr).max()
    # Training ignores it (a training forward reads float32 weights), and eval() goes back to float32.
    y_train, _ = lstm.train()(x)
    np.testing.assert_allclose(y_train, y32, atol=1e-6, rtol=0)
    y_back, _ = lstm.eval()(x)
    np.testing.assert_array_equal(y_back, y32)
    with pytest.raises(ValueError, match="float32"):
        rnnkit.LSTM(4, 8, dtype=np.float64).eval(recurrent_weights="float16")
