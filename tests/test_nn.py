"""rnnkit.nn.Linear, whose products run in rnnkit's kernels: against NumPy's matmul in float64, with
rows split between threads and (few rows) columns, and its checks."""
import numpy as np
import pytest

import rnnkit
from rnnkit import _C
from rnnkit.nn import Linear


@pytest.fixture
def threads():
    before = rnnkit.get_num_threads()
    yield rnnkit.set_num_threads
    rnnkit.set_num_threads(before)


# (lead, I, O): 3 rows (split by columns at 2 threads), 120 rows in (4, 30) (split by rows), odd sizes.
@pytest.mark.parametrize("lead,I,O", [((3,), 5, 7), ((4, 30), 17, 33)])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_linear_matches_numpy(lead, I, O, n_threads, threads):
    threads(n_threads)
    rng = np.random.default_rng(I * O)
    m = Linear(I, O, np.float64, rng)
    x = rng.standard_normal((*lead, I))
    dy = rng.standard_normal((*lead, O))
    w, b = m.params["weight"], m.params["bias"]
    y = m.forward(x)
    np.testing.assert_allclose(y, x @ w.T + b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.apply(x), y, rtol=0, atol=1e-12)
    m.grads["weight"][:] = 0.5  # gradients are added to what is there
    m.grads["bias"][:] = -0.25
    dx = m.backward(dy)
    rows, drows = x.reshape(-1, I), dy.reshape(-1, O)
    np.testing.assert_allclose(dx, dy @ w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.grads["weight"], 0.5 + drows.T @ rows, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.grads["bias"], -0.25 + drows.sum(axis=0), rtol=0, atol=1e-12)
    assert y.shape == (*lead, O) and dx.shape == (*lead, I)


def test_linear_takes_inputs_in_its_dtype():
    m = Linear(4, 3, np.float32, np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((5, 4))  # float64
    y = m.forward(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, x.astype(np.float32) @ m.params["weight"].T + m.params["bias"], atol=1e-6)
    assert m.backward(np.ones((5, 3))).dtype == np.float32


def test_linear_rejects_bad_input():
    m = Linear(4, 3, np.float64, np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="needs a forward first"):
        m.backward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 4\), got \(2, 5\)"):
        m.forward(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 4\), got \(\)"):
        m.apply(np.float64(1.0))
    m.forward(np.ones((2, 4)))
    with pytest.raises(ValueError):
        m.backward(np.ones((2, 4)))
    w, b = m.params["weight"], m.params["bias"]
    with pytest.raises(ValueError, match=r"weight must have shape \(3, 5\)"):
        _C.linear_forward(np.ones((2, 5)), w, b)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        _C.linear_forward(np.ones((2, 4)), w, np.ones(4))
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3\)"):
        _C.linear_backward(np.ones((2, 2)), np.ones((2, 4)), w, m.grads["weight"], None, True)
    with pytest.raises(ValueError, match=r"dw must have shape \(3, 4\)"):
        _C.linear_backward(np.ones((2, 3)), np.ones((2, 4)), w, np.ones((4, 3)), None, True)
    with pytest.raises(TypeError):  # a float32 weight with float64 x: no silent conversion
        _C.linear_forward(np.ones((2, 4)), w.astype(np.float32), None)


def test_single_threaded_blas_holds_numpys_blas_to_one_thread():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {p["filepath"]: p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    before = blas_threads()
    assert before  # NumPy's BLAS (and rnnkit's OpenBLAS) are loaded
    with rnnkit.single_threaded_blas():
        assert set(blas_threads().values()) == {1}
    assert blas_threads() == before


def test_linear_reads_weights_of_any_layout():
    m = Linear(4, 3, np.float64, np.random.default_rng(0))
    w = m.params["weight"].copy()
    m.params["weight"] = np.asfortranarray(w)
    x = np.random.default_rng(1).standard_normal((6, 4))
    np.testing.assert_allclose(m.forward(x), x @ w.T + m.params["bias"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.backward(np.ones((6, 3))), np.ones((6, 3)) @ w, rtol=0, atol=1e-12)


def test_linear_backward_without_the_input_gradient():
    """A first layer skips dx: backward(input_grad=False) returns None and the same weight gradients."""
    rng = np.random.default_rng(5)
    a, b = Linear(6, 4, np.float64, np.random.default_rng(1)), Linear(6, 4, np.float64, np.random.default_rng(1))
    x, dy = rng.standard_normal((3, 5, 6)), rng.standard_normal((3, 5, 4))
    a.forward(x)
    b.forward(x)
    assert a.backward(dy).shape == x.shape
    assert b.backward(dy, input_grad=False) is None
    for k in a.grads:
        np.testing.assert_array_equal(a.grads[k], b.grads[k])
    np.testing.assert_allclose(b.grads["weight"], dy.reshape(-1, 4).T @ x.reshape(-1, 6), rtol=1e-12)
