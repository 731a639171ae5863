"""rnnkit.torch: drop-in torch.nn.RNN/LSTM/GRU on rnnkit's kernels.

Values and gradients (input, initial states, every parameter) against torch.nn with the same weights:
padded, packed, batch_first, bidirectional, stacks, unbatched, dropout (eval and training with the same
torch seed); gradcheck in float64; a small training loop whose losses match torch.nn's step by step;
state_dict both ways and torch.save; inference under no_grad; error cases."""
import io
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnkit.torch as rt  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64
CELLS = {"rnn_tanh": ("RNN", {}), "rnn_relu": ("RNN", {"nonlinearity": "relu"}), "lstm": ("LSTM", {}),
         "gru": ("GRU", {})}


def pair(cell, *args, dtype=F64, seed=0, **kwargs):
    """(torch.nn module, rnnkit.torch module) with the same weights."""
    name, extra = CELLS[cell]
    torch.manual_seed(seed)
    ref = getattr(torch.nn, name)(*args, dtype=dtype, **extra, **kwargs)
    ours = getattr(rt, name)(*args, dtype=dtype, **extra, **kwargs)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def flat(state):
    return list(state) if isinstance(state, tuple) else [state]


def run(module, x, hx, upstream_seed=1, leaves=None):
    """Outputs and the gradients of a random linear function of them w.r.t. x, hx (or ``leaves``) and
    the parameters."""
    module.zero_grad()
    leaves = [t for t in leaves or [x, *flat(hx)] if t is not None]
    for t in leaves:
        t.grad = None
    out, state = module(x, hx)
    y = out.data if isinstance(out, torch.nn.utils.rnn.PackedSequence) else out
    outs = [y, *flat(state)]
    g = torch.Generator().manual_seed(upstream_seed)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outs)
    loss.backward()
    grads = [t.grad.clone() for t in leaves] + [p.grad.clone() for p in module.parameters()]
    return [o.detach().clone() for o in outs], grads


def assert_close(a, b, tol):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.shape == v.shape and u.dtype == v.dtype
        torch.testing.assert_close(u, v, atol=tol, rtol=tol)


def initial_state(cell, LD, B, H, dtype=F64, batched=True):
    shape = (LD, B, H) if batched else (LD, H)
    h = torch.randn(shape, dtype=dtype, requires_grad=True)
    if cell == "lstm":
        return h, torch.randn(shape, dtype=dtype, requires_grad=True)
    return h


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("layers,bidirectional,batch_first", [(1, False, False), (2, True, False),
                                                               (2, False, True), (3, True, True)])
def test_parity_padded(cell, layers, bidirectional, batch_first):
    T, B, I, H = 5, 3, 4, 6
    ref, ours = pair(cell, I, H, layers, bidirectional=bidirectional, batch_first=batch_first)
    x = torch.randn((B, T, I) if batch_first else (T, B, I), dtype=F64, requires_grad=True)
    hx = initial_state(cell, layers * (2 if bidirectional else 1), B, H)
    a, b = run(ref, x, hx), run(ours, x, hx)
    assert_close(a[0], b[0], 1e-12)
    assert_close(a[1], b[1], 1e-12)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_parity_packed(cell, enforce_sorted):
    T, I, H = 6, 3, 4
    lengths = torch.tensor([6, 5, 3, 3, 1] if enforce_sorted else [3, 6, 1, 5, 3])
    ref, ours = pair(cell, I, H, 2, bidirectional=True)
    x = torch.randn(T, 5, I, dtype=F64, requires_grad=True)
    hx = initial_state(cell, 4, 5, H)
    results = []
    for m in (ref, ours):
        packed = pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
        out, _ = m(packed, hx)
        assert isinstance(out, torch.nn.utils.rnn.PackedSequence)
        assert torch.equal(out.batch_sizes, packed.batch_sizes)
        for name in ("sorted_indices", "unsorted_indices"):
            assert (getattr(out, name) is None) == (getattr(packed, name) is None)
            if getattr(out, name) is not None:
                assert torch.equal(getattr(out, name), getattr(packed, name))
        results.append(run(m, pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted), hx,
                           leaves=[x, *flat(hx)]))
    assert_close(results[0][0], results[1][0], 1e-12)
    assert_close(results[0][1], results[1][1], 1e-12)
    out, _ = ours(pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted))
    padded, got_lengths = pad_packed_sequence(out)
    assert torch.equal(got_lengths, lengths) and padded.shape == (T, 5, 2 * H)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_parity_unbatched_and_default_state(cell):
    ref, ours = pair(cell, 3, 4, 2, bidirectional=True)
    x = torch.randn(5, 3, dtype=F64, requires_grad=True)
    hx = initial_state(cell, 4, None, 4, batched=False)
    a, b = run(ref, x, hx), run(ours, x, hx)
    assert_close(a[0], b[0], 1e-12)
    assert_close(a[1], b[1], 1e-12)
    a, b = run(ref, x, None), run(ours, x, None)
    assert_close(a[0], b[0], 1e-12)
    assert b[0][0].shape == (5, 8)


def test_parity_float32():
    ref, ours = pair("lstm", 8, 16, 2, dtype=torch.float32, batch_first=True)
    x = torch.randn(4, 20, 8, requires_grad=True)
    a, b = run(ref, x, None), run(ours, x, None)
    assert_close(a[0], b[0], 2e-5)
    assert_close(a[1], b[1], 2e-4)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_dropout_eval_and_training_with_the_same_seed(cell):
    ref, ours = pair(cell, 3, 5, 3, dropout=0.4, bidirectional=True)
    x = torch.randn(6, 2, 3, dtype=F64, requires_grad=True)
    outs = []
    for m in (ref, ours):
        torch.manual_seed(7)  # the dropout masks are drawn from torch's generator in the same order
        outs.append(run(m, x, None))
    assert_close(outs[0][0], outs[1][0], 1e-12)
    assert_close(outs[0][1], outs[1][1], 1e-12)
    torch.manual_seed(8)
    other, _ = run(ours, x, None)
    assert not torch.allclose(other[0], outs[1][0][0])  # the masks are live in training mode
    ref.eval(), ours.eval()
    a, b = run(ref, x, None), run(ours, x, None)
    assert_close(a[0], b[0], 1e-12)
    assert_close(a[1], b[1], 1e-12)
    assert_close(run(ours, x, None)[0], b[0], 0)  # eval: deterministic


@pytest.mark.parametrize("name,kw", [("GRU", {}), ("GRU", {"linear_before_reset": False}), ("LSTM", {}),
                                     ("RNN", {"nonlinearity": "tanh"}), ("RNN", {"nonlinearity": "relu"})])
def test_gradcheck_float64(name, kw):
    torch.manual_seed(0)
    m = getattr(rt, name)(3, 4, 2, bidirectional=True, dtype=F64, **kw)
    names = [n for n, _ in m.named_parameters()]
    x = torch.randn(5, 2, 3, dtype=F64, requires_grad=True)
    h0 = torch.randn(4, 2, 4, dtype=F64, requires_grad=True)
    c0 = torch.randn(4, 2, 4, dtype=F64, requires_grad=True)
    lengths = torch.tensor([5, 3])

    def f(x, h0, c0, *params):
        hx = (h0, c0) if name == "LSTM" else h0
        out, state = torch.func.functional_call(m, dict(zip(names, params)),
                                                (pack_padded_sequence(x, lengths), hx))
        return (out.data, *flat(state))

    params = [p.detach().clone().requires_grad_(True) for p in m.parameters()]
    assert torch.autograd.gradcheck(f, (x, h0, c0, *params))


def test_retained_graph_backward_twice_and_autograd_grad():
    ref, ours = pair("gru", 3, 4, 2)
    x = torch.randn(4, 2, 3, dtype=F64, requires_grad=True)
    y, h = ours(x)
    loss = y.pow(2).sum() + h.sum()
    g1 = torch.autograd.grad(loss, [x, ours.weight_hh_l0], retain_graph=True)
    g2 = torch.autograd.grad(loss, [x, ours.weight_hh_l0])  # the forward is recomputed for the second
    y_ref, h_ref = ref(x)
    g_ref = torch.autograd.grad(y_ref.pow(2).sum() + h_ref.sum(), [x, ref.weight_hh_l0])
    for a, b, c in zip(g1, g2, g_ref):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
        torch.testing.assert_close(a, c, atol=1e-12, rtol=1e-12)


def test_in_place_change_before_backward_is_refused():
    m = rt.LSTM(3, 4, dtype=F64)
    y, _ = m(torch.randn(4, 2, 3, dtype=F64))
    with torch.no_grad():
        m.weight_hh_l0.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_no_grad_runs_inference_and_equals_training_values():
    m = rt.GRU(3, 5, 2, bidirectional=True, dtype=F64)
    x = torch.randn(4, 2, 3, dtype=F64)
    y_train, h_train = m(x)
    assert y_train.requires_grad and y_train.grad_fn is not None
    with torch.no_grad():
        y, h = m(x)
    assert not y.requires_grad and y.grad_fn is None
    with torch.inference_mode():
        y2, _ = m.eval()(x)
    torch.testing.assert_close(y, y_train.detach(), atol=0, rtol=0)
    torch.testing.assert_close(y2, y, atol=0, rtol=0)
    for p in m.parameters():
        p.requires_grad_(False)
    y3, _ = m(x)  # nothing requires grad: inference mode, no graph
    assert y3.grad_fn is None


def test_training_loop_matches_torch_nn_step_by_step():
    """Embedding -> 2-layer LSTM -> Linear, Adam, clip_grad_norm_: the same losses, step by step."""

    def model(rnn_cls):
        torch.manual_seed(0)
        return torch.nn.ModuleDict({"embed": torch.nn.Embedding(11, 6, dtype=F64),
                                    "rnn": rnn_cls(6, 8, 2, batch_first=True, dtype=F64),
                                    "head": torch.nn.Linear(8, 11, dtype=F64)})

    data = torch.randint(0, 11, (2, 4, 9), generator=torch.Generator().manual_seed(3))
    losses = []
    for rnn_cls in (torch.nn.LSTM, rt.LSTM):
        m = model(rnn_cls)
        opt = torch.optim.Adam(m.parameters(), lr=0.02)
        run_losses = []
        for step in range(8):
            batch = data[step % 2]
            x, target = batch[:, :-1], batch[:, 1:]
            opt.zero_grad()
            y, _ = m["rnn"](m["embed"](x))
            loss = torch.nn.functional.cross_entropy(m["head"](y).reshape(-1, 11), target.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 0.5)
            opt.step()
            run_losses.append(loss.item())
        losses.append(run_losses)
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-10)
    assert losses[1][-1] < losses[1][0]


def test_state_dict_both_ways_and_torch_save():
    torch.manual_seed(0)
    ours = rt.LSTM(3, 4, 2, bidirectional=True)
    torch.manual_seed(0)
    ref = torch.nn.LSTM(3, 4, 2, bidirectional=True)
    assert list(ours.state_dict()) == list(ref.state_dict())
    for k, v in ours.state_dict().items():  # same constructor, same initial weights for one seed
        assert torch.equal(v, ref.state_dict()[k])
    with torch.no_grad():
        for p in ours.parameters():
            p.mul_(2)
    ref.load_state_dict(ours.state_dict())
    buf = io.BytesIO()
    torch.save(ref.state_dict(), buf)
    buf.seek(0)
    back = rt.LSTM(3, 4, 2, bidirectional=True)
    back.load_state_dict(torch.load(buf))
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        torch.testing.assert_close(back(x)[0], ref(x)[0], atol=1e-6, rtol=1e-5)
    assert isinstance(back, torch.nn.LSTM) and repr(back).startswith("LSTM(3, 4")


def test_errors_name_what_is_supported():
    m = rt.GRU(3, 4)
    with pytest.raises(ValueError, match="CPU tensors only.*meta"):
        m(torch.empty(5, 2, 3, device="meta"))
    with pytest.raises(TypeError, match="float32 and torch.float64.*torch.float16"):
        m(torch.randn(5, 2, 3).half())
    with pytest.raises(TypeError, match="float32 and torch.float64.*torch.int64"):
        m(torch.ones(5, 2, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.float64 but the parameters have torch.float32"):
        m(torch.randn(5, 2, 3, dtype=F64))
    with pytest.raises(TypeError, match="float32 and torch.float64.*bfloat16"):
        rt.GRU(3, 4).to(torch.bfloat16)(torch.randn(5, 2, 3, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match=r"hx must have shape .* = \(1, 2, 4\), got \(1, 3, 4\)"):
        m(torch.randn(5, 2, 3), torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match="input_size = 3"):
        m(torch.randn(5, 2, 7))
    with pytest.raises(ValueError, match="3-D .* or 2-D"):
        m(torch.randn(3))
    with pytest.raises(TypeError, match="pair"):
        rt.LSTM(3, 4)(torch.randn(5, 2, 3), torch.zeros(1, 2, 4))
    with pytest.raises(TypeError, match="hx must be a tensor"):
        m(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match="proj_size"):
        rt.LSTM(3, 4, proj_size=2)
    with pytest.raises(RuntimeError, match="only Tensors of floating point"):
        torch.ones(3, dtype=torch.int64).requires_grad_(True)  # torch itself refuses int tensors with grad


def test_importing_rnnkit_does_not_import_torch():
    code = "import sys, rnnkit, rnnkit.kernels, rnnkit.layers; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_half_recurrent_weights_in_inference_calls_only():
    from rnnkit import kernels

    torch.manual_seed(0)
    m = rt.LSTM(12, 40)
    x = torch.randn(9, 1, 12)
    with torch.no_grad():
        y32, _ = m(x)
        m.recurrent_weights = "float16"
        y16, (h16, c16) = m(x)
    p = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    want = kernels.forward(
        "lstm", x.numpy()[:, :, :], np.zeros((1, 40), np.float32), p["weight_ih_l0"], p["weight_hh_l0"],
        p["bias_ih_l0"], p["bias_hh_l0"], c0=np.zeros((1, 40), np.float32), training=False,
        recurrent_weights="float16",
    )
    np.testing.assert_array_equal(y16.numpy(), want.y)
    assert np.abs(y16.numpy() - y32.numpy()).max() > 0
    # A call that records autograd reads float32 whatever the attribute says.
    y_grad, _ = m(x.requires_grad_())
    np.testing.assert_allclose(y_grad.detach().numpy(), y32.numpy(), atol=1e-6, rtol=0)
    m.recurrent_weights = "int4"
    with torch.no_grad(), pytest.raises(ValueError, match="recurrent_weights must be one of"):
        m(x)
