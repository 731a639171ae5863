"""The reference backward against central finite differences of its own forward (float64).

The loss is L = sum(y*dy) + sum(h_n*dh_n) (+ sum(c_n*dc_n) for LSTM) with random dy, dh_n, dc_n, so
dL/dtheta is exactly what ``backward(workspace, dy, dh_n, dc_n)`` must return for every input theta.
"""
import zlib

import numpy as np
import pytest

from rnnkit import CELLS
from rnnkit.reference import MODES, backward, forward

EPS = 1e-6
TOL = 1e-7

# (T, B, I, H, lengths): the smallest possible layer, and odd sizes whose lengths include 1 and T.
SIZES = {
    "tiny": (1, 1, 1, 1, [1]),
    "odd": (5, 3, 4, 7, [5, 1, 3]),
}


def make_problem(mode, T, B, I, H, bias, seed):
    """The cell's shapes (its registry entry); a cell that reads x directly gets I = H."""
    rng = np.random.default_rng(seed)
    spec = CELLS[mode]
    shapes = spec.kernel_shapes(H if spec.raw_input else I, H)
    inputs = {
        "x": rng.standard_normal((T, B, shapes["w_ih"][1])),
        "h0": rng.standard_normal((B, H)) * 0.5,
        "w_ih": rng.standard_normal(shapes["w_ih"]) * 0.5,
        "w_hh": rng.standard_normal(shapes["w_hh"]) * 0.5,
    }
    if bias:
        for name in ("b_ih", "b_hh"):
            if name in shapes:
                inputs[name] = rng.standard_normal(shapes[name]) * 0.5
    if spec.has_cell_state:
        inputs["c0"] = rng.standard_normal((B, H))
    upstream = {"dy": rng.standard_normal((T, B, H)), "dh_n": rng.standard_normal((B, H))}
    if spec.has_cell_state:
        upstream["dc_n"] = rng.standard_normal((B, H))
    return inputs, upstream


def loss(mode, inputs, upstream, **kwargs):
    y, h_n, c_n, _ = forward(mode, **inputs, training=False, **kwargs)
    total = np.sum(y * upstream["dy"]) + np.sum(h_n * upstream["dh_n"])
    if c_n is not None:
        total += np.sum(c_n * upstream["dc_n"])
    return total


def numerical_gradient(mode, inputs, upstream, name, **kwargs):
    a = inputs[name]
    grad = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        saved = a[idx]
        a[idx] = saved + EPS
        plus = loss(mode, inputs, upstream, **kwargs)
        a[idx] = saved - EPS
        minus = loss(mode, inputs, upstream, **kwargs)
        a[idx] = saved
        grad[idx] = (plus - minus) / (2 * EPS)
    return grad


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("use_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("mode", MODES)
def test_backward_matches_finite_differences(mode, bias, reverse, use_lengths, size):
    T, B, I, H, lengths = SIZES[size]
    inputs, upstream = make_problem(mode, T, B, I, H, bias, seed=zlib.crc32(f"{mode}{bias}{reverse}{size}".encode()))
    kwargs = {"reverse": reverse, "lengths": np.array(lengths) if use_lengths else None}

    workspace = forward(mode, **inputs, **kwargs).workspace
    grads = backward(workspace, **upstream)._asdict()

    spec = CELLS[mode]
    expected_names = {"x", "h0", "w_ih", "w_hh"} | ({"b_ih"} if bias else set()) \
        | ({"b_hh"} if bias and spec.bias_hh else set()) | ({"c0"} if spec.has_cell_state else set())
    assert set(inputs) == expected_names
    grad_key = {"x": "dx", "h0": "dh0", "c0": "dc0", "w_ih": "dw_ih", "w_hh": "dw_hh",
                "b_ih": "db_ih", "b_hh": "db_hh"}
    for name in inputs:
        analytic = grads[grad_key[name]]
        numeric = numerical_gradient(mode, inputs, upstream, name, **kwargs)
        assert analytic.shape == inputs[name].shape and analytic.dtype == np.float64
        err = np.max(np.abs(analytic - numeric)) / max(1.0, np.max(np.abs(numeric)))
        assert err < TOL, f"d{name}: normalised max error {err:.2e}"
    for absent in set(grad_key) - expected_names:
        assert grads[grad_key[absent]] is None, f"{grad_key[absent]} should be None"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_padding_steps_have_zero_input_gradient(mode, reverse):
    # Rows past their length never enter the computation: their dx must be exactly zero.
    T, B, I, H, lengths = SIZES["odd"]
    inputs, upstream = make_problem(mode, T, B, I, H, True, seed=1)
    lengths = np.array(lengths)
    workspace = forward(mode, **inputs, lengths=lengths, reverse=reverse).workspace
    dx = backward(workspace, **upstream).dx
    padding = np.arange(T)[:, None] >= lengths[None, :]
    assert padding.any()
    assert np.all(dx[padding] == 0)
    assert np.all(np.any(dx[~padding] != 0, axis=-1))
