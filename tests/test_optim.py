"""rnnkit.optim: each optimiser against a step computed by hand, against torch.optim over several steps,
clipping, learning-rate decay and the state round trip."""
import math

import numpy as np
import pytest

from rnnkit import optim


def one(p=1.0):
    return {"w": np.array([p], np.float64)}


def run(opt_cls, grads, **kw):
    params = one()
    opt = opt_cls(params, **kw)
    for g in grads:
        opt.step({"w": np.array([g])})
    return params["w"][0]


def test_sgd_momentum_by_hand():
    # v1 = 0.5, p1 = 1 - 0.1*0.5 = 0.95; v2 = 0.9*0.5 + 0.25 = 0.7, p2 = 0.95 - 0.07 = 0.88
    assert run(optim.SGD, [0.5, 0.25], lr=0.1, momentum=0.9) == pytest.approx(0.88, abs=1e-15)


def test_adagrad_by_hand():
    # m1 = 0.25, p1 = 1 - 0.1*0.5/sqrt(0.25+1e-8); m2 = 0.25 + 1 = 1.25, p2 = p1 - 0.1*1/sqrt(1.25+1e-8)
    p1 = 1 - 0.1 * 0.5 / math.sqrt(0.25 + 1e-8)
    assert run(optim.Adagrad, [0.5, 1.0], lr=0.1) == pytest.approx(p1 - 0.1 / math.sqrt(1.25 + 1e-8), abs=1e-15)


def test_rmsprop_by_hand():
    # v1 = 0.05 * 0.25 = 0.0125, p1 = 1 - 0.01 * 0.5 / (sqrt(0.0125) + 1e-8)
    expected = 1 - 0.01 * 0.5 / (math.sqrt(0.0125) + 1e-8)
    assert run(optim.RMSprop, [0.5], lr=0.01, alpha=0.95) == pytest.approx(expected, abs=1e-15)


def test_adam_by_hand():
    # m1 = 0.05, v1 = 0.00025; m_hat = 0.5, sqrt(v_hat) = 0.5: p1 = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    assert run(optim.Adam, [0.5], lr=0.1) == pytest.approx(1 - 0.1 * 0.5 / (0.5 + 1e-8), abs=1e-15)
    # Second step with g = -1: m2 = 0.045 - 0.1 = -0.055, v2 = 0.00024975 + 0.001 = 0.00124975
    m2, v2 = 0.9 * 0.05 + 0.1 * -1, 0.999 * 0.00025 + 0.001
    p2 = 1 - 0.1 * 0.5 / (0.5 + 1e-8) - 0.1 / (1 - 0.81) * m2 / (math.sqrt(v2) / math.sqrt(1 - 0.999 ** 2) + 1e-8)
    assert run(optim.Adam, [0.5, -1.0], lr=0.1) == pytest.approx(p2, abs=1e-14)


@pytest.mark.parametrize("name,kw,torch_name,torch_kw", [
    ("sgd", {"momentum": 0.9}, "SGD", {"momentum": 0.9}),
    ("rmsprop", {"alpha": 0.95}, "RMSprop", {"alpha": 0.95}),
    ("adam", {}, "Adam", {}),
])
def test_matches_torch(name, kw, torch_name, torch_kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((3, 4))
    params = {"w": p0.copy()}
    opt = optim.make_optimizer(name, params, 0.01, **kw)
    tp = torch.tensor(p0, requires_grad=True)
    topt = getattr(torch.optim, torch_name)([tp], lr=0.01, **torch_kw)
    for _ in range(5):
        g = rng.standard_normal((3, 4))
        opt.step({"w": g})
        tp.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(params["w"], tp.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_clip_grad_norm_is_the_lectures():
    g = [np.array([3.0]), np.array([4.0])]
    assert optim.clip_grad_norm(g, 1.0) == 5.0
    assert [x[0] for x in g] == pytest.approx([0.6, 0.8])
    small = [np.array([0.3, 0.4])]
    assert optim.clip_grad_norm(small, 1.0) == pytest.approx(0.5)
    assert small[0].tolist() == [0.3, 0.4]  # below the threshold: untouched


def test_clip_grad_value_and_decay():
    g = np.array([-7.0, 0.5, 9.0])
    optim.clip_grad_value([g], 5.0)
    assert g.tolist() == [-5.0, 0.5, 5.0]
    assert optim.decayed_lr(1.0, 0, 0.5, 10) == 1.0
    assert optim.decayed_lr(1.0, 25, 0.5, 10) == 0.25


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_state_round_trip_continues_exactly(name):
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(5) for _ in range(6)]
    a = {"w": np.ones(5)}
    opt_a = optim.make_optimizer(name, a, 0.01)
    for g in grads:
        opt_a.step({"w": g})
    b = {"w": np.ones(5)}
    opt_b = optim.make_optimizer(name, b, 0.01)
    for g in grads[:3]:
        opt_b.step({"w": g})
    state = opt_b.state_dict()
    c = {"w": b["w"].copy()}
    opt_c = optim.make_optimizer(name, c, 0.01)
    opt_c.load_state_dict(state)
    for g in grads[3:]:
        opt_c.step({"w": g})
    assert np.array_equal(a["w"], c["w"])


def _numpy_rule(name, p, g, bufs, step, lr=0.01):
    """The update rules written as NumPy expressions, one operation at a time."""
    if name == "sgd":
        (v,) = bufs
        v *= 0.9
        v += g
        p -= lr * v
    elif name == "adagrad":
        (s,) = bufs
        s += g * g
        p -= lr * g / np.sqrt(s + 1e-8)
    elif name == "rmsprop":
        (s,) = bufs
        s[...] = 0.95 * s + 0.05 * g * g
        p -= lr * g / (np.sqrt(s) + 1e-8)
    else:
        m, v = bufs
        m += 0.1 * (g - m)
        v[...] = 0.999 * v + 0.001 * g * g
        p -= lr / (1 - 0.9 ** step) * m / (np.sqrt(v) / math.sqrt(1 - 0.999 ** step) + 1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adam"])
def test_fused_update_matches_the_numpy_formulas(name, dtype):
    # 300 x 200 values: enough for the native pass to split them across threads.
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal((300, 200)).astype(dtype)
    params = {"w": p0.copy()}
    kw = {"momentum": 0.9} if name == "sgd" else {"alpha": 0.95} if name == "rmsprop" else {}
    opt = optim.make_optimizer(name, params, 0.01, **kw)
    ref, bufs = p0.astype(np.float64), [np.zeros((300, 200)) for _ in opt._buffer_names]
    for step in range(1, 4):
        g = rng.standard_normal((300, 200)).astype(dtype)
        opt.step({"w": g})
        _numpy_rule(name, ref, g.astype(np.float64), bufs, step)
    np.testing.assert_allclose(params["w"], ref, rtol=0, atol=1e-12 if dtype == np.float64 else 2e-6)


def test_sum_of_squares_is_exact_and_independent_of_threads():
    import rnnkit
    g = np.random.default_rng(2).standard_normal(100_003).astype(np.float32)
    saved = rnnkit.get_num_threads()
    try:
        norms = []
        for n in (1, 2, 3):
            rnnkit.set_num_threads(n)
            norms.append(optim.clip_grad_norm([g.copy()], 1e9))
    finally:
        rnnkit.set_num_threads(saved)
    assert norms[0] == norms[1] == norms[2]
    assert norms[0] == pytest.approx(math.sqrt(float(np.sum(g.astype(np.float64) ** 2))), rel=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam(one(), lr=-1)
    with pytest.raises(TypeError, match="parameter 'w' must be a writeable C-contiguous float32 or float64"):
        optim.Adam({"w": np.array([1, 2])})
    with pytest.raises(TypeError, match="parameter 'w'"):
        optim.SGD({"w": np.ones((3, 4))[:, ::2]})
    with pytest.raises(ValueError, match=r"gradient 'w' has shape \(2,\), its parameter \(1,\)"):
        optim.SGD(one()).step({"w": np.ones(2)})
    with pytest.raises(ValueError, match="optimizer must be one of"):
        optim.make_optimizer("lbfgs", one(), 0.1)
    with pytest.raises(ValueError, match="is for Adam"):
        optim.SGD(one()).load_state_dict(optim.Adam(one()).state_dict())


def test_a_bad_gradient_changes_nothing():
    """Found by tests/test_fuzz.py: a missing gradient raised KeyError, and a bad one after good ones
    left the earlier parameters updated and the step counted."""
    params = {"a": np.ones(3, np.float32), "b": np.ones(2, np.float32)}
    opt = optim.Adam(params, lr=0.1)
    with pytest.raises(ValueError, match="no gradient for parameter 'b'"):
        opt.step({"a": np.ones(3, np.float32)})
    with pytest.raises(ValueError, match="gradient 'b' has shape"):
        opt.step({"a": np.ones(3, np.float32), "b": np.ones(3, np.float32)})
    assert opt.steps == 0 and (params["a"] == 1).all() and not opt.buffers["exp_avg"]["a"].any()
    opt.step({"a": np.ones(3, np.float32), "b": np.ones(2, np.float32)})
    assert opt.steps == 1 and (params["a"] < 1).all()
