"""Property-based tests (hypothesis) over the public entry points: kernels forward/backward/step,
layers, attention, losses, optimisers and checkpoint loading, with random shapes (zeros and ones
included), dtypes, layouts (C, Fortran, strided, read-only, misaligned), NaN/inf, negative and absurd
sizes and wrong types.

Properties: valid inputs in any layout agree with `rnnkit.reference`; anything else raises only a
documented exception (ValueError, TypeError, RuntimeError, MemoryError); nothing crashes the process.

Profiles (tests/conftest.py): "ci" (default, bounded) and "long"; choose with
``--hypothesis-profile long`` or ``RNNKIT_HYPOTHESIS_PROFILE=long``."""
import io
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnkit
from rnnkit import attention, checkpoint, kernels, losses, optim, reference
from rnnkit._cells import cell_spec
from rnnkit.checkpoint import CheckpointError
from rnnkit.reference import attention as ref_attention

DOCUMENTED = (ValueError, TypeError, RuntimeError, MemoryError)
MODES = list(rnnkit.MODES)
TOL = {np.float32: 2e-4, np.float64: 1e-10}
LAYOUTS = ["c", "fortran", "strided", "readonly", "misaligned"]


def in_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``a`` in another memory layout."""
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided":  # every other element of a larger array along the last axis
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype) if a.ndim else np.zeros(2, a.dtype)[:1]
        if a.ndim:
            big[..., ::2] = a
            return big[..., ::2]
        return a
    if layout == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    if layout == "misaligned":  # data starting one byte past an aligned address
        raw = np.zeros(a.nbytes + 1, np.uint8)
        b = raw[1:].view(a.dtype).reshape(a.shape) if a.size else a.copy()
        b[...] = a
        return b
    return np.ascontiguousarray(a)


def _case(draw, with_lengths=True):
    mode = draw(st.sampled_from(MODES))
    spec = cell_spec(mode)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    T, B, I, H = (draw(st.integers(1, 4)) for _ in range(4))
    if spec.raw_input:  # x enters the cell directly: I = H
        I = H
    shapes = spec.kernel_shapes(I, H)
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)

    def arr(*shape):
        return (rng.standard_normal(shape) * 0.5).astype(dtype)

    args = dict(x=arr(T, B, I), h0=arr(B, H), w_ih=arr(*shapes["w_ih"]), w_hh=arr(*shapes["w_hh"]))
    if draw(st.booleans()):
        args.update({k: arr(*shapes[k]) for k in ("b_ih", "b_hh") if k in shapes})
    if spec.states == 2:
        args["c0"] = arr(B, H)
    if with_lengths and draw(st.booleans()):
        args["lengths"] = rng.integers(1, T + 1, B)
    args["reverse"] = draw(st.booleans())
    layouts = {k: draw(st.sampled_from(LAYOUTS)) for k in args if isinstance(args[k], np.ndarray)}
    return mode, dtype, args, layouts, rng


cases = st.composite(_case)


def _call(module, mode, args, **kw):
    a = dict(args)
    return module.forward(mode, a.pop("x"), a.pop("h0"), a.pop("w_ih"), a.pop("w_hh"), a.pop("b_ih", None),
                          a.pop("b_hh", None), **a, **kw)


def _close(got, want, dtype):
    tol = TOL[dtype]
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@given(cases())
def test_kernels_forward_backward_agree_with_reference_in_any_layout(case):
    mode, dtype, args, layouts, rng = case
    laid = {k: in_layout(v, layouts[k]) if k in layouts else v for k, v in args.items()}
    got = _call(kernels, mode, laid)
    want = _call(reference, mode, args)
    for g, w in zip(got[:3], want[:3]):
        assert (g is None) == (w is None)
        if g is not None:
            _close(g, w, dtype)
    dy = in_layout(rng.standard_normal(got.y.shape).astype(dtype), layouts["x"])
    dh_n = rng.standard_normal(got.h_n.shape).astype(dtype)
    g_got = kernels.backward(got.workspace, dy, dh_n)
    g_want = reference.backward(want.workspace, dy, dh_n)
    for name, g, w in zip(g_got._fields, g_got, g_want):
        assert (g is None) == (w is None), name
        if g is not None:
            _close(g, w, dtype)
    for k, v in laid.items():  # the inputs are not written to
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(v, args[k])


@given(cases())
def test_kernels_inference_with_a_half_w_hh_agrees_with_reference_in_any_layout(case):
    mode, dtype, args, layouts, _ = case
    args = {k: v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v for k, v in args.items()}
    laid = {k: in_layout(v, layouts[k]) if k in layouts else v for k, v in args.items()}
    got = _call(kernels, mode, laid, training=False, recurrent_weights="float16")
    want = _call(reference, mode, args, training=False, recurrent_weights="float16")
    for g, w in zip(got[:3], want[:3]):
        assert (g is None) == (w is None)
        if g is not None:
            _close(g, w, np.float32)


@given(cases(with_lengths=False))
def test_kernels_step_agrees_with_reference(case):
    mode, dtype, args, layouts, _ = case
    x = in_layout(args["x"][0], layouts["x"])
    h = in_layout(args["h0"], layouts["h0"])
    kw = dict(c=args["c0"]) if "c0" in args else {}
    got = kernels.step(mode, x, h, args["w_ih"], args["w_hh"], args.get("b_ih"), args.get("b_hh"), **kw)
    want = reference.step(mode, args["x"][0], args["h0"], args["w_ih"], args["w_hh"], args.get("b_ih"),
                          args.get("b_hh"), **kw)
    _close(got[0], want[0], dtype)
    if "c0" in args:
        _close(got[1], want[1], dtype)


# ---------------------------------------------------------------- hostile arguments

def _odd_values():
    """What a caller may pass in place of an array."""
    return st.one_of(
        st.none(), st.integers(-3, 3), st.floats(allow_nan=True), st.text(max_size=3),
        st.lists(st.floats(-2, 2), max_size=4),
        st.builds(lambda shape, dt: np.zeros(shape, dt),
                  st.lists(st.integers(0, 3), min_size=0, max_size=4).map(tuple),
                  st.sampled_from([np.float16, np.float32, np.float64, np.int32, np.int64, np.complex64, bool,
                                   object])),
        st.builds(lambda shape, v: np.full(shape, v, np.float32),
                  st.lists(st.integers(0, 3), min_size=1, max_size=3).map(tuple),
                  st.sampled_from([np.nan, np.inf, -np.inf, 1e38])),
    )


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.sampled_from(["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh", "c0", "lengths", "mode"]), _odd_values(),
       st.booleans())
def test_kernels_with_one_bad_argument_raise_only_documented_errors(case, name, value, training):
    mode, dtype, args, _, rng = case
    args = dict(args)
    if name == "mode":
        mode = value if not isinstance(value, np.ndarray) else "lstm"
    else:
        args[name] = value
    try:
        res = _call(kernels, mode, args, training=training)
    except DOCUMENTED:
        return
    if training:
        try:
            kernels.backward(res.workspace, np.ones_like(res.y))
        except DOCUMENTED:
            pass


@given(cases(), st.sampled_from(["dy", "dh_n", "dc_n"]), _odd_values())
def test_kernels_backward_with_a_bad_gradient_raises_only_documented_errors(case, name, value):
    mode, dtype, args, _, _ = case
    res = _call(kernels, mode, args)
    grads = {"dy": np.ones_like(res.y), "dh_n": None, "dc_n": None, name: value}
    try:
        kernels.backward(res.workspace, grads["dy"], grads["dh_n"], grads["dc_n"])
    except DOCUMENTED:
        pass


@given(st.sampled_from(MODES), st.integers(-2, 3), st.integers(-2, 3), st.integers(-2, 3), st.integers(-2, 3))
def test_kernels_with_empty_and_negative_sizes(mode, T, B, I, H):
    """Zero sizes are refused with a ValueError (I = 0 once left y unwritten: the BLAS refused a leading
    dimension of 0); arrays of negative sizes cannot be made, so the kernels only ever see zeros here."""
    spec = cell_spec(mode)
    if spec.raw_input:
        I = H
    n = lambda v: max(v, 0)  # noqa: E731
    shapes = spec.kernel_shapes(n(I), n(H))
    args = dict(x=np.ones((n(T), n(B), n(I)), np.float32), h0=np.zeros((n(B), n(H)), np.float32),
                w_ih=np.ones(shapes["w_ih"], np.float32), w_hh=np.ones(shapes["w_hh"], np.float32))
    if spec.states == 2:
        args["c0"] = np.zeros((n(B), n(H)), np.float32)
    try:
        res = _call(kernels, mode, args)
    except DOCUMENTED:
        assert min(T, B, I, H) < 1
        return
    assert min(T, B, I, H) >= 1
    _close(res.y, _call(reference, mode, args).y, np.float32)


@given(st.sampled_from(MODES), st.integers(-3, 5), st.integers(-3, 5),
       st.one_of(st.integers(-2, 3), st.floats(), st.text(max_size=2), st.none()),
       st.sampled_from([np.float32, np.float64, np.float16, np.int32, "float32", None]))
def test_layer_constructors_raise_only_documented_errors(mode, input_size, hidden_size, num_layers, dtype):
    cls = getattr(rnnkit, mode.upper(), rnnkit.RNN)  # LSTM, GRU, MUT1-3; RNN for the rest
    try:
        cls(input_size, hidden_size, num_layers, dtype=dtype)
    except DOCUMENTED:
        return
    assert input_size >= 1 and hidden_size >= 1


@given(st.sampled_from(["lstm", "gru", "rnn"]), st.integers(1, 3), st.integers(1, 3), st.integers(0, 3),
       st.integers(0, 3), st.sampled_from(LAYOUTS + ["list", "float16", "int", "nan"]), st.booleans())
def test_layers_forward_backward_in_any_layout(kind, I, H, T, B, layout, bidirectional):
    cls = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}[kind]
    layer = cls(I, H, 1, bidirectional=bidirectional, dtype=np.float64, seed=0)
    x = np.random.default_rng(T * 7 + B).standard_normal((T, B, I))
    if layout == "list":
        given_x = x.tolist()
    elif layout in ("float16", "int"):
        given_x = x.astype(np.float16 if layout == "float16" else np.int64)
    elif layout == "nan":
        given_x = np.where(x > 0, np.nan, x)
    else:
        given_x = in_layout(x, layout)
    try:
        y, _ = layer(given_x)
    except DOCUMENTED:
        assert T == 0 or B == 0  # empty sequences and batches are refused; every layout and type is accepted
        return
    assert y.shape == (T, B, H * (2 if bidirectional else 1))
    want, _ = layer(np.asarray(given_x, np.float64).copy())
    np.testing.assert_array_equal(y, want)  # the layout changes nothing
    if layout != "nan":
        assert np.isfinite(y).all()
    dx, _ = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape


# ---------------------------------------------------------------- attention

@st.composite
def attention_cases(draw):
    kind = draw(st.sampled_from(list(attention.KINDS) if hasattr(attention, "KINDS") else ["dot", "general",
                                                                                          "additive"]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    B, T, N, Hk = (draw(st.integers(1, 4)) for _ in range(4))
    Hq = Hk if kind == "dot" else draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    q = rng.standard_normal((B, T, Hq)).astype(dtype)
    k = rng.standard_normal((B, N, Hk)).astype(dtype)
    params = ref_attention.init_params(kind, Hq, Hk, dtype=dtype, rng=rng)
    mask = rng.random((B, N)) < 0.7
    mask[:, 0] = True
    if draw(st.booleans()):
        mask = None
    return kind, dtype, q, k, params, mask, (draw(st.sampled_from(LAYOUTS)), draw(st.sampled_from(LAYOUTS))), rng


@given(attention_cases())
def test_attention_agrees_with_reference_in_any_layout(case):
    kind, dtype, q, k, params, mask, (lq, lk), rng = case
    got = attention.forward(kind, in_layout(q, lq), in_layout(k, lk), params, mask)
    want = ref_attention.forward(kind, q, k, params, mask)
    _close(got.context, want.context, dtype)
    _close(got.weights, want.weights, dtype)
    dc = rng.standard_normal(got.context.shape).astype(dtype)
    g = attention.backward(got.cache, in_layout(dc, lq))
    w = ref_attention.backward(want.cache, dc)
    _close(g[0], w[0], dtype)
    _close(g[1], w[1], dtype)
    for name in g[2]:
        _close(g[2][name], w[2][name], dtype)


@given(attention_cases(), st.sampled_from(["queries", "keys", "mask", "param", "kind"]), _odd_values())
def test_attention_with_a_bad_argument_raises_only_documented_errors(case, name, value):
    kind, dtype, q, k, params, mask, _, _ = case
    args = {"queries": q, "keys": k, "mask": mask, "kind": kind}
    params = dict(params)
    if name == "param":
        params[sorted(params)[0] if params else "weight"] = value
    elif name == "kind":
        args["kind"] = value if isinstance(value, str) else kind
    else:
        args[name] = value
    try:
        res = attention.forward(args["kind"], args["queries"], args["keys"], params, args["mask"])
        attention.backward(res.cache, np.ones_like(res.context))
    except DOCUMENTED:
        pass


# ---------------------------------------------------------------- losses and optimisers

@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN and inf inputs, on purpose
@given(st.integers(0, 4), st.integers(0, 5), st.sampled_from([np.float32, np.float64]),
       st.sampled_from(["ok", "nan", "inf", "bad-target", "negative-weight", "zero-weight", "wrong-shape", "list"]))
def test_softmax_cross_entropy(N, V, dtype, damage):
    rng = np.random.default_rng(N * 10 + V)
    logits = rng.standard_normal((N, V)).astype(dtype)
    targets = rng.integers(0, max(V, 1), N)
    weights = None
    if damage == "nan" and logits.size:
        logits.flat[0] = np.nan
    elif damage == "inf" and logits.size:
        logits.flat[0] = np.inf
    elif damage == "bad-target" and N:
        targets[0] = V + 3
    elif damage == "negative-weight":
        weights = -np.ones(N)
    elif damage == "zero-weight":
        weights = np.zeros(N)
    elif damage == "wrong-shape":
        targets = np.zeros(N + 1, np.int64)
    elif damage == "list":
        logits = logits.tolist()
    try:
        loss, grad = losses.softmax_cross_entropy(logits, targets, weights)
    except DOCUMENTED:
        return
    if damage == "ok":
        assert N >= 1 and V >= 1
        lp = reference_log_softmax(np.asarray(logits, np.float64))
        np.testing.assert_allclose(loss, -lp[np.arange(N), targets].mean(), rtol=1e-5)
        assert grad.shape == (N, V) and grad.dtype == dtype


def reference_log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN and inf inputs, on purpose
@given(st.sampled_from(sorted(optim.OPTIMIZERS)), st.one_of(st.floats(allow_nan=True), st.integers(-2, 2)),
       st.sampled_from(["ok", "nan", "wrong-shape", "wrong-dtype", "missing", "extra", "list", "readonly-param"]))
def test_optimisers_raise_only_documented_errors(name, lr, damage):
    params = {"w": np.ones((3, 2), np.float32), "b": np.zeros(2, np.float32)}
    if damage == "readonly-param":
        params["w"].flags.writeable = False
    grads = {"w": np.full((3, 2), 0.5, np.float32), "b": np.ones(2, np.float32)}
    if damage == "nan":
        grads["w"][0, 0] = np.nan
    elif damage == "wrong-shape":
        grads["w"] = np.ones((2, 3), np.float32)
    elif damage == "wrong-dtype":
        grads["w"] = grads["w"].astype(np.float64)
    elif damage == "missing":
        del grads["b"]
    elif damage == "extra":
        grads["z"] = np.ones(1, np.float32)
    elif damage == "list":
        grads["w"] = grads["w"].tolist()
    try:
        opt = optim.make_optimizer(name, params, lr)
        opt.step(grads)
    except DOCUMENTED:
        return
    assert damage not in ("wrong-shape", "missing", "readonly-param")
    assert lr > 0
    if damage == "ok":
        assert opt.steps == 1
        if lr > 1e-3:  # smaller steps may round away in float32
            assert params["w"][0, 0] != 1 and params["b"][0] != 0


# ---------------------------------------------------------------- checkpoint loading

@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2048))
def test_any_bytes_load_or_give_a_checkpoint_error(tmp_path, data):
    path = tmp_path / "c.npz"
    path.write_bytes(data)
    with pytest.raises(CheckpointError):
        checkpoint.load(str(path))


_MEMBER_NAME_CHARS = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))  # what zipfile writes


@pytest.mark.filterwarnings("ignore:Duplicate name")
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.text(_MEMBER_NAME_CHARS, min_size=1, max_size=8), st.binary(max_size=300)), max_size=4),
       st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]), st.booleans())
def test_any_archive_loads_or_gives_a_checkpoint_error(tmp_path, members, compression, npy_prefix):
    """Archives of random members, each optionally starting with a valid .npy magic and header prefix."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, body in members:
            if npy_prefix:
                body = np.lib.format.magic(1, 0) + body
            z.writestr(name + ".npy", body)
    path = tmp_path / "c.npz"
    path.write_bytes(buf.getvalue())
    try:
        arrays, meta = checkpoint.load(str(path))
    except CheckpointError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return
    assert isinstance(meta, dict) and all(a.dtype.kind in "biuf" for a in arrays.values())
