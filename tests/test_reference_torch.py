"""The reference against PyTorch (float64): forward outputs and every gradient.

rnn_tanh, rnn_relu, lstm and gru run as one bidirectional torch layer (packed when lengths vary); the
reference runs forward for the plain weights and reverse=True for the ``_reverse`` weights.
gru_cho has no torch module: it is checked against the lecture's equations written out as a torch
loop below, which autograd differentiates.
"""
import numpy as np
import pytest

from rnnkit.reference import backward, forward

torch = pytest.importorskip("torch")
pack_padded_sequence = torch.nn.utils.rnn.pack_padded_sequence
pad_packed_sequence = torch.nn.utils.rnn.pad_packed_sequence

T, B, I, H = 6, 4, 3, 5
LENGTHS = [4, 6, 1, 3]  # unsorted, includes 1 and T

TORCH_LAYERS = {
    "rnn_tanh": lambda bias: torch.nn.RNN(I, H, nonlinearity="tanh", bias=bias, bidirectional=True),
    "rnn_relu": lambda bias: torch.nn.RNN(I, H, nonlinearity="relu", bias=bias, bidirectional=True),
    "lstm": lambda bias: torch.nn.LSTM(I, H, bias=bias, bidirectional=True),
    "gru": lambda bias: torch.nn.GRU(I, H, bias=bias, bidirectional=True),
}


def assert_close(ours, theirs, name):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert ours.shape == theirs.shape, f"{name}: shape {ours.shape} vs {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12, err_msg=name)


def run_torch_layer(layer, x, h0, c0, lengths):
    """Torch's y, h_n, c_n for a bidirectional layer; packed when lengths are given."""
    state = (h0, c0) if c0 is not None else h0
    if lengths is None:
        y, state = layer(x, state)
    else:
        packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
        packed_y, state = layer(packed, state)
        y, _ = pad_packed_sequence(packed_y, total_length=T)
    h_n, c_n = state if c0 is not None else (state, None)
    return y, h_n, c_n


@pytest.mark.parametrize("use_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("mode", sorted(TORCH_LAYERS))
def test_bidirectional_layer_matches_torch(mode, bias, use_lengths):
    torch.manual_seed(0)
    layer = TORCH_LAYERS[mode](bias).double()
    lengths = LENGTHS if use_lengths else None
    is_lstm = mode == "lstm"
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, B, H, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, B, H, dtype=torch.float64, requires_grad=True) if is_lstm else None
    dy = torch.randn(T, B, 2 * H, dtype=torch.float64)
    dh_n = torch.randn(2, B, H, dtype=torch.float64)
    dc_n = torch.randn(2, B, H, dtype=torch.float64) if is_lstm else None

    y, h_n, c_n = run_torch_layer(layer, x, h0, c0, lengths)
    loss = (y * dy).sum() + (h_n * dh_n).sum() + ((c_n * dc_n).sum() if is_lstm else 0)
    loss.backward()

    dx_total = np.zeros((T, B, I))
    for d, suffix in enumerate(["", "_reverse"]):
        params = {name: getattr(layer, f"{name}_l0{suffix}") for name in
                  (["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else []))}
        arrays = {name: p.detach().numpy() for name, p in params.items()}
        out = forward(mode, x.detach().numpy(), h0[d].detach().numpy(), arrays["weight_ih"],
                      arrays["weight_hh"], arrays.get("bias_ih"), arrays.get("bias_hh"),
                      c0=c0[d].detach().numpy() if is_lstm else None,
                      lengths=np.array(lengths) if use_lengths else None, reverse=bool(d))
        assert_close(out.y, y[:, :, d * H:(d + 1) * H], f"y direction {d}")
        assert_close(out.h_n, h_n[d], f"h_n direction {d}")
        if is_lstm:
            assert_close(out.c_n, c_n[d], f"c_n direction {d}")
        else:
            assert out.c_n is None

        grads = backward(out.workspace, dy[:, :, d * H:(d + 1) * H].numpy(), dh_n[d].numpy(),
                         dc_n[d].numpy() if is_lstm else None)
        dx_total += grads.dx
        assert_close(grads.dh0, h0.grad[d], f"dh0 direction {d}")
        if is_lstm:
            assert_close(grads.dc0, c0.grad[d], f"dc0 direction {d}")
        assert_close(grads.dw_ih, params["weight_ih"].grad, f"dw_ih direction {d}")
        assert_close(grads.dw_hh, params["weight_hh"].grad, f"dw_hh direction {d}")
        if bias:
            assert_close(grads.db_ih, params["bias_ih"].grad, f"db_ih direction {d}")
            assert_close(grads.db_hh, params["bias_hh"].grad, f"db_hh direction {d}")
        else:
            assert grads.db_ih is None and grads.db_hh is None
    assert_close(dx_total, x.grad, "dx (sum of both directions)")


def gru_cho_lecture_loop(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse):
    """The lecture's GRU, written out: reset applied to h before the hidden product.

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr), z_t likewise,
    n_t = tanh(W_in x_t + b_in + W_hn (r_t * h_{t-1}) + b_hn), h_t = (1 - z_t) * n_t + z_t * h_{t-1};
    a row is updated only at t < its length, its output is zero elsewhere.
    """
    W_ir, W_iz, W_in = w_ih.chunk(3)
    W_hr, W_hz, W_hn = w_hh.chunk(3)
    b_ir, b_iz, b_in = b_ih.chunk(3)
    b_hr, b_hz, b_hn = b_hh.chunk(3)
    h, ys = h0, [None] * T
    for t in (reversed(range(T)) if reverse else range(T)):
        x_t = x[t]
        r = torch.sigmoid(x_t @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
        z = torch.sigmoid(x_t @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
        n = torch.tanh(x_t @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
        h_new = (1 - z) * n + z * h
        live = (t < lengths)[:, None]
        h = torch.where(live, h_new, h)
        ys[t] = torch.where(live, h_new, torch.zeros_like(h_new))
    return torch.stack(ys), h


@pytest.mark.parametrize("use_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_gru_cho_matches_lecture_equations(reverse, use_lengths):
    torch.manual_seed(1)
    lengths = torch.tensor(LENGTHS if use_lengths else [T] * B)

    def leaf(*shape):
        return (torch.randn(*shape, dtype=torch.float64) * 0.5).requires_grad_()

    x, h0 = leaf(T, B, I), leaf(B, H)
    w_ih, w_hh, b_ih, b_hh = leaf(3 * H, I), leaf(3 * H, H), leaf(3 * H), leaf(3 * H)
    dy, dh_n = torch.randn(T, B, H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)

    y, h_n = gru_cho_lecture_loop(x, h0, w_ih, w_hh, b_ih, b_hh, lengths, reverse)
    ((y * dy).sum() + (h_n * dh_n).sum()).backward()

    out = forward("gru_cho", *(a.detach().numpy() for a in (x, h0, w_ih, w_hh, b_ih, b_hh)),
                  lengths=lengths.numpy() if use_lengths else None, reverse=reverse)
    assert_close(out.y, y, "y")
    assert_close(out.h_n, h_n, "h_n")
    grads = backward(out.workspace, dy.numpy(), dh_n.numpy())
    for name, leaf_tensor in [("dx", x), ("dh0", h0), ("dw_ih", w_ih), ("dw_hh", w_hh),
                              ("db_ih", b_ih), ("db_hh", b_hh)]:
        assert_close(getattr(grads, name), leaf_tensor.grad, name)
    assert grads.dc0 is None


def test_gru_cho_differs_from_torch_gru():
    # Guards against the two GRU forms silently computing the same thing.
    rng = np.random.default_rng(2)
    args = (rng.standard_normal((T, B, I)), rng.standard_normal((B, H)),
            rng.standard_normal((3 * H, I)), rng.standard_normal((3 * H, H)),
            rng.standard_normal(3 * H), rng.standard_normal(3 * H))
    y_gru = forward("gru", *args, training=False).y
    y_cho = forward("gru_cho", *args, training=False).y
    assert np.max(np.abs(y_gru - y_cho)) > 1e-3
