"""The fused embedding lookup (`ids`): a layer fed rows of a table x through ids equals the layer fed
x[ids], and its dx is the table's gradient. Kernels against the reference and finite differences (float64),
threads and record planes, the layers (batch_first, bidirectional, unbatched) against PyTorch's
Embedding + RNN, and bad ids."""
import zlib

import numpy as np
import pytest

import rnnkit
from rnnkit import kernels as K
from rnnkit import reference as R

MODES = K.MODES
GRAD_NAMES = ("dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh")


def make_problem(mode, T, B, I, H, V, dtype, seed):
    """The cell's shapes (its registry entry); a cell that reads x directly gets I = H."""
    rng = np.random.default_rng(seed)
    spec = rnnkit.CELLS[mode]
    if spec.raw_input:
        I = H
    shapes = spec.kernel_shapes(I, H)
    inp = {"x": rng.standard_normal((V, I)), "h0": rng.standard_normal((B, H)) * 0.5,
           "w_ih": rng.standard_normal(shapes["w_ih"]) / np.sqrt(I),
           "w_hh": rng.standard_normal(shapes["w_hh"]) / np.sqrt(H)}
    for name in ("b_ih", "b_hh"):
        if name in shapes:
            inp[name] = rng.standard_normal(shapes[name]) * 0.3
    if spec.has_cell_state:
        inp["c0"] = rng.standard_normal((B, H))
    up = {"dy": rng.standard_normal((T, B, H)), "dh_n": rng.standard_normal((B, H))}
    if spec.has_cell_state:
        up["dc_n"] = rng.standard_normal((B, H))
    ids = rng.integers(0, V, (T, B))
    ids[0, 0], ids[-1, -1] = 0, V - 1
    cast = lambda d: {k: v.astype(dtype) for k, v in d.items()}  # noqa: E731
    return cast(inp), cast(up), ids


@pytest.fixture
def restore_threads():
    saved = rnnkit.get_num_threads()
    yield
    rnnkit.set_num_threads(saved)


def scatter(ids, dx, V):
    table = np.zeros((V, dx.shape[-1]), dx.dtype)
    np.add.at(table, ids.reshape(-1), dx.reshape(-1, dx.shape[-1]))
    return table


# (T, B, I, H, V): small; 2 threads splitting 100 units; float32 H = 256, B = 32: an LSTM's records in a
# plane per thread; V below the rows a thread must have to split a product by rows.
SIZES = {"odd": (5, 3, 4, 7, 6), "threaded": (4, 8, 20, 100, 40), "planes": (6, 32, 16, 256, 50),
         "few_symbols": (3, 8, 20, 100, 3)}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("threads", [1, 2])
def test_kernels_equal_the_layer_fed_the_gathered_rows(mode, size, threads, restore_threads):
    T, B, I, H, V = SIZES[size]
    dtype = np.float32 if size == "planes" else np.float64
    inp, up, ids = make_problem(mode, T, B, I, H, V, dtype, zlib.crc32(f"{mode} {size}".encode()))
    rnnkit.set_num_threads(threads)
    lengths = np.array([T] + [1 + (5 * b) % T for b in range(1, B)])
    for reverse in (False, True):
        kw = {"lengths": lengths, "reverse": reverse}
        gathered = dict(inp, x=np.ascontiguousarray(inp["x"][ids]))
        res = K.forward(mode, **inp, ids=ids, **kw)
        ref = K.forward(mode, **gathered, **kw)
        inference = K.forward(mode, **inp, ids=ids, training=False, **kw)
        grads = K.backward(res.workspace, **up)
        ref_grads = K.backward(ref.workspace, **up)
        tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
        for name in ("y", "h_n", "c_n"):
            a, b = getattr(res, name), getattr(ref, name)
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_allclose(a, b, **tol, err_msg=name)
                np.testing.assert_allclose(getattr(inference, name), b, **tol, err_msg=name)
        assert grads.dx.shape == inp["x"].shape == (V, inp["x"].shape[1]) and grads.dx.dtype == dtype
        np.testing.assert_allclose(grads.dx, scatter(ids, ref_grads.dx, V), **tol, err_msg="dx")
        for name in GRAD_NAMES[1:]:
            a, b = getattr(grads, name), getattr(ref_grads, name)
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_allclose(a, b, **tol, err_msg=name)


@pytest.mark.parametrize("mode", MODES)
def test_kernels_match_the_reference(mode):
    T, B, I, H, V = SIZES["threaded"]
    inp, up, ids = make_problem(mode, T, B, I, H, V, np.float64, 3)
    kw = {"lengths": np.array([4, 1, 2, 3, 4, 4, 1, 2]), "reverse": True, "ids": ids}
    k_res, r_res = K.forward(mode, **inp, **kw), R.forward(mode, **inp, **kw)
    np.testing.assert_allclose(k_res.y, r_res.y, rtol=0, atol=1e-12)
    k_g, r_g = K.backward(k_res.workspace, **up), R.backward(r_res.workspace, **up)
    for name in GRAD_NAMES:
        a, b = getattr(k_g, name), getattr(r_g, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("mode", MODES)
def test_table_gradient_matches_finite_differences(mode):
    T, B, I, H, V = 4, 3, 3, 4, 5
    inp, up, ids = make_problem(mode, T, B, I, H, V, np.float64, 4)
    ids[:, 0] = 1  # a row read several times, and row 3 never read: its gradient must be exactly zero
    ids[ids == 3] = 2
    kw = {"lengths": np.array([4, 1, 2]), "reverse": False, "ids": ids}

    def loss():
        y, h_n, c_n, _ = K.forward(mode, **inp, training=False, **kw)
        return np.sum(y * up["dy"]) + np.sum(h_n * up["dh_n"]) + (np.sum(c_n * up["dc_n"]) if c_n is not None else 0)

    grads = K.backward(K.forward(mode, **inp, **kw).workspace, **up)
    for name, analytic in (("x", grads.dx), ("w_ih", grads.dw_ih)):
        a = inp[name]
        numeric = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            saved = a[idx]
            a[idx] = saved + 1e-6
            plus = loss()
            a[idx] = saved - 1e-6
            minus = loss()
            a[idx] = saved
            numeric[idx] = (plus - minus) / 2e-6
        err = np.max(np.abs(analytic - numeric)) / max(1.0, np.max(np.abs(numeric)))
        assert err < 1e-7, f"d{name}: normalised max error {err:.2e}"
        assert np.any(numeric != 0)
    assert not grads.dx[3].any()


def test_projection_gradient_of_an_embedded_input_is_per_step():
    T, B, I, H, V = SIZES["threaded"]
    inp, up, ids = make_problem("lstm", T, B, I, H, V, np.float64, 5)
    gathered = dict(inp, x=np.ascontiguousarray(inp["x"][ids]))
    a = K.backward(K.forward("lstm", **inp, ids=ids).workspace, **up, projection_grad=True)
    b = K.backward(K.forward("lstm", **gathered).workspace, **up, projection_grad=True)
    assert a.dx.shape == (T, B, 4 * H) and a.dw_ih is None
    np.testing.assert_allclose(a.dx, b.dx, rtol=0, atol=1e-12)


def test_bad_ids_are_named():
    inp, _, ids = make_problem("gru", 3, 2, 4, 5, 6, np.float64, 6)
    with pytest.raises(ValueError, match=r"ids must lie in 0\.\.5"):
        K.forward("gru", **inp, ids=np.full((3, 2), 6))
    with pytest.raises(ValueError, match=r"ids must lie in 0\.\.5"):
        K.forward("gru", **inp, ids=np.full((3, 2), -1))
    with pytest.raises(ValueError, match=r"ids must have shape \(T, B\)"):
        K.forward("gru", **inp, ids=np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="ids must hold integers"):
        K.forward("gru", **inp, ids=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"x must be a table \(V, input_size\)"):
        K.forward("gru", **dict(inp, x=inp["x"][None]), ids=ids)
    with pytest.raises(ValueError, match=r"h0 must have shape \(4, 5\)"):
        K.forward("gru", **inp, ids=np.zeros((3, 4), np.int64))


# ------------------------------------------------------------------------------------------------ layers


@pytest.mark.parametrize("name", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_layers_equal_torch_embedding_then_rnn(name, bidirectional, batch_first):
    torch = pytest.importorskip("torch")
    V, I, H, T, B = 11, 6, 16, 5, 4
    m = getattr(rnnkit, name)(I, H, 2, batch_first=batch_first, bidirectional=bidirectional, dtype=np.float64,
                              seed=0)
    rng = np.random.default_rng(7)
    E = rng.standard_normal((V, I))
    ids = rng.integers(0, V, (B, T) if batch_first else (T, B))
    y, _ = m.forward(E, ids=ids)
    dy = rng.standard_normal(y.shape)
    dE, _ = m.backward(dy)
    t = getattr(torch.nn, name)(I, H, 2, batch_first=batch_first, bidirectional=bidirectional, dtype=torch.float64)
    with torch.no_grad():
        for k, p in t.named_parameters():
            p.copy_(torch.from_numpy(m.state_dict()[k]))
    Et = torch.tensor(E, requires_grad=True)
    yt, _ = t(torch.nn.functional.embedding(torch.from_numpy(ids), Et))
    (yt * torch.from_numpy(dy)).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=1e-10)
    assert dE.shape == (V, I)
    np.testing.assert_allclose(dE, Et.grad.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(m.grads["weight_ih_l0"], t.weight_ih_l0.grad.numpy(), rtol=0, atol=1e-10)


def test_layer_with_ids_equals_the_layer_fed_the_rows():
    m = rnnkit.LSTM(3, 8, num_layers=2, dtype=np.float64, seed=0)
    rng = np.random.default_rng(8)
    E = rng.standard_normal((4, 3))
    for ids in (np.array([0, 3, 1, 1]), rng.integers(0, 4, (5, 2))):  # unbatched and batched
        y, (h, c) = m.forward(E, ids=ids)
        dE, _ = m.backward(np.ones_like(y))
        grads = {k: v.copy() for k, v in m.grads.items()}
        m.zero_grad()
        y2, (h2, c2) = m.forward(E[ids])
        dx, _ = m.backward(np.ones_like(y2))
        np.testing.assert_allclose(y, y2, rtol=0, atol=1e-12)
        np.testing.assert_allclose(dE, scatter(ids, dx, 4), rtol=0, atol=1e-12)
        for k in grads:
            np.testing.assert_allclose(grads[k], m.grads[k], rtol=0, atol=1e-12, err_msg=k)
        m.zero_grad()


def test_layer_rejects_bad_ids():
    m = rnnkit.GRU(3, 8, batch_first=True)
    E = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"ids must have shape \(B, T\) or unbatched \(T,\)"):
        m.forward(E, ids=np.zeros((2, 2, 2), np.int64))
    with pytest.raises(TypeError, match="ids must hold integers"):
        m.forward(E, ids=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"ids must lie in 0\.\.3"):
        m.forward(E, ids=np.full((2, 2), 4))
    with pytest.raises(ValueError, match=r"x must be a table \(V, input_size = 3\)"):
        m.forward(np.zeros((4, 5), np.float32), ids=np.zeros((2, 2), np.int64))


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_nonfinite_table_rows_no_valid_step_reads_do_not_leak_into_weight_gradient(mode):
    # Row 4 is never read and row 3 only past an element's length: like padding inputs (and like torch's
    # Embedding + RNN), they must not turn dW_ih into NaN. Row 0 is read at valid steps: its NaN is real.
    T, B, I, H, V = 4, 3, 5, 16, 5
    inp, up, _ = make_problem(mode, T, B, I, H, V, np.float64, 9)
    ids = np.array([[1, 2, 1], [2, 1, 3], [1, 2, 3], [2, 1, 3]])
    lengths = np.array([4, 4, 1])
    inp["x"][4] = np.nan
    inp["x"][3] = np.inf
    res = K.forward(mode, **inp, ids=ids, lengths=lengths)
    grads = K.backward(res.workspace, **up)
    assert np.all(np.isfinite(res.y)) and np.all(np.isfinite(grads.dw_ih)) and np.all(np.isfinite(grads.dx))
    clean = dict(inp, x=np.where(np.isfinite(inp["x"]), inp["x"], 0.0))
    ref = K.backward(K.forward(mode, **clean, ids=ids, lengths=lengths).workspace, **up)
    np.testing.assert_allclose(grads.dw_ih, ref.dw_ih, rtol=0, atol=1e-12)
    assert not grads.dx[3:].any()
    inp["x"][0, 0] = np.nan  # read at valid steps
    ids[0, 0] = 0
    res = K.forward(mode, **inp, ids=ids, lengths=lengths)
    assert np.isnan(res.y[:, 0]).any() and np.isnan(K.backward(res.workspace, **up).dw_ih).any()
