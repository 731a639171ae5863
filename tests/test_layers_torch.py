"""rnnkit.RNN / LSTM / GRU against torch.nn.RNN / LSTM / GRU with the same weights: outputs, final
states, and every gradient (dx, dh_0, dc_0 and each parameter) under a random upstream gradient.

Variable lengths go through torch's pack_padded_sequence(enforce_sorted=False) / pad_packed_sequence;
rnnkit takes the same padded x with a ``lengths`` argument.
"""
import numpy as np
import pytest

import rnnkit

torch = pytest.importorskip("torch")

T, B, I, H = 5, 3, 3, 4

TORCH_CLASS = {"rnn_tanh": "RNN", "rnn_relu": "RNN", "lstm": "LSTM", "gru": "GRU"}

# float64 agrees to rounding. float32 differs from torch by the summation order of the GEMMs and the
# differences compound through the layers; at these sizes (T=5, H=4, <= 3 layers, activations O(1))
# they stay below the 1e-5 / 1e-6 even for 3 bidirectional layers, so no looser bound is used.
TOL = {np.float64: dict(rtol=1e-9, atol=1e-10), np.float32: dict(rtol=1e-5, atol=1e-6)}

# (num_layers, bidirectional, batch_first, with lengths, hx given, bias)
CONFIGS = [
    (1, False, False, False, False, True),
    (2, True, True, True, True, True),
    (3, True, False, True, True, False),
    (2, False, True, False, True, True),
    (1, True, False, True, False, True),
    (3, False, False, True, True, True),
]


def make_pair(mode, dtype, num_layers, bidirectional, batch_first, bias, seed=0):
    """An rnnkit layer and a torch module of the same kind holding the same weights."""
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    tkw = dict(kw)
    if mode.startswith("rnn_"):
        kw["nonlinearity"] = tkw["nonlinearity"] = mode[4:]
    ours = getattr(rnnkit, TORCH_CLASS[mode])(I, H, dtype=dtype, seed=seed, **kw)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    theirs = getattr(torch.nn, TORCH_CLASS[mode])(I, H, dtype=tdtype, **tkw)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    return ours, theirs


def torch_run(module, x, h0, c0, lengths, batch_first):
    """torch forward with packing when lengths are given; y padded back to T steps."""
    state = (h0, c0) if c0 is not None else h0
    if lengths is None:
        return module(x, state)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        x, torch.as_tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    y, hn = module(packed, state)
    y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=batch_first, total_length=T)
    return y, hn


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("mode", list(TORCH_CLASS))
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "L{}-{}-{}-{}-{}-{}".format(
    c[0], "bi" if c[1] else "uni", "bf" if c[2] else "tm", "len" if c[3] else "full",
    "hx" if c[4] else "nohx", "bias" if c[5] else "nobias"))
def test_matches_torch(mode, dtype, config):
    num_layers, bidirectional, batch_first, with_lengths, give_hx, bias = config
    lstm = mode == "lstm"
    ours, theirs = make_pair(mode, dtype, num_layers, bidirectional, batch_first, bias)
    rng = np.random.default_rng(1)
    LD, DH = num_layers * (2 if bidirectional else 1), (2 if bidirectional else 1) * H
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(dtype)
    h0 = rng.standard_normal((LD, B, H)).astype(dtype) if give_hx else np.zeros((LD, B, H), dtype)
    c0 = rng.standard_normal((LD, B, H)).astype(dtype) if give_hx else np.zeros((LD, B, H), dtype)
    lengths = np.array([T, 2, 4]) if with_lengths else None
    dy = rng.standard_normal(x.shape[:2] + (DH,)).astype(dtype)
    dh_n, dc_n = rng.standard_normal((2, LD, B, H)).astype(dtype)

    hx = ((h0, c0) if lstm else h0) if give_hx else None
    y, state = ours.forward(x, hx, lengths=lengths)
    dx, dstate = ours.backward(dy, (dh_n, dc_n) if lstm else dh_n)
    h_n, c_n = state if lstm else (state, None)
    dh0, dc0 = dstate if lstm else (dstate, None)

    xt, h0t, c0t = (torch.tensor(a, requires_grad=True) for a in (x, h0, c0))
    yt, statet = torch_run(theirs, xt, h0t, c0t if lstm else None, lengths, batch_first)
    h_nt, c_nt = statet if lstm else (statet, None)
    loss = (yt * torch.from_numpy(dy)).sum() + (h_nt * torch.from_numpy(dh_n)).sum()
    if lstm:
        loss = loss + (c_nt * torch.from_numpy(dc_n)).sum()
    loss.backward()

    tol = TOL[dtype]
    assert y.dtype == dtype and y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(h_n, h_nt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(dh0, h0t.grad.numpy(), **tol)
    if lstm:
        np.testing.assert_allclose(c_n, c_nt.detach().numpy(), **tol)
        np.testing.assert_allclose(dc0, c0t.grad.numpy(), **tol)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours.grads[name], p.grad.numpy(), err_msg=name, **tol)
    if with_lengths:  # rnnkit's y is exactly zero past each length, whatever torch's padding is
        y_tm = y.transpose(1, 0, 2) if batch_first else y
        for b, n in enumerate(lengths):
            assert not y_tm[n:, b].any()


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_unbatched_matches_torch(cls):
    ours = getattr(rnnkit, cls)(I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=3)
    theirs = getattr(torch.nn, cls)(I, H, num_layers=2, bidirectional=True, dtype=torch.float64)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    rng = np.random.default_rng(4)
    x = rng.standard_normal((T, I))
    h0 = rng.standard_normal((4, H))
    hx = (h0, h0 * 0.5) if cls == "LSTM" else h0
    y, state = ours(x, hx)
    xt = torch.tensor(x, requires_grad=True)
    yt, statet = theirs(xt, tuple(torch.from_numpy(a) for a in hx) if cls == "LSTM" else torch.from_numpy(hx))
    dy = rng.standard_normal(y.shape)
    (yt * torch.from_numpy(dy)).sum().backward()
    dx, _ = ours.backward(dy)
    assert y.shape == tuple(yt.shape) == (T, 2 * H)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-9, atol=1e-10)
    flat = state if cls == "LSTM" else (state,)
    flat_t = statet if cls == "LSTM" else (statet,)
    for a, b in zip(flat, flat_t):
        assert a.shape == tuple(b.shape) == (4, H)
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-10)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours.grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("bias", [True, False])
def test_state_dict_keys_shapes_order_equal_torch(cls, bias):
    ours = getattr(rnnkit, cls)(I, H, num_layers=3, bidirectional=True, bias=bias, seed=0)
    theirs = getattr(torch.nn, cls)(I, H, num_layers=3, bidirectional=True, bias=bias)
    sd, tsd = ours.state_dict(), theirs.state_dict()
    assert list(sd) == list(tsd)
    assert [v.shape for v in sd.values()] == [tuple(v.shape) for v in tsd.values()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.grads) == list(tsd)


def test_torch_state_dict_loads_and_reproduces_outputs():
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True)  # float32, torch's own init
    ours = rnnkit.LSTM(I, H, num_layers=2, bidirectional=True, seed=123)
    ours.load_state_dict(theirs.state_dict())  # torch tensors straight in, no .numpy() by the caller
    for k, v in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[k], v.numpy())
    x = np.random.default_rng(0).standard_normal((T, B, I)).astype(np.float32)
    y, (h, c) = ours.eval()(x)
    with torch.no_grad():
        yt, (ht, ct) = theirs(torch.from_numpy(x))
    np.testing.assert_allclose(y, yt.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c, ct.numpy(), rtol=1e-5, atol=1e-6)


def test_init_distribution_like_torch():
    """U(-1/sqrt(H), 1/sqrt(H)) for every parameter: bounds hold and the spread fills them."""
    m = rnnkit.GRU(8, 16, num_layers=2, seed=0)
    bound = 1 / np.sqrt(16)
    values = np.concatenate([v.ravel() for v in m.state_dict().values()])
    assert np.abs(values).max() <= bound
    assert values.min() < -0.9 * bound and values.max() > 0.9 * bound
    assert abs(values.mean()) < 0.05 * bound
