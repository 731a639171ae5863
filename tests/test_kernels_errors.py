"""Bad input to the C++ kernels: through `rnnkit.kernels` (exception type, and a message naming the
argument with the expected and actual shapes) and straight into `rnnkit._C` (an exception, never a
crash)."""
import re

import numpy as np
import pytest

import rnnkit
from rnnkit import _C
from rnnkit import kernels as K

T, B, I, H = 5, 3, 4, 7
MODE_ID = {m: i for i, m in enumerate(K.MODES)}


def raises(exc, *words):
    """pytest.raises(exc) whose message contains every one of ``words`` literally."""
    return pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(w)})" for w in words))


def args(mode, dtype=np.float64, bias=True):
    rng = np.random.default_rng(0)
    G = K.num_gates(mode)
    a = {"x": rng.standard_normal((T, B, I)), "h0": rng.standard_normal((B, H)),
         "w_ih": rng.standard_normal((G * H, I)) * 0.3, "w_hh": rng.standard_normal((G * H, H)) * 0.3}
    if bias:
        a["b_ih"] = rng.standard_normal(G * H)
        a["b_hh"] = rng.standard_normal(G * H)
    if mode == "lstm":
        a["c0"] = rng.standard_normal((B, H))
    return {k: v.astype(dtype) for k, v in a.items()}


#: The cells whose weights and biases all have the same G row blocks (torch's layout); the MUT cells'
#: own shapes and checks are tested in test_mut_cells.py.
SAME_BLOCKS = [c for c, s in rnnkit.CELLS.items()
               if s.gates_ih == s.gates_hh == s.bias_ih == s.bias_hh and not s.raw_input]


@pytest.fixture(params=SAME_BLOCKS)
def mode(request):
    return request.param


def sh(*dims):
    return str(tuple(dims))


# ---------------------------------------------------------------- shapes, through rnnkit.kernels


def bad_shape_cases(mode):
    G = K.num_gates(mode)
    GH = G * H
    cases = [
        ("x", np.zeros((T, B)), ["x", "ndim 2", sh(T, B)]),
        ("x", np.zeros((T, B, I, 1)), ["x", "ndim 4", sh(T, B, I, 1)]),
        ("x", np.zeros((0, B, I)), ["x", sh(0, B, I)]),
        ("x", np.zeros((T, 0, I)), ["x", sh(T, 0, I)]),
        ("x", np.zeros((T, B, I + 1)), ["w_ih", sh(GH, I + 1), sh(GH, I)]),
        ("h0", np.zeros((B, H + 1)), ["h0", sh(B, H), sh(B, H + 1)]),
        ("h0", np.zeros((B + 1, H)), ["h0", sh(B, H), sh(B + 1, H)]),
        ("h0", np.zeros((B * H,)), ["h0", sh(B, H), sh(B * H)]),
        ("h0", np.zeros((1, B, H)), ["h0", sh(B, H), sh(1, B, H)]),
        ("w_ih", np.zeros((GH, I + 1)), ["w_ih", sh(GH, I), sh(GH, I + 1)]),
        ("w_ih", np.zeros((I, GH)), ["w_ih", sh(GH, I), sh(I, GH)]),
        ("w_ih", np.zeros((GH + 1, I)), ["w_ih", sh(GH, I), sh(GH + 1, I)]),
        ("w_ih", np.zeros(GH * I), ["w_ih", sh(GH, I), sh(GH * I)]),
        ("w_hh", np.zeros((GH + 1, H)), ["w_hh", sh(GH, H), sh(GH + 1, H)]),
        ("w_hh", np.zeros(GH * H), ["w_hh", sh(GH * H)]),
        ("w_hh", np.zeros((GH, H, 1)), ["w_hh", sh(GH, H, 1)]),
        ("w_hh", np.zeros((0, 0)), ["w_hh", "hidden unit", sh(0, 0)]),
        # w_hh fixes H; a wrong H then shows up in the first other weight that disagrees with it
        ("w_hh", np.zeros((G * (H + 1), H + 1)), ["w_ih", sh(G * (H + 1), I), sh(GH, I)]),
        ("b_ih", np.zeros(GH + 1), ["b_ih", sh(GH), sh(GH + 1)]),
        ("b_ih", np.zeros((1, GH)), ["b_ih", sh(GH), sh(1, GH)]),
        ("b_hh", np.zeros(H), ["b_hh", sh(GH), sh(H)] if G > 1 else ["b_hh"]),
        ("b_hh", np.zeros((G, H)), ["b_hh", sh(GH), sh(G, H)]),
    ]
    if G == 1:
        cases = [c for c in cases if not (c[0] == "b_hh" and c[1].shape == (H,))]
    if mode == "lstm":
        cases += [("c0", np.zeros((B, H + 1)), ["c0", sh(B, H), sh(B, H + 1)]),
                  ("c0", np.zeros(B * H), ["c0", sh(B, H), sh(B * H)])]
    return cases


def test_forward_bad_shapes_name_argument_and_shapes(mode):
    cases = bad_shape_cases(mode)
    assert len(cases) >= 20
    for name, value, words in cases:
        a = args(mode)
        a[name] = value
        with raises(ValueError, *words):
            K.forward(mode, **a)
        with raises(ValueError, *words):  # inference takes the same checks
            K.forward(mode, **a, training=False)


def test_c0_only_for_lstm(mode):
    a = args(mode)
    if mode == "lstm":
        a.pop("c0")
        assert K.forward(mode, **a).c_n.shape == (B, H)  # None means zeros
    else:
        with raises(ValueError, "c0", mode):
            K.forward(mode, **a, c0=np.zeros((B, H)))


@pytest.mark.parametrize("missing", ["b_ih", "b_hh"])
def test_one_bias_without_the_other(mode, missing):
    a = args(mode)
    a.pop(missing)
    with raises(ValueError, "b_ih", "b_hh"):
        K.forward(mode, **a)
    weights = {k: v for k, v in a.items() if k not in ("x", "h0", "c0")}
    with raises(ValueError, "b_ih", "b_hh"):
        K.step(mode, a["x"][0], a["h0"], **weights, c=a.get("c0"))


@pytest.mark.parametrize("bad", ["lstm2", "LSTM", "gru-cho", "", None, 2])
def test_unknown_mode(bad):
    a = args("gru")
    with raises(ValueError, "mode"):
        K.forward(bad, **a)
    with raises(ValueError, "mode"):
        K.step(bad, a["x"][0], a["h0"], a["w_ih"], a["w_hh"])
    with raises(ValueError, "mode"):
        K.num_gates(bad)


# ---------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dtype_mismatch_is_type_error(mode, dtype):
    other = np.float32 if dtype == np.float64 else np.float64
    for name in [n for n in args(mode) if n != "x"]:
        a = args(mode, dtype)
        a[name] = a[name].astype(other)
        with raises(TypeError, name, np.dtype(other).name):
            K.forward(mode, **a)
    a = args(mode, dtype)
    a["x"] = a["x"].astype(other)  # x decides the dtype: the first other argument (w_hh) is blamed
    with raises(TypeError, "w_hh"):
        K.forward(mode, **a)


@pytest.mark.parametrize("bad_dtype", [np.int64, np.int32, np.float16, np.complex128, bool])
def test_non_float_arrays_are_type_errors(mode, bad_dtype):
    for name in args(mode):
        a = args(mode)
        a[name] = (a[name] * 3).astype(bad_dtype)
        with raises(TypeError, name):
            K.forward(mode, **a)


def test_non_arrays_are_rejected(mode):
    a = args(mode)
    with raises(TypeError, "x"):
        K.forward(mode, **dict(a, x=a["x"].tolist()))
    with raises(TypeError, "h0"):
        K.forward(mode, **dict(a, h0=a["h0"].tolist()))
    with raises(TypeError, "w_ih"):
        K.forward(mode, **dict(a, w_ih=a["w_ih"].tolist()))
    with raises(TypeError, "w_hh"):
        K.forward(mode, **dict(a, w_hh=a["w_hh"].tolist()))


# ---------------------------------------------------------------- lengths


@pytest.mark.parametrize("lengths, exc, words", [
    ([0, 1, 2], ValueError, ["lengths", "1..5", "min 0"]),
    ([1, 6, 2], ValueError, ["lengths", "1..5", "max 6"]),
    ([-1, 2, 3], ValueError, ["lengths", "1..5"]),
    ([1, 2], ValueError, ["lengths", "(3,)", "(2,)"]),
    ([1, 2, 3, 4], ValueError, ["lengths", "(3,)", "(4,)"]),
    ([[1, 2, 3]], ValueError, ["lengths", "(3,)", "(1, 3)"]),
    (5, ValueError, ["lengths", "(3,)", "()"]),
    ([1.0, 2.0, 3.0], TypeError, ["lengths", "float64"]),
    ([1.5, 2, 3], TypeError, ["lengths", "integers"]),
])
def test_bad_lengths(mode, lengths, exc, words):
    a = args(mode)
    with raises(exc, *words):
        K.forward(mode, **a, lengths=lengths)
    with raises(exc, *words):
        K.forward(mode, **a, lengths=lengths, reverse=True, training=False)


def test_lengths_accept_any_integer_type(mode):
    a = args(mode)
    ref = K.forward(mode, **a, lengths=np.array([5, 1, 3])).y
    for lengths in ([5, 1, 3], (5, 1, 3), np.array([5, 1, 3], np.int8), np.array([5, 1, 3], np.uint16)):
        np.testing.assert_array_equal(K.forward(mode, **a, lengths=lengths).y, ref)


# ---------------------------------------------------------------- backward


def test_backward_workspace_errors(mode):
    a = args(mode)
    res = K.forward(mode, **a)
    dy = np.ones_like(res.y)
    with raises(RuntimeError, "training"):
        K.backward(None, dy)
    infer = K.forward(mode, **a, training=False)
    assert infer.workspace is None
    with pytest.raises(RuntimeError):
        K.backward(infer.workspace, dy)
    with raises(TypeError, "workspace"):
        K.backward(res.workspace.buffer, dy)
    first = K.backward(res.workspace, dy)
    with raises(RuntimeError, "already"):
        K.backward(res.workspace, dy)
    again = K.backward(K.forward(mode, **a).workspace, dy)  # a fresh forward gives the same gradients
    for g1, g2 in zip(first, again):
        assert (g1 is None and g2 is None) or np.array_equal(g1, g2)


def test_backward_bad_upstream_keeps_workspace_usable(mode):
    a = args(mode)
    res = K.forward(mode, **a)
    dy = np.ones_like(res.y)
    bad = [
        (dict(dy=np.ones((T, B, H + 1))), ValueError, ["dy", sh(T, B, H), sh(T, B, H + 1)]),
        (dict(dy=np.ones((T - 1, B, H))), ValueError, ["dy", sh(T, B, H), sh(T - 1, B, H)]),
        (dict(dy=np.ones((T, B, H), np.float32)), TypeError, ["dy", "float32"]),
        (dict(dy=np.ones((T, B, H), np.int64)), TypeError, ["dy", "int64"]),
        (dict(dy=dy, dh_n=np.ones((B, H + 1))), ValueError, ["dh_n", sh(B, H), sh(B, H + 1)]),
        (dict(dy=dy, dh_n=np.ones((B, H), np.float32)), TypeError, ["dh_n"]),
    ]
    if mode == "lstm":
        bad += [(dict(dy=dy, dc_n=np.ones((H, B))), ValueError, ["dc_n", sh(B, H), sh(H, B)])]
    else:
        bad += [(dict(dy=dy, dc_n=np.ones((B, H))), ValueError, ["dc_n", mode])]
    for kw, exc, words in bad:
        with raises(exc, *words):
            K.backward(res.workspace, **kw)
    assert not res.workspace.used
    got = K.backward(res.workspace, dy)  # the failed calls did not consume it
    assert got.dx.shape == (T, B, I) and np.all(np.isfinite(got.dx))


# ---------------------------------------------------------------- step


def test_step_bad_arguments(mode):
    a = args(mode)
    G = K.num_gates(mode)
    w = {k: v for k, v in a.items() if k not in ("x", "h0", "c0")}
    x, h, c = a["x"][0], a["h0"], a.get("c0")
    with raises(ValueError, "x", "(B, input_size)"):
        K.step(mode, a["x"], h, **w, c=c)
    with raises(ValueError, "x"):
        K.step(mode, x[0], h, **w, c=c)
    with raises(ValueError, "x"):
        K.step(mode, x.tolist(), h, **w, c=c)
    with raises(ValueError, "w_ih", sh(G * H, I + 1)):
        K.step(mode, np.zeros((B, I + 1)), h, **w, c=c)
    with raises(ValueError, "h0", sh(B, H), sh(B + 1, H)):
        K.step(mode, x, np.zeros((B + 1, H)), **w, c=c)
    with raises(TypeError, "h0", "float32"):
        K.step(mode, x, h.astype(np.float32), **w, c=c)
    with raises(TypeError, "x", "int64"):
        K.step(mode, x.astype(np.int64), h, **w, c=c)
    if mode == "lstm":
        with raises(ValueError, "c0", sh(B, H), sh(B, H - 1)):
            K.step(mode, x, h, **w, c=np.zeros((B, H - 1)))
    else:
        with raises(ValueError, "c0"):
            K.step(mode, x, h, **w, c=np.zeros((B, H)))


# ---------------------------------------------------------------- rnnkit._C directly: errors, not crashes


def native_args(mode, override=None):
    a = args(mode)
    full = dict(cell=MODE_ID[mode], x=a["x"], h0=a["h0"], c0=a.get("c0"), w_ih=a["w_ih"], w_hh=a["w_hh"],
                b_ih=a["b_ih"], b_hh=a["b_hh"], lengths=None, reverse=False)
    full.update(override or {})
    return full


def native_bad_cases(mode):
    G = K.num_gates(mode)
    GH = G * H
    cases = [
        dict(cell=-1), dict(cell=len(K.MODES)), dict(cell=1000),
        dict(x=np.zeros((T, B))), dict(x=np.zeros((T, B, I, 1))), dict(x=np.zeros((0, B, I))),
        dict(x=np.zeros((T, 0, I))), dict(x=np.zeros((T, B, I + 1))),
        dict(h0=np.zeros((B, H + 1))), dict(h0=np.zeros((B + 1, H))), dict(h0=np.zeros(B * H)),
        dict(w_ih=np.zeros((GH, I + 1))), dict(w_ih=np.zeros((GH - 1, I))), dict(w_ih=np.zeros(GH)),
        dict(w_hh=np.zeros((GH + 1, H))), dict(w_hh=np.zeros(GH * H)), dict(w_hh=np.zeros((0, 0))),
        dict(w_hh=np.zeros((GH, H, 1))),
        dict(b_ih=None), dict(b_hh=None), dict(b_ih=np.zeros(GH + 1)), dict(b_hh=np.zeros(GH - 1)),
        dict(b_ih=np.zeros((1, GH))),
        dict(lengths=np.array([1, 2])), dict(lengths=np.array([0, 1, 2])), dict(lengths=np.array([1, 2, T + 1])),
        dict(lengths=np.array([-5, 1, 1])), dict(lengths=np.array([[1, 2, 3]])),
        dict(lengths=np.array([2**62, 1, 1])),
    ]
    if mode == "lstm":
        cases += [dict(c0=None), dict(c0=np.zeros((B, H + 1))), dict(c0=np.zeros(B * H))]
    return cases


def test_native_forward_rejects_bad_shapes(mode):
    for override in native_bad_cases(mode):
        for training in (True, False):
            with pytest.raises(ValueError):
                _C.forward(**native_args(mode, override), training=training)
    for dtype in (np.float32, np.float64):  # and the good arguments work in both dtypes
        a = {k: (v.astype(dtype) if isinstance(v, np.ndarray) else v) for k, v in native_args(mode).items()}
        y, h_n, c_n, ws = _C.forward(**a, training=True)
        assert y.shape == (T, B, H) and y.dtype == dtype and ws.size == _C.train_workspace_size(
            MODE_ID[mode], T, B, H)


def test_native_forward_converts_strided_and_mixed_inputs(mode):
    # pybind11 converts what it can (never reading out of bounds); the result equals contiguous input.
    a = native_args(mode)
    ref = _C.forward(**a, training=False)
    strided = dict(a, x=np.asfortranarray(a["x"]), w_hh=np.asfortranarray(a["w_hh"]),
                   lengths=np.array([5, 5, 5], np.int32))
    got = _C.forward(**strided, training=False)
    np.testing.assert_array_equal(got[0], ref[0])
    mixed = dict(a, h0=a["h0"].astype(np.float32))
    try:
        y = _C.forward(**mixed, training=False)[0]
    except (TypeError, ValueError):
        pass
    else:
        assert y.shape == (T, B, H)


def test_native_backward_rejects_bad_shapes(mode):
    a = native_args(mode, dict(lengths=np.array([5, 1, 3])))
    _, _, _, ws = _C.forward(**a, training=True)
    dy = np.ones((T, B, H))
    good = dict(workspace=ws, dy=dy, dh_n=None, dc_n=None)
    bad = [dict(workspace=ws[:-1]), dict(workspace=np.zeros(ws.size + 1)), dict(workspace=ws.reshape(1, -1)),
           dict(dy=np.ones((T, B, H + 1))), dict(dy=np.ones((T * B * H,))), dict(dh_n=np.ones((B, H + 1))),
           dict(dc_n=np.ones((B + 1, H)))]
    for override in bad:
        with pytest.raises(ValueError):
            _C.backward(**a, **dict(good, **override))
    for override in native_bad_cases(mode):
        with pytest.raises(ValueError):
            _C.backward(**dict(a, **override), **good)
    with pytest.raises(TypeError):  # the workspace is written in place: no silent conversion to a copy
        _C.backward(**a, **dict(good, workspace=ws.astype(np.float32)))
    grads = _C.backward(**a, **good)
    assert grads[0].shape == (T, B, I) and np.all(np.isfinite(grads[0]))


def test_native_step_rejects_bad_shapes(mode):
    a = native_args(mode)
    base = dict(cell=a["cell"], x=a["x"][0], h=a["h0"], c=a["c0"], w_ih=a["w_ih"], w_hh=a["w_hh"],
                b_ih=a["b_ih"], b_hh=a["b_hh"], h_out=np.zeros((B, H)),
                c_out=np.zeros((B, H)) if mode == "lstm" else None)
    bad = [dict(x=a["x"]), dict(x=a["x"][0, 0]), dict(x=np.zeros((B, I + 1))), dict(h=np.zeros((B, H + 1))),
           dict(h_out=np.zeros((B, H + 1))), dict(h_out=np.zeros((B + 1, H))), dict(cell=99),
           dict(x=np.zeros((0, I))), dict(b_hh=None)]
    if mode == "lstm":
        bad += [dict(c=None), dict(c_out=None), dict(c_out=np.zeros((B, H - 1)))]
    for override in bad:
        with pytest.raises(ValueError):
            _C.step(**dict(base, **override))
    for override in (dict(h_out=np.zeros((B, H), np.float32)), dict(h_out=np.zeros((H, B)).T),
                     dict(h_out=np.zeros((B, 2 * H))[:, ::2])):
        with pytest.raises(TypeError):  # outputs are never converted (the result would be lost)
            _C.step(**dict(base, **override))
    _C.step(**base)
    assert np.all(np.isfinite(base["h_out"])) and np.any(base["h_out"] != 0)


def test_native_workspace_size_bad_mode():
    with pytest.raises(ValueError):
        _C.train_workspace_size(len(K.MODES), T, B, H)
    # records, the states h and c, and the number of record planes the forward used
    assert _C.train_workspace_size(MODE_ID["lstm"], T, B, H) == T * B * 4 * H + (T + 1) * B * H * 2 + 1
