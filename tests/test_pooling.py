"""Pooling over time (rnnkit.pooling on the C++ kernels, rnnkit.reference.pooling in NumPy, and the
`Pool` layer with attention pooling on rnnkit.attention's kernels).

- the kernels against the reference, forward and backward, every kind, float32 and float64, with and
  without lengths, one or two directions, sizes that run on several threads;
- both back-ends' backward (and `Pool`'s attention) against central finite differences of their own
  forward in float64, with L = sum(out * dout);
- both against the same pooling written in PyTorch, differentiated by autograd;
- masking: padding values never change the output and get exactly zero gradient;
- bad input: the same exception type and message from both back-ends.
"""
import numpy as np
import pytest
import torch

from rnnkit import _C
from rnnkit import pooling as K
from rnnkit.reference import pooling as R

BACKENDS = {"reference": R, "kernels": K}
SIZES = {"small": (5, 3, 4), "one": (1, 1, 1), "threads": (40, 37, 64)}  # (T, B, F)


def problem(T, B, F, dtype=np.float64, seed=0, ragged=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, F)).astype(dtype)
    lengths = rng.integers(1, T + 1, B) if ragged else None
    if ragged and B > 1:
        lengths[0], lengths[1] = T, 1
    return x, lengths, rng.standard_normal((B, F)).astype(dtype)


def tol(dtype):
    return 1e-12 if dtype == np.float64 else 1e-6


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", K.KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ragged", [True, False])
@pytest.mark.parametrize("two_directions", [False, True])
def test_kernels_match_reference(size, kind, dtype, ragged, two_directions):
    T, B, F = SIZES[size]
    x, lengths, dout = problem(T, B, F, dtype, ragged=ragged)
    split = F // 2 if two_directions else None
    ref, nat = R.forward(kind, x, lengths, split), K.forward(kind, x, lengths, split)
    assert nat.out.dtype == dtype and nat.out.shape == (B, F)
    np.testing.assert_allclose(nat.out, ref.out, rtol=tol(dtype), atol=tol(dtype))
    dx_ref, dx_nat = R.backward(ref.cache, dout), K.backward(nat.cache, dout)
    assert dx_nat.dtype == dtype and dx_nat.shape == x.shape
    np.testing.assert_allclose(dx_nat, dx_ref, rtol=tol(dtype), atol=tol(dtype))


def test_last_reads_each_directions_final_state():
    x, lengths, _ = problem(6, 4, 6)
    out = K.forward("last", x, lengths, split=4).out
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(out[b, :4], x[n - 1, b, :4])  # forward direction: its last valid step
        np.testing.assert_array_equal(out[b, 4:], x[0, b, 4:])  # reverse direction: it ends at step 0


def numeric_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", K.KINDS)
def test_backward_matches_finite_differences(backend, kind):
    B_ = BACKENDS[backend]
    x, lengths, dout = problem(5, 3, 4, seed=1)
    res = B_.forward(kind, x, lengths, 2)
    dx = B_.backward(res.cache, dout)
    num = numeric_grad(lambda: float((B_.forward(kind, x, lengths, 2, training=False).out * dout).sum()), x)
    np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_attention_pool_matches_finite_differences(backend):
    x, lengths, dout = problem(5, 3, 4, seed=2)
    pool = K.Pool("attention", 4, attn_size=3, dtype=np.float64, rng=3, backend=backend)
    out = pool.forward(x, lengths)
    dx = pool.backward(dout)
    loss = lambda: float((pool.forward(x, lengths, training=False) * dout).sum())  # noqa: E731
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    for name, p in pool.params.items():
        np.testing.assert_allclose(pool.grads[name], numeric_grad(loss, p), rtol=1e-6, atol=1e-8, err_msg=name)
    assert out.shape == (3, 4)


def test_attention_pool_backends_agree():
    x, lengths, dout = problem(7, 5, 6, seed=4)
    pools = [K.Pool("attention", 6, dtype=np.float64, rng=5, backend=b) for b in ("native", "reference")]
    outs = [p.forward(x, lengths) for p in pools]
    dxs = [p.backward(dout) for p in pools]
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dxs[0], dxs[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pools[0].weights, pools[1].weights, rtol=1e-12, atol=1e-12)
    for k in pools[0].grads:
        np.testing.assert_allclose(pools[0].grads[k], pools[1].grads[k], rtol=1e-12, atol=1e-12)


def torch_pool(kind, x, lengths, split, params=None):
    T, B, F = x.shape
    valid = (torch.arange(T)[:, None] < torch.as_tensor(lengths)[None, :])[:, :, None]  # (T, B, 1)
    if kind == "last":
        fwd = x[torch.as_tensor(lengths) - 1, torch.arange(B), :split]
        return torch.cat([fwd, x[0, :, split:]], dim=1)
    if kind == "mean":
        return (x * valid).sum(0) / torch.as_tensor(lengths, dtype=x.dtype)[:, None]
    if kind == "max":
        return x.masked_fill(~valid, float("-inf")).max(0).values
    u = torch.tanh(x @ params["w_key"].T + params["w_query"][:, 0])  # (T, B, A)
    e = (u @ params["v"]).masked_fill(~valid[:, :, 0], float("-inf"))  # (T, B)
    return (torch.softmax(e, 0)[:, :, None] * x).sum(0)


@pytest.mark.parametrize("kind", K.POOLS)
@pytest.mark.parametrize("backend", ["native", "reference"])
def test_pool_matches_torch(kind, backend):
    x, lengths, dout = problem(6, 4, 6, seed=6)
    pool = K.Pool(kind, 6, split=3, dtype=np.float64, rng=7, backend=backend) if kind != "attention" else \
        K.Pool(kind, 6, dtype=np.float64, rng=7, backend=backend)
    out = pool.forward(x, lengths)
    dx = pool.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in pool.params.items()}
    tout = torch_pool(kind, tx, lengths, 3, tp)
    (tout * torch.tensor(dout)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for k, v in tp.items():
        np.testing.assert_allclose(pool.grads[k], v.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("kind", K.POOLS)
@pytest.mark.parametrize("backend", ["native", "reference"])
def test_padding_never_leaks(kind, backend):
    x, lengths, dout = problem(8, 5, 3, seed=8)
    pool = K.Pool(kind, 3, dtype=np.float64, rng=9, backend=backend)
    out = pool.forward(x, lengths)
    dx = pool.backward(dout)
    pad = np.arange(8)[:, None] >= lengths[None, :]
    assert (dx[pad] == 0).all()
    y = x.copy()
    y[pad] = 1e6  # padding as large as it gets: max and attention would pick it if they could see it
    np.testing.assert_array_equal(pool.forward(y, lengths, training=False), out)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_same_errors(backend):
    B_ = BACKENDS[backend]
    x, lengths, dout = problem(4, 2, 3)
    cases = [
        (("median", x, lengths), ValueError, "kind must be one of"),
        (("mean", x.tolist(), lengths), TypeError, "x must be a numpy.ndarray"),
        (("mean", x.astype(np.int32), lengths), TypeError, "float32 or float64"),
        (("mean", x[0], lengths), ValueError, r"shape \(T, B, F\)"),
        (("mean", x, [1, 5]), ValueError, "lengths must lie in 1..T"),
        (("mean", x, [1, 2, 3]), ValueError, "lengths must have shape"),
        (("mean", x, [1.0, 2.0]), TypeError, "lengths must hold integers"),
    ]
    for args, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            B_.forward(*args)
    with pytest.raises(ValueError, match="split must be an integer in 0..F"):
        B_.forward("last", x, lengths, 4)
    res = B_.forward("max", x, lengths)
    with pytest.raises(ValueError, match=r"dout must have shape \(B, F\)"):
        B_.backward(res.cache, dout[:1])
    with pytest.raises(TypeError, match="cache must come from"):
        B_.backward(object(), dout)


def test_raw_binding_rejects_bad_index():
    x, lengths, dout = problem(4, 2, 3)
    _, index = _C.pool_forward(2, x, np.asarray(lengths, np.int64), 3)
    index[0, 0] = 99
    with pytest.raises(ValueError, match="index must lie within"):
        _C.pool_backward(2, 4, np.asarray(lengths, np.int64), index, dout)
    with pytest.raises(ValueError, match="unknown pooling kind"):
        _C.pool_forward(7, x, None, 3)


def test_pool_layer_errors():
    with pytest.raises(ValueError, match="pooling must be one of"):
        K.Pool("sum", 3)
    with pytest.raises(ValueError, match="attn_size is attention pooling's"):
        K.Pool("mean", 3, attn_size=4)
    pool = K.Pool("attention", 3)
    with pytest.raises(RuntimeError, match="needs a forward"):
        pool.backward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"x must have shape \(T, B, 3\)"):
        pool.forward(np.zeros((2, 2, 4), np.float32))
