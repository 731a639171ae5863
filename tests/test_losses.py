"""rnnkit.losses: the fused native output layer + softmax cross-entropy against the composition of its
parts (Linear.forward, NumPy's softmax_cross_entropy, Linear.backward), at one and at several threads,
and its checks."""
import numpy as np
import pytest

import rnnkit
from rnnkit.losses import linear_softmax_cross_entropy, softmax_cross_entropy
from rnnkit.nn import Linear


def _pair(I, V, dtype, seed):
    a, b = Linear(I, V, dtype, np.random.default_rng(seed)), Linear(I, V, dtype, np.random.default_rng(seed))
    b.params["bias"][:] = np.random.default_rng(seed + 1).standard_normal(V)  # not the symmetric init
    a.load_state_dict(b.state_dict())
    return a, b


# (N, I, V): a small case that runs on one thread, and one with N*V*I above the threshold for two.
@pytest.mark.parametrize("N,I,V", [(7, 5, 3), (600, 24, 40)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_the_numpy_composition(N, I, V, dtype, weighted):
    rng = np.random.default_rng(N + V)
    native, numpy_head = _pair(I, V, dtype, 3)
    x = rng.standard_normal((N, I)).astype(dtype) * 3
    targets = rng.integers(0, V, N)
    weights = (rng.random(N) * (rng.random(N) > 0.2)).astype(dtype) if weighted else None
    for head in (native, numpy_head):  # gradients are added to what is there
        head.grads["weight"][:] = 0.5
        head.grads["bias"][:] = -0.25
    loss, dx = linear_softmax_cross_entropy(native, x, targets, weights)
    ref_loss, dlogits = softmax_cross_entropy(numpy_head.forward(x), targets, weights)
    ref_dx = numpy_head.backward(dlogits)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    assert loss == pytest.approx(ref_loss, rel=tol)
    np.testing.assert_allclose(dx, ref_dx, rtol=0, atol=tol)
    for k in ("weight", "bias"):
        np.testing.assert_allclose(native.grads[k], numpy_head.grads[k], rtol=0, atol=tol * 10)
    # Without gradients: the same loss and the head's gradients untouched.
    before = {k: v.copy() for k, v in native.grads.items()}
    loss2, none = linear_softmax_cross_entropy(native, x, targets, weights, grad=False)
    assert none is None and loss2 == pytest.approx(loss, rel=1e-12)
    assert all(np.array_equal(before[k], native.grads[k]) for k in before)


def test_the_same_at_any_thread_count():
    native, _ = _pair(32, 50, np.float64, 0)
    rng = np.random.default_rng(9)
    x, targets = rng.standard_normal((512, 32)), rng.integers(0, 50, 512)
    saved = rnnkit.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            rnnkit.set_num_threads(n)
            native.zero_grad()
            loss, dx = linear_softmax_cross_entropy(native, x, targets)
            results.append((loss, dx, native.grads["weight"].copy()))
    finally:
        rnnkit.set_num_threads(saved)
    assert results[0][0] == results[1][0]  # the loss is summed in row order
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(results[0][2], results[1][2], rtol=0, atol=1e-13)


def test_extreme_logits_stay_finite():
    head, _ = _pair(2, 3, np.float32, 0)
    head.params["weight"][:] = [[1000, 0], [0, 0], [-1000, 0]]
    head.params["bias"][:] = 0
    loss, dx = linear_softmax_cross_entropy(head, np.array([[1.0, 0.0]], np.float32), np.array([2]))
    assert loss == pytest.approx(2000, rel=1e-6) and np.isfinite(dx).all()


def test_bad_arguments():
    head, _ = _pair(4, 3, np.float32, 0)
    x = np.ones((5, 4), np.float32)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 4\)"):
        linear_softmax_cross_entropy(head, np.ones((5, 2), np.float32), np.zeros(5, int))
    with pytest.raises(ValueError, match="target 3 outside 0..2"):
        linear_softmax_cross_entropy(head, x, np.array([0, 1, 2, 3, 0]))
    with pytest.raises(ValueError, match=r"targets must have shape \(5,\)"):
        linear_softmax_cross_entropy(head, x, np.zeros(4, int))
    with pytest.raises(ValueError, match="weights must be non-negative"):
        linear_softmax_cross_entropy(head, x, np.zeros(5, int), np.array([1, -1, 1, 1, 1.0]))
    with pytest.raises(ValueError, match="weights must not all be zero"):
        linear_softmax_cross_entropy(head, x, np.zeros(5, int), np.zeros(5))
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        Linear(4, 3, np.float16)


@pytest.mark.parametrize("logits, targets, weights, exc, word", [
    ([[0.0, 1.0]], [0], None, TypeError, "numpy.ndarray"),
    (np.zeros((2, 3), np.int64), [0, 1], None, TypeError, "floating-point"),
    (np.zeros((0, 3)), np.zeros(0, np.int64), None, ValueError, "N, V >= 1"),
    (np.zeros((2, 0)), [0, 0], None, ValueError, "N, V >= 1"),
    (np.zeros((2, 3)), [0, 3], None, ValueError, "0..2"),
    (np.zeros((2, 3)), [0, -1], None, ValueError, "0..2"),
    (np.zeros((2, 3)), [0], None, ValueError, "shape \\(2,\\)"),
    (np.zeros((2, 3)), [0.0, 1.0], None, ValueError, "integers"),
    (np.zeros((2, 3)), [0, 1], [0.0, 0.0], ValueError, "all be zero"),
    (np.zeros((2, 3)), [0, 1], [1.0, -1.0], ValueError, "non-negative"),
    (np.zeros((2, 3)), [0, 1], [1.0, np.nan], ValueError, "finite"),
])
def test_softmax_cross_entropy_names_bad_arguments(logits, targets, weights, exc, word):
    """Found by tests/test_fuzz.py: these raised IndexError, ZeroDivisionError or AttributeError."""
    with pytest.raises(exc, match=word):
        softmax_cross_entropy(logits, np.asarray(targets) if isinstance(targets, list) else targets, weights)
