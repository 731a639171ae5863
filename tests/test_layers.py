"""Behaviour of rnnkit.RNN / LSTM / GRU without torch: gradients by finite differences, dropout,
lengths and layouts, state_dict, train/eval, back-ends and threads."""
import warnings

import numpy as np
import pytest

import rnnkit

T, B, I, H = 5, 3, 3, 4
CLASSES = {  # mode -> (class name, extra constructor arguments)
    "rnn_tanh": ("RNN", {}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "gru": ("GRU", {}),
    "gru_cho": ("GRU", {"linear_before_reset": False}),
}


def make(mode, input_size=I, hidden_size=H, **kw):
    name, extra = CLASSES[mode]
    return getattr(rnnkit, name)(input_size, hidden_size, **extra, **kw)


def flat(state):
    """A layer's state as a tuple: (h,) or (h, c)."""
    return tuple(state) if isinstance(state, tuple) else (state,)


def pack(m, arrays):
    """The inverse of flat for layer ``m``."""
    return tuple(arrays) if isinstance(m, rnnkit.LSTM) else arrays[0]


def weighted_loss(m, x, hx, lengths, dy, dstate):
    """L = <y, dy> + <h_n, dh_n> (+ <c_n, dc_n>): its gradients are what backward(dy, dstate) returns."""
    y, state = m.forward(x, hx, lengths)
    return np.sum(y * dy) + sum(np.sum(a * b) for a, b in zip(flat(state), flat(dstate)))


def random_problem(m, rng, batch_first=False, dtype=np.float64):
    LD, DH = m.num_layers * m.num_directions, m.num_directions * m.hidden_size
    x = rng.standard_normal((B, T, m.input_size) if batch_first else (T, B, m.input_size)).astype(dtype)
    n_states = 2 if isinstance(m, rnnkit.LSTM) else 1
    hx = pack(m, [rng.standard_normal((LD, B, m.hidden_size)).astype(dtype) for _ in range(n_states)])
    dy = rng.standard_normal(x.shape[:2] + (DH,)).astype(dtype)
    dstate = pack(m, [rng.standard_normal((LD, B, m.hidden_size)).astype(dtype) for _ in range(n_states)])
    return x, hx, dy, dstate


def directional_fd(f, base, direction, eps=1e-6):
    """Central difference of f along ``direction`` at ``base``: approximates <grad f, direction>."""
    return (f(base + eps * direction) - f(base - eps * direction)) / (2 * eps)


def check_gradients_fd(new_layer, x, hx, lengths, dy, dstate, seed=0):
    """backward's dx, dh_0 (, dc_0) and every parameter gradient against directional finite
    differences of weighted_loss. ``new_layer()`` must give a layer that repeats the same forward
    (same weights, same dropout masks), so each loss evaluation is the same function."""
    m = new_layer()
    params = m.state_dict()
    m.forward(x, hx, lengths)
    dx, dstate0 = m.backward(dy, dstate)
    rng = np.random.default_rng(seed)

    def loss_with(x_=x, hx_=hx, params_=params):
        layer = new_layer()
        layer.load_state_dict(params_)
        return weighted_loss(layer, x_, hx_, lengths, dy, dstate)

    v = rng.standard_normal(x.shape)
    np.testing.assert_allclose(directional_fd(lambda a: loss_with(x_=a), x, v), np.sum(dx * v), rtol=1e-6, atol=1e-8)
    states = flat(hx)
    for i, (s, ds) in enumerate(zip(states, flat(dstate0))):
        v = rng.standard_normal(s.shape)

        def with_state(a, i=i):
            return loss_with(hx_=pack(m, [a if j == i else states[j] for j in range(len(states))]))

        np.testing.assert_allclose(directional_fd(with_state, s, v), np.sum(ds * v), rtol=1e-6, atol=1e-8)
    for name, p in params.items():
        v = rng.standard_normal(p.shape)
        fd = directional_fd(lambda a: loss_with(params_={**params, name: a}), p, v)
        np.testing.assert_allclose(fd, np.sum(m.grads[name] * v), rtol=1e-6, atol=1e-8, err_msg=name)


# ---------------------------------------------------------------- gradients by finite differences

@pytest.mark.parametrize("mode", list(CLASSES))
def test_finite_differences_multilayer_bidirectional_lengths(mode):
    def new_layer():
        return make(mode, num_layers=2, bidirectional=True, dtype=np.float64, seed=5)

    x, hx, dy, dstate = random_problem(new_layer(), np.random.default_rng(1))
    check_gradients_fd(new_layer, x, hx, np.array([T, 2, 4]), dy, dstate)


def test_finite_differences_batch_first_no_bias():
    def new_layer():
        return make("lstm", num_layers=2, bias=False, batch_first=True, dtype=np.float64, seed=2)

    x, hx, dy, dstate = random_problem(new_layer(), np.random.default_rng(2), batch_first=True)
    check_gradients_fd(new_layer, x, hx, np.array([1, T, 3]), dy, dstate)


@pytest.mark.parametrize("mode", ["lstm", "gru_cho"])
def test_finite_differences_with_dropout_masks(mode):
    """A fresh layer with the same seed draws the same masks on its first forward, so the loss is one
    fixed function of x and the weights, and backward must apply exactly those masks."""
    def new_layer():
        return make(mode, num_layers=3, bidirectional=True, dropout=0.5, dtype=np.float64, seed=11)

    x, hx, dy, dstate = random_problem(new_layer(), np.random.default_rng(3))
    lengths = np.array([4, T, 2])
    y_train, _ = new_layer().forward(x, hx, lengths)
    y_eval, _ = new_layer().eval().forward(x, hx, lengths)
    assert not np.allclose(y_train, y_eval)  # the masks really act
    check_gradients_fd(new_layer, x, hx, lengths, dy, dstate)


# ---------------------------------------------------------------- dropout

def dropout_output(seed, dropout=0.4, training=True, x_seed=0):
    m = make("gru", num_layers=3, bidirectional=True, dropout=dropout, dtype=np.float64, seed=seed).train(training)
    x = np.random.default_rng(x_seed).standard_normal((T, B, I))
    return m(x)[0]


def test_dropout_same_seed_reproduces():
    np.testing.assert_array_equal(dropout_output(7), dropout_output(7))


def test_dropout_different_seed_differs():
    m7, m8 = (make("gru", num_layers=3, dropout=0.4, seed=s) for s in (7, 8))
    m8.load_state_dict(m7.state_dict())  # same weights: only the masks differ
    x = np.random.default_rng(0).standard_normal((T, B, I))
    assert not np.allclose(m7(x)[0], m8(x)[0])


def test_dropout_masks_advance_between_forwards():
    m = make("lstm", num_layers=2, dropout=0.5, seed=1)
    x = np.random.default_rng(0).standard_normal((T, B, I))
    assert not np.allclose(m(x)[0], m(x)[0])


def test_eval_applies_no_dropout_equals_p0():
    # The dropout generator is separate from the initialisation one: p does not change the weights.
    np.testing.assert_array_equal(dropout_output(7, training=False), dropout_output(7, dropout=0.0))


def test_dropout_mask_values_and_rate():
    m = make("rnn_tanh", hidden_size=50, num_layers=2, dropout=0.3, seed=0)
    m(np.ones((20, 10, I)))
    mask = m._saved.masks[0]  # private: the mask on layer 0's output, (T, B, D*H)
    assert m._saved.masks[1] is None  # never on the last layer's output
    assert set(np.unique(mask)) == {0.0, np.float32(1 / 0.7)}
    assert abs((mask == 0).mean() - 0.3) < 0.03  # 10000 draws: 5 standard deviations


def test_dropout_with_one_layer_warns():
    with pytest.warns(UserWarning, match="num_layers"):
        make("gru", dropout=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make("gru", num_layers=2, dropout=0.2)


# ---------------------------------------------------------------- gradient bookkeeping, modes

def test_grads_accumulate_and_zero_grad():
    m = make("lstm", num_layers=2, bidirectional=True, seed=0, dtype=np.float64)
    x, hx, dy, dstate = random_problem(m, np.random.default_rng(0))
    assert list(m.grads) == list(m.state_dict())
    assert all(not g.any() for g in m.grads.values())
    m(x, hx)
    m.backward(dy, dstate)
    once = {k: g.copy() for k, g in m.grads.items()}
    assert all(g.any() for g in once.values())
    m(x, hx)
    m.backward(dy, dstate)
    for k in once:
        np.testing.assert_allclose(m.grads[k], 2 * once[k], rtol=1e-12, err_msg=k)
    grads_before = dict(m.grads)
    m.zero_grad()
    assert all(not g.any() for g in m.grads.values())
    assert all(m.grads[k] is grads_before[k] for k in m.grads)  # cleared in place


def test_train_eval_return_self_and_set_flag():
    m = make("gru")
    assert m.training is True
    assert m.eval() is m and m.training is False
    assert m.train() is m and m.training is True
    assert m.train(False) is m and m.training is False


def test_eval_forward_equals_training_forward_and_saves_nothing():
    m = make("lstm", num_layers=2, bidirectional=True, seed=0)
    x = np.random.default_rng(0).standard_normal((T, B, I))
    y_train, (h_train, c_train) = m(x)
    y_eval, (h_eval, c_eval) = m.eval()(x)
    np.testing.assert_array_equal(y_train, y_eval)
    np.testing.assert_array_equal(c_train, c_eval)
    with pytest.raises(RuntimeError, match="eval"):
        m.backward(np.zeros_like(y_eval))


def test_second_backward_refused_then_forward_again_works():
    m = make("gru", seed=0)
    x = np.ones((T, B, I))
    y, _ = m(x)
    m.backward(np.ones_like(y))
    with pytest.raises(RuntimeError, match="twice"):
        m.backward(np.ones_like(y))
    y, _ = m(x)
    dx, dh0 = m.backward(np.ones_like(y))
    assert dx.shape == x.shape and dh0.shape == (1, B, H)


def test_bad_dy_does_not_consume_the_forward():
    m = make("gru", seed=0)
    y, _ = m(np.ones((T, B, I)))
    with pytest.raises(ValueError):
        m.backward(np.ones((T, B, H + 1)))
    dx, _ = m.backward(np.ones_like(y))
    assert dx.shape == (T, B, I)


def test_named_parameters_are_live_and_state_dict_copies():
    m = make("rnn_tanh", num_layers=2, seed=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((T, B, I))
    y0, _ = m(x)
    sd = m.state_dict()
    sd["weight_hh_l0"][...] = 0  # a copy: the layer is unchanged
    np.testing.assert_array_equal(m(x)[0], y0)
    params = dict(m.named_parameters())
    assert [id(p) for p in m.parameters()] == [id(p) for p in params.values()]
    params["weight_hh_l0"][...] = 0  # live: an optimiser's in-place update acts
    assert not np.array_equal(m(x)[0], y0)


def test_state_dict_round_trip_and_seeding():
    a = make("lstm", num_layers=2, bidirectional=True, seed=1)
    b = make("lstm", num_layers=2, bidirectional=True, seed=2)
    c = make("lstm", num_layers=2, bidirectional=True, seed=1)
    for k in a.state_dict():
        np.testing.assert_array_equal(a.state_dict()[k], c.state_dict()[k])  # same seed, same weights
        assert not np.array_equal(a.state_dict()[k], b.state_dict()[k])
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(0).standard_normal((T, B, I))
    np.testing.assert_array_equal(a(x)[0], b(x)[0])
    sd = a.state_dict()
    b.load_state_dict(sd)
    sd["bias_ih_l0"][...] = 5  # load copies: the source may change afterwards
    assert not np.any(b.state_dict()["bias_ih_l0"] == 5)


def test_init_is_uniform_from_default_rng_of_seed_in_state_dict_order():
    m = make("lstm", num_layers=2, bidirectional=True, seed=3, dtype=np.float64)
    rng, bound = np.random.default_rng(3), 1 / np.sqrt(H)
    for name, value in m.state_dict().items():
        np.testing.assert_array_equal(value, rng.uniform(-bound, bound, value.shape), err_msg=name)


def test_load_state_dict_converts_dtype():
    src = make("gru", seed=0, dtype=np.float64)
    dst = make("gru", seed=1, dtype=np.float32)
    dst.load_state_dict(src.state_dict())
    for k, v in dst.state_dict().items():
        assert v.dtype == np.float32
        np.testing.assert_array_equal(v, src.state_dict()[k].astype(np.float32))


def test_repr():
    assert repr(make("gru_cho", num_layers=2, bidirectional=True)) == (
        "GRU(3, 4, num_layers=2, bidirectional=True, dtype=float32, linear_before_reset=False)")
    assert repr(make("rnn_relu", batch_first=True, dtype=np.float64)) == (
        "RNN(3, 4, batch_first=True, dtype=float64, nonlinearity='relu')")


# ---------------------------------------------------------------- layouts, lengths, dtypes

@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_batch_first_equals_time_major(mode):
    tm = make(mode, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    bf = make(mode, num_layers=2, bidirectional=True, dtype=np.float64, seed=0, batch_first=True)
    x, hx, dy, dstate = random_problem(tm, np.random.default_rng(0))
    lengths = [3, T, 1]
    y, s = tm(x, hx, lengths)
    dx, ds = tm.backward(dy, dstate)
    y_bf, s_bf = bf(x.transpose(1, 0, 2), hx, lengths)
    dx_bf, ds_bf = bf.backward(dy.transpose(1, 0, 2), dstate)
    np.testing.assert_allclose(y_bf, y.transpose(1, 0, 2), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(dx_bf, dx.transpose(1, 0, 2), rtol=1e-13, atol=1e-14)
    for a, b in zip(flat(s) + flat(ds), flat(s_bf) + flat(ds_bf)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    for k in tm.grads:
        np.testing.assert_allclose(bf.grads[k], tm.grads[k], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("mode", ["lstm", "gru_cho", "rnn_relu"])
def test_lengths_equal_running_each_sequence_alone(mode):
    """With lengths, each sequence gives what it gives alone and truncated (both directions, 2 layers):
    the reverse direction starts at the sequence's own last step. y is zero past the length."""
    m = make(mode, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    x, hx, _, _ = random_problem(m, np.random.default_rng(0))
    lengths = np.array([2, T, 4])
    y, state = m(x, hx, lengths)
    for b, n in enumerate(lengths):
        hx_b = pack(m, [s[:, b:b + 1] for s in flat(hx)])
        y_b, state_b = m(x[:n, b:b + 1], hx_b)
        np.testing.assert_allclose(y[:n, b:b + 1], y_b, rtol=1e-13, atol=1e-14)
        assert not y[n:, b].any()
        for s, s_b in zip(flat(state), flat(state_b)):
            np.testing.assert_allclose(s[:, b:b + 1], s_b, rtol=1e-13, atol=1e-14)


def test_full_lengths_equal_no_lengths():
    m = make("gru", num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    x, hx, dy, dh = random_problem(m, np.random.default_rng(0))
    y, h = m(x, hx, np.full(B, T))
    dx, dh0 = m.backward(dy, dh)
    y2, h2 = m(x, hx)
    dx2, dh02 = m.backward(dy, dh)
    for a, b in [(y, y2), (h, h2), (dx, dx2), (dh0, dh02)]:
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("mode", ["lstm", "rnn_tanh"])
def test_unbatched_equals_batch_of_one(mode):
    m = make(mode, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    x, hx, dy, dstate = random_problem(m, np.random.default_rng(0))
    one = lambda a: a[:, 0]  # noqa: E731  (drop the batch axis of (T|L*D, B, F))
    y, state = m(one(x), pack(m, [one(s) for s in flat(hx)]), lengths=3)
    dx, dstate0 = m.backward(one(dy), pack(m, [one(s) for s in flat(dstate)]))
    yb, stateb = m(x[:, :1], pack(m, [s[:, :1] for s in flat(hx)]), lengths=[3])
    dxb, dstate0b = m.backward(dy[:, :1], pack(m, [s[:, :1] for s in flat(dstate)]))
    assert y.shape == (T, 2 * H) and dx.shape == (T, I)
    np.testing.assert_array_equal(y, yb[:, 0])
    np.testing.assert_array_equal(dx, dxb[:, 0])
    for a, b in zip(flat(state) + flat(dstate0), flat(stateb) + flat(dstate0b)):
        assert a.shape == (4, H)
        np.testing.assert_array_equal(a, b[:, 0])


def test_strided_inputs_equal_contiguous():
    m = make("lstm", num_layers=2, bidirectional=True, batch_first=True, dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    x_big = rng.standard_normal((2 * B, T, 3 * I))
    x = x_big[::2, :, ::3]  # every other batch row, every third feature
    h0 = np.asfortranarray(rng.standard_normal((4, B, H)))
    c0 = rng.standard_normal((4, H, B)).transpose(0, 2, 1)
    dy = rng.standard_normal((B, T, 2 * 2 * H))[:, :, ::2]
    assert not (x.flags.c_contiguous or h0.flags.c_contiguous or c0.flags.c_contiguous or dy.flags.c_contiguous)
    y, (h, c) = m(x, (h0, c0), lengths=np.array([4, 0, 1, 0, T])[::2])
    dx, (dh0, dc0) = m.backward(dy, (h0, c0))
    grads = {k: g.copy() for k, g in m.grads.items()}
    m.zero_grad()
    copies = [np.ascontiguousarray(a) for a in (x, h0, c0, dy)]
    y2, (h2, c2) = m(copies[0], (copies[1], copies[2]), lengths=[4, 1, T])
    dx2, (dh02, dc02) = m.backward(copies[3], (copies[1], copies[2]))
    for a, b in [(y, y2), (h, h2), (c, c2), (dx, dx2), (dh0, dh02), (dc0, dc02)]:
        np.testing.assert_array_equal(a, b)
    for k in grads:
        np.testing.assert_array_equal(grads[k], m.grads[k])


def test_integer_and_other_precision_input_converted():
    m = make("gru", seed=0, dtype=np.float32)
    x_int = np.arange(T * B * I).reshape(T, B, I) % 3 - 1
    y, h = m(x_int)
    assert y.dtype == h.dtype == np.float32
    np.testing.assert_array_equal(y, m(x_int.astype(np.float32))[0])
    x64 = np.random.default_rng(0).standard_normal((T, B, I))
    y64, h64 = m(x64, np.zeros((1, B, H)))  # float64 x and hx into a float32 layer
    assert y64.dtype == np.float32
    np.testing.assert_array_equal(y64, m(x64.astype(np.float32))[0])
    dx, dh0 = m.backward(np.ones((T, B, H)))  # float64 dy converted too
    assert dx.dtype == dh0.dtype == np.float32
    assert all(g.dtype == np.float32 for g in m.grads.values())
    y_list, _ = m(x_int.tolist())  # nested lists are array-like too
    np.testing.assert_array_equal(y_list, y)


def test_lstm_partial_state_pair():
    m = make("lstm", seed=0, dtype=np.float64)
    x, (h0, c0), dy, _ = random_problem(m, np.random.default_rng(0))
    y, _ = m(x, (h0, None))
    np.testing.assert_array_equal(y, m(x, (h0, np.zeros_like(c0)))[0])
    dx, (dh0, dc0) = m.backward(dy, (None, None))
    m(x, (h0, np.zeros_like(c0)))
    dx2, (dh02, dc02) = m.backward(dy)
    np.testing.assert_array_equal(dx, dx2)
    np.testing.assert_array_equal(dc0, dc02)


def test_default_state_is_zeros():
    m = make("rnn_tanh", num_layers=2, seed=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((T, B, I))
    np.testing.assert_array_equal(m(x)[0], m(x, np.zeros((2, B, H)))[0])


def test_torch_tensor_inputs_accepted():
    torch = pytest.importorskip("torch")
    m = make("lstm", seed=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((T, B, I))
    h0 = torch.zeros(1, B, H, dtype=torch.float64, requires_grad=True)
    y, _ = m(torch.from_numpy(x), (h0, h0), lengths=torch.tensor([T, 2, 1]))
    np.testing.assert_array_equal(y, m(x, None, [T, 2, 1])[0])


# ---------------------------------------------------------------- back-ends and threads

def kernels_backend():
    try:
        from rnnkit import kernels
    except ImportError as exc:  # the C++ extension is not built
        pytest.skip(f"rnnkit.kernels unavailable: {exc}")
    return kernels


def test_default_backend_is_kernels():
    kernels = kernels_backend()
    assert make("gru")._backend is kernels


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("mode", list(CLASSES))
def test_reference_backend_agrees_with_kernels(mode, dtype):
    kernels_backend()
    from rnnkit import reference

    layers = [make(mode, num_layers=2, bidirectional=True, dropout=0.3, dtype=dtype, seed=4) for _ in range(2)]
    layers[1]._backend = reference
    x, hx, dy, dstate = random_problem(layers[0], np.random.default_rng(0), dtype=dtype)
    results = []
    for m in layers:
        y, state = m(x, hx, [T, 1, 3])
        dx, dstate0 = m.backward(dy, dstate)
        results.append([y, *flat(state), dx, *flat(dstate0), *m.grads.values()])
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, **tol)


def test_one_and_two_threads_agree():
    if not hasattr(rnnkit, "set_num_threads"):
        pytest.skip("rnnkit.set_num_threads not available yet")
    kernels_backend()
    m = make("lstm", input_size=16, hidden_size=64, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    x, hx, dy, dstate = random_problem(m, np.random.default_rng(0))
    old = rnnkit.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            rnnkit.set_num_threads(n)
            assert rnnkit.get_num_threads() == n
            m.zero_grad()
            y, state = m(x, hx, [T, 2, 4])
            dx, dstate0 = m.backward(dy, dstate)
            results.append([y, *state, dx, *dstate0, *[g.copy() for g in m.grads.values()]])
    finally:
        rnnkit.set_num_threads(old)
    for a, b in zip(*results):  # a different split may change summation order: allow rounding
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_projection_grad_of_a_stack():
    # backward(projection_grad=True) returns the first layer's dP with dx = dP W_ih_l0 and leaves
    # weight_ih_l0's gradient alone; the other gradients are those of a plain backward.
    m = rnnkit.LSTM(3, 5, num_layers=2, batch_first=True, dtype=np.float64, seed=0)
    x = np.random.default_rng(1).standard_normal((2, 4, 3))
    y, _ = m(x)
    dx, _ = m.backward(np.ones_like(y))
    plain = {k: v.copy() for k, v in m.grads.items()}
    m.zero_grad()
    m(x)
    dp, _ = m.backward(np.ones_like(y), projection_grad=True)
    assert dp.shape == (2, 4, 20)
    np.testing.assert_allclose(dp @ m.state_dict()["weight_ih_l0"], dx, rtol=0, atol=1e-12)
    assert not m.grads["weight_ih_l0"].any()
    for k in plain:
        if k != "weight_ih_l0":
            np.testing.assert_allclose(m.grads[k], plain[k], rtol=0, atol=1e-12, err_msg=k)
    bi = rnnkit.GRU(3, 5, bidirectional=True)
    bi(x.astype(np.float32))
    with pytest.raises(ValueError, match="projection_grad is for unidirectional stacks"):
        bi.backward(np.ones((2, 4, 10), np.float32), projection_grad=True)
