"""Attention (rnnkit.attention on the C++ kernels, rnnkit.reference.attention in NumPy).

- the kernels against the reference, forward and backward, every kind, with and without a mask, odd
  sizes (B, T, N = 1) and sizes large enough to run on several threads with row ranges that cut
  through batch elements;
- both back-ends' backward against central finite differences of their own forward (float64) with
  L = sum(context * dcontext) + sum(weights * dweights) for random dcontext and dweights;
- both against the same equations written in PyTorch, differentiated by autograd;
- masking: exact zero weights, exact zero gradients into masked keys, independence from padding;
- bad input: the same exception type and message from both back-ends, and straight into rnnkit._C an
  exception, never a crash.
"""
import re

import numpy as np
import pytest

from rnnkit import _C
from rnnkit import attention as K
from rnnkit.reference import attention as R

BACKENDS = {"reference": R, "kernels": K}
KINDS = R.KINDS

# (B, T, N, Hq, Hk, A). Dot uses Hq = Hk (it needs them equal). "threads" is big enough to run on
# several threads (if there are), and B*T = 33 and B*N = 63 rows split mid-way through a batch element.
SIZES = {
    "small": (2, 3, 4, 3, 4, 5),
    "one": (1, 1, 1, 1, 1, 1),
    "T1": (3, 1, 5, 4, 2, 3),
    "N1": (2, 4, 1, 3, 5, 2),
    "threads": (3, 11, 21, 33, 31, 17),
}


def make_problem(kind, B, T, N, Hq, Hk, A, dtype=np.float64, seed=0, masked=False):
    rng = np.random.default_rng(seed)
    if kind == "dot":
        Hq = Hk
    params = R.init_params(kind, Hq, Hk, A if kind == "additive" else None, dtype=np.float64, rng=rng)
    # Larger than init so the scores are not all near zero and the softmax is far from uniform.
    params = {name: (p * 2).astype(dtype) for name, p in params.items()}
    queries = rng.standard_normal((B, T, Hq)).astype(dtype)
    keys = rng.standard_normal((B, N, Hk)).astype(dtype)
    mask = None
    if masked:
        mask = rng.random((B, N)) < 0.6
        mask[:, 0] = True
        if B > 1 and N > 1:
            mask[1, 1:] = False  # one source of length 1
    dcontext = rng.standard_normal((B, T, Hk)).astype(dtype)
    dweights = rng.standard_normal((B, T, N)).astype(dtype)
    return queries, keys, params, mask, dcontext, dweights


def assert_close(actual, expected, dtype, what):
    assert actual.dtype == expected.dtype == dtype, what
    assert actual.shape == expected.shape, what
    tol = 1e-10 if dtype == np.float64 else 1e-5
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, err_msg=what)


# ---------------------------------------------------------------------------------------------------
# Kernels against the reference

@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("kind", KINDS)
def test_kernels_match_reference(kind, size, dtype, masked):
    q, k, p, mask, dc, dw = make_problem(kind, *SIZES[size], dtype=dtype, masked=masked)
    ref = R.forward(kind, q, k, p, mask)
    ker = K.forward(kind, q, k, p, mask)
    assert_close(ker.context, ref.context, dtype, "context")
    assert_close(ker.weights, ref.weights, dtype, "weights")
    for dweights in (dw, None):
        rq, rk, rp = R.backward(ref.cache, dc, dweights)
        kq, kk, kp = K.backward(ker.cache, dc, dweights)
        assert_close(kq, rq, dtype, "dqueries")
        assert_close(kk, rk, dtype, "dkeys")
        assert set(kp) == set(rp) == set(p)
        for name in p:
            assert_close(kp[name], rp[name], dtype, f"d{name}")


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("kind", KINDS)
def test_inference_forward_and_reused_cache(backend, kind):
    m = BACKENDS[backend]
    q, k, p, mask, dc, dw = make_problem(kind, *SIZES["small"], masked=True)
    train = m.forward(kind, q, k, p, mask)
    infer = m.forward(kind, q, k, p, mask, training=False)
    assert infer.cache is None
    np.testing.assert_array_equal(infer.context, train.context)
    np.testing.assert_array_equal(infer.weights, train.weights)
    with pytest.raises(RuntimeError, match="training=False"):
        m.backward(infer.cache, dc, dw)
    # A cache serves several backwards, and scribbling on the returned weights does not corrupt it.
    first = m.backward(train.cache, dc, dw)
    train.weights[...] = 7.0
    second = m.backward(train.cache, dc, dw)
    for a, b in zip(first[:2], second[:2]):
        np.testing.assert_array_equal(a, b)
    for name in p:
        np.testing.assert_array_equal(first[2][name], second[2][name])


def test_non_contiguous_inputs_are_accepted():
    q, k, p, mask, dc, dw = make_problem("general", *SIZES["small"], masked=True)
    kt = np.ascontiguousarray(k.transpose(0, 2, 1)).transpose(0, 2, 1)
    wide = np.zeros(dc.shape[:2] + (2 * dc.shape[2],))
    wide[:, :, ::2] = dc
    views = {"queries": np.asfortranarray(q), "keys": kt, "weight": np.asfortranarray(p["weight"]),
             "mask": np.asfortranarray(mask), "dcontext": wide[:, :, ::2]}
    assert not any(v.flags.c_contiguous for v in views.values())
    expected = R.forward("general", q, k, p, mask)
    expected_grads = R.backward(expected.cache, dc, dw)
    for m in BACKENDS.values():
        got = m.forward("general", views["queries"], views["keys"], {"weight": views["weight"]}, views["mask"])
        np.testing.assert_allclose(got.context, expected.context, rtol=1e-12, atol=1e-12)
        grads = m.backward(got.cache, views["dcontext"], dw)
        for a, b in zip(grads[:2], expected_grads[:2]):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grads[2]["weight"], expected_grads[2]["weight"], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------------
# Finite differences (float64) of each back-end's own forward

EPS = 1e-6


def fd_loss(m, kind, inputs, mask, dc, dw):
    context, weights, _ = m.forward(kind, inputs["queries"], inputs["keys"], inputs["params"], mask, training=False)
    return np.sum(context * dc) + np.sum(weights * dw)


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("kind", KINDS)
def test_gradients_match_finite_differences(kind, backend, masked):
    m = BACKENDS[backend]
    q, k, p, mask, dc, dw = make_problem(kind, *SIZES["small"], masked=masked, seed=3)
    inputs = {"queries": q, "keys": k, "params": p}
    _, _, cache = m.forward(kind, q, k, p, mask)
    dq, dk, dp = m.backward(cache, dc, dw)
    analytic = {"queries": dq, "keys": dk, **{f"params.{n}": dp[n] for n in p}}
    arrays = {"queries": q, "keys": k, **{f"params.{n}": p[n] for n in p}}
    assert set(analytic) == set(arrays)
    for name, a in arrays.items():
        numeric = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            saved = a[idx]
            a[idx] = saved + EPS
            plus = fd_loss(m, kind, inputs, mask, dc, dw)
            a[idx] = saved - EPS
            minus = fd_loss(m, kind, inputs, mask, dc, dw)
            a[idx] = saved
            numeric[idx] = (plus - minus) / (2 * EPS)
        assert np.abs(numeric).max() > 1e-3, f"{name}: the check must test a non-trivial gradient"
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-7, err_msg=f"{backend} {kind} {name}")


# ---------------------------------------------------------------------------------------------------
# PyTorch parity: the same equations differentiated by autograd

def torch_attention(torch, kind, q, k, params, mask):
    if kind == "dot":
        e = q @ k.transpose(1, 2)
    elif kind == "general":
        e = q @ params["weight"] @ k.transpose(1, 2)
    else:
        pre = (q @ params["w_query"].T)[:, :, None, :] + (k @ params["w_key"].T)[:, None, :, :]
        e = torch.tanh(pre) @ params["v"]
    if mask is not None:
        e = e.masked_fill(~mask[:, None, :], float("-inf"))
    alpha = torch.softmax(e, dim=-1)
    return alpha @ k, alpha


@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("kind", KINDS)
def test_matches_pytorch_autograd(kind, masked):
    torch = pytest.importorskip("torch")
    q, k, p, mask, dc, dw = make_problem(kind, 3, 4, 6, 5, 7, 4, masked=masked, seed=5)
    tq = torch.tensor(q, requires_grad=True)
    tk = torch.tensor(k, requires_grad=True)
    tp = {n: torch.tensor(v, requires_grad=True) for n, v in p.items()}
    tmask = None if mask is None else torch.tensor(mask)
    context, alpha = torch_attention(torch, kind, tq, tk, tp, tmask)
    ((context * torch.tensor(dc)).sum() + (alpha * torch.tensor(dw)).sum()).backward()
    for backend, m in BACKENDS.items():
        res = m.forward(kind, q, k, p, mask)
        np.testing.assert_allclose(res.context, context.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(res.weights, alpha.detach().numpy(), rtol=1e-10, atol=1e-12)
        dq, dk, dp = m.backward(res.cache, dc, dw)
        np.testing.assert_allclose(dq, tq.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"{backend} dqueries")
        np.testing.assert_allclose(dk, tk.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"{backend} dkeys")
        for n in p:
            np.testing.assert_allclose(dp[n], tp[n].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"{backend} d{n}")


# ---------------------------------------------------------------------------------------------------
# Masking

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("kind", KINDS)
def test_masked_positions_get_exactly_zero(kind, backend, dtype):
    m = BACKENDS[backend]
    q, k, p, mask, dc, dw = make_problem(kind, *SIZES["threads"], dtype=dtype, masked=True, seed=7)
    assert not mask.all() and mask.any(axis=1).all()
    context, weights, cache = m.forward(kind, q, k, p, mask)
    off = np.broadcast_to(~mask[:, None, :], weights.shape)
    assert np.all(weights[off] == 0), "masked positions must get exactly zero weight"
    assert np.all(weights[~off] > 0)
    np.testing.assert_allclose(weights.sum(axis=-1), 1, rtol=1e-5 if dtype == np.float32 else 1e-12)
    # The batch element with one real source position attends to it alone: its context is that key.
    np.testing.assert_array_equal(weights[1, :, 0], 1)
    np.testing.assert_allclose(context[1], np.broadcast_to(k[1, 0], context[1].shape), rtol=1e-6)
    # No gradient reaches a masked key, through the weights alone or through both paths.
    for dcontext, dweights in ((np.zeros_like(dc), dw), (dc, dw)):
        _, dkeys, _ = m.backward(cache, dcontext, dweights)
        assert np.all(dkeys[~mask] == 0), "masked keys must get exactly zero gradient"
        assert np.abs(dkeys[mask]).max() > 0


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("kind", KINDS)
def test_padding_content_does_not_matter(kind, backend):
    m = BACKENDS[backend]
    q, k, p, mask, dc, dw = make_problem(kind, *SIZES["small"], masked=True, seed=11)
    k2 = k.copy()
    k2[~mask] = np.random.default_rng(1).standard_normal(k2[~mask].shape) * 100
    a, b = m.forward(kind, q, k, p, mask), m.forward(kind, q, k2, p, mask)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_allclose(a.context, b.context, rtol=1e-13, atol=1e-13)
    ga, gb = m.backward(a.cache, dc, dw), m.backward(b.cache, dc, dw)
    np.testing.assert_allclose(ga[0], gb[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(ga[1][~mask], 0)
    np.testing.assert_array_equal(gb[1][~mask], 0)
    # An all-True mask is the same as no mask.
    full = np.ones_like(mask)
    np.testing.assert_allclose(m.forward(kind, q, k, p, full).context, m.forward(kind, q, k, p).context,
                               rtol=1e-13, atol=1e-13)


# ---------------------------------------------------------------------------------------------------
# init_params

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_params(dtype):
    assert K.init_params is R.init_params  # one implementation
    assert R.init_params("dot", 4, 4, dtype=dtype, rng=0) == {}
    g = R.init_params("general", 3, 5, dtype=dtype, rng=0)
    assert list(g) == ["weight"] and g["weight"].shape == (3, 5) and g["weight"].dtype == dtype
    assert np.abs(g["weight"]).max() <= 1 / np.sqrt(5)
    a = R.init_params("additive", 3, 5, attn_size=6, dtype=dtype, rng=0)
    assert {n: v.shape for n, v in a.items()} == {"w_query": (6, 3), "w_key": (6, 5), "v": (6,)}
    assert all(v.dtype == dtype for v in a.values())
    for name, fan_in in (("w_query", 3), ("w_key", 5), ("v", 6)):
        assert np.abs(a[name]).max() <= 1 / np.sqrt(fan_in)
        assert np.abs(a[name]).max() > 0.3 / np.sqrt(fan_in)  # uniform over the interval, not tiny
    assert R.init_params("additive", 3, 5, dtype=dtype, rng=0)["v"].shape == (5,)  # A defaults to key_size
    again = R.init_params("additive", 3, 5, attn_size=6, dtype=dtype, rng=0)
    for n in a:
        np.testing.assert_array_equal(a[n], again[n])


@pytest.mark.parametrize("call, exc, words", [
    (lambda: R.init_params("luong", 3, 3), ValueError, ["kind", "luong"]),
    (lambda: R.init_params("dot", 3, 4), ValueError, ["dot", "3", "4"]),
    (lambda: R.init_params("general", 3, 4, attn_size=5), ValueError, ["attn_size", "additive"]),
    (lambda: R.init_params("additive", 0, 4), ValueError, ["query_size", "0"]),
    (lambda: R.init_params("additive", 3, 4, attn_size=-1), ValueError, ["attn_size", "-1"]),
    (lambda: R.init_params("general", 3, 4, dtype=np.int32), TypeError, ["dtype", "int32"]),
])
def test_init_params_errors(call, exc, words):
    with raises(exc, *words):
        call()


# ---------------------------------------------------------------------------------------------------
# Bad input: identical errors from both back-ends

def raises(exc, *words):
    """pytest.raises(exc) whose message contains every one of ``words`` literally."""
    return pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(w)})" for w in words))


B, T, N, HQ, HK, A = 2, 3, 4, 5, 6, 7


def good(kind, dtype=np.float64):
    rng = np.random.default_rng(0)
    hq = HK if kind == "dot" else HQ
    p = R.init_params(kind, hq, HK, A if kind == "additive" else None, dtype=dtype, rng=rng)
    return {"kind": kind, "queries": rng.standard_normal((B, T, hq)).astype(dtype),
            "keys": rng.standard_normal((B, N, HK)).astype(dtype), "params": p, "mask": np.ones((B, N), bool)}


def with_(base_kind, **changes):
    a = good(base_kind)
    for name, value in changes.items():
        if name.startswith("p_"):
            if value is None:
                del a["params"][name[2:]]
            else:
                a["params"][name[2:]] = value
        else:
            a[name] = value
    return a


def no_row(kind):
    a = good(kind)
    a["mask"][1] = False
    return a


FORWARD_ERRORS = [
    ("unknown kind", lambda: with_("dot", kind="luong"), ValueError, ["kind", "'luong'"]),
    ("queries list", lambda: with_("dot", queries=[[[1.0]]]), TypeError, ["queries", "list"]),
    ("queries int", lambda: with_("dot", queries=np.ones((B, T, HK), np.int64)), TypeError, ["queries", "int64"]),
    ("queries 2-D", lambda: with_("dot", queries=np.ones((T, HK))), ValueError,
     ["queries", "(B, T, query_size)", "ndim 2", str((T, HK))]),
    ("queries empty", lambda: with_("dot", queries=np.ones((B, 0, HK))), ValueError, ["queries", str((B, 0, HK))]),
    ("keys 2-D", lambda: with_("dot", keys=np.ones((N, HK))), ValueError, ["keys", "(B, N, key_size)", "ndim 2"]),
    ("keys batch", lambda: with_("general", keys=np.ones((B + 1, N, HK))), ValueError,
     ["keys", f"B = {B}", str((B, T, HQ)), str((B + 1, N, HK))]),
    ("keys dtype", lambda: with_("dot", keys=np.ones((B, N, HK), np.float32)), TypeError,
     ["keys", "float64", "float32"]),
    ("dot sizes", lambda: with_("dot", queries=np.ones((B, T, HQ))), ValueError,
     ["dot", "query_size == key_size", str((B, T, HQ)), str((B, N, HK))]),
    ("params list", lambda: with_("dot", params=[]), TypeError, ["params", "dict", "list"]),
    ("missing weight", lambda: with_("general", p_weight=None), ValueError, ["params", "missing", "weight"]),
    ("missing v", lambda: with_("additive", p_v=None), ValueError, ["params", "missing", "'v'"]),
    ("unexpected key", lambda: with_("dot", p_weight=np.ones((HK, HK))), ValueError,
     ["params", "unexpected", "weight", "dot"]),
    ("weight transposed", lambda: with_("general", p_weight=np.ones((HK, HQ))), ValueError,
     ["params['weight']", str((HQ, HK)), str((HK, HQ))]),
    ("weight dtype", lambda: with_("general", p_weight=np.ones((HQ, HK), np.float32)), TypeError,
     ["params['weight']", "float64", "float32"]),
    ("w_query shape", lambda: with_("additive", p_w_query=np.ones((A, HK))), ValueError,
     ["params['w_query']", str((A, HQ)), str((A, HK))]),
    ("w_key shape", lambda: with_("additive", p_w_key=np.ones((A + 1, HK))), ValueError,
     ["params['w_key']", str((A, HK)), str((A + 1, HK))]),
    ("v 2-D", lambda: with_("additive", p_v=np.ones((A, 1))), ValueError, ["params['v']", "(attn_size,)"]),
    ("mask shape", lambda: with_("additive", mask=np.ones((B, N + 1), bool)), ValueError,
     ["mask", str((B, N)), str((B, N + 1))]),
    ("mask dtype", lambda: with_("dot", mask=np.ones((B, N), np.int64)), TypeError, ["mask", "bool", "int64"]),
    ("mask list", lambda: with_("dot", mask=[[True] * N] * B), TypeError, ["mask", "list"]),
    ("mask empty row", lambda: no_row("general"), ValueError, ["mask", "[1]", "no True"]),
]


def outcome(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001  the test compares whatever both back-ends raise
        return type(e), str(e)
    return None, None


@pytest.mark.parametrize("make, exc, words", [c[1:] for c in FORWARD_ERRORS], ids=[c[0] for c in FORWARD_ERRORS])
def test_forward_errors_are_identical(make, exc, words):
    results = []
    for m in BACKENDS.values():
        a = make()
        with raises(exc, *words):
            m.forward(a["kind"], a["queries"], a["keys"], a["params"], a["mask"])
        results.append(outcome(lambda: m.forward(a["kind"], a["queries"], a["keys"], a["params"], a["mask"])))
    assert results[0] == results[1]


@pytest.mark.parametrize("kind", KINDS)
def test_backward_errors_are_identical(kind):
    caches = {}
    for name, m in BACKENDS.items():
        a = good(kind)
        caches[name] = m.forward(a["kind"], a["queries"], a["keys"], a["params"], a["mask"]).cache
    dc, dw = np.zeros((B, T, HK)), np.zeros((B, T, N))
    cases = [
        (lambda m, c: m.backward(None, dc, dw), RuntimeError, ["training=False"]),
        (lambda m, c: m.backward(c, dc[:, :, :-1], dw), ValueError, ["dcontext", str((B, T, HK)), str((B, T, HK - 1))]),
        (lambda m, c: m.backward(c, dc, dw[:, :1]), ValueError, ["dweights", str((B, T, N)), str((B, 1, N))]),
        (lambda m, c: m.backward(c, dc.astype(np.float32), dw), TypeError, ["dcontext", "float64", "float32"]),
        (lambda m, c: m.backward(c, dc, dw.astype(np.float32)), TypeError, ["dweights", "float64", "float32"]),
        (lambda m, c: m.backward(c, dc.tolist(), dw), TypeError, ["dcontext", "list"]),
    ]
    for call, exc, words in cases:
        results = []
        for name, m in BACKENDS.items():
            with raises(exc, *words):
                call(m, caches[name])
            results.append(outcome(lambda: call(m, caches[name])))
        assert results[0] == results[1]
    # A cache belongs to its back-end.
    with raises(TypeError, "cache", "rnnkit.attention.forward", "ReferenceCache"):
        K.backward(caches["reference"], dc, dw)
    with raises(TypeError, "cache", "rnnkit.reference.attention.forward", "AttentionCache"):
        R.backward(caches["kernels"], dc, dw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_and_float64_stay_in_their_dtype(dtype):
    for kind in KINDS:
        a = good(kind, dtype)
        for m in BACKENDS.values():
            context, weights, cache = m.forward(a["kind"], a["queries"], a["keys"], a["params"], a["mask"])
            dq, dk, dp = m.backward(cache, np.ones(context.shape, dtype))
            assert {x.dtype for x in (context, weights, dq, dk, *dp.values())} == {np.dtype(dtype)}


def test_native_binding_rejects_bad_input():
    """rnnkit._C checks what reaches it past the Python wrapper: an exception, never a crash."""
    a = good("additive")
    q, k, p = a["queries"], a["keys"], a["params"]
    base = [2, q, k, None, p["w_query"], p["w_key"], p["v"], None]
    ctx, w, ws = _C.attention_forward(*base, True)
    assert ctx.shape == (B, T, HK) and ws.ndim == 1
    bad = [
        ([7] + base[1:], ["unknown kind"]),
        ([2, q[0]] + base[2:], ["queries"]),
        ([2, q, k[:1]] + base[3:], ["keys", str((B, N, HK))]),
        (base[:4] + [p["w_query"][:, :-1]] + base[5:], ["w_query"]),
        (base[:6] + [None, None], ["additive", "v"]),
        (base[:7] + [np.ones((B, N + 1), bool)], ["mask"]),
        (base[:7] + [np.zeros((B, N), bool)], ["mask row"]),
        ([1, q, k, None, None, None, None, None], ["general", "weight"]),
        ([0, q, k, None, None, None, None, None], ["dot", "Hq == Hk"]),
    ]
    for args, words in bad:
        with raises(ValueError, *words):
            _C.attention_forward(*args, True)
    with raises(ValueError, "workspace"):
        _C.attention_backward(*base, ws[:-1].copy(), np.zeros_like(ctx), None)
    with raises(ValueError, "dcontext"):
        _C.attention_backward(*base, ws, np.zeros((B, T, HK + 1)), None)
