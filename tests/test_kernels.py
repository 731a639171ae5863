"""The C++ kernels (`rnnkit.kernels`) against the NumPy reference, finite differences, threads, step(),
strided inputs and non-finite values.

Loss convention everywhere: L = sum(y*dy) + sum(h_n*dh_n) (+ sum(c_n*dc_n) for LSTM), so
backward(workspace, dy, dh_n, dc_n) must return dL/dtheta for every input theta.
"""
import itertools
import zlib

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels as K
from rnnkit import reference as R

MODES = K.MODES
GRAD_NAMES = ("dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh")
GRAD_OF = {"x": "dx", "h0": "dh0", "c0": "dc0", "w_ih": "dw_ih", "w_hh": "dw_hh", "b_ih": "db_ih",
           "b_hh": "db_hh"}

# (T, B, I, H): smallest layer, odd sizes, and one where B*G*H*(H+I) >= 65536 and H >= 32 for every
# mode (even G = 1), so the kernel runs 2 OpenMP threads that split the 100 units 48 + 52.
# "wide" has H > 256: the packed GEMM then takes k in several slices.
SIZES = {"tiny": (1, 1, 1, 1), "odd": (5, 3, 4, 7), "threaded": (4, 8, 20, 100), "wide": (2, 9, 5, 300)}


def seed_of(*parts):
    return zlib.crc32(repr(parts).encode())


def lengths_for(T, B):
    """B lengths in 1..T that contain both 1 and T (as far as B allows), not sorted."""
    base = [T, 1] + [1 + (3 * b) % T for b in range(B - 2)]
    return np.array(base[:B] if B > 1 else [1 if T == 1 else T], dtype=np.int64)


def make_problem(mode, T, B, I, H, dtype=np.float64, bias=True, seed=0):
    """Inputs (a dict of forward's keyword arguments) and upstream gradients, well scaled: the weights
    are ~1/sqrt(fan-in) so that no gate saturates and relu does not blow up. The shapes are the cell's
    (its registry entry); a cell that reads x directly gets I = H."""
    rng = np.random.default_rng(seed)
    spec = rnnkit.CELLS[mode]
    if spec.raw_input:
        I = H
    shapes = spec.kernel_shapes(I, H)
    inp = {
        "x": rng.standard_normal((T, B, I)),
        "h0": rng.standard_normal((B, H)) * 0.5,
        "w_ih": rng.standard_normal(shapes["w_ih"]) / np.sqrt(I),
        "w_hh": rng.standard_normal(shapes["w_hh"]) / np.sqrt(H),
    }
    if bias:
        for name in ("b_ih", "b_hh"):
            if name in shapes:
                inp[name] = rng.standard_normal(shapes[name]) * 0.3
    if spec.has_cell_state:
        inp["c0"] = rng.standard_normal((B, H))
    up = {"dy": rng.standard_normal((T, B, H)), "dh_n": rng.standard_normal((B, H))}
    if spec.has_cell_state:
        up["dc_n"] = rng.standard_normal((B, H))
    cast = lambda d: {k: v.astype(dtype) for k, v in d.items()}  # noqa: E731
    return cast(inp), cast(up)


def run(backend, mode, inp, up=None, **kw):
    """Forward (and backward if `up` is given) -> (ForwardResult, Gradients or None)."""
    res = backend.forward(mode, **inp, **kw)
    grads = backend.backward(res.workspace, **up) if up is not None else None
    return res, grads


def assert_close(got, ref, dtype, what):
    """float64: max error <= 1e-10 * max(1, max|ref|); float32: rtol 1e-5, atol 1e-6 * max(1, max|ref|)."""
    if ref is None:
        assert got is None, f"{what}: expected None, got an array"
        return
    assert got is not None, f"{what}: got None"
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype} != {np.dtype(dtype)}"
    ref64 = ref.astype(np.float64)
    scale = max(1.0, float(np.max(np.abs(ref64)))) if ref.size else 1.0
    if np.dtype(dtype) == np.float64:
        err = float(np.max(np.abs(got - ref))) / scale if ref.size else 0.0
        assert err <= 1e-10, f"{what}: normalised max error {err:.3e}"
    else:
        np.testing.assert_allclose(got.astype(np.float64), ref64, rtol=1e-5, atol=1e-6 * scale, err_msg=what)


def compare_results(got, ref, dtype, what):
    res_g, grads_g = got
    res_r, grads_r = ref
    for name in ("y", "h_n", "c_n"):
        assert_close(getattr(res_g, name), getattr(res_r, name), dtype, f"{what} {name}")
    if grads_r is not None:
        for name in GRAD_NAMES:
            assert_close(getattr(grads_g, name), getattr(grads_r, name), dtype, f"{what} {name}")


# --------------------------------------------------------------------------------------------------
# 1. kernels == reference


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("mode", MODES)
def test_matches_reference(mode, dtype):
    cases = 0
    for size, bias, reverse, use_len in itertools.product(SIZES, (True, False), (False, True), (False, True)):
        if size == "threaded" and not use_len and not bias:
            continue  # keep runtime low: the threaded size runs with lengths or bias
        if size == "wide" and (dtype == np.float32 or not bias):
            continue  # k slicing is exact arithmetic either way: float64 shows a slip, float32 only noise
        T, B, I, H = SIZES[size]
        inp, up = make_problem(mode, T, B, I, H, dtype, bias, seed_of(mode, size, bias, reverse))
        kw = {"reverse": reverse, "lengths": lengths_for(T, B) if use_len else None}
        if dtype == np.float32:
            # The oracle in float64 on the same float32 numbers: only the kernel's rounding is measured.
            ref = run(R, mode, {k: v.astype(np.float64) for k, v in inp.items()},
                      {k: v.astype(np.float64) for k, v in up.items()}, **kw)
        else:
            ref = run(R, mode, inp, up, **kw)
        got = run(K, mode, inp, up, **kw)
        compare_results(got, ref, dtype, f"{mode} {size} bias={bias} reverse={reverse} lengths={use_len}")
        assert (got[1].db_ih is None) == (not bias) and (got[1].dc0 is None) == (mode != "lstm")
        cases += 1
    assert cases == (26 if dtype == np.float64 else 22)


@pytest.mark.parametrize("mode", MODES)
def test_default_upstream_and_initial_cell(mode):
    # dh_n / dc_n None mean zeros; c0 None means zeros (LSTM).
    T, B, I, H = SIZES["odd"]
    inp, up = make_problem(mode, T, B, I, H, seed=seed_of("defaults", mode))
    inp.pop("c0", None)
    kw = {"lengths": lengths_for(T, B), "reverse": True}
    got = run(K, mode, inp, {"dy": up["dy"]}, **kw)
    ref = run(R, mode, inp, {"dy": up["dy"]}, **kw)
    compare_results(got, ref, np.float64, f"{mode} defaults")
    zeros = {"dh_n": np.zeros_like(up["dh_n"])}
    if mode == "lstm":
        zeros["dc_n"] = np.zeros_like(up["dc_n"])
    explicit = run(K, mode, inp, {"dy": up["dy"], **zeros}, **kw)
    for name in GRAD_NAMES:
        a, b = getattr(got[1], name), getattr(explicit[1], name)
        assert (a is None and b is None) or np.array_equal(a, b), name


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("mode", MODES)
def test_inference_forward_equals_training_forward(mode, dtype):
    # Inference keeps the records of as many steps as fit in 4 MiB: at B = 1024, H = 100 a step's records
    # take 0.4-4 MB (by the cell's record width and the dtype), so T = 37 runs in chunks of 1 to 10 steps,
    # two threads sharing each chunk's projection by rows; the small sizes run in one chunk.
    tol = 1e-12 if dtype == np.float64 else 1e-6
    for (T, B, I, H), reverse, use_len in itertools.product(
            [SIZES["odd"], (37, 3, 4, 7), SIZES["threaded"], (37, 1024, 20, 100)], (False, True), (False, True)):
        inp, _ = make_problem(mode, T, B, I, H, dtype, True, seed_of("inf", mode, T, reverse))
        kw = {"reverse": reverse, "lengths": lengths_for(T, B) if use_len else None}
        train = K.forward(mode, **inp, training=True, **kw)
        infer = K.forward(mode, **inp, training=False, **kw)
        assert train.workspace is not None and infer.workspace is None
        for name in ("y", "h_n", "c_n"):
            a, b = getattr(train, name), getattr(infer, name)
            if mode != "lstm" and name == "c_n":
                assert a is None and b is None
                continue
            assert a.dtype == b.dtype == np.dtype(dtype)
            # Chunks and the whole sequence project with GEMMs of different heights, which BLAS may sum
            # in different orders: rounding relative to the outputs' scale.
            scale = max(1.0, float(np.max(np.abs(a))))
            np.testing.assert_allclose(b, a, rtol=tol * 10, atol=tol * scale, err_msg=f"{mode} {name} T={T} rev={reverse}")


@pytest.mark.parametrize("mode", MODES)
def test_batch_of_one_matches_reference(mode, restore_threads):
    # A batch of one runs its recurrent products, forward and backward, as matrix-vector products on
    # the packed panels (float32); H = 260 leaves a part-filled last panel, and the step is big enough
    # for two threads, which meet at the steps' barrier.
    T, B, I, H = 5, 1, 20, 260
    inp, up = make_problem(mode, T, B, I, H, np.float32, True, seed_of("b1", mode))
    inp64, up64 = ({k: v.astype(np.float64) for k, v in d.items()} for d in (inp, up))
    refs = {reverse: run(R, mode, inp64, up64, reverse=reverse) for reverse in (False, True)}
    for threads, reverse in itertools.product((1, 2), (False, True)):
        rnnkit.set_num_threads(threads)
        compare_results(run(K, mode, inp, up, reverse=reverse), refs[reverse], np.float32,
                        f"{mode} B=1 threads={threads} reverse={reverse}")


@pytest.mark.parametrize("mode", MODES)
def test_padding_is_zero_and_state_frozen(mode):
    T, B, I, H = 6, 4, 3, 5
    inp, up = make_problem(mode, T, B, I, H, seed=seed_of("pad", mode))
    lengths = np.array([6, 1, 3, 4])
    for reverse in (False, True):
        res, grads = run(K, mode, inp, up, lengths=lengths, reverse=reverse)
        pad = np.arange(T)[:, None] >= lengths[None, :]
        assert np.all(res.y[pad] == 0) and np.all(np.any(res.y[~pad] != 0, axis=-1))
        assert np.all(grads.dx[pad] == 0)
        # h_n is the state at each element's last processed step.
        last = np.where(reverse, 0, lengths - 1)
        np.testing.assert_array_equal(res.h_n, res.y[last, np.arange(B)])


# --------------------------------------------------------------------------------------------------
# 2. finite differences of the kernels themselves (float64)

FD_EPS = 1e-6


def kernel_loss(mode, inp, up, **kw):
    y, h_n, c_n, _ = K.forward(mode, **inp, training=False, **kw)
    total = np.sum(y * up["dy"]) + np.sum(h_n * up["dh_n"])
    if c_n is not None:
        total += np.sum(c_n * up["dc_n"])
    return total


@pytest.mark.parametrize("mode", MODES)
def test_backward_matches_finite_differences(mode):
    T, B, I, H = 4, 3, 3, 4
    inp, up = make_problem(mode, T, B, I, H, np.float64, True, seed_of("fd", mode))
    kw = {"lengths": np.array([4, 1, 2]), "reverse": True}
    grads = run(K, mode, inp, up, **kw)[1]._asdict()
    checked = []
    for name, a in inp.items():
        numeric = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            saved = a[idx]
            a[idx] = saved + FD_EPS
            plus = kernel_loss(mode, inp, up, **kw)
            a[idx] = saved - FD_EPS
            minus = kernel_loss(mode, inp, up, **kw)
            a[idx] = saved
            numeric[idx] = (plus - minus) / (2 * FD_EPS)
        analytic = grads[GRAD_OF[name]]
        err = np.max(np.abs(analytic - numeric)) / max(1.0, np.max(np.abs(numeric)))
        assert err < 1e-7, f"{mode} d{name}: normalised max error {err:.2e}"
        assert np.any(numeric != 0), f"d{name} is identically zero: the check would be vacuous"
        checked.append(name)
    spec = rnnkit.CELLS[mode]
    want = ({"x", "h0", "w_ih", "w_hh", "b_ih"} | ({"b_hh"} if spec.bias_hh else set())
            | ({"c0"} if spec.has_cell_state else set()))
    assert set(checked) == want


# --------------------------------------------------------------------------------------------------
# 3. threads


@pytest.fixture
def restore_threads():
    saved = rnnkit.get_num_threads()
    try:
        yield saved
    finally:
        rnnkit.set_num_threads(saved)


def _all_outputs(mode, inp, up, **kw):
    res, grads = run(K, mode, inp, up, **kw)
    return [a for a in (res.y, res.h_n, res.c_n, *grads) if a is not None]


@pytest.mark.parametrize("mode", MODES)
def test_thread_count_does_not_change_results(mode, restore_threads):
    cases = [(SIZES["threaded"], (1, 2)),
             # 4 threads over H = 32 (two blocks of 16 units): two threads own no unit at all.
             ((3, 16, 96, 32), (1, 4))]
    for (T, B, I, H), counts in cases:
        inp, up = make_problem(mode, T, B, I, H, np.float64, True, seed_of("threads", mode, H))
        kw = {"lengths": lengths_for(T, B), "reverse": True}
        outs = {}
        for n in counts:
            rnnkit.set_num_threads(n)
            assert rnnkit.get_num_threads() == n
            outs[n] = _all_outputs(mode, inp, up, **kw)
        for a, b in zip(*outs.values()):
            scale = max(1.0, float(np.max(np.abs(a))))
            assert np.max(np.abs(a - b)) <= 1e-12 * scale
        # ...and the multi-threaded results are right, not merely reproducible.
        ref = run(R, mode, inp, up, **kw)
        compare_results(run(K, mode, inp, up, **kw), ref, np.float64, f"{mode} {counts[-1]} threads")


@pytest.mark.parametrize("mode", ["lstm", "rnn_tanh"])
@pytest.mark.parametrize("forward_threads,backward_threads", [(2, 1), (1, 2)])
def test_backward_reads_the_records_as_its_forward_laid_them_out(mode, forward_threads, backward_threads,
                                                                  restore_threads):
    # On threads an LSTM's records are split into a plane per thread (at these sizes); a backward run after
    # set_num_threads changed must still read them as the forward wrote them. The RNN's are not split.
    T, B, I, H = SIZES["threaded"]
    inp, up = make_problem(mode, T, B, I, H, np.float64, True, seed_of("planes", mode, H))
    kw = {"lengths": lengths_for(T, B), "reverse": True}
    rnnkit.set_num_threads(forward_threads)
    res = K.forward(mode, **inp, **kw)
    rnnkit.set_num_threads(backward_threads)
    grads = K.backward(res.workspace, **up)
    ref_res, ref_grads = run(R, mode, inp, up, **kw)
    compare_results((res, grads), (ref_res, ref_grads), np.float64, f"{mode} {forward_threads}->{backward_threads}")


def test_backward_rejects_a_workspace_whose_layout_is_garbage(restore_threads):
    T, B, I, H = SIZES["threaded"]
    inp, up = make_problem("lstm", T, B, I, H, np.float64, True, seed_of("garbage", H))
    res = K.forward("lstm", **inp)
    res.workspace.buffer[-1] = 2.5  # where the forward notes its record layout
    with pytest.raises(ValueError, match="workspace does not hold a training forward"):
        K.backward(res.workspace, **up)


def test_set_get_num_threads(restore_threads):
    for n in (1, 3, 2):
        rnnkit.set_num_threads(n)
        assert rnnkit.get_num_threads() == n
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError):
            rnnkit.set_num_threads(bad)
    assert rnnkit.get_num_threads() == 2  # a refused value changes nothing
    with pytest.raises(ValueError):
        rnnkit._C.set_num_threads(0)  # the C++ check too, not only the Python one
    assert rnnkit.get_num_threads() == 2


# --------------------------------------------------------------------------------------------------
# 4. step()


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("mode", MODES)
def test_step_loop_equals_forward(mode, dtype):
    tol = 1e-12 if dtype == np.float64 else 1e-6
    for (T, B, I, H), bias in [(SIZES["odd"], True), (SIZES["odd"], False), ((2, 8, 20, 100), True)]:
        inp, _ = make_problem(mode, T, B, I, H, dtype, bias, seed_of("step", mode, H, bias))
        weights = {k: v for k, v in inp.items() if k not in ("x", "h0", "c0")}
        y, h_n, c_n, _ = K.forward(mode, **inp, training=False)
        f64 = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
        w64 = {k: f64(v) for k, v in weights.items()}
        h, c = inp["h0"], inp.get("c0")
        for t in range(T):
            h_ref, c_ref = R.step(mode, f64(inp["x"][t]), f64(h), **w64, c=f64(c))
            h, c = K.step(mode, inp["x"][t], h, **weights, c=c)
            assert h.dtype == np.dtype(dtype) and h.shape == (B, H)
            np.testing.assert_allclose(h, y[t], rtol=0, atol=tol)
            assert_close(h, h_ref.astype(dtype) if dtype == np.float64 else h_ref, dtype, f"{mode} step h")
            if mode == "lstm":
                assert_close(c, c_ref.astype(dtype) if dtype == np.float64 else c_ref, dtype, f"{mode} step c")
        np.testing.assert_allclose(h, h_n, rtol=0, atol=tol)
        if mode == "lstm":
            np.testing.assert_allclose(c, c_n, rtol=0, atol=tol)
        else:
            assert c is None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [(4, 3, 5, 6), (3, 8, 20, 100)], ids=["small", "threaded"])
def test_step_out_in_place(mode, size):
    T, B, I, H = size
    inp, _ = make_problem(mode, T, B, I, H, seed=seed_of("out", mode))
    weights = {k: v for k, v in inp.items() if k not in ("x", "h0", "c0")}
    y, h_n, c_n, _ = K.forward(mode, **inp, training=False)
    h = inp["h0"].copy()
    c = inp["c0"].copy() if mode == "lstm" else None
    for t in range(T):
        h2, c2 = K.step(mode, inp["x"][t], h, **weights, c=c, out=(h, c))
        assert h2 is h and c2 is c  # written into the given arrays, no new ones
        np.testing.assert_allclose(h, y[t], rtol=0, atol=1e-12)
    np.testing.assert_allclose(h, h_n, rtol=0, atol=1e-12)
    if mode == "lstm":
        np.testing.assert_allclose(c, c_n, rtol=0, atol=1e-12)
    # Separate output buffers: the inputs stay untouched.
    h0 = inp["h0"].copy()
    c0 = inp["c0"].copy() if mode == "lstm" else None
    h_out = np.full_like(h0, np.nan)
    c_out = np.full_like(h0, np.nan) if mode == "lstm" else None
    r = K.step(mode, inp["x"][0], h0, **weights, c=c0, out=(h_out, c_out))
    assert r[0] is h_out and r[1] is c_out
    np.testing.assert_allclose(h_out, y[0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(h0, inp["h0"])
    if mode == "lstm":
        np.testing.assert_array_equal(c0, inp["c0"])


@pytest.mark.parametrize("mode", MODES)
def test_step_bad_out_raises(mode):
    B, I, H = 3, 4, 5
    inp, _ = make_problem(mode, 1, B, I, H, seed=seed_of("badout", mode))
    weights = {k: v for k, v in inp.items() if k not in ("x", "h0", "c0")}
    x, h, c = inp["x"][0], inp["h0"], inp.get("c0")
    good = np.zeros((B, H))
    bad_outs = [
        (np.zeros((B, H + 1)), np.zeros((B, H))),
        (np.zeros((H, B)), np.zeros((B, H))),
        (np.zeros((B * H,)), np.zeros((B, H))),
        (np.zeros((B, H), np.float32), np.zeros((B, H))),
        (np.zeros((B, 2 * H))[:, ::2], np.zeros((B, H))),  # right shape, not contiguous
        (np.zeros((H, B)).T, np.zeros((B, H))),  # Fortran order
        ([[0.0] * H] * B, np.zeros((B, H))),  # not an ndarray
    ]
    if mode == "lstm":
        bad_outs += [(good, None), (good, np.zeros((B, H - 1))), (good, np.zeros((B, H), np.float32))]
    for out in bad_outs:
        before = [None if o is None else np.array(o, copy=True) for o in out]
        with pytest.raises(ValueError):
            K.step(mode, x, h, **weights, c=c, out=out)
        for o, b in zip(out, before):  # nothing written before the check failed
            if isinstance(o, np.ndarray):
                np.testing.assert_array_equal(o, b)
    with pytest.raises(ValueError, match="x"):
        K.step(mode, inp["x"], h, **weights, c=c)  # 3-D x
    with pytest.raises(ValueError, match="h0"):
        K.step(mode, x, h[:, :-1], **weights, c=c)


# --------------------------------------------------------------------------------------------------
# 5. strided and non-contiguous inputs


@pytest.mark.parametrize("mode", MODES)
def test_strided_inputs_equal_contiguous(mode):
    T, B, I, H = 5, 3, 4, 7
    inp, up = make_problem(mode, T, B, I, H, seed=seed_of("strided", mode))
    I = inp["x"].shape[2]  # the cell's (H where x enters it directly)
    rng = np.random.default_rng(1)
    strided = {}
    # x[:, ::2] of a wider batch, weights as .T.T-style Fortran views, slices of longer vectors.
    wide = rng.standard_normal((T, 2 * B, I))
    wide[:, ::2] = inp["x"]
    strided["x"] = wide[:, ::2]
    strided["h0"] = np.ascontiguousarray(inp["h0"][::-1])[::-1]  # negative strides
    strided["w_ih"] = np.asfortranarray(inp["w_ih"])
    strided["w_hh"] = inp["w_hh"].T.copy().T
    for name in ("b_ih", "b_hh"):
        if name not in inp:
            continue
        longer = rng.standard_normal(3 * inp[name].size)
        longer[1::3] = inp[name]
        strided[name] = longer[1::3]
    if mode == "lstm":
        big = rng.standard_normal((B, H + 3))
        big[:, 2:2 + H] = inp["c0"]
        strided["c0"] = big[:, 2:2 + H]
    lengths = np.array([5, 1, 3, 2, 4, 9], dtype=np.int32)[:B]  # int32 and sliced
    assert not strided["x"].flags.c_contiguous and strided["w_ih"].flags.f_contiguous
    assert not strided["w_hh"].flags.c_contiguous and not strided["b_ih"].flags.contiguous
    for k in inp:
        np.testing.assert_array_equal(strided[k], inp[k])
    up_strided = dict(up)
    up_strided["dy"] = np.asfortranarray(up["dy"])
    up_strided["dh_n"] = up["dh_n"].T.copy().T
    snapshot = {k: v.copy() for k, v in strided.items()}
    for reverse in (False, True):
        kw = {"lengths": lengths, "reverse": reverse}
        a = run(K, mode, strided, up_strided, **kw)
        b = run(K, mode, inp, up, **kw)
        for x, y in zip([*a[0][:3], *a[1]], [*b[0][:3], *b[1]]):
            assert (x is None) == (y is None)
            if x is not None:
                np.testing.assert_array_equal(x, y)
                assert x.flags.c_contiguous
    for k, v in strided.items():  # the kernels never write into their inputs
        np.testing.assert_array_equal(v, snapshot[k])
    # step with strided x / h / weights
    weights = {k: strided[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh") if k in strided}
    cw = {k: inp[k] for k in weights}
    s1 = K.step(mode, strided["x"][0], strided["h0"], **weights, c=strided.get("c0"))
    s2 = K.step(mode, inp["x"][0], inp["h0"], **cw, c=inp.get("c0"))
    np.testing.assert_array_equal(s1[0], s2[0])
    if mode == "lstm":
        np.testing.assert_array_equal(s1[1], s2[1])


def test_inputs_not_modified():
    for mode in MODES:
        inp, up = make_problem(mode, *SIZES["threaded"], seed=seed_of("ro", mode))
        saved = {k: v.copy() for k, v in {**inp, **up}.items()}
        run(K, mode, inp, up, lengths=lengths_for(4, 8), reverse=True)
        weights = {k: v for k, v in inp.items() if k not in ("x", "h0", "c0")}
        K.step(mode, inp["x"][0], inp["h0"], **weights, c=inp.get("c0"))
        for k, v in {**inp, **up}.items():
            np.testing.assert_array_equal(v, saved[k], err_msg=f"{mode}: {k} was modified")


# --------------------------------------------------------------------------------------------------
# 6. NaN and inf


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("mode", MODES)
def test_nan_propagates_along_its_sequence_only(mode, dtype):
    T, B, I, H = 6, 3, 4, 5
    inp, up = make_problem(mode, T, B, I, H, dtype, True, seed_of("nan", mode))
    t0, b0 = 2, 1
    for reverse in (False, True):
        bad = dict(inp, x=inp["x"].copy())
        bad["x"][t0, b0, 0] = np.nan
        clean = K.forward(mode, **inp, reverse=reverse, training=False)
        res, grads = run(K, mode, bad, up, reverse=reverse)
        after = np.arange(T) <= t0 if reverse else np.arange(T) >= t0
        assert np.all(np.isnan(res.y[after, b0])), "NaN must reach every later step of its sequence"
        np.testing.assert_array_equal(res.y[~after, b0], clean.y[~after, b0])
        others = np.arange(B) != b0
        np.testing.assert_array_equal(res.y[:, others], clean.y[:, others])
        assert np.all(np.isnan(res.h_n[b0])) and np.all(np.isfinite(res.h_n[others]))
        # backward does not crash; the NaN stays in its own batch row of dx (relu' reads NaN > 0 as
        # false, so there the gradient through the NaN row is zero, as in the reference)
        assert np.all(np.isfinite(grads.dx[:, others]))
        assert np.isnan(grads.dx[:, b0]).any() == (mode != "rnn_relu")
        assert np.isnan(grads.dw_ih).any()


@pytest.mark.parametrize("mode", MODES)
def test_inf_input(mode):
    T, B, I, H = 5, 3, 4, 5
    for dtype in (np.float64, np.float32):
        inp, up = make_problem(mode, T, B, I, H, dtype, True, seed_of("inf", mode))
        for sign in (1, -1):
            bad = dict(inp, x=inp["x"].copy())
            bad["x"][1, 2, :] = sign * np.inf
            clean = K.forward(mode, **inp, training=False)
            res, grads = run(K, mode, bad, up)  # must not crash
            # Rows of other sequences and steps before the inf are untouched.
            np.testing.assert_array_equal(res.y[:, :2], clean.y[:, :2])
            np.testing.assert_array_equal(res.y[:1, 2], clean.y[:1, 2])
            assert grads.dx.shape == inp["x"].shape and np.all(np.isfinite(grads.dx[:, :2]))
            if dtype == np.float64:  # and the value is what the reference says, NaN where it has NaN
                with np.errstate(invalid="ignore", over="ignore"):
                    ref = R.forward(mode, **bad, training=False)
                np.testing.assert_allclose(res.y, ref.y, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
def test_nonfinite_padding_does_not_leak_into_forward(mode):
    T, B, I, H = 4, 2, 3, 5
    inp, up = make_problem(mode, T, B, I, H, seed=seed_of("padnan", mode))
    lengths = np.array([4, 2])
    for reverse in (False, True):
        bad = dict(inp, x=inp["x"].copy())
        bad["x"][3, 1, :] = np.nan  # past the length of sequence 1
        bad["x"][2, 1, 0] = np.inf
        a = K.forward(mode, **bad, lengths=lengths, reverse=reverse)
        b = K.forward(mode, **inp, lengths=lengths, reverse=reverse)
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_array_equal(a.h_n, b.h_n)
        g = K.backward(a.workspace, **up)
        assert np.all(np.isfinite(g.dx)) and np.all(g.dx[2:, 1] == 0)
        assert np.all(np.isfinite(g.dh0)) and np.all(np.isfinite(g.dw_hh))


@pytest.mark.parametrize("mode", MODES)
def test_nonfinite_padding_does_not_leak_into_weight_gradient(mode):
    # The reference never reads x past a sequence's length; the kernel's dW_ih GEMM runs over all rows,
    # so it must not let 0 * NaN from padding rows through.
    T, B, I, H = 4, 2, 3, 5
    inp, up = make_problem(mode, T, B, I, H, seed=seed_of("padnan", mode))
    inp["x"][3, 1, :] = np.nan
    lengths = np.array([4, 2])
    got = run(K, mode, inp, up, lengths=lengths)[1]
    ref = run(R, mode, inp, up, lengths=lengths)[1]
    assert np.all(np.isfinite(ref.dw_ih))
    np.testing.assert_allclose(got.dw_ih, ref.dw_ih, rtol=1e-10, atol=1e-10)


def test_kernels_pin_their_blas_to_one_thread_on_every_call():
    # A threaded BLAS under each OpenMP thread oversubscribes the cores; threadpoolctl and others can
    # raise the library's thread count between calls, so each kernel call must pin it again.
    import ctypes
    import os

    import scipy_openblas32

    lib = ctypes.CDLL(os.path.join(scipy_openblas32.get_lib_dir(), "libscipy_openblas.so"))
    inp, _ = make_problem("lstm", 3, 2, 4, 5, seed=seed_of("blas-threads"))
    before = lib.scipy_openblas_get_num_threads()
    try:
        lib.scipy_openblas_set_num_threads(2)
        K.forward("lstm", **inp, training=False)
        assert lib.scipy_openblas_get_num_threads() == 1
    finally:
        lib.scipy_openblas_set_num_threads(before)


@pytest.mark.parametrize("backend", [K, R], ids=["kernels", "reference"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_backward_accumulates_weight_gradients_in_place(backend, mode, bias):
    # "threaded" size: the kernel's weight-gradient GEMMs and bias sums are split over two threads.
    T, B, I, H = SIZES["threaded"]
    inp, up = make_problem(mode, T, B, I, H, np.float64, bias, seed_of("accumulate", mode, bias))
    fresh = run(backend, mode, inp, up)[1]
    rng = np.random.default_rng(0)
    into = tuple(None if g is None else rng.standard_normal(g.shape) for g in fresh[3:])
    before = tuple(None if a is None else a.copy() for a in into)
    res = backend.forward(mode, **inp)
    got = backend.backward(res.workspace, **up, accumulate_into=into)
    for name, a, b, g, f in zip(GRAD_NAMES[3:], got[3:], before, into, fresh[3:]):
        assert a is g, f"{name} is not the array given"
        if f is not None:
            np.testing.assert_allclose(a, b + f, rtol=0, atol=1e-12, err_msg=name)
    for name, a, f in zip(GRAD_NAMES[:3], got[:3], fresh[:3]):
        assert (a is None and f is None) or np.allclose(a, f, rtol=0, atol=1e-12), name


@pytest.mark.parametrize("backend", [K, R], ids=["kernels", "reference"])
def test_accumulate_into_is_checked(backend):
    T, B, I, H = 3, 2, 4, 5
    inp, up = make_problem("gru", T, B, I, H, np.float64, True, 1)
    good = lambda: [np.zeros((3 * H, I)), np.zeros((3 * H, H)), np.zeros(3 * H), np.zeros(3 * H)]  # noqa: E731

    def bad(into, err, match):
        res = backend.forward("gru", **inp)
        with pytest.raises(err, match=match):
            backend.backward(res.workspace, **up, accumulate_into=into)

    bad(good()[:3], TypeError, "must be a tuple")
    wrong = good(); wrong[0] = np.zeros((3 * H, I), np.float32)
    bad(tuple(wrong), TypeError, "dw_ih must be a writeable C-contiguous float64 array")
    wrong = good(); wrong[1] = np.zeros((H, 3 * H)).T
    bad(tuple(wrong), TypeError, "dw_hh must be a writeable C-contiguous")
    wrong = good(); wrong[2] = np.zeros(2 * H)
    bad(tuple(wrong), ValueError, r"db_ih must have shape \(15,\), got \(10,\)")
    wrong = good(); wrong[3] = None
    bad(tuple(wrong), ValueError, "db_hh must be given")
    no_bias = {k: v for k, v in inp.items() if not k.startswith("b_")}
    res = backend.forward("gru", **no_bias)
    with pytest.raises(ValueError, match="db_ih must be None: the forward had no bias"):
        backend.backward(res.workspace, **up, accumulate_into=tuple(good()))


def test_pooled_outputs_never_alias_live_arrays():
    # Large outputs come from a pool of released buffers: a live array's memory must never be handed out
    # again, and a reused buffer must be fully rewritten.
    T, B, I, H = 64, 32, 16, 64  # y and the workspace are above the pool's 256 KiB threshold
    inp, up = make_problem("lstm", T, B, I, H, np.float32, True, 5)
    first = K.forward("lstm", **inp)
    second = K.forward("lstm", **inp)
    assert not np.shares_memory(first.y, second.y)
    assert not np.shares_memory(first.workspace.buffer, second.workspace.buffer)
    np.testing.assert_array_equal(first.y, second.y)
    g1 = K.backward(first.workspace, **up)
    del second  # its buffers go back to the pool...
    third = K.forward("lstm", **inp)  # ...and are handed out again, rewritten
    np.testing.assert_array_equal(first.y, third.y)
    g3 = K.backward(third.workspace, **up)
    for name, a, b in zip(GRAD_NAMES, g1, g3):
        assert (a is None and b is None) or np.array_equal(a, b), name
    assert not np.shares_memory(g1.dx, g3.dx)


@pytest.mark.parametrize("backend", [K, R], ids=["kernels", "reference"])
@pytest.mark.parametrize("mode", MODES)
def test_projection_gradient_is_what_dx_and_dw_ih_are_made_of(backend, mode):
    # dx = dP W_ih and dW_ih = dP^T x for P = x W_ih^T; everything else is unchanged, and accumulating
    # leaves the caller's dw_ih untouched.
    T, B, I, H = SIZES["threaded"]
    inp, up = make_problem(mode, T, B, I, H, np.float64, True, seed_of("projection", mode))
    kw = {"lengths": lengths_for(T, B), "reverse": True}
    full = run(backend, mode, inp, up, **kw)[1]
    into = tuple(None if g is None else np.zeros_like(g) for g in full[3:])
    res = backend.forward(mode, **inp, **kw)
    if rnnkit.CELLS[mode].raw_input:  # dx has a part that is not made of the projection's gradient
        with pytest.raises(ValueError, match="projection gradient"):
            backend.backward(res.workspace, **up, projection_grad=True, accumulate_into=into)
        return
    proj = backend.backward(res.workspace, **up, projection_grad=True, accumulate_into=into)
    GH, I = inp["w_ih"].shape
    assert proj.dx.shape == (T, B, GH) and proj.dw_ih is None
    np.testing.assert_allclose(proj.dx @ inp["w_ih"], full.dx, rtol=0, atol=1e-12)
    np.testing.assert_allclose(proj.dx.reshape(-1, GH).T @ inp["x"].reshape(-1, I), full.dw_ih, rtol=0, atol=1e-11)
    assert not into[0].any()
    for name in ("dh0", "dc0", "dw_hh", "db_ih", "db_hh"):
        a, b = getattr(proj, name), getattr(full, name)
        assert (a is None and b is None) or np.allclose(a, b, rtol=0, atol=1e-12), name


def test_empty_cache_frees_the_kept_buffers():
    inp, up = make_problem("gru", 64, 32, 16, 64, np.float32, True, 6)
    res = K.forward("gru", **inp)
    K.backward(res.workspace, **up)
    del res
    rnnkit.empty_cache()
    res = K.forward("gru", **inp)
    kept = res.workspace.nbytes + res.y.nbytes
    del res  # y and the workspace go back to the pool
    assert rnnkit.empty_cache() >= kept
    assert rnnkit.empty_cache() == 0
